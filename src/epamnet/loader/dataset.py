"""Torch datasets over prepared data: pose heatmap clips, RGB clips, and both paired.

A dataset is built from a split JSON (``{"train": [[frame_dir, label], ...], ...}``,
docs/pipeline.md), the prepared annotations (keypoints in the cropped frame) and the
prepared dataset folder that the annotations' ``filename`` is relative to. One sample
follows the official fusion pipeline (spec section 4):

1. sample ``pose.clip_len`` frame indices (:mod:`epamnet.loader.sampling`); the RGB frames
   are every ``pose_len // rgb_len``-th of them (RGB-only: ``rgb.clip_len`` sampled directly);
2. pose: compact the sampled keypoints, resize them to the heatmap size;
3. train mode: one flip decision per sample (probability ``flip_ratio``) flips the
   keypoints (with left/right swap) and the RGB frames together;
4. pose -> ``V x Tp x Hh x Wh`` heatmaps; RGB -> decoded frames only at the needed indices,
   resized to ``rgb.size`` when the video differs, as a ``3 x Tr x S x S`` uint8 clip. The
   training device normalises a batch at a time (:func:`epamnet.loader.rgb.normalize_clips`,
   called by the tasks of :mod:`epamnet.engine.tasks`).

The pose stream alone can instead follow the official pose-only pipeline
(:func:`pose_pipeline_config` ``"official_pose"``): compaction with ``allow_imgpad``;
in train mode the short side resized to 64, a random resized crop (area 0.56-1, aspect
3/4-4/3), then the heatmap size; in test mode straight to the heatmap size, as the
official test pipeline. The crop is drawn after the flip decision, from the same
per-sample generator. A dataset with RGB refuses it: it would crop the heatmaps but
not the RGB frames.

Items are dicts ``{"imgs", "heatmaps", "label", "index"}`` (only the streams the dataset
has). Randomness (train mode) comes from a generator seeded by ``(seed, epoch, index)``,
so a sample is the same whatever the number or order of workers; call
:meth:`ClipDataset.set_epoch` before each epoch (with ``persistent_workers=False`` the
workers see the new epoch). Test mode is deterministic and never flips.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from epamnet.loader.heatmaps import SCORE_EPS, generate_heatmaps
from epamnet.loader.pose_transforms import (
    COCO_LEFT,
    COCO_RIGHT,
    Rng,
    compact_keypoints,
    crop_keypoints,
    flip_keypoints,
    random_resized_crop_box,
    resize_keypoints,
    short_side_shape,
)
from epamnet.loader.rgb import format_clip, resize_frames
from epamnet.loader.sampling import TEST_SEED, rgb_indices, sample_frame_indices
from epamnet.errors import file_error
from epamnet.io.skeleton import load_annotations, validate_annotations
from epamnet.io.splitfile import load_split
from epamnet.io.video import read_frames

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoseClipConfig:
    """How a pose clip becomes heatmaps (defaults: the official fusion pipeline)."""

    clip_len: int = 48
    heatmap_size: tuple[int, int] = (56, 56)  # (h, w)
    sigma: float = 0.6
    use_score: bool = True
    padding: float = 0.25
    threshold: float = 10
    hw_ratio: float | None = 1.0
    allow_imgpad: bool = False  # fusion pipeline (MMCompact); the official pose-only one uses True
    left_kp: tuple[int, ...] = COCO_LEFT
    right_kp: tuple[int, ...] = COCO_RIGHT
    # Train-mode random resized crop (official pose-only pipeline); None: no crop (fusion).
    crop_area: tuple[float, float] | None = None  # area fraction range
    crop_aspect: tuple[float, float] = (3 / 4, 4 / 3)  # w / h range (mmaction2's default)
    crop_short_side: int = 64  # the short side is resized to this before cropping


#: The pose pipelines a stream can follow (``train.<stream>.pose_pipeline``).
POSE_PIPELINES = ("fusion", "official_pose")
#: The official pose-only pipeline's crop area range (``RandomResizedCrop(area_range=...)``).
OFFICIAL_POSE_CROP_AREA = (0.56, 1.0)


def pose_pipeline_config(config: PoseClipConfig, pipeline: str) -> PoseClipConfig:
    """``config`` as the pose pipeline ``pipeline`` runs it.

    ``"fusion"``: unchanged (the official fusion pipeline). ``"official_pose"``: the
    official pose-only one, compaction with ``allow_imgpad`` and, in train mode, the
    random resized crop (``Resize(-1, 64)``, ``RandomResizedCrop(0.56-1)``, resize).
    """
    if pipeline == "fusion":
        return config
    if pipeline == "official_pose":
        return replace(config, allow_imgpad=True, crop_area=OFFICIAL_POSE_CROP_AREA)
    raise ValueError(f"pose pipeline must be one of {', '.join(POSE_PIPELINES)}, got {pipeline!r}")


@dataclass(frozen=True)
class RGBClipConfig:
    """How an RGB clip is loaded (defaults: the official 16 frames at 224 x 224); the
    normalisation statistics are the official ones, ``RGB_MEAN`` and ``RGB_STD``."""

    clip_len: int = 16
    size: int = 224


def pose_clip(
    keypoint: np.ndarray,
    keypoint_score: np.ndarray,
    img_shape: tuple[int, int],
    indices: np.ndarray,
    config: PoseClipConfig,
    *,
    flip: bool = False,
    rng: Rng | None = None,
) -> np.ndarray:
    """Heatmap volume ``V x T x Hh x Wh`` of the frames ``indices`` of one annotation.

    Runs decode (index), compact, [random resized crop], resize to ``config.heatmap_size``,
    optional flip, and heatmap generation. ``keypoint`` is ``M x total_frames x V x 2`` in
    ``img_shape`` pixels. The crop runs only when ``config.crop_area`` is set and ``rng``
    (the sample's training draws) is given; without ``rng`` (test mode) the compacted
    frame is resized directly, as the official test pipeline does.
    """
    kp = np.asarray(keypoint)[:, indices].astype(np.float32)
    score = np.asarray(keypoint_score)[:, indices].astype(np.float32)
    compact = compact_keypoints(
        kp,
        img_shape,
        padding=config.padding,
        threshold=config.threshold,
        hw_ratio=config.hw_ratio,
        allow_imgpad=config.allow_imgpad,
    )
    kp, shape = compact.keypoint, compact.img_shape
    if config.crop_area is not None and rng is not None:
        scaled = short_side_shape(shape, config.crop_short_side)
        kp = resize_keypoints(kp, shape, scaled)
        box = random_resized_crop_box(scaled, rng, area_range=config.crop_area, aspect_ratio_range=config.crop_aspect)
        kp = crop_keypoints(kp, box)
        shape = (box[3] - box[1], box[2] - box[0])
    kp = resize_keypoints(kp, shape, config.heatmap_size)
    if flip:
        kp, score = flip_keypoints(kp, score, config.heatmap_size[1], left=config.left_kp, right=config.right_kp)
    return generate_heatmaps(
        kp, score, config.heatmap_size, sigma=config.sigma, use_score=config.use_score, eps=SCORE_EPS
    )


def rgb_clip(
    video: str | os.PathLike[str], indices: np.ndarray, config: RGBClipConfig, *, flip: bool = False
) -> np.ndarray:
    """Decode frames ``indices`` of ``video``; resize, flip -> ``3 x T x S x S`` uint8.

    Normalise before the model (:func:`~epamnet.loader.rgb.model_input`)."""
    frames = resize_frames(read_frames(video, indices), (config.size, config.size))
    return format_clip(frames, flip=flip)


class ClipDataset(Dataset):
    """Samples of one split part, as pose heatmaps and/or RGB clips (see the module doc).

    ``annotations`` is the prepared ``annotations.pkl`` path or an already loaded list;
    ``prepared_root`` is the folder their ``filename`` is relative to (needed for RGB).
    At least one of ``pose`` and ``rgb`` must be given; a subclass names in
    ``default_streams`` the streams it always has, whose config defaults to the official one.
    """

    default_streams: tuple[str, ...] = ()

    def __init__(
        self,
        split_file: str | os.PathLike[str],
        part: str,
        annotations: str | os.PathLike[str] | Sequence[Mapping[str, Any]],
        prepared_root: str | os.PathLike[str] | None = None,
        *,
        pose: PoseClipConfig | None = None,
        rgb: RGBClipConfig | None = None,
        train: bool = False,
        flip_ratio: float = 0.5,
        seed: int = 0,
        test_seed: int = TEST_SEED,
    ) -> None:
        if pose is None and "pose" in self.default_streams:
            pose = PoseClipConfig()
        if rgb is None and "rgb" in self.default_streams:
            rgb = RGBClipConfig()
        if pose is None and rgb is None:
            raise ValueError("a dataset needs a pose config, an RGB config, or both")
        if not 0.0 <= flip_ratio <= 1.0:
            raise ValueError(f"flip_ratio must be in [0, 1], got {flip_ratio}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if pose is not None and rgb is not None and rgb.clip_len > pose.clip_len:
            raise ValueError(f"RGB clip ({rgb.clip_len}) must not be longer than the pose clip ({pose.clip_len})")
        if pose is not None and rgb is not None and pose.crop_area is not None:
            raise ValueError("the random resized crop is the pose-only pipeline's; it would crop the heatmaps "
                             "but not the RGB frames (use the fusion pipeline with RGB)")
        self.pose, self.rgb = pose, rgb
        self.train, self.flip_ratio = train, flip_ratio
        self.seed, self.test_seed = seed, test_seed
        self.epoch = 0
        self.split_file = Path(split_file)
        self.samples = load_split(split_file, part)

        if isinstance(annotations, (str, os.PathLike)):
            ann_source: str | Path = Path(annotations)
            ann_list = load_annotations(annotations)
        else:
            ann_source = "annotations"
            ann_list = list(annotations)
            validate_annotations(ann_list, ann_source)
        by_name = {str(a["frame_dir"]): a for a in ann_list}
        missing = [name for name, _ in self.samples if name not in by_name]
        if missing:
            raise file_error(
                self.split_file,
                f"{len(missing)} sample(s) of {part!r} have no annotation in {ann_source} (first: {missing[0]!r})",
                "use the split and annotations of the same prepared dataset",
            )
        self.annotations = [by_name[name] for name, _ in self.samples]

        self.prepared_root = None if prepared_root is None else Path(prepared_root)
        if rgb is not None:
            if self.prepared_root is None:
                raise ValueError("an RGB dataset needs prepared_root (the folder of the prepared videos)")
            for ann in self.annotations:
                if not isinstance(ann.get("filename"), str) or not ann["filename"]:
                    raise file_error(
                        ann_source,
                        f"annotation {ann['frame_dir']!r} has no 'filename' of its prepared video",
                        "use the annotations written by the crop stage",
                    )
        logger.info(
            "%s %s: %d samples (pose=%s, rgb=%s, train=%s)",
            self.split_file,
            part,
            len(self.samples),
            pose is not None,
            rgb is not None,
            train,
        )

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random draws ``__getitem__`` makes (train mode)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def sample_rng(self, index: int) -> np.random.Generator:
        """The generator of sample ``index`` in the current epoch (train mode)."""
        return np.random.default_rng([self.seed, self.epoch, index])

    def frame_indices(self, index: int) -> tuple[np.ndarray | None, np.ndarray | None, bool]:
        """``(pose_indices, rgb_indices, flip)`` of sample ``index`` (None for a missing stream)."""
        return self._draws(index)[:3]

    def _draws(
        self, index: int
    ) -> tuple[np.ndarray | None, np.ndarray | None, bool, np.random.Generator | None]:
        """:meth:`frame_indices` and the generator, advanced past them, for the later draws (the crop)."""
        total = int(self.annotations[index]["total_frames"])
        rng = self.sample_rng(index) if self.train else None
        first = self.pose.clip_len if self.pose is not None else self.rgb.clip_len  # type: ignore[union-attr]
        inds = sample_frame_indices(total, first, test_mode=not self.train, rng=rng, seed=self.test_seed)
        flip = bool(rng.random() < self.flip_ratio) if rng is not None else False
        if self.pose is None:
            return None, inds, flip, rng
        rgb_inds = None if self.rgb is None else rgb_indices(inds, self.rgb.clip_len)
        return inds, rgb_inds, flip, rng

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        ann = self.annotations[index]
        pose_inds, rgb_inds, flip, rng = self._draws(index)
        item: dict[str, Any] = {"label": torch.tensor(self.samples[index][1], dtype=torch.long), "index": index}
        if self.pose is not None and pose_inds is not None:
            heatmaps = pose_clip(
                ann["keypoint"], ann["keypoint_score"], tuple(ann["img_shape"]), pose_inds, self.pose,
                flip=flip, rng=rng,
            )
            item["heatmaps"] = torch.from_numpy(heatmaps)
        if self.rgb is not None and rgb_inds is not None:
            assert self.prepared_root is not None
            imgs = rgb_clip(self.prepared_root / ann["filename"], rgb_inds, self.rgb, flip=flip)
            item["imgs"] = torch.from_numpy(imgs)
        return item


class PoseDataset(ClipDataset):
    """Pose heatmap clips only: items ``{"heatmaps": V x Tp x Hh x Wh, "label", "index"}``."""

    default_streams = ("pose",)


class RGBDataset(ClipDataset):
    """RGB clips only: items ``{"imgs": 3 x Tr x S x S, "label", "index"}`` (needs ``prepared_root``)."""

    default_streams = ("rgb",)


class RGBPoseDataset(ClipDataset):
    """Both streams, RGB frames a strided subset of the pose frames: ``{"imgs", "heatmaps", ...}``."""

    default_streams = ("pose", "rgb")
