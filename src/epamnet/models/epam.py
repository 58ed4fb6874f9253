"""EPAM-Net and the single-stream classifiers.

EPAM-Net (spec section 3), read top to bottom in :meth:`EPAMNet.forward`:

1. ``f = rgb_backbone(imgs)``             N x 432 x 16 x 7 x 7 (paper sizes)
2. ``p = pose_backbone(heatmaps)``        N x 216 x 48 x 7 x 7
3. ``p_s = p[:, :, ::stride]``            the pose frames the RGB clip shows; stride =
                                          pose T / RGB T from the tensors (paper: 3)
4. ``A = attention_module(p_s)``          N x 1 x 16 x 7 x 7
5. ``rgb_logits = rgb_cls_head(f + f*A)`` and ``pose_logits = pose_cls_head(p)`` (all T)

Training loss CE(rgb) + CE(pose); inference score rgb_logits + pose_logits.
:class:`RGBClassifier` / :class:`PoseClassifier` are the streams alone (for the
unimodal pre-training); their submodules carry the fusion model's names, so
:func:`load_stream_weights` loads them strictly into the fusion model.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from epamnet.config.model import ModelSpec, check_spec
from epamnet.errors import EpamnetError
from epamnet.models.attention import build_attention
from epamnet.models.convert import load_state_strict
from epamnet.models.heads import ClassifierHead
from epamnet.models.xshift import XShiftNet

Stream = Literal["rgb", "pose"]


def time_stride(rgb_frames: int, pose_frames: int) -> int:
    """Pose frames per RGB frame; an EpamnetError unless it is a whole number."""
    if rgb_frames < 1 or pose_frames % rgb_frames:
        raise EpamnetError(
            f"model input: pose clip has {pose_frames} frames, not a multiple of the RGB clip's {rgb_frames}; "
            "set pose clip_len to an integer multiple of rgb clip_len (paper: 48 and 16)"
        )
    return pose_frames // rgb_frames


class EPAMNet(nn.Module):
    """Pose-driven attention-guided fusion of an RGB and a pose X-ShiftNet."""

    def __init__(self, spec: ModelSpec, num_classes: int) -> None:
        super().__init__()
        check_spec(spec)
        self.spec = spec
        self.num_classes = num_classes
        self.rgb_backbone = XShiftNet(spec.rgb)
        self.pose_backbone = XShiftNet(spec.pose)
        self.attention_module = build_attention(spec)
        self.rgb_cls_head = ClassifierHead(spec.rgb.out_channels, num_classes, spec.dropout)
        self.pose_cls_head = ClassifierHead(spec.pose.out_channels, num_classes, spec.dropout)

    def forward(
        self, imgs: torch.Tensor, heatmaps: torch.Tensor, return_attention: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``imgs`` N x 3 x T x H x W, ``heatmaps`` N x 17 x sT x h x w -> (rgb_logits, pose_logits[, A])."""
        stride = time_stride(imgs.shape[2], heatmaps.shape[2])
        rgb_feats = self.rgb_backbone(imgs)
        pose_feats = self.pose_backbone(heatmaps)
        if rgb_feats.shape[3:] != pose_feats.shape[3:]:
            raise EpamnetError(
                f"model input: RGB features are {tuple(rgb_feats.shape[3:])} but pose features "
                f"{tuple(pose_feats.shape[3:])}; choose RGB and pose input sizes that give equal feature sizes"
            )
        attention = self.attention_module(pose_feats[:, :, ::stride])
        rgb_logits = self.rgb_cls_head(rgb_feats + rgb_feats * attention)
        pose_logits = self.pose_cls_head(pose_feats)
        if return_attention:
            return rgb_logits, pose_logits, attention
        return rgb_logits, pose_logits

    @staticmethod
    def loss(rgb_logits: torch.Tensor, pose_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """CE(rgb) + CE(pose), weights 1:1; ``target`` class indices (or class probabilities)."""
        return F.cross_entropy(rgb_logits, target) + F.cross_entropy(pose_logits, target)

    @staticmethod
    def score(rgb_logits: torch.Tensor, pose_logits: torch.Tensor) -> torch.Tensor:
        """Inference score: the sum of the raw logits (no softmax), as the official evaluation."""
        return rgb_logits + pose_logits


class RGBClassifier(nn.Module):
    """RGB stream alone: ``rgb_backbone`` + ``rgb_cls_head`` (the fusion model's names)."""

    def __init__(self, spec: ModelSpec, num_classes: int) -> None:
        super().__init__()
        self.spec = spec
        self.num_classes = num_classes
        self.rgb_backbone = XShiftNet(spec.rgb)
        self.rgb_cls_head = ClassifierHead(spec.rgb.out_channels, num_classes, spec.dropout)

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        return self.rgb_cls_head(self.rgb_backbone(imgs))


class PoseClassifier(nn.Module):
    """Pose stream alone: ``pose_backbone`` + ``pose_cls_head`` (the fusion model's names)."""

    def __init__(self, spec: ModelSpec, num_classes: int) -> None:
        super().__init__()
        self.spec = spec
        self.num_classes = num_classes
        self.pose_backbone = XShiftNet(spec.pose)
        self.pose_cls_head = ClassifierHead(spec.pose.out_channels, num_classes, spec.dropout)

    def forward(self, heatmaps: torch.Tensor) -> torch.Tensor:
        return self.pose_cls_head(self.pose_backbone(heatmaps))


def build_model(spec: ModelSpec, num_classes: int, modality: str = "fusion") -> nn.Module:
    """``'fusion'`` -> EPAMNet, ``'rgb'`` -> RGBClassifier, ``'pose'`` -> PoseClassifier."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise EpamnetError(f"model: num_classes must be an integer >= 2, got {num_classes!r}; check the split file")
    builders = {"fusion": EPAMNet, "rgb": RGBClassifier, "pose": PoseClassifier}
    if modality not in builders:
        raise EpamnetError(f"model: unknown modality {modality!r}; use one of {', '.join(builders)}")
    return builders[modality](spec, num_classes)


def stream_prefixes(stream: Stream) -> tuple[str, str]:
    """State-dict prefixes of one stream: backbone and head."""
    if stream not in ("rgb", "pose"):
        raise ValueError(f"stream must be 'rgb' or 'pose', got {stream!r}")
    return f"{stream}_backbone.", f"{stream}_cls_head."


def load_stream_weights(
    model: EPAMNet, state: Mapping[str, torch.Tensor], stream: Stream, source: str | Path
) -> None:
    """Load a single-stream classifier's state dict into ``model``'s stream, strictly.

    Every key of the stream's backbone and head must be present with the right shape
    and nothing else may be there (``module.`` prefixes are removed first); otherwise
    an EpamnetError naming ``source`` lists the missing / unexpected / mis-shaped keys.
    The rest of ``model`` (the other stream, the attention) is untouched.
    """
    load_state_strict(
        model,
        state,
        source,
        only_prefixes=stream_prefixes(stream),
        fix=f"pass the {stream} stream checkpoint trained with the same model settings and classes",
    )
