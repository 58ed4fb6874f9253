"""Pseudo-heatmap volumes from keypoints (PoseC3D's ``GeneratePoseTarget``, joints only).

For every person, frame and joint with score ``>= eps`` a Gaussian of ``sigma`` heatmap
pixels, peak = the keypoint score (``use_score``), is drawn into that joint's channel;
persons are combined by pixel-wise maximum. The Gaussian is evaluated only on the
integer pixels ``int(mu - 3 sigma) .. int(mu + 3 sigma)`` (truncation toward zero,
clipped to the map), exactly as mmaction2 does, so a point just outside the map can
still light its border pixels. Points scoring below ``eps`` are skipped (with
``use_score=False`` every point peaks at 1 and none is, as in mmaction2). Points with a
NaN coordinate or a NaN score are skipped too, where mmaction2 would fail or spread NaN
(in the pipeline, compaction has already turned NaN coordinates into 0).

The whole volume is computed at once: one small window of ``K x K`` pixels per point
(``K = floor(6 sigma) + 2`` covers every window), evaluated in float32 in mmaction2's
order of operations, then scattered with a single ``np.maximum.at``. Output layout is
``V x T x H x W`` (channels first, as mmaction2's ``FormatShape('NCTHW')`` leaves it).
"""

from __future__ import annotations

import numpy as np

#: Scores below this are "not detected" and draw nothing (mmaction2's eps).
SCORE_EPS = 1e-4


def generate_heatmaps(
    keypoint: np.ndarray,
    keypoint_score: np.ndarray | None,
    img_shape: tuple[int, int],
    *,
    sigma: float = 0.6,
    use_score: bool = True,
    eps: float = SCORE_EPS,
) -> np.ndarray:
    """Return the ``V x T x H x W`` float32 heatmap volume of keypoints ``M x T x V x 2``.

    ``keypoint`` must already be in heatmap pixels (see
    :func:`epamnet.loader.pose_transforms.resize_keypoints`); ``img_shape`` is the heatmap
    ``(H, W)``. ``keypoint_score`` is ``M x T x V`` (``None``: all ones). With
    ``use_score=False`` every point (whatever its score, as in mmaction2) peaks at 1.
    """
    kp = np.asarray(keypoint, dtype=np.float32)
    if kp.ndim != 4 or kp.shape[-1] != 2:
        raise ValueError(f"keypoint must be M x T x V x 2, got shape {kp.shape}")
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    m, t, v, _ = kp.shape
    h, w = int(img_shape[0]), int(img_shape[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"heatmap size must be positive, got {img_shape}")
    if keypoint_score is None:
        score = np.ones((m, t, v), dtype=np.float32)
    else:
        score = np.asarray(keypoint_score, dtype=np.float32)
        if score.shape != (m, t, v):
            raise ValueError(f"keypoint_score must be {(m, t, v)}, got shape {score.shape}")
    # As in mmaction2, use_score=False draws every point at peak 1 (none is skipped).
    peak = score if use_score else np.ones_like(score)
    keep = (peak >= eps) & ~np.isnan(kp).any(axis=-1)  # NaN >= eps is False: skipped

    # Points as flat arrays over (m, t, v); only the ones that draw something.
    mi, ti, vi = np.nonzero(keep)
    mu = kp[mi, ti, vi]  # P x 2, float32
    peak = peak[mi, ti, vi]
    reach = 3 * sigma
    start = np.maximum(np.trunc(mu - reach).astype(np.int64), 0)  # P x 2 (x, y)
    stop = np.minimum(np.trunc(mu + reach).astype(np.int64) + 1, np.array([w, h]))

    k = int(np.floor(2 * reach)) + 2
    offsets = np.arange(k, dtype=np.int64)
    xs = start[:, 0:1] + offsets  # P x K
    ys = start[:, 1:2] + offsets
    valid = (xs < stop[:, 0:1])[:, None, :] & (ys < stop[:, 1:2])[:, :, None]  # P x K(y) x K(x)

    dx2 = (xs.astype(np.float32) - mu[:, 0:1]) ** 2
    dy2 = (ys.astype(np.float32) - mu[:, 1:2]) ** 2
    patch = np.exp(-(dx2[:, None, :] + dy2[:, :, None]) / 2 / sigma**2)
    patch = patch * peak[:, None, None]

    out = np.zeros(v * t * h * w + 1, dtype=np.float32)  # last slot collects invalid pixels
    base = (vi * t + ti) * (h * w)
    flat = base[:, None, None] + ys[:, :, None] * w + xs[:, None, :]
    flat = np.where(valid, flat, out.size - 1)
    np.maximum.at(out, flat.ravel(), patch.ravel())
    return out[:-1].reshape(v, t, h, w)
