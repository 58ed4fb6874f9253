"""Profile of the default run: where ``snakemake --cores all`` spends its time.

Two parts, printed together:

1. **The last run** (``.snakemake/log/``: the newest log of a run that executed jobs, or
   ``--log``): wall time, the busy core-seconds of its jobs (each job holds one core:
   ``runtime.threads: 1``), the core use (busy / cores x wall), and per rule the number
   of jobs, their seconds and share; the jobs' start and end come from Snakemake's own
   time stamps.
2. **Measured now, on this machine** (needs the prepared NTU-60 data of a default run):
   for each training (pose, rgb, fusion), one epoch of the NTU-60 xsub training set split
   into the loader's share (dataset items and collation, as the DataLoader with
   ``num_workers: 0`` builds them) and the training step's (task step, backward, SGD
   step), at one thread and with freed memory reused, as a job runs them
   (``epamnet.runtime.reuse_freed_memory``); and the start-up of one ``epamnet`` job (a fresh interpreter
   importing the training stage: torch, OpenCV, the project), times the run's job count.

Run: ``PYTHONPATH=src python benchmarks/bench_default_run.py [--log FILE]`` from the
project root after ``make run``. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
START = re.compile(r"^(?:local)?rule (\w+):$")
JOBID = re.compile(r"^\s+jobid: (\d+)$")
FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")
CORES = re.compile(r"^Provided cores: (\d+)$")


def parse_log(path: Path) -> tuple[int, dict[int, tuple[str, datetime, datetime]]]:
    """Cores and ``{jobid: (rule, start, end)}`` of a Snakemake log."""
    cores, stamp, rule = 1, None, None
    started: dict[int, tuple[str, datetime]] = {}
    jobs: dict[int, tuple[str, datetime, datetime]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if m := CORES.match(line):
            cores = int(m.group(1))
        elif m := STAMP.match(line):
            stamp = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
        elif (m := START.match(line)) and stamp is not None:
            rule = m.group(1)
        elif (m := JOBID.match(line)) and rule is not None and stamp is not None:
            started[int(m.group(1))] = (rule, stamp)
            rule = None
        elif (m := FINISHED.match(line)) and stamp is not None and int(m.group(1)) in started:
            name, begin = started[int(m.group(1))]
            jobs[int(m.group(1))] = (name, begin, stamp)
    return cores, jobs


def newest_run_log(folder: Path) -> Path:
    for path in sorted(folder.glob("*.snakemake.log"), reverse=True):
        if "Finished jobid" in path.read_text(encoding="utf-8", errors="replace"):
            return path
    raise SystemExit(f"no Snakemake log with finished jobs in {folder}; run `make run` first")


def epoch_split(stream: str) -> tuple[float, float, int]:
    """Seconds of one NTU-60 xsub training epoch: (loader, step, items)."""
    import torch
    from torch.utils.data import default_collate

    from epamnet.config import load_params
    from epamnet.models.epam import build_model
    from epamnet.runtime import reuse_freed_memory, set_torch_threads
    from epamnet.stages.streams import build_dataset, task_for

    params = load_params("params.yaml")
    set_torch_threads(params.runtime.threads)
    reuse_freed_memory()
    cfg = params.train_config(stream)
    data = build_dataset(params, "ntu60", "xsub", stream, "train", train_mode=True)
    data.set_epoch(1)
    t0 = time.perf_counter()
    batches = [default_collate([data[i] for i in range(s, min(s + cfg.batch_size, len(data)))])
               for s in range(0, len(data), cfg.batch_size)]
    loader = time.perf_counter() - t0
    torch.manual_seed(0)
    model = build_model(params.model_spec(), 8, stream)
    task, device = task_for(stream), torch.device("cpu")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    t0 = time.perf_counter()
    for batch in batches:
        out = task.step(model, batch, device)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
    return loader, time.perf_counter() - t0, len(data)


def startup_seconds(repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import epamnet.stages.train"], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, default=None, help="a Snakemake log (default: the newest run's)")
    args = parser.parse_args()
    logging.disable(logging.INFO)

    log = args.log or newest_run_log(Path(".snakemake/log"))
    cores, jobs = parse_log(log)
    begin = min(j[1] for j in jobs.values())
    end = max(j[2] for j in jobs.values())
    wall = (end - begin).total_seconds()
    by_rule: dict[str, list[float]] = defaultdict(list)
    for name, a, b in jobs.values():
        by_rule[name].append((b - a).total_seconds())
    busy = sum(sum(v) for v in by_rule.values())
    print(f"last run: {log} ({len(jobs)} jobs, {cores} cores)")
    print(f"  wall {wall:.0f} s, busy {busy:.0f} core-s, core use {busy / (cores * wall):.0%}")
    for name, secs in sorted(by_rule.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {name:<16} {len(secs):3d} jobs {sum(secs):7.0f} s  {sum(secs) / busy:6.1%}  "
              f"(median {statistics.median(secs):.0f} s)")

    print(f"measured now ({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}), NTU-60 xsub, one epoch:")
    for stream in ("pose", "rgb", "fusion"):
        loader, step, n = epoch_split(stream)
        total = loader + step
        print(f"  {stream:<7} {n} clips: loader {loader:5.2f} s ({loader / total:4.0%}, {1e3 * loader / n:.1f} ms/clip), "
              f"step {step:5.2f} s ({step / total:4.0%}); loader / step {loader / step:.2f}")
    start = startup_seconds()
    print(f"  start-up of one job (import the training stage): {start:.2f} s; x {len(jobs)} jobs = "
          f"{start * len(jobs):.0f} core-s ({start * len(jobs) / busy:.0%} of the last run's busy time)")


if __name__ == "__main__":
    main()
