"""EPAM-Net as a recognizer: load it from a checkpoint, classify one video with its skeleton.

:func:`load_model` accepts every checkpoint form we meet: a ``model.pt`` that
``train --stream fusion`` published, a training checkpoint, one written by
``convert-official``, or an official released checkpoint (its keys converted on the
fly); the weights load strictly. :func:`recognize` runs the steps the pipeline's test
clips go through, so the model sees what it saw in evaluation: the global crop
(:func:`epamnet.prepare.crop.crop_sample`), one test-mode clip
(:mod:`epamnet.loader.sampling`), and the forward pass; the score is the softmax of
the summed RGB + pose logits (the official inference score).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch

from epamnet.engine.checkpoint import FORMAT
from epamnet.errors import EpamnetError, file_error
from epamnet.inference.prediction import Prediction
from epamnet.inference.skeletons import Skeleton
from epamnet.io.video import VideoInfo
from epamnet.loader.dataset import PoseClipConfig, RGBClipConfig, pose_clip, rgb_clip
from epamnet.loader.rgb import model_input
from epamnet.loader.sampling import rgb_indices, sample_frame_indices
from epamnet.models.convert import (
    check_state_dict,
    checkpoint_state,
    load_state_strict,
    official_to_ours,
    read_checkpoint,
)
from epamnet.models.epam import build_model
from epamnet.prepare.crop import PREPARED_VIDEO_SUFFIX, crop_sample

if TYPE_CHECKING:
    from epamnet.config import Crop
    from epamnet.config.model import ModelSpec

logger = logging.getLogger(__name__)


class Alternative(NamedTuple):
    """Other model sizes a checkpoint may have been trained with, and how to select them."""

    what: str
    spec: ModelSpec
    how: str


@dataclass(frozen=True)
class Recognizer:
    """A loaded EPAM-Net (eval mode) and what the report says about it."""

    model: torch.nn.Module
    checkpoint: Path
    sizes: str  # the model sizes it was built with, e.g. "params.yaml's model (preset synthetic)"
    class_names: list[str]
    classes_from: str | None  # the file the names came from (None: generic names)


@dataclass(frozen=True)
class ClipSettings:
    """How a video becomes the model's one test clip: the global crop, then pose and RGB clips."""

    crop: Crop
    pose: PoseClipConfig
    rgb: RGBClipConfig


@dataclass(frozen=True)
class VideoSample:
    """A video to classify: its file, what it holds, and its persons' skeleton."""

    path: Path
    info: VideoInfo
    skeleton: Skeleton

    @property
    def scale(self) -> tuple[float, float]:
        """Video pixels per skeleton pixel (x, y): the skeleton may come from another resolution."""
        img_h, img_w = (int(v) for v in self.skeleton.annotation["img_shape"])
        return self.info.width / img_w, self.info.height / img_h


@dataclass(frozen=True)
class CroppedVideo:
    """The global crop of a video (a file in the caller's work folder) and its skeleton in crop pixels."""

    path: Path
    annotation: dict[str, Any]


# ----------------------------------------------------------------------------- loading


def checkpoint_weights(path: Path) -> dict[str, torch.Tensor]:
    """The model weights in any of the checkpoint forms we accept, with our key names."""
    ckpt = read_checkpoint(path)
    if ckpt.get("format") == FORMAT and isinstance(ckpt.get("model"), Mapping):
        state = dict(ckpt["model"])  # a training checkpoint (models/.work/.../checkpoints/epoch_k.pt)
    else:
        state = checkpoint_state(ckpt, path)  # published model.pt, convert-official output, official .pth
    return official_to_ours(state)


def _num_classes(state: Mapping[str, torch.Tensor], path: Path) -> int:
    """The classes of an EPAM-Net state; a single-stream or non-EPAM-Net state is refused."""
    modules = {k.split(".", 1)[0] for k in state}
    for stream in ("pose", "rgb"):
        if modules and modules <= {f"{stream}_backbone", f"{stream}_cls_head"}:
            raise file_error(
                path, f"is a {stream}-stream checkpoint, not EPAM-Net",
                "pass the fusion model (models/<dataset>/<protocol>/fusion/model.pt)",
            )
    head = state.get("rgb_cls_head.fc_cls.weight")
    if head is None or head.ndim != 2:
        raise file_error(
            path, "holds no EPAM-Net classifier (no rgb_cls_head.fc_cls.weight)",
            "pass an EPAM-Net checkpoint: a fusion model.pt, or an official EPAM-Net release",
        )
    return int(head.shape[0])


def load_model(
    checkpoint: str | Path,
    spec: ModelSpec,
    *,
    preset_name: str = "params.yaml's model",
    alternatives: Sequence[Alternative] = (),
) -> tuple[torch.nn.Module, int]:
    """Build EPAM-Net of ``spec`` and load ``checkpoint`` strictly; return (model in eval mode, classes).

    When the weights do not fit, the first of ``alternatives`` that they fit is named in
    the error, with how to select it.
    """
    path = Path(checkpoint)
    state = checkpoint_weights(path)
    num_classes = _num_classes(state, path)
    model = build_model(spec, num_classes, "fusion")
    fix = f"pass an EPAM-Net checkpoint trained with {preset_name} sizes, or select its sizes with --model-preset"
    try:
        load_state_strict(model, state, path, fix=fix)
    except EpamnetError:
        for what, other, how in alternatives:
            try:
                check_state_dict(build_model(other, num_classes, "fusion").state_dict(), state, path, "")
            except EpamnetError:
                continue
            raise file_error(path, f"weights do not fit {preset_name} but fit {what}", how) from None
        raise
    model.eval()
    logger.info("predict: EPAM-Net (%s, %d classes) from %s", preset_name, num_classes, path)
    return model, num_classes


# ----------------------------------------------------------------------------- inference


def _crop_box_in_video(sample: VideoSample, cropped: Mapping[str, Any]) -> tuple[int, int, int, int]:
    sx, sy = sample.scale
    x0, y0, x1, y1 = cropped["crop_box"]
    return round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy)


def recognize(
    recognizer: Recognizer, sample: VideoSample, settings: ClipSettings, device: torch.device, workdir: Path
) -> tuple[Prediction, CroppedVideo]:
    """Classify ``sample``: its global crop (written to ``workdir``), one test clip, one forward pass."""
    crop = settings.crop
    cropped_video = workdir / f"crop{PREPARED_VIDEO_SUFFIX}"  # the prepared format, as in training
    cropped = crop_sample(sample.skeleton.annotation, sample.path, cropped_video, size=crop.size,
                          padding=crop.padding, threshold=crop.threshold, filename=cropped_video.name)
    pose_inds = sample_frame_indices(int(cropped["total_frames"]), settings.pose.clip_len, test_mode=True)
    rgb_inds = rgb_indices(pose_inds, settings.rgb.clip_len)
    heatmaps = pose_clip(cropped["keypoint"], cropped["keypoint_score"], tuple(cropped["img_shape"]),
                         pose_inds, settings.pose)
    imgs = rgb_clip(cropped_video, rgb_inds, settings.rgb)
    model = recognizer.model.to(device)
    with torch.no_grad():
        rgb_logits, pose_logits, attention = model(
            model_input(torch.from_numpy(imgs)[None].to(device)),
            torch.from_numpy(heatmaps)[None].to(device), return_attention=True
        )
    rgb_l = rgb_logits[0].float().cpu().numpy()
    pose_l = pose_logits[0].float().cpu().numpy()
    info = sample.info
    pred = Prediction(
        video=sample.path, checkpoint=recognizer.checkpoint, class_names=recognizer.class_names,
        classes_from=recognizer.classes_from, keypoints_from=sample.skeleton.source, logits=rgb_l + pose_l,
        rgb_logits=rgb_l, pose_logits=pose_l, attention=attention[0, 0].float().cpu().numpy(),
        pose_indices=pose_inds, rgb_indices=rgb_inds, frames=info.frames, fps=info.fps,
        size=(info.height, info.width), crop_box=_crop_box_in_video(sample, cropped),
        extra={"model_sizes": recognizer.sizes, "crop_size": crop.size,
               "persons": int(np.asarray(sample.skeleton.annotation["keypoint"]).shape[0])},
    )
    logger.info("predict: %s -> %s (%.3f)", sample.path, pred.top(1)[0]["class"], pred.top(1)[0]["score"])
    return pred, CroppedVideo(cropped_video, cropped)
