"""Benchmark: a training step with and without torch's NaN fill of new tensors.

Training runs with ``torch.use_deterministic_algorithms(True)`` (deterministic kernel
choice). On the CPU that mode also fills every newly allocated tensor with NaN
(``torch.utils.deterministic.fill_uninitialized_memory``), so that a kernel reading
memory it never wrote shows up. ``epamnet.engine.trainer`` keeps the deterministic
kernels and turns the fill off; ``tests/test_models.py`` checks that EPAM-Net's weights
after SGD steps are bit-identical either way.

This times one training step (forward, loss, backward) of each stream and of the fusion
in one process, at one thread, with freed memory reused as every ``epamnet`` job does
(``epamnet.runtime.reuse_freed_memory``), alternating fill on and off and taking the
best of ``--repeats`` medians:

- the synthetic preset (the default run's model, batch 8);
- the paper preset (batch ``--paper-batch``).

Run: ``PYTHONPATH=src python benchmarks/bench_deterministic_fill.py [--repeats 3] [--paper-batch 2]``.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics

import torch
import torch.utils.deterministic
from steps import clips, time_steps

from epamnet.config.model import paper_spec, synthetic_spec
from epamnet.models.epam import build_model
from epamnet.runtime import reuse_freed_memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iters", type=int, default=5, help="timed steps per repeat (synthetic preset)")
    parser.add_argument("--paper-batch", type=int, default=2)
    args = parser.parse_args()
    reuse_freed_memory()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    print(f"torch {torch.__version__}, 1 thread, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"{'preset':<10} {'stream':<7} {'batch':>5} {'fill on':>10} {'fill off':>10} {'speed-up':>9}")
    for preset, spec, batch, iters in (("synthetic", synthetic_spec(), 8, args.iters),
                                       ("paper", paper_spec(), args.paper_batch, 2)):
        for stream, inputs in clips(spec, batch).items():
            torch.manual_seed(0)
            model = build_model(spec, 8, stream).train()
            best = {True: float("inf"), False: float("inf")}
            for _ in range(args.repeats):
                for fill in (True, False):
                    torch.utils.deterministic.fill_uninitialized_memory = fill
                    seconds = statistics.median(t for t, _ in time_steps(model, inputs, iters))
                    best[fill] = min(best[fill], seconds)
            print(f"{preset:<10} {stream:<7} {batch:>5} {best[True] * 1e3:8.1f}ms {best[False] * 1e3:8.1f}ms "
                  f"{best[True] / best[False]:8.2f}x")


if __name__ == "__main__":
    main()
