"""Data loading for training and evaluation: frame sampling, keypoint transforms,
heatmap volumes, RGB transforms, and the torch datasets that pair RGB and pose.

Every transform is a pure function over arrays; the datasets compose them following the
official EPAM-Net pipeline (docs: spec section 4). mmaction2 1.2 serves as the oracle in
``tests/test_oracle_mmaction.py``.
"""

from epamnet.data.dataset import (
    ClipDataset,
    PoseClipConfig,
    PoseDataset,
    RGBClipConfig,
    RGBDataset,
    RGBPoseDataset,
    load_split,
    pose_clip,
    rgb_clip,
)
from epamnet.data.heatmaps import generate_heatmaps
from epamnet.data.pose_transforms import compact_keypoints, flip_keypoints, resize_keypoints
from epamnet.data.rgb import flip_frames, normalize_frames, resize_frames
from epamnet.data.sampling import rgb_indices, sample_frame_indices

__all__ = [
    "ClipDataset",
    "PoseClipConfig",
    "PoseDataset",
    "RGBClipConfig",
    "RGBDataset",
    "RGBPoseDataset",
    "compact_keypoints",
    "flip_frames",
    "flip_keypoints",
    "generate_heatmaps",
    "load_split",
    "normalize_frames",
    "pose_clip",
    "resize_frames",
    "resize_keypoints",
    "rgb_clip",
    "rgb_indices",
    "sample_frame_indices",
]
