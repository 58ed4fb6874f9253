"""Benchmark: paper-sized clip loading vs the synthetic-configuration training step.

Target (the issue): our loader delivers paper-sized clips faster than the training step
of the synthetic configuration (``model.preset: synthetic``, the CPU default) consumes
them, i.e. loader clips/s / consumption clips/s > 1. Both are measured in this process:

1. Loader. The project's dataset item path (``epamnet.loader.dataset``: ``RGBPoseDataset``,
   ``PoseDataset``, ``RGBDataset``, built with the same arguments as
   ``epamnet.engine.stages.build_dataset``) at the PAPER clip sizes (``clip_configs`` of
   ``params.yaml`` with ``model.preset: paper``: RGB 16 frames x 224 x 224, pose
   48 frames x 17 x 56 x 56 heatmaps; sigma, padding, flip ratio from ``data``), in
   training mode (random sampling + flip). Its inputs are written to a temporary folder
   as the crop and splits stages would: ``--videos`` prepared crop videos (the crop
   stage's MJPEG AVI) of ``--frames`` 224 x 224 frames (``epamnet.io.video.write_video``;
   a smooth moving scene with mild noise),
   ``annotations.pkl`` (``epamnet.io.skeleton.save_annotations``; ``--persons`` persons of
   COCO-17 keypoints drifting over time, a few missed joints) and a split JSON whose
   ``train`` part has ``--samples`` entries over those videos. Time per clip is the
   median of single ``dataset[i]`` calls, ``i`` cycling over the samples (so each call
   draws different frames). With ``--workers`` (default ``0 2``) it also times a
   ``torch.utils.data.DataLoader`` (batch ``--batch``, shuffled, as the trainer builds
   it) over the fusion dataset: clips/s from the first batch to the last (worker start-up
   excluded), over one pass of the ``--samples`` samples.
2. Consumption. One training iteration as ``epamnet.engine.trainer`` runs it:
   ``FusionTask`` (or ``SingleStreamTask`` for the pose-only and RGB-only classifiers)
   forward, ``zero_grad``, backward, ``clip_grad_norm_`` (``train.common.grad_clip``),
   SGD step (``build_optimizer`` with the configured momentum and weight decay), on
   ``epamnet.models.epam.build_model(synthetic spec, num_classes)`` in train mode, at
   batch ``--batch`` with random inputs of the synthetic sizes (RGB 3 x 8 x 64 x 64,
   pose 17 x 24 x 32 x 32). Per-clip time = median iteration time / batch. By default only
   the fusion iteration (EPAM-Net, the requirement) is timed; ``--steps fusion pose rgb``
   adds the pose-only and RGB-only classifiers (their loader items are always timed).

Loader items and training iterations are timed interleaved (one of each per round, after
one warm-up round), so that load from other processes on a shared machine hits both
alike. The default run (7 rounds, fusion step only) takes about a minute on 2 CPU threads. The script prints
the per-clip medians, clips/s, the ratio loader/consumption per stream (target > 1),
the clips/s of a serial pipeline (``num_workers=0``: load then train, 1 / (load +
step)), and the torch and OpenCV thread counts. Nothing is asserted.

Run: ``PYTHONPATH=src python benchmarks/bench_loader.py [--repeats 7] [--steps fusion pose rgb]
[--workers 0 2] [--device cpu]``
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader

from epamnet.config import Params, load_params
from epamnet.loader.dataset import PoseDataset, RGBDataset, RGBPoseDataset
from epamnet.engine.schedule import build_optimizer
from epamnet.engine.tasks import FusionTask, SingleStreamTask
from epamnet.io.skeleton import save_annotations
from epamnet.io.video import write_video
from epamnet.models.epam import build_model
from epamnet.prepare.crop import PREPARED_VIDEO_SUFFIX
from epamnet.stages.streams import clip_configs

IMG = 224  # prepared (cropped) video side, prepare.crop.size in the paper setting
STREAMS = ("fusion", "pose", "rgb")


def _with_preset(params: Params, preset: str) -> Params:
    """``params`` with ``model.preset`` replaced (its other model keys kept)."""
    return params.model_copy(update={"model": params.model.model_copy(update={"preset": preset})})


def _frames(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n x IMG x IMG x 3`` uint8: a gradient background, two moving blobs, mild noise."""
    yy, xx = np.mgrid[0:IMG, 0:IMG].astype(np.float32)
    base = np.stack([xx / IMG * 160 + 40, yy / IMG * 120 + 60, (xx + yy) / (2 * IMG) * 100 + 80], axis=-1)
    out = np.empty((n, IMG, IMG, 3), dtype=np.uint8)
    for t in range(n):
        frame = base.copy()
        for k, colour in enumerate(((230, 60, 50), (40, 70, 220))):
            cx = IMG / 2 + IMG / 4 * np.sin(0.07 * t + 2 * k)
            cy = IMG / 2 + IMG / 5 * np.cos(0.05 * t + k)
            blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (IMG / 9) ** 2))[..., None]
            frame = frame * (1 - blob) + np.asarray(colour, np.float32) * blob
        frame += rng.normal(0, 6, size=frame.shape)
        out[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return out


def _keypoints(rng: np.random.Generator, persons: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """COCO-17 point clouds per person in the 224 x 224 crop, drifting, ~5% missed joints."""
    centre = rng.uniform(0.35 * IMG, 0.65 * IMG, size=(persons, 1, 1, 2))
    drift = np.cumsum(rng.normal(0, 0.5, size=(persons, frames, 1, 2)), axis=1)
    kp = centre + drift + rng.normal(0, IMG / 8, size=(persons, frames, 17, 2))
    score = rng.uniform(0.3, 1.0, size=(persons, frames, 17))
    miss = rng.random((persons, frames, 17)) < 0.05
    kp[miss] = 0
    score[miss] = 0
    return np.clip(kp, 0, IMG - 1).astype(np.float32), score.astype(np.float32)


def write_inputs(
    root: Path, videos: int, frames: int, samples: int, persons: int, num_classes: int
) -> tuple[Path, Path]:
    """Videos, ``annotations.pkl`` and ``split.json`` under ``root``; returns (split, annotations)."""
    rng = np.random.default_rng(0)
    (root / "videos").mkdir(parents=True)
    names = []
    for v in range(videos):
        name = f"videos/v{v:03d}{PREPARED_VIDEO_SUFFIX}"
        write_video(root / name, _frames(rng, frames), fps=30)  # the crop stage's format
        names.append(name)
    anns, rows = [], []
    for i in range(samples):
        kp, score = _keypoints(rng, persons, frames)
        label = i % num_classes
        anns.append({
            "frame_dir": f"s{i:04d}", "label": label, "img_shape": (IMG, IMG), "original_shape": (IMG, IMG),
            "total_frames": frames, "keypoint": kp, "keypoint_score": score, "filename": names[i % videos],
        })
        rows.append([f"s{i:04d}", label])
    ann_path, split_path = root / "annotations.pkl", root / "split.json"
    save_annotations(ann_path, anns)
    split_path.write_text(json.dumps({"train": rows, "val": [], "test": []}), encoding="utf-8")
    return split_path, ann_path


def build_datasets(params: Params, split: Path, annotations: Path, root: Path) -> dict[str, Any]:
    """The three training-mode datasets at the sizes of ``params`` (as ``build_dataset`` does)."""
    pose, rgb = clip_configs(params)
    data = {}
    for stream in STREAMS:
        kwargs = dict(split_file=split, part="train", annotations=annotations, prepared_root=root, train=True,
                      flip_ratio=params.data.flip_ratio, seed=params.train_config(stream).seed)
        if stream == "pose":
            data[stream] = PoseDataset(pose=pose, **kwargs)
        elif stream == "rgb":
            data[stream] = RGBDataset(rgb=rgb, **kwargs)
        else:
            data[stream] = RGBPoseDataset(pose=pose, rgb=rgb, **kwargs)
    return data


def build_steps(params: Params, batch: int, device: torch.device, streams: list[str]) -> dict[str, Callable[[], None]]:
    """One training iteration per stream of ``streams`` (fusion, pose, rgb) at the sizes of ``params``."""
    spec = params.model_spec()
    num_classes = params.synthetic.num_classes
    gen = torch.Generator().manual_seed(0)
    imgs = torch.randn(batch, 3, spec.rgb.clip_len, spec.rgb.input_size, spec.rgb.input_size, generator=gen)
    heatmaps = torch.rand(batch, spec.pose.in_channels, spec.pose.clip_len, spec.pose.input_size,
                          spec.pose.input_size, generator=gen)
    batch_dict = {"imgs": imgs, "heatmaps": heatmaps, "label": torch.arange(batch) % num_classes}
    tasks = {"fusion": FusionTask(), "pose": SingleStreamTask(input_key="heatmaps"),
             "rgb": SingleStreamTask(input_key="imgs")}
    steps = {}
    for stream in streams:
        torch.manual_seed(0)
        model = build_model(spec, num_classes, stream).to(device).train()
        params_list = [p for p in model.parameters() if p.requires_grad]
        cfg_s = params.train_config(stream)
        optimizer = build_optimizer(model, cfg_s.lr(1), cfg_s.momentum, cfg_s.weight_decay)
        task = tasks[stream]
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

        def step(model=model, optimizer=optimizer, task=task, params_list=params_list, clip=cfg_s.grad_clip,
                 sync=sync) -> None:
            out = task.step(model, batch_dict, device)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(params_list, clip)
            optimizer.step()
            sync()

        steps[stream] = step
    return steps


def interleaved_medians(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each function, the calls interleaved round by round."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(v) for name, v in times.items()}


def loader_rate(dataset: Any, batch: int, workers: int, seed: int) -> tuple[float, float]:
    """(clips/s from the first batch to the last, seconds to the first batch) of one pass."""
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(seed), drop_last=False)
    t0 = time.perf_counter()
    it = iter(loader)
    next(it)
    t_first = time.perf_counter()
    clips = 0
    for b in it:
        clips += int(b["label"].shape[0])
    elapsed = time.perf_counter() - t_first
    del it
    return clips / elapsed if clips else float("nan"), t_first - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (one item/iteration per stream each)")
    parser.add_argument("--steps", nargs="+", choices=STREAMS, default=["fusion"],
                        help="streams whose training iteration is timed (pose and rgb add ~80%% to the run time)")
    parser.add_argument("--params", default="params.yaml", help="parameter file (defaults if it does not exist)")
    parser.add_argument("--batch", type=int, default=8, help="training batch (train.common.batch_size)")
    parser.add_argument("--frames", type=int, default=120, help="frames per video")
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--samples", type=int, default=48, help="train samples (over the videos)")
    parser.add_argument("--persons", type=int, default=2, help="persons per annotation (NTU: 1 or 2)")
    parser.add_argument("--workers", type=int, nargs="*", default=[0, 2], help="DataLoader num_workers to time")
    parser.add_argument("--device", default="cpu", help="training-step device (the synthetic default runs on CPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    if args.threads:
        torch.set_num_threads(args.threads)

    params = load_params(args.params) if Path(args.params).is_file() else Params()
    paper, synthetic = _with_preset(params, "paper"), _with_preset(params, "synthetic")
    pose_p, rgb_p = clip_configs(paper)
    sspec = synthetic.model_spec()
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()} (interop {torch.get_num_interop_threads()}), "
          f"OpenCV {cv2.__version__} threads {cv2.getNumThreads()}, training device {device}")
    print(f"loader (paper sizes, train mode): RGB {rgb_p.clip_len} x {rgb_p.size}x{rgb_p.size}, pose "
          f"{pose_p.clip_len} x 17 x {pose_p.heatmap_size[0]}x{pose_p.heatmap_size[1]}, flip_ratio "
          f"{params.data.flip_ratio}; {args.videos} prepared crop videos (MJPEG AVI) x {args.frames} frames {IMG}x{IMG}, "
          f"{args.persons} person(s), {args.samples} samples")
    print(f"training step (synthetic spec): RGB 3 x {sspec.rgb.clip_len} x {sspec.rgb.input_size}x"
          f"{sspec.rgb.input_size}, pose {sspec.pose.in_channels} x {sspec.pose.clip_len} x {sspec.pose.input_size}x"
          f"{sspec.pose.input_size}, batch {args.batch}, {params.synthetic.num_classes} classes")

    with tempfile.TemporaryDirectory(prefix="bench_loader_") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        split, ann = write_inputs(root, args.videos, args.frames, args.samples, args.persons,
                                  params.synthetic.num_classes)
        print(f"inputs written in {time.perf_counter() - t0:.1f} s "
              f"({sum(f.stat().st_size for f in (root / 'videos').iterdir()) / args.videos / 1e6:.2f} MB per video)")
        datasets = build_datasets(paper, split, ann, root)
        steps = build_steps(synthetic, args.batch, device, args.steps)

        counters = {s: 0 for s in STREAMS}

        def item(stream: str) -> Callable[[], Any]:
            def run() -> Any:
                ds = datasets[stream]
                i = counters[stream] % len(ds)
                counters[stream] += 1
                return ds[i]

            return run

        sample = datasets["fusion"][0]
        print(f"fusion item: imgs {tuple(sample['imgs'].shape)} {sample['imgs'].dtype}, "
              f"heatmaps {tuple(sample['heatmaps'].shape)} {sample['heatmaps'].dtype}")
        fns: dict[str, Callable[[], Any]] = {}
        for s in STREAMS:
            fns[f"load {s}"] = item(s)
            if s in steps:
                fns[f"step {s}"] = steps[s]
        t0 = time.perf_counter()
        med = interleaved_medians(fns, args.repeats)
        print(f"timed {args.repeats} interleaved rounds in {time.perf_counter() - t0:.1f} s; medians:")
        print(f"{'stream':<8} {'load/clip':>11} {'loader':>14} {'step/clip':>11} {'consumption':>16} "
              f"{'loader/consumption':>19} {'serial (workers=0)':>19}")
        for s in STREAMS:
            load = med[f"load {s}"]
            if f"step {s}" not in med:
                print(f"{s:<8} {load * 1e3:8.2f} ms {1 / load:8.1f} clip/s {'-':>11} {'-':>16} {'-':>19} {'-':>19}")
                continue
            step = med[f"step {s}"] / args.batch
            print(f"{s:<8} {load * 1e3:8.2f} ms {1 / load:8.1f} clip/s {step * 1e3:8.2f} ms {1 / step:10.1f} clip/s "
                  f"{step / load:18.2f}x {1 / (load + step):12.1f} clip/s")

        for w in args.workers:
            rate, first = loader_rate(datasets["fusion"], args.batch, w, seed=params.train_config("fusion").seed)
            text = f"DataLoader fusion, num_workers={w}: {rate:7.1f} clips/s (first batch after {first:.2f} s)"
            if "step fusion" in med:
                text += f"; / consumption {rate * med['step fusion'] / args.batch:.2f}x"
            print(text)
    print("note: single-process, medians on this machine as it is; on a shared, loaded machine the "
          "absolute numbers move, the same-process ratios less so")


if __name__ == "__main__":
    main()
