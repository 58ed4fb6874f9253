"""Pose-driven attention maps over the RGB frames of a few clips.

EPAM-Net's attention ``A`` (N x 1 x T x h x w, values in (0, 1)) comes from the pose
features of the RGB stream's frames and multiplies the RGB features: ``f + f * A``.
For each clip the figure shows a strip of its T frames with ``A[t]`` upsampled
(bilinear) to the frame and overlaid, and under the strip one bar per frame: the
frame's temporal weight, the spatial mean of ``A[t]`` (with the paper's nested module
``A = A_S * A_T`` this is ``A_T[t]`` times the mean of ``A_S[t]``).

The functions take tensors and frames, not a dataset, so they work on any model and
any clip; :mod:`epamnet.stages.report` finds the trained model and the test clips.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from epamnet.loader.rgb import RGB_MEAN, RGB_STD, model_input
from epamnet.models.attention_maps import upsample
from epamnet.report.figures import save_figure

logger = logging.getLogger(__name__)


@torch.no_grad()
def compute_attention(
    model: torch.nn.Module, imgs: torch.Tensor, heatmaps: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` (an EPAMNet) in eval mode; return (attention N x T x h x w, scores N x C).

    ``scores`` is the fused inference score (rgb + pose logits), for titles.
    """
    was_training = model.training
    model.eval()
    imgs = model_input(imgs)  # the loader's uint8 clips: normalised as the tasks normalise them
    try:
        rgb_logits, pose_logits, attention = model(imgs, heatmaps, return_attention=True)
    finally:
        model.train(was_training)
    if attention.ndim != 5 or attention.shape[1] != 1:
        raise ValueError(f"attention must be N x 1 x T x h x w, got {tuple(attention.shape)}")
    return attention[:, 0].float().cpu().numpy(), (rgb_logits + pose_logits).float().cpu().numpy()


def denormalize(imgs: torch.Tensor) -> np.ndarray:
    """Clips ``N x 3 x T x H x W`` (uint8 as loaded, or ImageNet-normalised) -> ``N x T x H x W x 3`` uint8 frames."""
    if imgs.dtype == torch.uint8:
        return imgs.detach().cpu().permute(0, 2, 3, 4, 1).numpy()
    mean = torch.tensor(RGB_MEAN, dtype=torch.float32).view(1, 3, 1, 1, 1)
    std = torch.tensor(RGB_STD, dtype=torch.float32).view(1, 3, 1, 1, 1)
    frames = (imgs.detach().float().cpu() * std + mean).clamp(0, 255).round().to(torch.uint8)
    return frames.permute(0, 2, 3, 4, 1).numpy()


#: Smallest font of the figure, in points at the saved size.
MIN_FONT = 9


def plot_attention(
    frames: np.ndarray,
    attention: np.ndarray,
    out: str | Path,
    titles: Sequence[str] | None = None,
    suptitle: str = "Pose-driven attention over the RGB frames",
    alpha: float = 0.5,
) -> Path:
    """Write the attention figure: per clip a frame strip with overlays and a bar row.

    ``frames``: N x T x H x W x 3 uint8 (what the model saw); ``attention``: N x T x h x w.
    One colour scale for the whole figure (min..max over every clip), so that colours
    compare across clips, shown by the one colour bar on the right.
    """
    frames, attention = np.asarray(frames), np.asarray(attention, dtype=np.float32)
    if frames.ndim != 5 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be N x T x H x W x 3, got {frames.shape}")
    if attention.ndim != 4 or attention.shape[:2] != frames.shape[:2]:
        raise ValueError(f"attention must be N x T x h x w matching frames {frames.shape[:2]}, got {attention.shape}")
    n, t, h, w, _ = frames.shape
    cell = 1.25
    fig = Figure(figsize=(cell * t + 1.6, n * (cell * h / w + 1.6) + 0.7))
    outer = fig.add_gridspec(n, 2, width_ratios=[t, 0.15], hspace=0.6, wspace=0.03)
    lo, hi = float(attention.min()), float(attention.max())
    if hi - lo < 1e-6:
        hi = lo + 1e-6
    top = max(float(attention.mean(axis=(2, 3)).max()) * 1.15, 1e-6)  # one bar scale too
    image = None
    for i in range(n):
        sub = outer[i, 0].subgridspec(2, t, height_ratios=[h / w * 1.0, 0.55], hspace=0.1, wspace=0.04)
        maps = upsample(attention[i], (h, w))
        for k in range(t):
            ax = fig.add_subplot(sub[0, k])
            ax.imshow(frames[i, k])
            image = ax.imshow(maps[k], cmap="jet", alpha=alpha, vmin=lo, vmax=hi, interpolation="bilinear")
            ax.set_xticks([])
            ax.set_yticks([])
            if k == 0:
                ax.set_ylabel("A[t]", fontsize=10)
            if k == 0 and titles is not None:
                ax.set_title(titles[i], fontsize=11, loc="left")
        bar_ax = fig.add_subplot(sub[1, :])
        weights = attention[i].mean(axis=(1, 2))
        bar_ax.bar(np.arange(t), weights, width=0.8, color="tab:orange")
        bar_ax.set_xlim(-0.5, t - 0.5)
        bar_ax.set_ylim(0, top)
        bar_ax.set_xticks(np.arange(t), [str(k + 1) for k in range(t)], fontsize=MIN_FONT)
        bar_ax.tick_params(axis="y", labelsize=MIN_FONT)
        bar_ax.set_ylabel("mean A", fontsize=MIN_FONT)
        bar_ax.set_xlabel("RGB frame (temporal weight = spatial mean of A[t])", fontsize=MIN_FONT)
    cax = fig.add_subplot(outer[:, 1])
    fig.colorbar(image, cax=cax)
    cax.tick_params(labelsize=MIN_FONT)
    cax.set_ylabel("A (one scale for every clip)", fontsize=10)
    fig.suptitle(suptitle, fontsize=13)
    return save_figure(fig, out)


def attention_figure(
    model: torch.nn.Module,
    imgs: torch.Tensor,
    heatmaps: torch.Tensor,
    out: str | Path,
    frames: np.ndarray | None = None,
    labels: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    suptitle: str = "Pose-driven attention over the RGB frames",
    synthetic: bool = False,
) -> Path:
    """Run ``model`` on the clips and write their attention figure to ``out``.

    ``frames`` (N x T x H x W x 3 uint8) are shown under the maps; default: ``imgs``
    denormalised. With ``labels``, titles give the actual and the predicted class;
    ``synthetic`` clips (generated data named after a real dataset's classes) are
    titled "synthetic clip of class <name>", so that no one takes them for real videos.
    """
    attention, scores = compute_attention(model, imgs, heatmaps)
    shown = denormalize(imgs) if frames is None else np.asarray(frames)
    preds = scores.argmax(axis=1)

    def name(k: int) -> str:
        return class_names[k] if class_names is not None and 0 <= k < len(class_names) else f"class {k}"

    if synthetic:
        what = [f"synthetic clip of class {name(int(k))}" for k in labels] if labels is not None else ["synthetic clip"] * len(preds)
        titles = [f"clip {i + 1}: {what[i]}, predicted {name(int(preds[i]))}" for i in range(len(preds))]
    else:
        titles = [f"clip {i + 1}: predicted {name(int(preds[i]))}" for i in range(len(preds))]
        if labels is not None:
            titles = [f"{t}, actual {name(int(k))}" for t, k in zip(titles, labels, strict=True)]
    logger.info("attention maps of %d clips (T=%d, %dx%d) -> %s", *attention.shape[:2], *attention.shape[2:], out)
    return plot_attention(shown, attention, out, titles=titles, suptitle=suptitle)
