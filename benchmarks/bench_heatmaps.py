"""Benchmark: our vectorised heatmap volumes and pose pipeline vs mmaction2's transforms.

At the paper size (17 joints x 48 frames x 56 x 56, 1 and 2 persons) it times, per clip:

1. heatmaps only: ``epamnet.loader.heatmaps.generate_heatmaps`` vs mmaction2's
   ``GeneratePoseTarget(sigma=0.6, use_score=True, with_kp=True, with_limb=False)``;
2. the whole pose pipeline of one sample: sample 48 of ``--frames`` frames (test mode),
   index, compact (padding 0.25, hw_ratio 1, no image padding), resize to 56 x 56, heatmaps:
   ``epamnet.loader.dataset.pose_clip`` vs the mmaction2 chain UniformSampleFrames ->
   PoseDecode -> PoseCompact -> Resize -> GeneratePoseTarget.

It first checks both give the same heatmaps (max |diff| printed), then prints the median
time per clip, clips/s and the ratio mmaction2/ours (target: >= 10). Without mmaction2
(envs/oracle.txt) only our numbers are printed.

Run: ``PYTHONPATH=src python benchmarks/bench_heatmaps.py [--repeats 30] [--frames 120]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from epamnet.loader.dataset import PoseClipConfig, pose_clip
from epamnet.loader.heatmaps import generate_heatmaps
from epamnet.loader.sampling import sample_frame_indices

CLIP_LEN = 48
SIZE = (56, 56)


def _median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _annotation(rng: np.random.Generator, persons: int, frames: int, img: int) -> tuple[np.ndarray, np.ndarray]:
    """A person-like cloud of COCO-17 points per person, drifting over time, a few misses."""
    centre = rng.uniform(0.3 * img, 0.7 * img, size=(persons, 1, 1, 2))
    drift = np.cumsum(rng.normal(0, 0.5, size=(persons, frames, 1, 2)), axis=1)
    kp = centre + drift + rng.normal(0, img / 8, size=(persons, frames, 17, 2))
    score = rng.uniform(0.3, 1.0, size=(persons, frames, 17))
    miss = rng.random((persons, frames, 17)) < 0.05
    kp[miss] = 0
    score[miss] = 0
    return np.clip(kp, 0, img - 1).astype(np.float32), score.astype(np.float32)


def _mmaction() -> Any | None:
    try:
        from mmaction.datasets.transforms import pose_transforms, processing
    except Exception as exc:  # noqa: BLE001 - any import failure means "no oracle"
        print(f"mmaction2 not importable ({type(exc).__name__}: {exc}); printing our numbers only")
        return None
    if not hasattr(np, "Inf"):
        np.Inf = np.inf  # type: ignore[attr-defined]  # mmaction2 1.2.0's PoseCompact needs it (NumPy 2 dropped it)
    return pose_transforms, processing


def _row(name: str, ours: float, ref: float | None) -> None:
    text = f"{name:<34} ours {ours * 1e3:8.3f} ms ({1 / ours:8.1f} clips/s)"
    if ref is not None:
        text += f" | mmaction2 {ref * 1e3:8.3f} ms ({1 / ref:7.1f} clips/s) | ratio {ref / ours:6.1f}x"
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--frames", type=int, default=120, help="frames of the source video (pipeline case)")
    args = parser.parse_args()
    mm = _mmaction()
    rng = np.random.default_rng(0)
    config = PoseClipConfig(clip_len=CLIP_LEN, heatmap_size=SIZE)

    for persons in (1, 2):
        # 1. heatmaps only, points already in heatmap pixels
        kp56, score56 = _annotation(rng, persons, CLIP_LEN, SIZE[0])
        ours_t = _median_seconds(lambda: generate_heatmaps(kp56, score56, SIZE), args.repeats)
        ref_t = None
        if mm is not None:
            gen = mm[0].GeneratePoseTarget(sigma=0.6, use_score=True, with_kp=True, with_limb=False)

            def ref_heatmaps() -> np.ndarray:
                out = gen.transform({"keypoint": kp56.copy(), "keypoint_score": score56.copy(), "img_shape": SIZE})
                return out["imgs"]

            diff = np.abs(generate_heatmaps(kp56, score56, SIZE) - ref_heatmaps().transpose(1, 0, 2, 3)).max()
            print(f"[{persons} person(s)] heatmaps max |ours - mmaction2| = {diff:.3g}")
            ref_t = _median_seconds(ref_heatmaps, args.repeats)
        _row(f"heatmaps 17x48x56x56, M={persons}", ours_t, ref_t)

        # 2. full pose pipeline from a 224x224 annotation
        kp, score = _annotation(rng, persons, args.frames, 224)

        def ours_pipeline() -> np.ndarray:
            inds = sample_frame_indices(args.frames, CLIP_LEN, test_mode=True)
            return pose_clip(kp, score, (224, 224), inds, config)

        ours_t = _median_seconds(ours_pipeline, args.repeats)
        ref_t = None
        if mm is not None:
            pt, proc = mm
            chain = [
                pt.UniformSampleFrames(clip_len=CLIP_LEN, test_mode=True),
                pt.PoseDecode(),
                pt.PoseCompact(padding=0.25, threshold=10, hw_ratio=1, allow_imgpad=False),
                proc.Resize(scale=SIZE, keep_ratio=False),
                pt.GeneratePoseTarget(sigma=0.6, use_score=True, with_kp=True, with_limb=False),
            ]

            def ref_pipeline() -> np.ndarray:
                results = {"keypoint": kp, "keypoint_score": score, "img_shape": (224, 224)}
                results["total_frames"] = args.frames
                state = np.random.get_state()
                for transform in chain:
                    results = transform.transform(results)
                np.random.set_state(state)
                return results["imgs"]

            diff = np.abs(ours_pipeline() - ref_pipeline().transpose(1, 0, 2, 3)).max()
            print(f"[{persons} person(s)] pipeline max |ours - mmaction2| = {diff:.3g}")
            ref_t = _median_seconds(ref_pipeline, args.repeats)
        _row(f"pose pipeline {args.frames}->48, M={persons}", ours_t, ref_t)


if __name__ == "__main__":
    main()
