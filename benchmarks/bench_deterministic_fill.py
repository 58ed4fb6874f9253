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

import torch
import torch.utils.deterministic
from steps import add_step_arguments, compare_steps

from epamnet.runtime import reuse_freed_memory


def _fill(on: bool) -> None:
    torch.utils.deterministic.fill_uninitialized_memory = on


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_step_arguments(parser)
    args = parser.parse_args()
    reuse_freed_memory()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    compare_steps({"fill on": lambda: _fill(True), "fill off": lambda: _fill(False)}, args)


if __name__ == "__main__":
    main()
