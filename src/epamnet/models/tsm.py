"""Residual temporal shift (TSM) on 5-D ``N, C, T, H, W`` tensors, or on their frames.

X-ShiftNet replaces every temporal convolution by a shift of part of the channels
along time (spec section 1): with ``fold = C // fold_div``, channels ``[0, fold)`` take
the value of frame ``t + 1``, channels ``[fold, 2 * fold)`` take frame ``t - 1``, the rest
is copied, and frames shifted in from outside the clip are zeros. The RGB stream uses
``fold_div = 8`` (1/4 of channels move), the pose stream ``fold_div = 4`` (1/2 move).

The shift runs in every block of both streams, so it is the hot path. The official
code allocates a zero tensor and copies three slices into it, and autograd records
those copies. Here the forward writes each output element exactly once into one
``empty_like`` tensor (zeroing only the two boundary frames of the shifted channels);
when the channels are innermost in memory (the backbone's frames layout) it copies the
whole tensor at once and then overwrites the moved channels, because copying a few
channels per pixel is slower than copying them all. The backward is the opposite shift of the incoming gradient, again one
allocation; the backward is itself built from this Function, so double backward works.
"""

from __future__ import annotations

import torch


def _shift_into(out: torch.Tensor, x: torch.Tensor, fold: int, reverse: bool) -> torch.Tensor:
    """Write the shifted ``x`` into ``out`` (same shape); ``reverse`` swaps the directions."""
    t = x.shape[2]
    # ``a`` receives frame t+1, ``b`` receives frame t-1 (swapped for the adjoint).
    a, b = (slice(fold, 2 * fold), slice(0, fold)) if reverse else (slice(0, fold), slice(fold, 2 * fold))
    dense = x.stride(1) == 1  # channels innermost (the frames layout): small strided slices are slow,
    if dense:  # so one dense copy first, then the moved channels
        out.copy_(x)
    if fold > 0 and t > 1:
        out[:, a, :-1] = x[:, a, 1:]
        out[:, b, 1:] = x[:, b, :-1]
    if fold > 0:
        out[:, a, t - 1].zero_()
        out[:, b, 0].zero_()
    if not dense:
        out[:, 2 * fold :] = x[:, 2 * fold :]
    return out


class _TemporalShift(torch.autograd.Function):
    """Autograd Function: forward shifts, backward shifts the gradient the other way."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, fold: int, reverse: bool) -> torch.Tensor:  # type: ignore[override]
        ctx.fold = fold
        ctx.reverse = reverse
        return _shift_into(torch.empty_like(x), x, fold, reverse)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        # The shift is a linear map P; its adjoint P^T is the shift in the opposite
        # directions (and zeros where the forward dropped frames).
        return _TemporalShift.apply(grad, ctx.fold, not ctx.reverse), None, None


def temporal_shift(x: torch.Tensor, fold_div: int) -> torch.Tensor:
    """Return the temporally shifted copy of ``x`` (``N, C, T, H, W``); ``x`` is unchanged.

    ``fold = C // fold_div`` channels move to ``t + 1``'s value and as many to ``t - 1``'s.
    """
    if x.dim() != 5:
        raise ValueError(f"temporal_shift expects an N,C,T,H,W tensor, got shape {tuple(x.shape)}")
    if fold_div < 2:
        raise ValueError(f"fold_div must be >= 2 (at most all channels shifted), got {fold_div}")
    return _TemporalShift.apply(x, x.shape[1] // fold_div, False)


def temporal_shift_frames(frames: torch.Tensor, t: int, fold_div: int) -> torch.Tensor:
    """:func:`temporal_shift` of clips held as frames: ``N*T, C, H, W``, ``t`` frames per clip.

    The frames are shifted in place of the clip view ``N, C, T, H, W`` (no copy), so the
    result keeps ``frames``' memory layout (channels-last stays channels-last).
    """
    if frames.dim() != 4 or frames.shape[0] % t:
        raise ValueError(f"temporal_shift_frames expects N*T, C, H, W frames with T={t}, got shape {tuple(frames.shape)}")
    clips = frames.unflatten(0, (-1, t)).transpose(1, 2)
    return temporal_shift(clips, fold_div).transpose(1, 2).flatten(0, 1)


def temporal_shift_naive(x: torch.Tensor, fold_div: int) -> torch.Tensor:
    """The straightforward version (as in the official code): zeros plus slice copies.

    Kept as the reference for tests and ``benchmarks/bench_temporal_shift.py``.
    """
    fold = x.shape[1] // fold_div
    out = torch.zeros_like(x)
    out[:, :fold, :-1] = x[:, :fold, 1:]
    out[:, fold : 2 * fold, 1:] = x[:, fold : 2 * fold, :-1]
    out[:, 2 * fold :] = x[:, 2 * fold :]
    return out
