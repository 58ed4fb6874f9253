"""Keypoint transforms of the pose pipeline: compaction, resize, random resized crop, flip.

All functions are pure: they take keypoints ``M x T x V x 2`` (pixel x, y) and return
new float32 arrays; the input is never modified. Missing points are ``(0, 0)``, as in
the mmaction2 skeleton format: every transform but the crop leaves a zero coordinate at
zero (it is tested per coordinate, as mmaction2 does).

- :func:`compact_keypoints` is mmaction2's ``PoseCompact`` (the official fork's
  ``MMCompact`` on keypoints only): one box around every non-zero point of all persons
  and all sampled frames, half-sizes scaled by ``1 + padding``, widened to the
  ``hw_ratio``, and (unless ``allow_imgpad``) clipped to the image; the box corners are
  truncated to integers exactly as mmaction2 does. NaN coordinates become 0 first.
  A box narrower or lower than ``threshold`` pixels leaves everything unchanged.
- :func:`resize_keypoints` is ``Resize(keep_ratio=False)`` on keypoints: multiply by the
  float32 factors ``new / old``.
- :func:`flip_keypoints` is ``Flip`` on keypoints: ``x -> width - x`` on non-zero x and
  left/right joints swapped (scores too). mmaction2 1.2's ``Flip._flip_kps`` does the
  same as the official fork. Note that frames flip as pixel ``j -> W - 1 - j`` while
  keypoints flip as ``x -> W - x``; as the heatmaps sample pixel ``j`` at ``x = j``, a
  flipped clip's heatmaps sit one heatmap pixel to the right of the mirrored heatmaps
  (4 RGB pixels at 56 vs 224). Both mmaction2 versions do this; we keep it so results
  stay comparable with theirs.
- :func:`short_side_shape` is the size rule of ``Resize(scale=(-1, short))``
  (``keep_ratio=True``): the short side becomes ``short``, each side rounded half up;
  :func:`resize_keypoints` then scales the keypoints to it.
- :func:`random_resized_crop_box` is mmaction2's ``RandomResizedCrop.get_crop_bbox``: up
  to ``max_attempts`` candidate boxes of a random area fraction and (log-uniform) aspect
  ratio, the first that fits placed at a random offset, else the centred square. The
  draws come in mmaction2's order (all aspect ratios, all areas, then x and y offsets);
  mmaction2 draws the offsets from Python's ``random``, which ``offset_rng`` can stand
  in for, so the same random state gives the same box.
- :func:`crop_keypoints` is ``RandomCrop._crop_kps``: every point, missing ``(0, 0)`` ones
  included, is shifted by the box corner, exactly as mmaction2 does (a missing point so
  lands outside the crop, where its score, normally 0, draws nothing anyway).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: COCO-17 left and right joints (eyes, ears, shoulders, elbows, wrists, hips, knees, ankles).
COCO_LEFT: tuple[int, ...] = (1, 3, 5, 7, 9, 11, 13, 15)
COCO_RIGHT: tuple[int, ...] = (2, 4, 6, 8, 10, 12, 14, 16)


@dataclass(frozen=True)
class CompactResult:
    """Compacted keypoints, the new image shape ``(h, w)`` and the box ``(x0, y0, x1, y1)``."""

    keypoint: np.ndarray
    img_shape: tuple[int, int]
    box: tuple[int, int, int, int]


def _check_keypoints(keypoint: np.ndarray) -> np.ndarray:
    keypoint = np.asarray(keypoint)
    if keypoint.ndim != 4 or keypoint.shape[-1] != 2:
        raise ValueError(f"keypoint must be M x T x V x 2, got shape {keypoint.shape}")
    return keypoint


def _ratio_pair(hw_ratio: float | Sequence[float] | None) -> tuple[float, float] | None:
    if hw_ratio is None:
        return None
    if isinstance(hw_ratio, Sequence):
        low, high = hw_ratio
        return low, high
    return hw_ratio, hw_ratio


def compact_keypoints(
    keypoint: np.ndarray,
    img_shape: tuple[int, int],
    *,
    padding: float = 0.25,
    threshold: float = 10,
    hw_ratio: float | Sequence[float] | None = 1.0,
    allow_imgpad: bool = False,
) -> CompactResult:
    """Re-express keypoints in the padded box around all of them (mmaction2 ``PoseCompact``).

    ``img_shape`` is ``(h, w)`` of the frame the keypoints live in. The official fusion
    pipeline uses ``allow_imgpad=False`` (the box is clipped to the frame, so it may end
    up non-square); the official pose-only pipeline uses ``True``.
    """
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    kp = _check_keypoints(keypoint).astype(np.float32, copy=True)
    kp[np.isnan(kp)] = 0.0
    h, w = int(img_shape[0]), int(img_shape[1])
    kp_x, kp_y = kp[..., 0], kp[..., 1]
    nz_x, nz_y = kp_x != 0, kp_y != 0

    # The arithmetic below runs on float32 NumPy scalars in mmaction2's order, so the
    # integer box (and hence every output) is bit-identical to the reference.
    min_x = np.min(kp_x[nz_x], initial=np.inf)
    min_y = np.min(kp_y[nz_y], initial=np.inf)
    max_x = np.max(kp_x[nz_x], initial=-np.inf)
    max_y = np.max(kp_y[nz_y], initial=-np.inf)
    if max_x - min_x < threshold or max_y - min_y < threshold:
        return CompactResult(kp, (h, w), (0, 0, w, h))

    center = ((max_x + min_x) / 2, (max_y + min_y) / 2)
    half_width = (max_x - min_x) / 2 * (1 + padding)
    half_height = (max_y - min_y) / 2 * (1 + padding)
    ratio = _ratio_pair(hw_ratio)
    if ratio is not None:
        half_height = max(ratio[0] * half_width, half_height)
        half_width = max(1 / ratio[1] * half_height, half_width)

    x0, x1 = center[0] - half_width, center[0] + half_width
    y0, y1 = center[1] - half_height, center[1] + half_height
    if allow_imgpad:
        bx0, by0, bx1, by1 = int(x0), int(y0), int(x1), int(y1)
    else:
        bx0, by0 = int(max(0, x0)), int(max(0, y0))
        bx1, by1 = int(min(w, x1)), int(min(h, y1))

    kp_x[nz_x] -= bx0
    kp_y[nz_y] -= by0
    return CompactResult(kp, (by1 - by0, bx1 - bx0), (bx0, by0, bx1, by1))


def resize_keypoints(
    keypoint: np.ndarray, img_shape: tuple[int, int], size: tuple[int, int]
) -> np.ndarray:
    """Scale keypoints from a frame of ``img_shape`` ``(h, w)`` to one of ``size`` ``(h, w)``."""
    kp = _check_keypoints(keypoint)
    h, w = img_shape
    new_h, new_w = size
    if min(h, w, new_h, new_w) <= 0:
        raise ValueError(f"image sizes must be positive, got {img_shape} -> {size}")
    factor = np.array([new_w / w, new_h / h], dtype=np.float32)
    return (kp.astype(np.float32, copy=False) * factor).astype(np.float32, copy=False)


def flip_keypoints(
    keypoint: np.ndarray,
    keypoint_score: np.ndarray | None,
    img_width: float,
    *,
    left: Sequence[int] = COCO_LEFT,
    right: Sequence[int] = COCO_RIGHT,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Mirror keypoints horizontally (``x -> img_width - x`` on non-zero x) and swap left/right.

    Returns ``(keypoint, keypoint_score)``, both with the joints reordered.
    """
    kp = _check_keypoints(keypoint).astype(np.float32, copy=True)
    if len(left) != len(right):
        raise ValueError("left and right joint lists must have the same length")
    kp_x = kp[..., 0]
    nz = kp_x != 0
    kp_x[nz] = img_width - kp_x[nz]
    order = np.arange(kp.shape[2])
    order[list(left)] = list(right)
    order[list(right)] = list(left)
    kp = kp[:, :, order]
    score = None if keypoint_score is None else np.asarray(keypoint_score)[:, :, order]
    return kp, score


def short_side_shape(img_shape: tuple[int, int], short: int) -> tuple[int, int]:
    """The ``(h, w)`` that ``Resize(scale=(-1, short))`` gives a frame of ``img_shape``."""
    h, w = int(img_shape[0]), int(img_shape[1])
    if min(h, w, short) <= 0:
        raise ValueError(f"image sizes must be positive, got {img_shape} -> short side {short}")
    scale = short / min(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)  # mmcv's rounding of each side


#: A source of training draws: a NumPy Generator, or a RandomState (mmaction2's kind).
Rng = np.random.Generator | np.random.RandomState


def _randint_inclusive(rng: Rng, high: int) -> int:
    """An integer in ``[0, high]`` (both ends, like ``random.randint(0, high)``)."""
    if isinstance(rng, np.random.RandomState):
        return int(rng.randint(high + 1))
    return int(rng.integers(high + 1))


def random_resized_crop_box(
    img_shape: tuple[int, int],
    rng: Rng,
    *,
    area_range: tuple[float, float] = (0.08, 1.0),
    aspect_ratio_range: tuple[float, float] = (3 / 4, 4 / 3),
    max_attempts: int = 10,
    offset_rng: random.Random | None = None,
) -> tuple[int, int, int, int]:
    """A random crop box ``(x0, y0, x1, y1)`` inside a frame of ``img_shape`` ``(h, w)``.

    Defaults are mmaction2's ``RandomResizedCrop``'s. ``rng`` draws the aspect ratios
    and areas; the offsets come from ``offset_rng`` when given (mmaction2 uses Python's
    ``random``), else from ``rng``.
    """
    low_area, high_area = area_range
    low_ar, high_ar = aspect_ratio_range
    if not 0 < low_area <= high_area <= 1:
        raise ValueError(f"area_range must satisfy 0 < low <= high <= 1, got {area_range}")
    if not 0 < low_ar <= high_ar:
        raise ValueError(f"aspect_ratio_range must satisfy 0 < low <= high, got {aspect_ratio_range}")
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    h, w = int(img_shape[0]), int(img_shape[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"image size must be positive, got {img_shape}")

    aspect = np.exp(rng.uniform(np.log(low_ar), np.log(high_ar), size=max_attempts))
    areas = rng.uniform(low_area, high_area, size=max_attempts) * (h * w)
    crop_w = np.round(np.sqrt(areas * aspect)).astype(np.int32)
    crop_h = np.round(np.sqrt(areas / aspect)).astype(np.int32)
    for cw, ch in zip(crop_w.tolist(), crop_h.tolist(), strict=True):
        if ch <= h and cw <= w:
            if offset_rng is not None:
                x0, y0 = offset_rng.randint(0, w - cw), offset_rng.randint(0, h - ch)
            else:
                x0, y0 = _randint_inclusive(rng, w - cw), _randint_inclusive(rng, h - ch)
            return x0, y0, x0 + cw, y0 + ch
    side = min(h, w)  # no candidate fits: the centred square
    x0, y0 = (w - side) // 2, (h - side) // 2
    return x0, y0, x0 + side, y0 + side


def crop_keypoints(keypoint: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Re-express keypoints in the crop ``box`` ``(x0, y0, x1, y1)``: every point minus ``(x0, y0)``."""
    kp = _check_keypoints(keypoint).astype(np.float32, copy=False)
    return (kp - np.array(box[:2], dtype=np.float32)).astype(np.float32, copy=False)
