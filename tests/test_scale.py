"""Scale: NTU-120's 114,480 samples keep the DAG small and the splits fast (no videos needed).

The real-data DAG is planned by ``snakemake -n`` in a copy of the project whose
NTU-120 raw folder holds 114,480 empty video files: the job count must follow the
shards and protocols (benchmarks/bench_scale.py's formula), not the videos. The ``splits``
stage must assign all 114,480 names of an annotation file of that many entries in
seconds, reporting progress while it reads the file.
Figures at full size (wall times, peak memory): ``python benchmarks/bench_scale.py``.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from epamnet.datasets import PROTOCOLS, ntu
from epamnet.io import skeleton
from epamnet.io.skeleton import save_annotations
from epamnet.prepare.splits import make_splits

ROOT = Path(__file__).resolve().parents[1]
SHARDS = 64


def _bench():
    spec = importlib.util.spec_from_file_location("bench_scale", ROOT / "benchmarks" / "bench_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _bench()


@pytest.fixture(scope="module")
def names() -> list[str]:
    names = bench.ntu120_names()
    assert len(names) == len(set(names)) == 114_480
    return names


@pytest.mark.skipif(shutil.which("snakemake") is None and not (Path(sys.executable).parent / "snakemake").exists(),
                    reason="snakemake is not installed")  # fmt: skip
def test_real_data_dry_run_is_sharded_not_per_video(tmp_path, names):
    work = bench.project_copy(tmp_path / "project", bench.real_params(SHARDS))
    bench.fake_ntu120_raw(work, names)  # NTU-120 acquired: 114,480 videos (empty files)
    _wall, cpu_seconds, counts = bench.snakemake_dry_run(work)

    protocols = {ds: len(PROTOCOLS[ds]) for ds in bench.DATASETS}
    want = bench.expected_jobs(protocols, SHARDS, acquired=("ntu120",))
    matches, pipeline_wide = bench.check_jobs(counts, want)
    assert matches, f"jobs per rule {counts} != formula {want}"
    assert pipeline_wide <= 5, counts  # all, profile, report: once per pipeline
    assert sum(counts.values()) == sum(want.values()) + pipeline_wide < 1000  # vs 114,480 videos
    assert cpu_seconds < bench.DRY_RUN_TARGET_S  # CPU, not wall: the suite may share the machine


def test_splits_stage_assigns_all_114480_ntu120_names(tmp_path, names, monkeypatch, caplog):
    """The whole stage (read, check, assign, write) on a file of NTU-120's entry count."""
    kp, score = np.zeros((1, 1, 17, 2), np.float16), np.ones((1, 1, 17), np.float16)
    entries = [
        {"frame_dir": n, "label": int(n[-3:]) - 1, "img_shape": (224, 224), "original_shape": (1080, 1920),
         "total_frames": 1, "keypoint": kp, "keypoint_score": score}
        for n in names
    ]  # fmt: skip
    path = tmp_path / "annotations.pkl"
    monkeypatch.setattr(skeleton, "PROGRESS_MIN_BYTES", 0)  # report progress whatever the size
    t0 = time.process_time()
    with caplog.at_level(logging.INFO, logger="epamnet"):
        save_annotations(path, entries, validate=False)
        splits = make_splits("ntu120", path, tmp_path / "splits", ["xsub", "xset"])
    assert time.process_time() - t0 < 15.0  # CPU seconds: about 3 on an idle machine

    assert list(splits) == ["xsub", "xset"]
    for protocol, split in splits.items():
        parts = {p: len(v) for p, v in split.parts.items()}
        assert split.skipped == 0 and parts["val"] == 0, protocol
        assert parts["train"] + parts["test"] == len(names) and parts["train"] and parts["test"], protocol
        assert {label for _, label in split.parts["train"]} == set(range(120)), protocol
        train = (tmp_path / "splits" / f"{protocol}_train.txt").read_text().splitlines()
        assert len(train) == parts["train"]
    # the official rules, spot-checked on the generated names
    sample = ntu.parse_name(names[0])
    expected = "train" if sample.performer in ntu.XSUB_TRAIN_SUBJECTS_120 else "test"
    assert dict(splits["xsub"].parts[expected])[names[0]] == sample.action - 1
    progress = [r.getMessage() for r in caplog.records if r.name == "epamnet.io.skeleton"]
    reads = [m for m in progress if m.startswith(f"reading {path}: ")]
    writes = [m for m in progress if m.startswith(f"writing {path}: ")]
    assert len(reads) >= 5 and reads[-1].startswith(f"reading {path}: 100%"), progress  # every 10 %
    assert writes and writes[-1].split(": ", 1)[1].startswith(("100%", "done")), progress


def test_writing_annotations_copies_no_arrays(tmp_path):
    """The pose stage writes NTU-120's skeletons: pickling must not copy every array first
    (protocol 4 pickles a tobytes() copy of each and keeps them all until the end)."""
    rng = np.random.default_rng(0)
    entries = [
        {"frame_dir": ntu.format_name(1, 1, 1, 1, a), "label": a - 1, "img_shape": (1080, 1920),
         "original_shape": (1080, 1920), "total_frames": 300,
         "keypoint": rng.random((2, 300, 17, 2), dtype=np.float32), "keypoint_score": rng.random((2, 300, 17), np.float32)}
        for a in range(1, 121)
    ]  # fmt: skip
    data = sum(e["keypoint"].nbytes + e["keypoint_score"].nbytes for e in entries)  # ~15 MB
    tracemalloc.start()
    try:
        save_annotations(tmp_path / "skeletons.pkl", entries)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.25 * data, f"writing {data / 1e6:.0f} MB of arrays allocated {peak / 1e6:.0f} MB"
