"""Optimiser and learning-rate schedule of the official fusion training.

SGD (momentum 0.9, weight decay on all parameters) with ``CosineAnnealingLR`` over
``iterations_per_epoch * epochs`` steps, stepped after every iteration, ``eta_min = 0``.
An optional linear warm-up (not in the official code) runs first; the cosine then
covers the remaining iterations.
"""

from __future__ import annotations

from torch import nn, optim
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR


def build_optimizer(model: nn.Module, lr: float, momentum: float, weight_decay: float) -> optim.SGD:
    """SGD over every trainable parameter (nothing is frozen, as in the official run)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def build_scheduler(optimizer: optim.Optimizer, total_iters: int, warmup_iters: int = 0) -> LRScheduler:
    """Per-iteration cosine decay to 0 over ``total_iters``, after ``warmup_iters`` linear warm-up."""
    if total_iters < 1:
        raise ValueError(f"total_iters must be >= 1, got {total_iters}")
    warmup_iters = max(0, min(warmup_iters, total_iters - 1))
    if warmup_iters == 0:
        return CosineAnnealingLR(optimizer, T_max=total_iters, eta_min=0.0)
    warmup = LinearLR(optimizer, start_factor=1.0 / (warmup_iters + 1), end_factor=1.0, total_iters=warmup_iters)
    cosine = CosineAnnealingLR(optimizer, T_max=total_iters - warmup_iters, eta_min=0.0)
    return SequentialLR(optimizer, [warmup, cosine], milestones=[warmup_iters])
