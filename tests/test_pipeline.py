"""End to end: `snakemake --cores 2` on a tiny synthetic configuration, then DVC.

Runs the real Snakefile in a temporary copy of the project (every stage: data,
one-epoch training of the three streams, evaluation, profile, report), checks what
the stages produced, then records the run with `dvc commit` and checks that changing
one parameter makes `dvc repro` (and Snakemake) re-run only the stages that depend on it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from epamnet.config import validate_params
from epamnet.dvcfile import render_dvc_yaml
from epamnet.io.skeleton import load_annotations
from epamnet.io.video import video_info
from helpers import BIN, TINY_NTU, cli_env

pytestmark = pytest.mark.pipeline

ROOT = Path(__file__).resolve().parents[1]
ENV = cli_env(
    **{f"GIT_{who}_{what}": value for who in ("AUTHOR", "COMMITTER")
       for what, value in (("NAME", "epamnet tests"), ("EMAIL", "tests@epamnet.invalid"))},
)

TINY = {
    **TINY_NTU,
    "pku_sequences": 2,
    "pku_subjects": [1, 2],
    "pku_val_subjects": [2],
    "pku_actions_per_video": 2,
    "toyota_subjects": [3, 19, 2],
    "toyota_cameras": [1, 5, 2],
}


def RUNS_OF(params: dict) -> list[tuple[str, str]]:
    """(dataset, protocol) pairs of a params.yaml mapping."""
    checked = validate_params(params)
    return [(d, p) for d in checked.datasets.run for p in checked.datasets.entry(d).protocols]


def run(cmd: list, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the project with tiny synthetic sizes, after `snakemake --cores 2`."""
    root = tmp_path_factory.mktemp("project")
    for item in ("Snakefile", "workflow", "src", "envs", ".dvcignore", ".gitignore"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / item, **({"ignore": shutil.ignore_patterns("__pycache__")} if src.is_dir() else {}))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["synthetic"].update(TINY)
    params["prepare"]["crop"]["size"] = 48
    params["train"]["common"].update({"epochs": 1, "batch_size": 4})
    for stream in ("pose", "rgb", "fusion"):
        params["train"][stream] = {**(params["train"].get(stream) or {}), "epochs": 1}
    params["profile"]["iters"] = 0
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


def test_every_run_is_trained_evaluated_and_reported(project):
    params = validate_params(yaml.safe_load((project / "params.yaml").read_text()))
    for ds in params.datasets.run:
        for protocol in params.datasets.entry(ds).protocols:
            for stream in ("pose", "rgb", "fusion"):
                trained = json.loads((project / "models" / ds / protocol / stream / "metrics.json").read_text())
                assert trained["epochs_done"] == trained["epochs"] == 1, (ds, protocol, stream)
                evaluated = json.loads((project / "results/metrics" / ds / protocol / stream / "metrics.json").read_text())
                assert 0.0 <= evaluated["top1"] <= 1.0 and evaluated["num_samples"] > 0, (ds, protocol, stream)
    table = (project / "results/tables/results.md").read_text()
    assert "synthetic" in table and "not run" in table  # NTU-120 is not in the tiny run
    figures = sorted(p.name for p in (project / "results/figures").glob("*.png"))
    assert "accuracy_vs_gflops.png" in figures and "attention_ntu60_xsub.png" in figures


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
    # Snakemake sees the same change through its params trigger (and would redo everything below crop).
    dry = run([BIN / "snakemake", "-n", "--cores", "1", "--quiet", "rules"], project).stdout
    rerun = {line.split()[0] for line in dry.splitlines()[2:] if line.strip() and line.split()[0] != "total"}
    assert "crop" in rerun and not rerun & {"acquire", "pose", "clips", "profile"}
    params["prepare"]["crop"]["padding"] = 0.25  # back: everything is up to date again
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert "up to date" in run([BIN / "dvc", "status"], project).stdout.lower()

    # A fusion setting: only fusion training, its evaluation and the report re-run.
    params["train"]["fusion"]["base_lr"] = 0.005
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    repro = run([BIN / "dvc", "repro"], project).stdout
    ran = {line.split("'")[1] for line in repro.splitlines() if line.startswith("Running stage")}
    expected = {f"{rule}-{ds}-{p}-fusion" for ds, p in RUNS_OF(params) for rule in ("train_fusion", "evaluate")}
    assert ran == expected | {"report-all"}, ran

    # An experiment with another fusion schedule: `dvc exp run -S` re-runs the same stages.
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "tiny pipeline run"], project)
    out = run([BIN / "dvc", "exp", "run", "-S", "train.fusion.epochs=2"], project).stdout
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    assert ran == expected | {"report-all"}, ran
    fused = json.loads((project / "models/ntu60/xsub/fusion/metrics.json").read_text())
    assert fused["epochs"] == fused["epochs_done"] == 2
    shown = json.loads(run([BIN / "dvc", "exp", "show", "--json"], project).stdout)
    assert "train.fusion.epochs" in json.dumps(shown) or '"epochs": 2' in json.dumps(shown)
