"""End to end: `snakemake --cores 2` on a tiny synthetic configuration, then DVC.

Runs the real Snakefile in a temporary copy of the project, checks what every data
stage produced, then records the run with `dvc commit` and checks that changing one
parameter makes `dvc repro` (and Snakemake) re-run only the stages that depend on it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from epamnet.config import validate_params
from epamnet.dvcfile import render_dvc_yaml
from epamnet.io.skeleton import load_annotations
from epamnet.io.video import video_info

pytestmark = pytest.mark.pipeline

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"}

TINY = {
    "num_classes": 4,
    "height": 72,
    "width": 96,
    "frames": [16, 20],
    "ntu_subjects": [1, 3],
    "ntu_cameras": [1, 2],
    "ntu_setups": [1],
    "ntu_replications": [1],
    "pku_sequences": 2,
    "pku_subjects": [1, 2],
    "pku_val_subjects": [2],
    "pku_actions_per_video": 2,
    "toyota_subjects": [3, 19, 2],
    "toyota_cameras": [1, 5, 2],
}


def run(cmd: list, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the project with tiny synthetic sizes, after `snakemake --cores 2`."""
    root = tmp_path_factory.mktemp("project")
    for item in ("Snakefile", "workflow", "src", ".dvcignore"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / item, **({"ignore": shutil.ignore_patterns("__pycache__")} if src.is_dir() else {}))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["synthetic"].update(TINY)
    params["prepare"]["crop"]["size"] = 48
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "dvc.yaml").write_text(render_dvc_yaml(validate_params(params)))
    run([BIN / "snakemake", "--cores", "2"], root)
    return root


def test_every_dataset_is_prepared(project):
    params = validate_params(yaml.safe_load((project / "params.yaml").read_text()))
    for ds in params.datasets.run:
        prepared = project / "data" / "prepared" / ds
        anns = load_annotations(prepared / "annotations.pkl")
        assert anns, ds
        for ann in anns[:5]:
            info = video_info(prepared / ann["filename"])
            assert (info.height, info.width) == (48, 48)
            assert info.frames == ann["total_frames"] == ann["keypoint"].shape[1]
            kp = ann["keypoint"][ann["keypoint_score"] > 0]
            assert np.all((kp >= 0) & (kp <= 48)), ds
        for protocol in params.datasets.entry(ds).protocols:
            split = json.loads((prepared / "splits" / f"{protocol}.json").read_text())
            assert split["train"] and split["test"], (ds, protocol)
            assert split["num_classes"] == len(split["classes"])
            names = {a["frame_dir"] for a in anns}
            for part in ("train", "val", "test"):
                assert {n for n, _ in split[part]} <= names


def test_pku_clips_follow_label_rows(project):
    raw = project / "data" / "raw" / "pku"
    rows = sum(
        1 for f in (raw / "Train_Label_PKU_final").glob("*.txt") for line in f.read_text().splitlines() if line.strip()
    )
    clips = sorted((project / "data" / "interim" / "pku" / "clips" / "videos").glob("*.mp4"))
    assert len(clips) == rows
    assert all(len(c.stem.split("-")) == 4 for c in clips)  # <dddd>-<V>-Axx-Nyy


def test_snakemake_is_complete_after_the_run(project):
    result = run([BIN / "snakemake", "-n", "--cores", "1"], project)
    assert "Nothing to be done" in result.stdout + result.stderr


def test_dvc_reruns_only_what_a_parameter_change_touches(project):
    run(["git", "init", "-q"], project)
    run([BIN / "dvc", "init", "-q"], project)
    run([BIN / "dvc", "commit", "-f", "-q"], project)  # record the Snakemake run, re-running nothing
    assert "up to date" in run([BIN / "dvc", "status"], project).stdout.lower()

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["prepare"]["crop"]["padding"] = 0.3
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    status = json.loads(run([BIN / "dvc", "status", "--json"], project).stdout)
    changed = {name.split("-")[0] for name in status}
    assert changed == {"crop"}, status  # only crop reads prepare.crop directly
    repro = run([BIN / "dvc", "repro"], project).stdout
    ran = {line.split("'")[1] for line in repro.splitlines() if line.startswith("Running stage")}
    assert ran and {name.split("-")[0] for name in ran} <= {"crop", "crop_merge", "splits"}
    assert any(n.startswith("crop-") for n in ran)
    assert not any(n.split("-")[0] in {"acquire", "pose", "clips"} for n in ran)

    # Snakemake sees the same change through its params trigger.
    dry = run([BIN / "snakemake", "-n", "--cores", "1", "--quiet", "rules"], project).stdout
    rerun = {line.split()[0] for line in dry.splitlines()[2:] if line.strip() and line.split()[0] != "total"}
    assert rerun <= {"crop", "crop_merge", "splits", "all"} and "crop" in rerun
