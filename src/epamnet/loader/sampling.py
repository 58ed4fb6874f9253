"""Uniform frame sampling (PoseC3D's ``UniformSampleFrames``) and the RGB subset of it.

The rules, for ``n`` frames and a clip of ``clip_len`` (one clip):

- ``n < clip_len``: consecutive frames from a start (random in training, 0 in test mode),
  taken modulo ``n`` so a short video loops.
- ``clip_len <= n < 2 * clip_len``: the frames ``0..clip_len-1`` plus ``n - clip_len``
  randomly chosen extra offsets, so no frame repeats and the clip still spans the video.
- otherwise: ``clip_len`` equal segments (boundaries ``i * n // clip_len``) with one
  random frame from each.

mmaction2 makes test mode deterministic by reseeding the *global* NumPy RNG with 255
on every call. We reproduce the same indices with a *local* ``RandomState(255)`` (the
legacy generator behind ``np.random.*``, hence identical draws) and never touch global
state. In training the caller passes its own generator, so a data loader can derive
one per sample from (seed, epoch, index) and stay deterministic for any worker count.

The RGB stream sees a subset of the pose frames (official code: pose indices
``[0::3]`` for 48 pose and 16 RGB frames); :func:`rgb_indices` takes every
``stride = pose_len // rgb_len``-th pose index.
"""

from __future__ import annotations

import numpy as np

#: The seed mmaction2's UniformSampleFrames uses in test mode.
TEST_SEED = 255

Rng = np.random.Generator | np.random.RandomState


def _randint(rng: Rng, high: int | np.ndarray) -> np.ndarray | int:
    """Integers in ``[0, high)`` (``high`` may be an array) from either RNG kind."""
    if isinstance(rng, np.random.RandomState):
        return rng.randint(high)
    return rng.integers(high)


def sample_frame_indices(
    total_frames: int,
    clip_len: int,
    *,
    test_mode: bool,
    rng: Rng | None = None,
    seed: int = TEST_SEED,
) -> np.ndarray:
    """Return ``clip_len`` frame indices (int64, each in ``[0, total_frames)``) for one clip.

    In test mode the result depends only on ``(total_frames, clip_len, seed)`` and equals
    mmaction2's ``UniformSampleFrames(clip_len, test_mode=True)``; ``rng`` is ignored.
    In training mode ``rng`` (a ``np.random.Generator`` or ``RandomState``) is required;
    with a ``RandomState`` in the same state as mmaction2's global one the draws are
    the same as mmaction2's.
    """
    if total_frames < 1:
        raise ValueError(f"total_frames must be >= 1, got {total_frames}")
    if clip_len < 1:
        raise ValueError(f"clip_len must be >= 1, got {clip_len}")
    if test_mode:
        rng = np.random.RandomState(seed)
    elif rng is None:
        raise ValueError("training-mode sampling needs an rng (np.random.Generator or RandomState)")

    n = total_frames
    if n < clip_len:
        start = 0 if test_mode else int(_randint(rng, n))
        inds = np.arange(start, start + clip_len, dtype=np.int64)
    elif n < 2 * clip_len:
        chosen = rng.choice(clip_len + 1, n - clip_len, replace=False)
        offset = np.zeros(clip_len + 1, dtype=np.int64)
        offset[chosen] = 1
        inds = np.arange(clip_len, dtype=np.int64) + np.cumsum(offset)[:-1]
    else:
        bounds = np.arange(clip_len + 1, dtype=np.int64) * n // clip_len
        inds = bounds[:-1] + np.asarray(_randint(rng, np.diff(bounds)), dtype=np.int64)
    return np.mod(inds, n).astype(np.int64)


def rgb_stride(pose_len: int, rgb_len: int) -> int:
    """Temporal stride between the pose clip and its RGB subset (``pose_len // rgb_len``)."""
    if rgb_len < 1 or pose_len < rgb_len:
        raise ValueError(f"the RGB clip ({rgb_len}) must have 1..pose clip length ({pose_len}) frames")
    return pose_len // rgb_len


def rgb_indices(pose_indices: np.ndarray, rgb_len: int) -> np.ndarray:
    """The RGB frames: every ``pose_len // rgb_len``-th pose index, ``rgb_len`` of them."""
    pose_indices = np.asarray(pose_indices)
    stride = rgb_stride(len(pose_indices), rgb_len)
    return pose_indices[::stride][:rgb_len].copy()
