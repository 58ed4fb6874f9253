"""One training step of EPAM-Net's models on random clips, for the model benchmarks.

:func:`clips` makes a batch at a preset's sizes; :func:`time_steps` runs forward, the
cross-entropy of every output and backward, and returns each step's seconds and minor
page faults (the first step is a warm-up and is not returned). :func:`compare_steps`
prints the table of a benchmark that times the same step two ways in one process.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from epamnet.config.model import ModelSpec, paper_spec, synthetic_spec
from epamnet.models.epam import build_model


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


def add_step_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of :func:`compare_steps`: ``--repeats``, ``--iters``, ``--paper-batch``."""
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iters", type=int, default=5, help="timed steps per repeat (synthetic preset)")
    parser.add_argument("--paper-batch", type=int, default=2)


def compare_steps(variants: dict[str, Callable[[], None]], args: argparse.Namespace) -> None:
    """Print, per preset and stream, the step time of each of two ``variants`` and their ratio.

    ``variants``: column name -> a function that switches to that variant. One training
    step of each stream and of the fusion, at the synthetic preset (batch 8) and the
    paper preset (batch ``args.paper_batch``), alternating the variants and taking the
    best of ``args.repeats`` medians; the ratio is the first's time over the second's.
    The second variant stays switched on afterwards.
    """
    (first, _), (second, _) = variants.items()
    print(f"torch {torch.__version__}, 1 thread, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"{'preset':<10} {'stream':<7} {'batch':>5} {first:>10} {second:>10} {'speed-up':>9}")
    for preset, spec, batch, iters in (("synthetic", synthetic_spec(), 8, args.iters),
                                       ("paper", paper_spec(), args.paper_batch, 2)):
        for stream, inputs in clips(spec, batch).items():
            torch.manual_seed(0)
            model = build_model(spec, 8, stream).train()
            best = dict.fromkeys(variants, float("inf"))
            for _ in range(args.repeats):
                for name, switch in variants.items():
                    switch()
                    seconds = statistics.median(t for t, _ in time_steps(model, inputs, iters))
                    best[name] = min(best[name], seconds)
            print(f"{preset:<10} {stream:<7} {batch:>5} {best[first] * 1e3:8.1f}ms {best[second] * 1e3:8.1f}ms "
                  f"{best[first] / best[second]:8.2f}x")
