"""Benchmark: batched HRNet-W32 crops vs one crop per call (mmaction2's extraction script).

mmaction2's ``tools/data/skeleton/ntu_pose_extraction.py`` calls mmpose's
``inference_topdown`` once per frame with that frame's boxes: with one person in
view that is one crop per forward pass. ``epamnet.pose`` queues crops across frames
and runs ``--batch`` of them per forward pass, with the network's weights in
channels-last (NHWC) layout. All run here on the same crops (person boxes from the
skeletons of a generated NTU-like video), flip test off and on, with the real
HRNet-W32 network (random weights: the cost does not depend on them). The script
checks that batched and one-per-call keypoints agree, then prints crops/s of: the
mmaction2 way (one crop per ``inference_topdown`` call, default NCHW layout), one crop
per call on our NHWC model, and our batched path; and the speed-ups per crop of
batching alone (batched / one-per-call, same model) and of the whole change
(batched / mmaction2 way).

Run: ``PYTHONPATH=src python benchmarks/bench_pose_batching.py [--crops 32] [--batch 8] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import copy
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from epamnet.io.video import iter_frames
from epamnet.pose.person_boxes import SkeletonBoxes
from epamnet.pose.compat import import_mmpose_apis
from epamnet.pose.estimator import PoseEstimator, build_estimator
from epamnet.config.synthetic import SyntheticSpec
from epamnet.prepare.synthetic.formats import generate


def make_crops(n: int, workdir: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` (BGR frame, box) pairs: one person box per frame of generated videos."""
    spec = SyntheticSpec(num_classes=2, height=240, width=320, frames=(max(8, n), max(8, n)), ntu_subjects=(1,),
                         ntu_cameras=(1,), ntu_setups=(1,), ntu_replications=(1,), second_person_prob=0.0)
    raw = generate("ntu60", workdir / "ntu60", spec, seed=0)
    boxes = SkeletonBoxes.from_file(raw / "ntu60_2d.pkl")
    video = sorted((raw / "nturgb+d_rgb").glob("*.avi"))[0]
    name = video.name.removesuffix("_rgb.avi")
    crops = []
    for t, rgb in enumerate(iter_frames(video)):
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        crops += [(bgr, box) for box in boxes(name, t, bgr).boxes[:1]]
    return crops[:n]


def best_times(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Fastest of ``repeats`` runs of each function, the runs interleaved (the machine is
    shared: contention then hits every variant alike), after one warm-up run each."""
    for fn in fns.values():
        fn()
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=32, help="person crops per timed run")
    parser.add_argument("--batch", type=int, default=8, help="crops per forward pass, batched")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    apis = import_mmpose_apis()
    estimator: PoseEstimator = build_estimator(None, random_init=True, flip_test=False)
    with tempfile.TemporaryDirectory() as tmp:
        crops = make_crops(args.crops, Path(tmp))
    n = len(crops)
    print(f"HRNet-W32 256x192, {n} person crops of 320x240 frames, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, batch {args.batch}")

    # mmaction2's script as it is runs the model in PyTorch's default NCHW layout
    nchw = copy.deepcopy(estimator.model).to(memory_format=torch.contiguous_format)

    def one_per_call(model: torch.nn.Module = estimator.model) -> np.ndarray:
        # mmaction2's way: inference_topdown per frame, here one box each
        out = [apis.inference_topdown(model, image, box[None], bbox_format="xyxy")[0] for image, box in crops]
        return np.stack([s.pred_instances.keypoints[0] for s in out])

    def batched() -> np.ndarray:
        return np.concatenate([estimator.predict(crops[i:i + args.batch])[0] for i in range(0, n, args.batch)])

    print(f"{'flip':>5}  {'mmaction2 way':>13}  {'one/call NHWC':>13}  {'batched NHWC':>12}  "
          f"{'batching':>8}  {'vs mmaction2':>12}   (crops/s; ratios = speed-up per crop)")
    for flip in (False, True):
        estimator.set_flip_test(flip)
        nchw.test_cfg["flip_test"] = flip
        diff = np.abs(one_per_call() - batched()).max()
        if diff > 1e-2:
            raise SystemExit(f"batched and one-per-call keypoints differ by {diff:.4f} px")

        t = best_times({"ref": lambda: one_per_call(nchw), "one": one_per_call, "batch": batched}, args.repeats)
        t_ref, t_one, t_batch = t["ref"], t["one"], t["batch"]
        print(f"{str(flip):>5}  {n / t_ref:13.2f}  {n / t_one:13.2f}  {n / t_batch:12.2f}  "
              f"{t_one / t_batch:7.2f}x  {t_ref / t_batch:11.2f}x")


if __name__ == "__main__":
    main()
