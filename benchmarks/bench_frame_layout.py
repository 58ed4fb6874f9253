"""Benchmark: X-ShiftNet in the frames layout against the same network on 5D clips.

``epamnet.models.xshift.XShiftNet`` runs its backbone on the ``N*T, C, H, W`` frames of
the clips in channels-last layout, with 2D convolutions (every kernel spans one frame).
``reference_forward`` computes the same function the straightforward way, as the official
code does: ``N, C, T, H, W`` clips, 3D convolutions, BatchNorm on 5D tensors
(``tests/test_models.py`` checks that outputs, gradients and running statistics agree).
This times one training step (forward, loss, backward) of each stream and of the fusion
with each, in one process, at one thread, alternating the two and taking the best of
``--repeats`` medians:

- the synthetic preset (the default run's model, batch 8): pose 17 x 24 x 32 x 32, RGB
  3 x 8 x 64 x 64, and the fusion;
- the paper preset (batch ``--paper-batch``): pose 17 x 48 x 56 x 56, RGB 3 x 16 x 224 x 224.

Run: ``PYTHONPATH=src python benchmarks/bench_frame_layout.py [--repeats 3] [--paper-batch 2]``.
Nothing is asserted.
"""

from __future__ import annotations

import argparse

import torch
from steps import add_step_arguments, compare_steps

from epamnet.models.xshift import XShiftNet, reference_forward

FRAMES = XShiftNet.forward


def _use(forward) -> None:
    XShiftNet.forward = forward  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_step_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    compare_steps({"3D clips": lambda: _use(reference_forward), "frames": lambda: _use(FRAMES)}, args)


if __name__ == "__main__":
    main()
