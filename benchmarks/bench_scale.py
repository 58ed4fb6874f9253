"""Benchmark: the real-data pipeline at NTU-120 scale (114,480 samples), without the videos.

1. The DAG. A temporary copy of the project (Snakefile, workflow/, src/) gets a
   real-data ``params.yaml``: ntu60, ntu120, pku and toyota with ``source: real``, every
   protocol each dataset has, the paper model and ``prepare.shards`` (``--shards``, 64).
   ``snakemake -n`` runs there (a subprocess, as a user runs it) and the script prints its
   wall time and jobs per rule, in two states: nothing acquired yet (every job planned;
   the dry run needs no raw data, ``acquire`` makes it), and NTU-120 "acquired": its raw
   folder holds 114,480 empty ``<name>_rgb.avi`` files named like the dataset's videos
   (:func:`ntu120_names`). Where params.yaml accepts ``skeletons: mmpose`` a third run
   plans the sharded extraction too. Targets: under 20 s; a job count set by shards and
   protocols (:func:`expected_jobs`), not by the number of videos.

2. The skeletons. An NTU-120-sized skeleton pickle in the form mmaction2 publishes
   (``{"split", "annotations"}``): 114,480 x ``--scale`` annotations (default 0.1; 1
   writes the full-size file, a few GB), M = 2 persons for the 26 two-person actions
   and 1 otherwise, T = 30..300 frames (mean about 95), ``keypoint`` M x T x 17 x 2 and
   ``keypoint_score`` M x T x 17 in ``--dtype`` (float16, as in pyskl's HRNet pickles;
   the published file's dtypes are not verified here), pickled with ``--protocol`` (2:
   what ``mmcv.dump`` writes unless told otherwise), in a subprocess. Then, each in a
   fresh subprocess so that its peak resident memory (``VmHWM``) is its own, the
   project's own code paths:

   * ``pose`` (provided skeletons): :func:`epamnet.prepare.pose.provided_skeletons` reads,
     validates, sorts and writes ``skeletons.pkl``;
   * ``crop`` shard 0 of ``--shards``: :func:`epamnet.prepare.crop.crop_shard` reads
     ``skeletons.pkl`` and keeps its shard (no videos exist, so every sample is skipped
     with ``on_sample_error: skip``: what is measured is reading and selecting);
   * ``splits``: :func:`epamnet.prepare.splits.make_splits` for xsub and xset.

   It prints the file size, seconds, peak RSS, ``(peak - RSS after imports) / file size``
   (target: < 2) and ``peak / file size``, and the progress log lines each step wrote.
   At ``--scale`` < 1 the full-size figures are an extrapolation (sizes and times times
   1 / scale; the per-file ratio, which does not grow with the file, carried over) and
   are printed as such.

Run: ``python benchmarks/bench_scale.py [--scale 0.1] [--shards 64] [--protocol 2] [--dtype float16]``

Measured (2 CPU cores shared with a running pipeline, load ~10; snakemake 9.27.1):

* ``snakemake -n``, 64 shards: 330 jobs (nothing acquired), 329 (NTU-120's 114,480
  video files present), 586 (plus 64 pose-extraction shards per dataset); 9-11 s wall,
  3.6-4.0 s CPU (3.5 s wall when the machine was quieter).
* Skeletons, float16, protocol 2, measured at full size (``--scale 1``: 1.70 GB file,
  114,480 annotations): pose stage 25.8 s, peak 3.20 GB = 1.84 x the file above the
  interpreter (1.88 x in all); crop shard read 1.18 x and splits 1.19 x of the 1.36 GB
  skeletons.pkl. ``--scale 0.1`` extrapolates 1.89 x, 1.24 x, 1.25 x.
* Before the write fix (pickle protocol 4, which copies every array while writing), the
  pose stage peaked at 2.07 x its input (float32, protocol 4 file, ``--scale 0.1``);
  with protocol 5 it is 1.10 x for the same file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from epamnet.datasets import PROTOCOLS, ntu  # noqa: E402

#: NTU RGB+D 120's sample count (the dataset papers: 114,480 videos).
NTU120_SAMPLES = 114_480
#: Real-data datasets of the paper's pipeline, each with every protocol it has.
DATASETS = ("ntu60", "ntu120", "pku", "toyota")
#: NTU actions with two persons (mmaction2's extraction keeps two skeletons for them).
TWO_PERSON_ACTIONS = frozenset(list(range(50, 61)) + list(range(106, 121)))
DRY_RUN_TARGET_S = 20.0
MEMORY_TARGET = 2.0


# ----------------------------------------------------------------- names and files
def ntu120_names() -> list[str]:
    """114,480 distinct, valid NTU-120 sample names, sorted.

    The real list is not reproduced: 159 (setup, performer) pairs (five performers per
    setup S001..S032, cycling through P001..P106) x 3 cameras x 2 replications x 120
    actions. Every setup, performer, camera and action occurs, so xsub and xset both have
    train and test samples.
    """
    pairs = [(s, ((s - 1) * 5 + k) % 106 + 1) for s in range(1, 33) for k in range(5)][:159]
    names = [
        ntu.format_name(s, c, p, r, a) for s, p in pairs for c in (1, 2, 3) for r in (1, 2) for a in range(1, 121)
    ]
    assert len(names) == NTU120_SAMPLES
    return sorted(names)


def real_params(shards: int, skeletons: str = "provided", pose_shards: int | None = None) -> dict[str, Any]:
    """The project's params.yaml switched to the real datasets (docs/real-data.md), every protocol."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["datasets"] = {"run": list(DATASETS)}
    for ds in DATASETS:
        params["datasets"][ds] = {"source": "real", "protocols": list(PROTOCOLS[ds]), "skeletons": skeletons}
    params.setdefault("model", {})["preset"] = "paper"
    params.setdefault("prepare", {})["shards"] = shards
    if pose_shards is not None:
        params.setdefault("pose", {})["shards"] = pose_shards
    return params


def accepts(params: dict[str, Any]) -> bool:
    """Whether the project's config accepts ``params`` (optional features may be absent)."""
    from epamnet.config import validate_params
    from epamnet.errors import EpamnetError

    try:
        validate_params(params)
    except EpamnetError:
        return False
    return True


def project_copy(dest: Path, params: dict[str, Any]) -> Path:
    """A copy of what ``snakemake`` reads (Snakefile, workflow/, src/, envs/) with ``params``."""
    dest.mkdir(parents=True, exist_ok=True)
    for item in ("Snakefile", "workflow", "src", "envs"):
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / item)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    checkpoint = (params.get("pose") or {}).get("checkpoint")
    if checkpoint and any(params["datasets"][ds].get("skeletons") == "mmpose" for ds in params["datasets"]["run"]):
        (dest / checkpoint).parent.mkdir(parents=True, exist_ok=True)  # user-supplied (DVC-tracked) input
        (dest / checkpoint).touch()
    return dest


def fake_ntu120_raw(workdir: Path, names: list[str]) -> Path:
    """``data/raw/ntu120/nturgb+d_rgb/<name>_rgb.avi``, empty: the acquired layout, no video bytes."""
    folder = workdir / "data" / "raw" / "ntu120" / "nturgb+d_rgb"
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        os.close(os.open(folder / f"{name}_rgb.avi", os.O_CREAT | os.O_WRONLY, 0o644))
    return folder


# ----------------------------------------------------------------- the dry run
def snakemake_dry_run(workdir: Path) -> tuple[float, float, dict[str, int]]:
    """``snakemake -n`` in ``workdir``: (wall seconds, CPU seconds, jobs per rule from ``Job stats``).

    CPU seconds (user + system of the subprocess) do not grow when other work shares
    the machine; wall seconds do.
    """
    exe = Path(sys.executable).parent / "snakemake"
    cmd = [str(exe) if exe.exists() else "snakemake", "-n", "--cores", "1"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake -n failed in {workdir}:\n{out[-3000:]}")
    return seconds, cpu, job_stats(out)


def job_stats(output: str) -> dict[str, int]:
    """Jobs per rule from the first ``Job stats:`` table of Snakemake's output (without ``total``)."""
    lines = output.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Job stats:")
    except StopIteration:
        return {}
    counts: dict[str, int] = {}
    for line in lines[start + 1 :]:
        m = re.fullmatch(r"\s*(\w+)\s+(\d+)\s*", line)
        if m is None:
            if counts:
                break
            continue
        if m.group(1) == "total":
            break
        counts[m.group(1)] = int(m.group(2))
    return counts


def expected_jobs(
    datasets: dict[str, int], shards: int, *, acquired: tuple[str, ...] = (), pose_shards: int | None = None
) -> dict[str, int]:
    """Jobs per rule of the data, training and evaluation stages (``datasets``: name -> protocols).

    Per dataset: acquire (unless ``acquired``), pose, ``shards`` crops, crop_merge, splits,
    clips (PKU-MMD only), ``pose_shards`` pose_extract jobs (extraction only); per protocol:
    two unimodal trainings, one fusion, three evaluations. Rules outside this list
    (``all``, ``profile``, reports) run once per pipeline.
    """
    n, runs = len(datasets), sum(datasets.values())
    jobs = {
        "acquire": n - len(acquired),
        "pose": n,
        "crop": n * shards,
        "crop_merge": n,
        "splits": n,
        "clips": int("pku" in datasets),
        "train_unimodal": 2 * runs,
        "train_fusion": runs,
        "evaluate": 3 * runs,
    }
    if pose_shards is not None:
        jobs["pose_extract"] = n * pose_shards
    return jobs


def check_jobs(got: dict[str, int], want: dict[str, int]) -> tuple[bool, int]:
    """(every rule of ``want`` has its count, jobs of other rules: pipeline-wide ones)."""
    ok = all(got.get(rule, 0) == count for rule, count in want.items())
    others = sum(c for rule, c in got.items() if rule not in want)
    return ok, others


def bench_dag(shards: int, tmp: Path) -> bool:
    names = ntu120_names()
    protocols = {ds: len(PROTOCOLS[ds]) for ds in DATASETS}
    print(f"== 1. snakemake -n, real data: {', '.join(f'{d} ({n} protocols)' for d, n in protocols.items())}, "
          f"prepare.shards {shards}")  # fmt: skip
    cases: list[tuple[str, dict[str, Any], bool, int | None]] = [
        ("nothing acquired", real_params(shards), False, None),
        (f"ntu120 acquired ({len(names):,} video names)", real_params(shards), True, None),
    ]
    mmpose = real_params(shards, skeletons="mmpose", pose_shards=shards)
    if accepts(mmpose):
        cases.append((f"skeletons: mmpose, pose.shards {shards}", mmpose, False, shards))
    else:
        print("(params.yaml has no `skeletons: mmpose` here: the extraction DAG is not timed)")
    ok, most = True, 0
    for i, (label, params, acquired, pose_shards) in enumerate(cases):
        work = project_copy(tmp / f"dag-{i}", params)
        if acquired:
            t0 = time.perf_counter()
            fake_ntu120_raw(work, names)
            print(f"  ({len(names):,} empty video files written in {time.perf_counter() - t0:.1f} s)")
        seconds, cpu, counts = snakemake_dry_run(work)
        want = expected_jobs(protocols, shards, acquired=("ntu120",) if acquired else (), pose_shards=pose_shards)
        formula_ok, others = check_jobs(counts, want)
        total = sum(counts.values())
        most = max(most, total)
        verdict = seconds < DRY_RUN_TARGET_S and formula_ok and others <= 5
        ok &= verdict
        print(f"- {label}: {seconds:.2f} s wall ({cpu:.2f} s CPU), {total} jobs "
              f"(formula {sum(want.values())} + {others} pipeline-wide; "
              f"{'matches' if formula_ok else 'DOES NOT MATCH'}) -> {'OK' if verdict else 'FAIL'}")  # fmt: skip
        print("    " + ", ".join(f"{rule} {n}" for rule, n in sorted(counts.items(), key=lambda kv: -kv[1])))
    print(f"  target: < {DRY_RUN_TARGET_S:.0f} s; at most {most} jobs for {NTU120_SAMPLES:,} NTU-120 videos alone "
          f"(one job per video would be {NTU120_SAMPLES:,} crop jobs for NTU-120 alone)")  # fmt: skip
    return ok


# ----------------------------------------------------------------- the skeleton file
def make_skeleton_file(path: Path, n: int, *, dtype: str, protocol: int, seed: int = 0) -> dict[str, float]:
    """An mmaction2-style ``{"split", "annotations"}`` pickle of ``n`` NTU-120 samples."""
    rng = np.random.default_rng(seed)
    names = ntu120_names()
    picked = sorted(rng.choice(len(names), size=n, replace=False)) if n < len(names) else range(len(names))
    annotations = []
    frames = persons = 0
    for i in picked:
        name = names[i]
        action = ntu.parse_name(name).action
        m = 2 if action in TWO_PERSON_ACTIONS else 1
        t = int(np.clip(rng.gamma(4.0, 95 / 4.0), 30, 300))
        kp = np.empty((m, t, 17, 2), dtype=dtype)
        kp[..., 0] = rng.uniform(0, 1920, size=(m, t, 17))
        kp[..., 1] = rng.uniform(0, 1080, size=(m, t, 17))
        annotations.append(
            {
                "frame_dir": name,
                "label": action - 1,
                "img_shape": (1080, 1920),
                "original_shape": (1080, 1920),
                "total_frames": t,
                "keypoint": kp,
                "keypoint_score": rng.uniform(0, 1, size=(m, t, 17)).astype(dtype),
            }
        )
        frames += t
        persons += m
    split = {
        "xsub_train": [], "xsub_val": [], "xset_train": [], "xset_val": [],
    }  # fmt: skip
    for a in annotations:
        sample = ntu.parse_name(a["frame_dir"])
        split["xsub_train" if sample.performer in ntu.XSUB_TRAIN_SUBJECTS_120 else "xsub_val"].append(a["frame_dir"])
        split["xset_train" if sample.setup % 2 == 0 else "xset_val"].append(a["frame_dir"])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump({"split": split, "annotations": annotations}, fh, protocol=protocol)
    return {"mean_frames": frames / n, "mean_persons": persons / n}


def _rss_now() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _rss_peak() -> int:
    """This process's peak resident memory: ``VmHWM``, which starts afresh at exec.

    (``ru_maxrss`` does not: Linux carries the parent's peak over into an exec'd child.)
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class _CountProgress(logging.Handler):
    """Counts (and keeps) the progress lines of epamnet.io.skeleton."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if "%" in msg or ": done" in msg:
            self.lines.append(msg)


def child(step: str, work: Path, shards: int) -> None:
    """One step in a fresh interpreter (measured, or ``generate``); prints a JSON line of figures."""
    from epamnet.prepare import crop, splits
    from epamnet.prepare.pose import provided_skeletons

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("epamnet").setLevel(logging.INFO)
    logging.getLogger("epamnet.prepare.crop").setLevel(logging.ERROR)  # one "skipped" line per sample
    counter = _CountProgress()
    logging.getLogger("epamnet.io.skeleton").addHandler(counter)
    logging.getLogger("epamnet.io.skeleton").propagate = False

    raw = work / "raw"
    skeletons = work / "interim" / "skeletons.pkl"
    base = _rss_now()
    t0 = time.perf_counter()
    if step == "generate":
        n, dtype, protocol = (json.loads(os.environ["BENCH_SCALE_GENERATE"])[k] for k in ("n", "dtype", "protocol"))
        stats = make_skeleton_file(raw / "ntu120_2d.pkl", n, dtype=dtype, protocol=protocol)
        print(json.dumps(stats))
        return
    if step == "pose":
        source = raw / "ntu120_2d.pkl"
        provided_skeletons("ntu120", raw, skeletons)
    elif step == "crop":
        source = skeletons
        crop.crop_shard(
            skeletons, lambda name: work / "no-videos" / f"{name}.avi", 0, shards,
            work / "interim" / "crop" / "shard-000.pkl", work / "prepared" / "videos" / "shard-000",
            on_error="skip",
        )  # fmt: skip
    elif step == "splits":
        source = skeletons
        splits.make_splits("ntu120", skeletons, work / "prepared" / "splits", ["xsub", "xset"])
    else:
        raise SystemExit(f"unknown step {step}")
    seconds = time.perf_counter() - t0
    peak = _rss_peak()
    print(json.dumps({"step": step, "file": str(source), "size": source.stat().st_size, "seconds": seconds,
                      "base": base, "peak": peak, "progress": counter.lines}))  # fmt: skip


def run_child(step: str, work: Path, shards: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", step, "--work", str(work), "--shards", str(shards)],
        capture_output=True, text=True, env={**os.environ, **(env or {})},
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"{step} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_memory(scale: float, shards: int, dtype: str, protocol: int, tmp: Path, show_progress: bool) -> bool:
    n = max(1, round(NTU120_SAMPLES * scale))
    work = tmp / "skeletons"
    src = work / "raw" / "ntu120_2d.pkl"
    print(f"\n== 2. skeleton pickle of NTU-120 size x {scale:g}: {n:,} of {NTU120_SAMPLES:,} annotations, "
          f"{dtype}, pickle protocol {protocol}")  # fmt: skip
    t0 = time.perf_counter()
    spec = json.dumps({"n": n, "dtype": dtype, "protocol": protocol})
    stats = run_child("generate", work, shards, env={"BENCH_SCALE_GENERATE": spec})  # keeps this process small
    size = src.stat().st_size
    print(f"generated {src.name}: {size / 1e6:,.0f} MB in {time.perf_counter() - t0:.1f} s "
          f"(mean {stats['mean_frames']:.0f} frames, {stats['mean_persons']:.2f} persons per sample)")  # fmt: skip
    ok = True
    rows = []
    for step in ("pose", "crop", "splits"):
        r = run_child(step, work, shards)
        grown = (r["peak"] - r["base"]) / r["size"]
        rows.append((step, r, grown))
        ok &= grown < MEMORY_TARGET
    print(f"{'step':<8}{'reads':>22}{'MB':>8}{'s':>7}{'peak MB':>9}{'(peak-base)/size':>18}{'peak/size':>11}  progress lines")
    for step, r, grown in rows:
        print(f"{step:<8}{Path(r['file']).name:>22}{r['size'] / 1e6:>8.0f}{r['seconds']:>7.1f}{r['peak'] / 1e6:>9.0f}"
              f"{grown:>18.2f}{r['peak'] / r['size']:>11.2f}  {len(r['progress'])}")  # fmt: skip
        if show_progress:
            for line in r["progress"]:
                print(f"        | {line}")
    if scale < 1:
        print(f"EXTRAPOLATION to the full size (x {1 / scale:g}; measured above at x {scale:g}, not at full size):")
        for step, r, grown in rows:
            full_size = r["size"] / scale
            print(f"  {step:<7} ~{full_size / 1e9:.2f} GB file, ~{r['seconds'] / scale:.0f} s, "
                  f"peak ~{(r['base'] + grown * full_size) / 1e9:.2f} GB = ~{grown + r['base'] / full_size:.2f} x the file")  # fmt: skip
    print(f"target: peak - base < {MEMORY_TARGET:g} x the file read -> {'OK' if ok else 'FAIL'}")
    _, crop_r, crop_grown = rows[1]
    crop_peak = crop_r["base"] + crop_grown * crop_r["size"] / scale
    print(f"note: every crop shard reads the whole skeletons.pkl: {shards} shards at once on one machine need "
          f"~{shards} x {crop_peak / 1e9:.1f} GB; give each cluster job that much (mem_mb)")  # fmt: skip
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1, help="fraction of NTU-120's 114,480 annotations (0 < s <= 1)")
    parser.add_argument("--shards", type=int, default=64, help="prepare.shards (and pose.shards)")
    parser.add_argument("--dtype", default="float16", choices=("float16", "float32"), help="keypoint and score dtype")
    parser.add_argument("--protocol", type=int, default=2, choices=range(2, 6), help="pickle protocol of the source file")
    parser.add_argument("--skip-dag", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--show-progress", action="store_true", help="print the progress lines each step logged")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (printed)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.work, args.shards)
        return
    if not 0 < args.scale <= 1:
        parser.error("--scale must be in (0, 1]")

    tmp = Path(tempfile.mkdtemp(prefix="epamnet-bench-scale-"))
    ok = True
    try:
        if not args.skip_dag:
            ok &= bench_dag(args.shards, tmp)
        if not args.skip_memory:
            ok &= bench_memory(args.scale, args.shards, args.dtype, args.protocol, tmp, args.show_progress)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{'all targets met' if ok else 'SOME TARGETS MISSED'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
