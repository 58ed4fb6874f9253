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
import os
import statistics

import torch
from steps import clips, time_steps

from epamnet.config.model import paper_spec, synthetic_spec
from epamnet.models.epam import build_model
from epamnet.models.xshift import XShiftNet, reference_forward

FRAMES = XShiftNet.forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iters", type=int, default=5, help="timed steps per repeat (synthetic preset)")
    parser.add_argument("--paper-batch", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"{'preset':<10} {'stream':<7} {'batch':>5} {'3D clips':>10} {'frames':>10} {'speed-up':>9}")
    for preset, spec, batch, iters in (("synthetic", synthetic_spec(), 8, args.iters),
                                       ("paper", paper_spec(), args.paper_batch, 2)):
        for stream, inputs in clips(spec, batch).items():
            torch.manual_seed(0)
            model = build_model(spec, 8, stream).train()
            best = {"3D clips": float("inf"), "frames": float("inf")}
            for _ in range(args.repeats):
                for name, forward in (("3D clips", reference_forward), ("frames", FRAMES)):
                    XShiftNet.forward = forward  # type: ignore[method-assign]
                    seconds = statistics.median(t for t, _ in time_steps(model, inputs, iters))
                    best[name] = min(best[name], seconds)
            XShiftNet.forward = FRAMES  # type: ignore[method-assign]
            print(f"{preset:<10} {stream:<7} {batch:>5} {best['3D clips'] * 1e3:8.1f}ms {best['frames'] * 1e3:8.1f}ms "
                  f"{best['3D clips'] / best['frames']:8.2f}x")


if __name__ == "__main__":
    main()
