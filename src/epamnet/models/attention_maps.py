"""EPAM-Net's attention maps ``A`` (T x h x w) brought to a frame's size, for drawing over it."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def upsample(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``T x h x w`` maps -> ``T x H x W`` (bilinear, corners aligned to pixel centres)."""
    t = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32))[:, None]
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False)[:, 0].numpy()
