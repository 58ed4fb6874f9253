"""Pose extraction: videos in, mmaction2 skeleton annotations out (HRNet-W32, COCO-17).

For each video: frames are decoded with OpenCV, a box source gives the person boxes
of each frame, and the crops (of any frames) go through the pose network
``batch_size`` at a time, one forward pass per batch, instead of one call per crop
as mmaction2's ``ntu_pose_extraction.py`` does (benchmarks/bench_pose_batching.py
measures the difference). Per frame at most ``max_persons`` persons are kept, those
with the highest mean keypoint score; the kept persons fill the person axis in
score order, or in track order when the box source knows identities (boxes from
skeletons), so a person keeps its slot across frames. Slots left empty in a frame
are zeros (score 0), as in mmaction2's files.

The annotation: ``frame_dir``, ``label``, ``img_shape`` = ``original_shape`` = (h, w)
of the decoded frames, ``total_frames`` = frames decoded, ``keypoint`` M x T x 17 x 2
float32 in pixels, ``keypoint_score`` M x T x 17 float32 (docs/pipeline.md).

Scale: videos are sharded (sorted by ``frame_dir``, shard ``i`` of ``n`` takes
positions ``i, i+n, ...``, the convention of the ``crop`` stage), each shard writes
its own pickle atomically, and :func:`merge_shards` joins them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from epamnet.errors import EpamnetError
from epamnet.io.shards import check_shard, merge_annotation_shards
from epamnet.io.skeleton import save_annotations
from epamnet.io.video import iter_frames
from epamnet.logs import progress
from epamnet.pose.estimator import (
    DEFAULT_CONFIG,
    NUM_KEYPOINTS,
    PoseEstimator,
    build_estimator,
    missing_checkpoint_error,
)
from epamnet.pose.person_boxes import (
    BOX_SOURCES,
    BoxSource,
    FrameBoxes,
    make_box_source,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoseSettings:
    """Everything the ``pose`` stage needs to extract skeletons (``pose.*`` in params.yaml)."""

    checkpoint: Path | None = None  # HRNet-W32 weights (DVC-tracked); required unless random_init
    config: str = DEFAULT_CONFIG  # file, or path under mmpose's shipped configs
    random_init: bool = False  # tests/CI only: random weights, checkpoint ignored
    flip_test: bool = True
    batch_size: int = 8  # crops per forward pass
    max_persons: int = 2  # persons kept per frame, by mean keypoint score
    box_source: str = "full_frame"  # skeleton | full_frame | detector
    box_padding: float = 0.1  # skeleton boxes: padding per side, fraction of the box size
    det_config: Path | None = None
    det_checkpoint: Path | None = None
    det_score_threshold: float = 0.5
    device: str = "cpu"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise EpamnetError(f"pose.batch_size: {self.batch_size} is not a positive number of crops; use e.g. 8")
        if self.max_persons < 1:
            raise EpamnetError(f"pose.max_persons: {self.max_persons} must be at least 1; use e.g. 2")
        if self.box_source not in BOX_SOURCES:
            raise EpamnetError(f"pose.box_source: unknown source {self.box_source!r}; use one of {', '.join(BOX_SOURCES)}")
        if self.box_padding < 0:
            raise EpamnetError(f"pose.box_padding: {self.box_padding} is negative; use a fraction >= 0 such as 0.1")


def load_estimator(settings: PoseSettings) -> PoseEstimator:
    """Build the pose network of ``settings`` (checkpoint checked first, before mmpose is imported)."""
    return build_estimator(
        settings.checkpoint, config=settings.config, flip_test=settings.flip_test,
        device=settings.device, random_init=settings.random_init, seed=settings.seed,
    )


def _assemble(
    per_frame: list[tuple[FrameBoxes, np.ndarray, np.ndarray]], max_persons: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame (boxes, keypoints n x 17 x 2, scores n x 17) -> M x T x 17 x 2 and M x T x 17."""
    chosen: list[np.ndarray] = []
    for boxes, _kp, score in per_frame:
        order = np.argsort(-score.mean(axis=1), kind="stable")[:max_persons] if len(score) else np.zeros(0, int)
        if boxes.tracks is not None and len(order):
            order = order[np.argsort(boxes.tracks[order], kind="stable")]
        chosen.append(order)
    persons = max((len(c) for c in chosen), default=0)
    frames = len(per_frame)
    keypoint = np.zeros((persons, frames, NUM_KEYPOINTS, 2), np.float32)
    keypoint_score = np.zeros((persons, frames, NUM_KEYPOINTS), np.float32)
    for t, ((_boxes, kp, score), order) in enumerate(zip(per_frame, chosen)):
        keypoint[: len(order), t] = kp[order]
        keypoint_score[: len(order), t] = score[order]
    return keypoint, keypoint_score


def extract_video(
    estimator: PoseEstimator,
    frame_dir: str,
    path: str | Path,
    box_source: BoxSource,
    *,
    label: int = -1,
    batch_size: int = 8,
    max_persons: int = 2,
) -> dict[str, Any]:
    """Extract the skeletons of one video; return its annotation (see the module doc).

    Crops are queued across frames and run ``batch_size`` at a time; only the frames
    of queued crops are held in memory.
    """
    path = Path(path)
    per_frame: list[tuple[FrameBoxes, np.ndarray, np.ndarray]] = []
    queue: list[tuple[int, int, np.ndarray, np.ndarray]] = []  # (frame, box, BGR frame, box)
    shape: tuple[int, int] | None = None

    def run(batch: list[tuple[int, int, np.ndarray, np.ndarray]]) -> None:
        kp, score = estimator.predict([(image, box) for _, _, image, box in batch])
        for (t, i, _, _), k, s in zip(batch, kp, score):
            per_frame[t][1][i] = k
            per_frame[t][2][i] = s

    for t, rgb in enumerate(iter_frames(path)):
        if shape is None:
            shape = (int(rgb.shape[0]), int(rgb.shape[1]))
        bgr = np.ascontiguousarray(rgb[..., ::-1])  # mmpose and mmdet take OpenCV's BGR order
        boxes = box_source(frame_dir, t, bgr)
        n = len(boxes)
        per_frame.append((boxes, np.zeros((n, NUM_KEYPOINTS, 2), np.float32), np.zeros((n, NUM_KEYPOINTS), np.float32)))
        queue.extend((t, i, bgr, boxes.boxes[i]) for i in range(n))
        while len(queue) >= batch_size:
            run(queue[:batch_size])
            del queue[:batch_size]
    if queue:
        run(queue)
    assert shape is not None  # iter_frames raises on a video without frames
    keypoint, keypoint_score = _assemble(per_frame, max_persons)
    return {
        "frame_dir": frame_dir,
        "label": int(label),
        "img_shape": shape,
        "original_shape": shape,
        "total_frames": len(per_frame),
        "keypoint": keypoint,
        "keypoint_score": keypoint_score,
    }


def shard_videos(
    videos: Sequence[tuple[str, str | Path]], shard: int, num_shards: int
) -> list[tuple[str, Path]]:
    """The videos of shard ``shard`` of ``num_shards``: sorted by frame_dir, positions shard, shard+n, ..."""
    check_shard("pose", shard, num_shards, "pose.shards")
    names = [str(name) for name, _ in videos]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})[0]
        raise EpamnetError(f"pose: video {dup} is listed twice; give each frame_dir one video")
    ordered = sorted(((str(name), Path(p)) for name, p in videos), key=lambda v: v[0])
    return ordered[shard::num_shards]


def extract_shard(
    videos: Sequence[tuple[str, str | Path]],
    shard: int,
    num_shards: int,
    out_pkl: str | Path,
    settings: PoseSettings,
    *,
    labels: Mapping[str, int] | None = None,
    skeletons: str | Path | Sequence[Mapping[str, Any]] | None = None,
    estimator: PoseEstimator | None = None,
) -> int:
    """Extract shard ``shard`` of ``num_shards`` of ``videos`` ((frame_dir, path) pairs) into ``out_pkl``.

    ``labels`` maps frame_dir to a label (default -1, unknown); ``skeletons`` (a file or
    annotations) feeds the ``skeleton`` box source; ``estimator`` reuses an already built
    network (else it is built from ``settings``). The shard pickle (annotations sorted by
    frame_dir, possibly empty) is written atomically; returns the number of videos.
    """
    mine = shard_videos(videos, shard, num_shards)
    if estimator is None and not settings.random_init and (
        settings.checkpoint is None or not Path(settings.checkpoint).is_file()
    ):
        raise missing_checkpoint_error(settings.checkpoint)  # before any slow work
    box_source = make_box_source(
        settings.box_source, skeletons=skeletons, padding=settings.box_padding,
        det_config=settings.det_config, det_checkpoint=settings.det_checkpoint,
        det_score_threshold=settings.det_score_threshold, device=settings.device,
    )
    if estimator is None:
        estimator = load_estimator(settings)
    logger.info("pose shard %d/%d: %d of %d videos, boxes from %s, batch %d, flip test %s",
                shard, num_shards, len(mine), len(videos), settings.box_source, settings.batch_size,
                estimator.flip_test)
    labels = labels or {}
    annotations = []
    for name, path in progress(mine, f"pose shard {shard}/{num_shards}", unit="video"):
        start = time.perf_counter()
        ann = extract_video(estimator, name, path, box_source, label=int(labels.get(name, -1)),
                            batch_size=settings.batch_size, max_persons=settings.max_persons)
        annotations.append(ann)
        logger.debug("pose: %s: %d frames, %d persons, %.1f s", name, ann["total_frames"],
                     ann["keypoint"].shape[0], time.perf_counter() - start)
    save_annotations(out_pkl, annotations)
    logger.info("pose shard %d: wrote %d annotations to %s", shard, len(annotations), out_pkl)
    return len(annotations)


def merge_shards(shard_pkls: Sequence[str | Path], out_pkl: str | Path) -> list[dict[str, Any]]:
    """Join shard pickles into ``out_pkl`` (sorted by frame_dir), refusing a video found twice."""
    return merge_annotation_shards(
        shard_pkls, out_pkl, stage="pose-merge", item="video", rerun="re-run the pose shards with the same pose.shards"
    )


__all__ = [
    "PoseSettings",
    "extract_shard",
    "extract_video",
    "load_estimator",
    "merge_shards",
    "shard_videos",
]
