"""Global person box of a video and keypoints re-expressed in a crop of it.

The RGB stream reads videos cropped once, on disk, to one box per video; the pose stream
reads keypoints re-expressed in that same crop, so both modalities see the same region
(the official code derived the pose box from the 48 sampled frames and the RGB box from
all frames, so they were only approximately aligned: spec 9.6).

The box rule mirrors mmaction2's ``PoseCompact`` / the official ``MMCompact.get_box``
with ``allow_imgpad=False``:

1. the tight box around every *valid* keypoint of every person in every frame;
2. if it is smaller than ``threshold`` pixels in either direction (or there is no valid
   keypoint), the whole frame;
3. otherwise keep its centre and scale its half-sizes by ``1 + padding``;
4. grow the shorter side so that height / width = ``hw_ratio`` (1: square);
5. clip to the image and truncate to integer pixels (``int()``, as the original does),
   so a box at the border can end up non-square.

Step 1 takes the keypoints whose score is > 0 and whose coordinates are both finite, and
then, as mmaction2 does, ignores each coordinate that is zero on its own: pose estimators
and the NTU files write missing joints as (0, 0), which so count in neither direction,
while a joint on the frame's edge, (0, y), still bounds the box vertically. (mmaction2
turns a NaN coordinate into 0 and keeps the other one; a joint with a NaN here is dropped.)

A keypoint is *valid* (it carries a position that the crop re-expresses) when its score
is > 0 and both coordinates are finite and not both zero.

Boxes are ``(x0, y0, x1, y1)`` with ``x1``/``y1`` exclusive: the crop is
``frame[y0:y1, x0:x1]``, of width ``x1 - x0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

Box = tuple[int, int, int, int]


def valid_keypoints(keypoint: np.ndarray, keypoint_score: np.ndarray | None) -> np.ndarray:
    """Boolean mask (shape ``keypoint.shape[:-1]``) of the keypoints that carry a position.

    Valid: score > 0 (when scores are given), both coordinates finite, not (0, 0).
    """
    kp = np.asarray(keypoint)
    finite = np.isfinite(kp).all(axis=-1)
    nonzero = (kp != 0).any(axis=-1)
    mask = finite & nonzero
    if keypoint_score is not None:
        score = np.asarray(keypoint_score)
        mask &= np.nan_to_num(score, nan=0.0) > 0
    return mask


def keypoint_box(
    keypoint: np.ndarray,
    keypoint_score: np.ndarray | None,
    img_shape: tuple[int, int],
    *,
    padding: float = 0.25,
    threshold: float = 10,
    hw_ratio: float | None = 1.0,
) -> Box:
    """The global box of ``keypoint`` (M x T x V x 2, pixel x, y) in an image of ``img_shape``.

    See the module docstring for the rule. ``hw_ratio=None`` keeps the padded box's own
    aspect. Returns integer ``(x0, y0, x1, y1)`` inside ``[0, w] x [0, h]``.
    """
    h, w = int(img_shape[0]), int(img_shape[1])
    kp = np.asarray(keypoint, dtype=np.float64).reshape(-1, 2)
    counted = np.isfinite(kp).all(axis=1)
    if keypoint_score is not None:
        counted &= np.nan_to_num(np.asarray(keypoint_score, dtype=np.float64), nan=0.0).reshape(-1) > 0
    xs = kp[:, 0][counted & (kp[:, 0] != 0)]
    ys = kp[:, 1][counted & (kp[:, 1] != 0)]
    if xs.size == 0 or ys.size == 0:
        return 0, 0, w, h
    min_x, max_x = xs.min(), xs.max()
    min_y, max_y = ys.min(), ys.max()
    if max_x - min_x < threshold or max_y - min_y < threshold:
        return 0, 0, w, h
    cx, cy = (min_x + max_x) / 2, (min_y + max_y) / 2
    half_w = (max_x - min_x) / 2 * (1 + padding)
    half_h = (max_y - min_y) / 2 * (1 + padding)
    if hw_ratio is not None:
        half_h = max(hw_ratio * half_w, half_h)
        half_w = max(half_h / hw_ratio, half_w)
    x0, x1 = int(max(0.0, cx - half_w)), int(min(float(w), cx + half_w))
    y0, y1 = int(max(0.0, cy - half_h)), int(min(float(h), cy + half_h))
    # A valid box always has x1 > x0 (threshold > 0 guarantees it; guard threshold = 0).
    if x1 <= x0 or y1 <= y0:
        return 0, 0, w, h
    return x0, y0, x1, y1


def global_box(
    annotation: Mapping[str, Any],
    *,
    padding: float = 0.25,
    threshold: float = 10,
    hw_ratio: float | None = 1.0,
) -> Box:
    """One box over all persons and ALL frames of a skeleton annotation, in its ``img_shape`` pixels."""
    return keypoint_box(
        annotation["keypoint"],
        annotation.get("keypoint_score"),
        tuple(annotation["img_shape"]),  # type: ignore[arg-type]
        padding=padding,
        threshold=threshold,
        hw_ratio=hw_ratio,
    )


def scale_box(box: Box, scale_x: float, scale_y: float, width: int, height: int) -> Box:
    """Map a box to an image ``scale_x``/``scale_y`` times the size (rounded, inside, >= 1 px)."""
    x0, y0, x1, y1 = box
    sx0 = min(max(round(x0 * scale_x), 0), width - 1)
    sy0 = min(max(round(y0 * scale_y), 0), height - 1)
    sx1 = min(max(round(x1 * scale_x), sx0 + 1), width)
    sy1 = min(max(round(y1 * scale_y), sy0 + 1), height)
    return sx0, sy0, sx1, sy1


def keypoints_to_crop(
    keypoint: np.ndarray,
    keypoint_score: np.ndarray,
    box: tuple[float, float, float, float],
    size: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Re-express keypoints in a crop of ``box`` resized to ``size`` = (height, width).

    ``box`` is in the keypoints' own pixel frame (floats allowed). A keypoint is the
    centre of pixel (x, y), and ``cv2.resize`` maps pixel centres as
    ``x' = (x + 0.5) * s - 0.5``; the same rule here keeps keypoints on the pixels they
    mark to within interpolation: ``x' = (x - x0 + 0.5) * width / (x1 - x0) - 0.5``.
    Invalid keypoints (see :func:`valid_keypoints`, and any whose new position does not fit
    in float32) become (0, 0) with score 0. Keypoints outside the box keep their (outside)
    position: the heatmaps draw only what falls inside the map, as mmaction2 does.
    Returns float32 arrays of the input shapes.
    """
    x0, y0, x1, y1 = box
    out_h, out_w = size
    kp = np.asarray(keypoint, dtype=np.float64)
    score = np.nan_to_num(np.asarray(keypoint_score, dtype=np.float64), nan=0.0)
    mask = valid_keypoints(kp, score)
    new = np.zeros_like(kp)
    new[..., 0] = (kp[..., 0] - x0 + 0.5) * (out_w / (x1 - x0)) - 0.5
    new[..., 1] = (kp[..., 1] - y0 + 0.5) * (out_h / (y1 - y0)) - 0.5
    with np.errstate(over="ignore"):
        new = new.astype(np.float32)
    mask &= np.isfinite(new).all(axis=-1)  # a coordinate too large for float32 is no position
    new[~mask] = 0.0
    score = np.where(mask, score, 0.0)
    return new, score.astype(np.float32)


__all__ = ["Box", "global_box", "keypoint_box", "keypoints_to_crop", "scale_box", "valid_keypoints"]
