"""RGB frame transforms: resize to the configured size, horizontal flip, normalisation.

Frames arrive as ``T x H x W x 3`` uint8 RGB (``epamnet.io.video.read_frames``) and the
loader hands them out as ``3 x T x H x W`` uint8 (:func:`format_clip`): a quarter of the
bytes of float32, and no per-sample arithmetic. Normalisation with the ImageNet
statistics the official code uses (``to_bgr=False``) happens on the training device, a
batch at a time (:func:`normalize_clips`, as mmaction2's data preprocessor does); it
gives the same float32 values, bit for bit, as normalising each clip on the CPU
(:func:`normalize_frames`, the reference). The flip mirrors columns (pixel
``j -> W-1-j``, mmcv's ``imflip``); the dataset takes one flip decision per sample for
both streams.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

#: Per-channel mean and std (RGB order, 0..255 scale) of the official pipeline.
RGB_MEAN: tuple[float, float, float] = (123.675, 116.28, 103.53)
RGB_STD: tuple[float, float, float] = (58.395, 57.12, 57.375)


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be T x H x W x 3, got shape {frames.shape}")
    return frames


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize every frame to ``size`` ``(h, w)`` (bilinear, as mmcv's default); no-op if equal."""
    frames = _check_frames(frames)
    h, w = int(size[0]), int(size[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"size must be positive, got {size}")
    if frames.shape[1:3] == (h, w):
        return frames
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) for f in frames])


def flip_frames(frames: np.ndarray) -> np.ndarray:
    """Mirror ``T x H x W x C`` frames left-right (a copy)."""
    return np.ascontiguousarray(_check_frames(frames)[:, :, ::-1])


def format_clip(frames: np.ndarray, flip: bool = False) -> np.ndarray:
    """``T x H x W x 3`` uint8 frames -> a ``3 x T x H x W`` uint8 clip, mirrored left-right if ``flip``.

    One copy: the transpose and the flip are views that the copy resolves."""
    frames = _check_frames(frames)
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    view = frames.transpose(3, 0, 1, 2)
    return np.ascontiguousarray(view[..., ::-1] if flip else view)


def normalize_clips(
    imgs: torch.Tensor,
    mean: tuple[float, float, float] = RGB_MEAN,
    std: tuple[float, float, float] = RGB_STD,
) -> torch.Tensor:
    """uint8 clips ``[N x] 3 x T x H x W`` -> float32 ``(x - mean) / std``, on their device.

    The same float32 operations as :func:`normalize_frames`, so the same values."""
    if imgs.dtype != torch.uint8:
        raise ValueError(f"normalize_clips takes uint8 clips, got {imgs.dtype}")
    if imgs.dim() not in (4, 5) or imgs.shape[-4] != 3:
        raise ValueError(f"clips must be [N x] 3 x T x H x W, got shape {tuple(imgs.shape)}")
    if any(s <= 0 for s in std):
        raise ValueError(f"std must be positive, got {std}")
    shape = (3, 1, 1, 1)
    m = torch.tensor(mean, dtype=torch.float32, device=imgs.device).view(shape)
    s = torch.tensor(std, dtype=torch.float32, device=imgs.device).view(shape)
    return (imgs.float() - m) / s


def model_input(imgs: torch.Tensor) -> torch.Tensor:
    """What an RGB stream takes: the loader's uint8 clips normalised (:func:`normalize_clips`),
    float clips (already normalised) as they are."""
    return normalize_clips(imgs) if imgs.dtype == torch.uint8 else imgs


def normalize_frames(
    frames: np.ndarray,
    mean: tuple[float, float, float] = RGB_MEAN,
    std: tuple[float, float, float] = RGB_STD,
) -> np.ndarray:
    """``T x H x W x 3`` frames -> ``3 x T x H x W`` float32 ``(x - mean) / std`` (the reference
    of :func:`normalize_clips`; the loader no longer calls it)."""
    frames = _check_frames(frames)
    mean_arr = np.asarray(mean, dtype=np.float32)
    std_arr = np.asarray(std, dtype=np.float32)
    if np.any(std_arr <= 0):
        raise ValueError(f"std must be positive, got {std}")
    out = (frames.astype(np.float32) - mean_arr) / std_arr
    return np.ascontiguousarray(out.transpose(3, 0, 1, 2))
