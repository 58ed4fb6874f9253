"""One training step of EPAM-Net's models on random clips, for the model benchmarks.

:func:`clips` makes a batch at a preset's sizes; :func:`time_steps` runs forward, the
cross-entropy of every output and backward, and returns each step's seconds and minor
page faults (the first step is a warm-up and is not returned).
"""

from __future__ import annotations

import resource
import time

import torch
import torch.nn.functional as F
from torch import nn

from epamnet.config.model import ModelSpec


def clips(spec: ModelSpec, batch: int) -> dict[str, tuple[torch.Tensor, ...]]:
    """Inputs per stream (``pose``, ``rgb``, ``fusion``) of a batch at ``spec``'s clip sizes."""
    gen = torch.Generator().manual_seed(0)
    imgs = torch.randn(batch, 3, spec.rgb.clip_len, spec.rgb.input_size, spec.rgb.input_size, generator=gen)
    heat = torch.rand(batch, 17, spec.pose.clip_len, spec.pose.input_size, spec.pose.input_size, generator=gen)
    return {"pose": (heat,), "rgb": (imgs,), "fusion": (imgs, heat)}


def time_steps(model: nn.Module, inputs: tuple[torch.Tensor, ...], iters: int) -> list[tuple[float, int]]:
    """(seconds, minor page faults) of ``iters`` training steps after one warm-up step."""
    labels = torch.arange(inputs[0].shape[0]) % 8
    out = []
    for i in range(iters + 1):
        f0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
        model.zero_grad(set_to_none=True)
        logits = model(*inputs)
        sum(F.cross_entropy(o, labels) for o in (logits if isinstance(logits, tuple) else (logits,))).backward()
        if i:
            out.append((time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0))
    return out
