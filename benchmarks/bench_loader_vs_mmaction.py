"""Benchmark: our fusion training clip vs mmaction2's own RGBPoseConv3D training pipeline, per core.

Target (the issue): the project's fusion dataset item delivers paper-sized training
clips at 4x the clips/s of mmaction2's RGBPoseConv3D training pipeline on one core, with
the outputs still equal where the two pipelines apply the same transforms. Both run in
this process, pinned to one CPU core (``os.sched_setaffinity`` on every thread, torch and
OpenCV at one thread), on the same inputs:

Inputs (a temporary folder, ``scenes.write_inputs``): ``--videos`` prepared crop videos
in the crop stage's format (224 x 224 MJPEG AVI, ``epamnet.prepare.crop``), of
``--min-frames`` to ``--max-frames`` frames at 30 fps, showing one or (every third video)
two stick persons in a textured room; their ``annotations.pkl`` with the persons'
COCO-17 keypoints in cropped-frame pixels, ``img_shape`` 224 x 224; a split JSON whose
``train`` part lists every sample.

1. Ours: ``epamnet.loader.dataset.RGBPoseDataset`` in training mode, built as
   ``epamnet.stages.streams.build_dataset`` builds it, at the paper preset's clip sizes
   (``model.preset: paper``: RGB 16 x 224 x 224, pose 48 x 17 x 56 x 56) with ``data``
   of ``--params`` (sigma, compaction, flip ratio). Output: uint8 RGB 3 x 16 x 224 x 224
   (the training device normalises a batch at a time, ``normalize_clips``) and heatmaps
   17 x 48 x 56 x 56.
2. mmaction2 (1.2, the test oracle, envs/oracle.txt): its ``PoseDataset`` over the same
   ``annotations.pkl`` and videos with the train pipeline of its
   ``configs/skeleton/posec3d/rgbpose_conv3d/rgbpose_conv3d.py`` at the paper's sizes:
   ``MMUniformSampleFrames(clip_len=dict(RGB=16, Pose=48))``, ``MMDecode``,
   ``MMCompact``, ``Resize(224, 224)``, ``Flip(0.5)``, ``GeneratePoseTarget(scaling=56/224)``
   (heatmaps at 56 x 56 from the 224 frame), ``FormatShape('NCTHW')``,
   ``PackActionInputs``; the flipped joint pairs and the RGB mean and std are read from
   that config file (its installed copy). Adapted: compaction with our ``data`` values
   (the config's ``allow_imgpad=True`` -> ``data.allow_imgpad``), sigma ``data.sigma``
   (config 0.7), and no ``Resize(256)`` + ``RandomResizedCrop`` (EPAM-Net's fusion
   training has no crop).
   ``MMDecode`` reads with decord; without decord installed (``--mm-decoder auto``) it
   reads through mmaction2's OpenCV path instead (``OpenCVInit``'s ``mmcv.VideoReader``
   and ``OpenCVDecode``'s frame loop, which seeks per frame); the decoder used is printed.
   Its clip leaves as uint8 RGB (mmaction2 normalises in the model's
   ``data_preprocessor``, usually on the GPU); the time of that normalisation on this core
   (its formula ``(x - mean) / std`` in torch with the config's mean and std; the class
   itself needs einops, which the oracle environment leaves out) is printed
   separately, and a ratio with it.

Timing: rounds of one item of each (ours, mmaction2) and one pass of our stages alone
(decode ``read_frames`` and resize, ``format_clip`` with the flip, ``pose_clip``: compact,
resize, flip, heatmaps; and ``normalize_clips`` on this core, reported apart as mmaction2's
normalisation is), after one warm-up round; round ``r`` takes sample ``r % videos`` in epoch
``r // videos`` (ours) and mmaction2's global RNG (seeded once), so every round draws new
frames. Printed: the medians per clip, clips/s per core, the clips/s ratio ours /
mmaction2 (target >= 4), our breakdown and mmaction2's per transform.

Equality (on ``--check`` samples): mmaction2's transforms run on our draws (our pose and
RGB frame indices written into its ``Pose_inds`` / ``RGB_inds``; its Flip forced to our
decision). Heatmaps: its full chain vs our item. RGB: decoded frames (its decoder vs ours:
with decord, FFmpeg's JPEG decoder against libjpeg's), and its Flip -> FormatShape ->
normalisation on our decoded frames vs our item normalised by ``normalize_clips``; its
full chain's RGB is not comparable,
because its ``MMCompact`` and ``Resize`` crop every clip to the box of its sampled
keypoints and resize it back to 224, where the prepared crop video is already cut to the
global box (the official fork's ``MMCompact`` and ``Resize`` leave the frames alone).

Run: ``PYTHONPATH=src python benchmarks/bench_loader_vs_mmaction.py [--repeats 8] [--core N]
[--mm-decoder auto|decord|opencv]``. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import logging
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from epamnet.config import Params, load_params
from epamnet.io.skeleton import save_annotations
from epamnet.io.video import read_frames, write_video
from epamnet.loader.dataset import RGBPoseDataset, pose_clip
from epamnet.loader.rgb import format_clip, normalize_clips, resize_frames
from epamnet.prepare.crop import PREPARED_QUALITY
from epamnet.stages.streams import clip_configs
from scenes import FPS, IMG, write_inputs

# ---------------------------------------------------------------- the two pipelines


def with_preset(params: Params, preset: str) -> Params:
    """``params`` with ``model.preset`` replaced (its other model keys kept)."""
    return params.model_copy(update={"model": params.model.model_copy(update={"preset": preset})})


def pin_to_one_core(core: int) -> None:
    """Every thread of this process on CPU ``core``; torch and OpenCV at one thread."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), {core})
        except (ProcessLookupError, PermissionError):
            pass
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or inter-op work already ran
        pass
    cv2.setNumThreads(1)


def _mmaction() -> Any:
    if not hasattr(np, "Inf"):
        np.Inf = np.inf  # type: ignore[attr-defined]  # mmaction2 1.2.0's compaction needs it (NumPy 2 dropped it)
    import mmaction
    from mmaction.datasets import PoseDataset
    from mmaction.datasets.transforms import (
        formatting,
        loading,
        pose_transforms,
        processing,
    )

    return mmaction, PoseDataset, pose_transforms, processing, formatting, loading


def mm_decoder(choice: str) -> tuple[Any, str]:
    """``MMDecode``, or (no decord) ``MMDecode`` reading through mmaction2's OpenCV path; and its name."""
    _, _, pose_t, _, _, loading = _mmaction()
    has_decord = importlib.util.find_spec("decord") is not None
    if choice == "decord" or (choice == "auto" and has_decord):
        if not has_decord:
            raise SystemExit("--mm-decoder decord: decord is not installed")
        return pose_t.MMDecode(), "decord (MMDecode as is)"

    class OpenCVMMDecode(pose_t.MMDecode):
        """MMDecode with decord's reader swapped for mmaction2's OpenCVInit / OpenCVDecode."""

        def _get_video_reader(self, filename: str) -> Any:
            return loading.OpenCVInit().transform({"filename": filename})["video_reader"]

        def _decord_load_frames(self, container: Any, frame_inds: np.ndarray) -> list[np.ndarray]:
            return loading.OpenCVDecode().transform({"video_reader": container, "frame_inds": frame_inds})["imgs"]

    return OpenCVMMDecode(), "OpenCV (MMDecode reading through mmaction2's OpenCVInit + OpenCVDecode; no decord)"


class Timed:
    """A transform wrapper that keeps the run time of its last call in ``last``."""

    def __init__(self, name: str, transform: Any) -> None:
        self.name, self.transform, self.last = name, transform, 0.0

    def __call__(self, results: dict) -> dict:
        t0 = time.perf_counter()
        out = self.transform(results)
        self.last = time.perf_counter() - t0
        return out


def mm_transforms(
    params: Params, decoder: Any, config: Any, flip_ratio: float | None = None
) -> list[tuple[str, Any]]:
    """mmaction2's RGBPoseConv3D train pipeline at the paper sizes (see the module doc); the flipped
    joint pairs come from its ``config``."""
    _, _, pose_t, proc, fmt, _ = _mmaction()
    pose, rgb = clip_configs(params)
    data = params.data
    return [
        ("sample", pose_t.MMUniformSampleFrames(clip_len={"RGB": rgb.clip_len, "Pose": pose.clip_len}, num_clips=1)),
        ("decode", decoder),
        ("compact", pose_t.MMCompact(padding=data.compact_padding, threshold=data.compact_threshold, hw_ratio=1.0,
                                     allow_imgpad=data.allow_imgpad)),
        ("resize", proc.Resize(scale=(rgb.size, rgb.size), keep_ratio=False)),
        ("flip", proc.Flip(flip_ratio=data.flip_ratio if flip_ratio is None else flip_ratio,
                           left_kp=list(config.left_kp), right_kp=list(config.right_kp))),
        ("heatmaps", pose_t.GeneratePoseTarget(sigma=data.sigma, use_score=data.use_score, with_kp=True,
                                               with_limb=False, scaling=pose.heatmap_size[1] / rgb.size)),
        ("format", fmt.FormatShape(input_format="NCTHW")),
        ("pack", fmt.PackActionInputs(collect_keys=("imgs", "heatmap_imgs"))),
    ]


def mm_config() -> Any:
    """mmaction2's own ``configs/skeleton/posec3d/rgbpose_conv3d/rgbpose_conv3d.py`` (its installed copy)."""
    import mmaction
    from mmengine.config import Config

    path = Path(mmaction.__file__).parent / ".mim/configs/skeleton/posec3d/rgbpose_conv3d/rgbpose_conv3d.py"
    return Config.fromfile(str(path))


def mm_rgb_statistics(config: Any) -> tuple[list[float], list[float]]:
    """Mean and std of the config's RGB ``data_preprocessor``."""
    imgs = config.model.data_preprocessor.preprocessors.imgs
    return list(imgs.mean), list(imgs.std)


def mm_normalise(imgs: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """mmaction2's ActionDataPreprocessor normalisation (NCTHW): ``(x - mean) / std``, float32."""
    m = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1, 1)
    return (imgs - m) / s


# ---------------------------------------------------------------- equality


def check_sample(
    ours_ds: RGBPoseDataset, mm_ds: Any, params: Params, decoder: Any, config: Any, i: int
) -> dict[str, Any]:
    """Our item ``i`` vs mmaction2's transforms run on our draws (see the module doc)."""
    item = ours_ds[i]
    pose_inds, rgb_inds, flip = ours_ds.frame_indices(i)
    steps = dict(mm_transforms(params, decoder, config, flip_ratio=1.0 if flip else 0.0))
    start = steps["sample"](mm_ds.get_data_info(i))
    start["Pose_inds"], start["RGB_inds"] = pose_inds.astype(np.int32), rgb_inds.astype(np.int32)

    rgb = steps["decode"](copy.deepcopy(start))
    decoded = np.stack(rgb["imgs"])

    full = copy.deepcopy(start)
    for name in ("decode", "compact", "resize", "flip", "heatmaps", "format", "pack"):
        full = steps[name](full)
        if name == "compact":
            box = tuple(int(v) for v in full["img_shape"])  # its crop of the RGB frames
    heat = full["inputs"]["heatmap_imgs"][0].numpy()
    ours_heat = item["heatmaps"].numpy()

    ours_decoded = read_frames(ours_ds.prepared_root / ours_ds.annotations[i]["filename"], rgb_inds)
    # Its Flip, FormatShape and normalisation on our decoded frames (its decoder may be another
    # JPEG decoder, compared separately) vs our item normalised as the tasks normalise it.
    rgb["imgs"] = [f.copy() for f in ours_decoded]  # its Flip flips in place
    rgb = steps["format"](steps["flip"](rgb))
    mm_rgb = mm_normalise(torch.from_numpy(np.ascontiguousarray(rgb["imgs"][0])), *mm_rgb_statistics(config))
    return {
        "flip": flip,
        "heat_diff": float(np.abs(heat - ours_heat).max()) if heat.shape == ours_heat.shape else float("inf"),
        "heat_peak": float(ours_heat.max()),
        "decode_diff": np.abs(decoded.astype(np.int16) - ours_decoded.astype(np.int16)),
        "rgb_diff": float((mm_rgb - normalize_clips(item["imgs"])).abs().max()),
        "box": box,
    }


# ---------------------------------------------------------------- timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=8, help="timed passes over the videos (one item each)")
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--min-frames", type=int, default=70)
    parser.add_argument("--max-frames", type=int, default=140)
    parser.add_argument("--core", type=int, default=None, help="CPU to pin to (default: the last one allowed)")
    parser.add_argument("--check", type=int, default=None, help="samples checked for equality (default: all)")
    parser.add_argument("--mm-decoder", choices=("auto", "decord", "opencv"), default="auto")
    parser.add_argument("--params", default="params.yaml", help="parameter file (defaults if it does not exist)")
    args = parser.parse_args()
    logging.disable(logging.INFO)

    allowed = sorted(os.sched_getaffinity(0))
    core = allowed[-1] if args.core is None else args.core
    pin_to_one_core(core)
    mmaction, PoseDataset, *_ = _mmaction()
    import mmcv

    params = load_params(args.params) if Path(args.params).is_file() else Params()
    paper = with_preset(params, "paper")
    pose_c, rgb_c = clip_configs(paper)
    decoder, decoder_name = mm_decoder(args.mm_decoder)
    config = mm_config()
    stats = mm_rgb_statistics(config)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"machine: {cpu}; {os.cpu_count()} CPUs, pinned to CPU {core} (allowed {allowed}); load average "
          f"{os.getloadavg()[0]:.2f} at start")
    print(f"torch {torch.__version__} threads {torch.get_num_threads()}, OpenCV {cv2.__version__} threads "
          f"{cv2.getNumThreads()}, numpy {np.__version__}, mmaction2 {mmaction.__version__}, mmcv {mmcv.__version__}")
    print(f"clip (paper preset): RGB {rgb_c.clip_len} x {rgb_c.size}x{rgb_c.size}, pose {pose_c.clip_len} x 17 x "
          f"{pose_c.heatmap_size[0]}x{pose_c.heatmap_size[1]}, sigma {params.data.sigma}, flip_ratio "
          f"{params.data.flip_ratio}, allow_imgpad {params.data.allow_imgpad}")
    print(f"mmaction2 decoder: {decoder_name}")

    np.random.seed(0)  # mmaction2 draws from the global RNG
    with tempfile.TemporaryDirectory(prefix="bench_vs_mm_") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        split, ann_path, anns = write_inputs(root, args.videos, args.min_frames, args.max_frames)
        sizes = [(root / a["filename"]).stat().st_size / 1e3 for a in anns]
        print(f"inputs: {args.videos} prepared crop videos (MJPEG AVI, quality {PREPARED_QUALITY}) {IMG}x{IMG}, "
              f"{args.min_frames}-{args.max_frames} frames, "
              f"{sum(a['keypoint'].shape[0] for a in anns)} persons in all, {min(sizes):.0f}-{max(sizes):.0f} kB "
              f"each; written in {time.perf_counter() - t0:.1f} s")

        ours = RGBPoseDataset(split_file=split, part="train", annotations=ann_path, prepared_root=root,
                              pose=pose_c, rgb=rgb_c, train=True, flip_ratio=params.data.flip_ratio,
                              seed=params.train_config("fusion").seed)
        timed = [Timed(name, t) for name, t in mm_transforms(paper, decoder, config)]
        mm_ds = PoseDataset(ann_file=str(ann_path), pipeline=timed, data_prefix={"video": str(root)},
                            box_thr=0.5, test_mode=False)
        # The same clips as mp4v (MPEG-4 Part 2) copies: the inter-coded format mmaction2 users
        # usually hold, read by the same pipeline; a second anchor.
        mp4_ann = root / "annotations_mp4v.pkl"
        mp4_anns = [{**a, "filename": a["filename"].replace(".avi", ".mp4")} for a in anns]
        for a, b in zip(anns, mp4_anns, strict=True):
            write_video(root / b["filename"], read_frames(root / a["filename"]), fps=FPS)
        save_annotations(mp4_ann, mp4_anns)
        mm_mp4 = PoseDataset(ann_file=str(mp4_ann), pipeline=[t for _, t in mm_transforms(paper, decoder, config)],
                             data_prefix={"video": str(root)}, box_thr=0.5, test_mode=False)
        n = len(ours)
        assert len(mm_ds) == n == len(mm_mp4)

        # Equality where the transforms are equal.
        checks = [check_sample(ours, mm_ds, paper, decoder, config, i) for i in range(min(args.check or n, n))]
        flips = sum(c["flip"] for c in checks)
        print(f"equality on {len(checks)} samples ({flips} flipped), mmaction2's transforms on our frame indices "
              f"and flip decision:")
        print(f"  heatmaps 17x{pose_c.clip_len}x56x56 (MMCompact, Resize, Flip, GeneratePoseTarget): max |diff| "
              f"{max(c['heat_diff'] for c in checks):.3g} (peaks up to {max(c['heat_peak'] for c in checks):.2f})")
        diffs = np.concatenate([c["decode_diff"].ravel() for c in checks])
        print(f"  decoded RGB frames (ours read_frames vs its decoder): |diff| mean {diffs.mean():.2f}, 99th "
              f"percentile {np.percentile(diffs, 99):.0f}, max {diffs.max()} grey levels (FFmpeg's JPEG decoder vs "
              f"libjpeg's)")
        print(f"  RGB clip (our decoded frames through its Flip, FormatShape, data_preprocessor normalisation vs "
              f"our uint8 item through normalize_clips): max |diff| {max(c['rgb_diff'] for c in checks):.3g}")
        hs, ws = [c["box"][0] for c in checks], [c["box"][1] for c in checks]
        print(f"  RGB after its MMCompact + Resize: not compared (it crops each clip to its sampled keypoints' box, "
              f"here h {min(hs)}-{max(hs)} x w {min(ws)}-{max(ws)}, and resizes it back to "
              f"{IMG}; the prepared crop is already cut to the global box)")

        # Timing, interleaved.
        stage_times: dict[str, list[float]] = {k: [] for k in ("decode", "format", "pose_clip")}
        our_norm: list[float] = []
        flipped: list[bool] = []
        mm_parts: dict[str, list[float]] = {t.name: [] for t in timed}
        mm_norm: list[float] = []
        times: dict[str, list[float]] = {"ours": [], "mmaction2": [], "mmaction2 mp4v": []}

        def ours_stages(i: int) -> None:
            ann = ours.annotations[i]
            pose_inds, rgb_inds, flip = ours.frame_indices(i)
            t = [time.perf_counter()]
            frames = resize_frames(read_frames(root / ann["filename"], rgb_inds), (rgb_c.size, rgb_c.size))
            t.append(time.perf_counter())
            clip = torch.from_numpy(format_clip(frames, flip=flip))
            t.append(time.perf_counter())
            pose_clip(ann["keypoint"], ann["keypoint_score"], tuple(ann["img_shape"]), pose_inds, pose_c, flip=flip)
            t.append(time.perf_counter())
            normalize_clips(clip)  # on the device in training: timed apart
            t.append(time.perf_counter())
            for k, name in enumerate(stage_times):
                stage_times[name].append(t[k + 1] - t[k])
            our_norm.append(t[-1] - t[-2])
            flipped.append(flip)

        rounds = args.repeats * n
        t_all = time.perf_counter()
        for r in range(-1, rounds):  # round -1: warm-up
            i, epoch = r % n, max(r, 0) // n
            ours.set_epoch(epoch)
            t0 = time.perf_counter()
            ours[i]
            t1 = time.perf_counter()
            packed = mm_ds[i]
            t2 = time.perf_counter()
            imgs = packed["inputs"]["imgs"]
            t3 = time.perf_counter()
            mm_normalise(imgs, *stats)
            t4 = time.perf_counter()
            mm_mp4[i]
            t5 = time.perf_counter()
            ours_stages(i)
            if r < 0:
                continue
            times["mmaction2 mp4v"].append(t5 - t4)
            times["ours"].append(t1 - t0)
            times["mmaction2"].append(t2 - t1)
            mm_norm.append(t4 - t3)
            for t in timed:
                mm_parts[t.name].append(t.last)
        elapsed = time.perf_counter() - t_all

    med = {k: statistics.median(v) for k, v in times.items()}
    norm, onorm = statistics.median(mm_norm), statistics.median(our_norm)
    ours_t, mm_t = med["ours"], med["mmaction2"]
    print(f"timed {rounds} interleaved rounds in {elapsed:.1f} s (one core); load average {os.getloadavg()[0]:.2f} "
          f"at the end; medians per clip:")
    print(f"  ours (RGBPoseDataset item)        {ours_t * 1e3:7.2f} ms  {1 / ours_t:6.1f} clips/s per core")
    print(f"  mmaction2 (PoseDataset item)      {mm_t * 1e3:7.2f} ms  {1 / mm_t:6.1f} clips/s per core")
    mp4_t = med["mmaction2 mp4v"]
    print(f"  mmaction2 on mp4v copies          {mp4_t * 1e3:7.2f} ms  {1 / mp4_t:6.1f} clips/s per core "
          f"(ratio ours / that: {mp4_t / ours_t:.2f}x)")
    print(f"  mmaction2 + its normalisation     {(mm_t + norm) * 1e3:7.2f} ms  {1 / (mm_t + norm):6.1f} clips/s "
          f"per core (normalisation {norm * 1e3:.2f} ms, on the GPU in a real run)")
    print(f"  ours + its normalisation          {(ours_t + onorm) * 1e3:7.2f} ms  {1 / (ours_t + onorm):6.1f} clips/s "
          f"per core (normalize_clips {onorm * 1e3:.2f} ms, on the device in a real run)")
    print(f"ratio ours / mmaction2 (clips/s, both handing out uint8 RGB): {mm_t / ours_t:.2f}x (target >= 4); "
          f"both with their normalisation on this core: {(mm_t + norm) / (ours_t + onorm):.2f}x")
    stage_med = {k: statistics.median(v) for k, v in stage_times.items()}
    other = ours_t - sum(stage_med.values())
    print("ours, by stage (medians of the stages run alone, % of the item):")
    for name, label in (("decode", "decode (read_frames, 16 frames) + resize"),
                        ("format", "format (flip when drawn, 3xTxHxW uint8)"),
                        ("pose_clip", "pose_clip (compact, resize, flip, heatmaps)")):
        print(f"  {label:<44} {stage_med[name] * 1e3:7.2f} ms  {100 * stage_med[name] / ours_t:5.1f} %")
    print(f"  {'other (sampling, tensors; item - stages)':<44} {other * 1e3:7.2f} ms  {100 * other / ours_t:5.1f} %")
    print("mmaction2, by transform (medians, % of its item):")
    parts = {k: statistics.median(v) for k, v in mm_parts.items()}
    for name, value in parts.items():
        print(f"  {name:<44} {value * 1e3:7.2f} ms  {100 * value / mm_t:5.1f} %")
    rest = mm_t - sum(parts.values())
    print(f"  {'dataset, rest (item - transforms)':<44} {rest * 1e3:7.2f} ms  {100 * rest / mm_t:5.1f} %")
    print("note: one process, one core, medians on this machine as it is; on a shared, loaded machine the "
          "absolute numbers move, the same-process ratio less so")


if __name__ == "__main__":
    main()
