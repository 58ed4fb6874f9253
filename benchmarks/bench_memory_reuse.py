"""Benchmark: a training step with glibc's default allocation policy and with freed memory reused.

Every ``epamnet`` command calls ``epamnet.runtime.reuse_freed_memory`` at start-up (through
``runtime.apply``): large blocks come from the heap and freed memory stays for reuse, so
a step's activations and gradients do not each start as fresh, page-faulting memory.

The allocator's state is the process's history (glibc raises its mmap threshold as blocks
are freed, and the policy cannot be undone), so each measurement is a fresh process, as a
training job is: this script runs itself once per case and policy, alternating the two
policies ``--repeats`` times and keeping the best median. One training step (forward,
loss, backward) at one thread, after one warm-up step, of each stream and of the fusion:

- the synthetic preset (the default run's model, batch 8);
- the paper preset (batch ``--paper-batch``).

It prints the step time and the minor page faults per step under each policy.

Run: ``PYTHONPATH=src python benchmarks/bench_memory_reuse.py [--repeats 3] [--paper-batch 2]``.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

STREAMS = ("pose", "rgb", "fusion")


def measure(preset: str, stream: str, batch: int, iters: int, reuse: bool) -> dict[str, float]:
    """One case in this (fresh) process: median step seconds and mean page faults per step."""
    if reuse:
        from epamnet.runtime import reuse_freed_memory

        assert reuse_freed_memory(), "glibc refused the thresholds"
    import torch
    from steps import clips, time_steps

    from epamnet.config.model import paper_spec, synthetic_spec
    from epamnet.models.epam import build_model

    torch.set_num_threads(1)
    spec = synthetic_spec() if preset == "synthetic" else paper_spec()
    torch.manual_seed(0)
    steps = time_steps(build_model(spec, 8, stream).train(), clips(spec, batch)[stream], iters)
    return {"seconds": statistics.median(t for t, _ in steps), "faults": statistics.mean(f for _, f in steps)}


def run_case(preset: str, stream: str, batch: int, iters: int, reuse: bool) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--case", json.dumps([preset, stream, batch, iters, reuse])]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iters", type=int, default=5, help="timed steps per process (synthetic preset; paper: 2)")
    parser.add_argument("--paper-batch", type=int, default=2)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(*json.loads(args.case))))
        return
    print(f"1 thread per process, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"{'preset':<10} {'stream':<7} {'batch':>5} {'glibc default':>14} {'faults':>8} {'reused':>10} "
          f"{'faults':>8} {'speed-up':>9}")
    for preset, batch, iters in (("synthetic", 8, args.iters), ("paper", args.paper_batch, 2)):
        for stream in STREAMS:
            best: dict[bool, dict[str, float]] = {}
            for _ in range(args.repeats):
                for reuse in (False, True):
                    r = run_case(preset, stream, batch, iters, reuse)
                    if reuse not in best or r["seconds"] < best[reuse]["seconds"]:
                        best[reuse] = r
            d, u = best[False], best[True]
            print(f"{preset:<10} {stream:<7} {batch:>5} {d['seconds'] * 1e3:12.1f}ms {d['faults']:8.0f} "
                  f"{u['seconds'] * 1e3:8.1f}ms {u['faults']:8.0f} {d['seconds'] / u['seconds']:8.2f}x")


if __name__ == "__main__":
    main()
