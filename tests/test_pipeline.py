"""End to end: `snakemake --cores 2` on a tiny synthetic configuration, then DVC.

Runs the real Snakefile in a temporary copy of the project (every stage: data,
one-epoch training of the three streams, evaluation, profile, report) and checks what
the stages produced. The same DAG run a second time by Snakemake and once by
`dvc repro`, each in a fresh copy, must give byte-identical evaluation metrics. Then the
two tools are walked through a cycle: the Snakemake run recorded for DVC
(`epamnet sync dvc`), caches and code edits (only the stages whose code changed are
out of date), a parameter change that `dvc repro` re-runs for its dependents only,
and `epamnet sync snakemake`, after which Snakemake has nothing to do.
"""

from __future__ import annotations

import json
import os
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
    result = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def _copy_project(root: Path) -> None:
    """The project's files (no data, no caches), tiny synthetic sizes, its dvc.yaml."""
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


def _eval_metrics(root: Path) -> dict[str, bytes]:
    """Every evaluation's metrics.json, by run folder."""
    return {str(p.parent.relative_to(root)): p.read_bytes() for p in sorted((root / "results/metrics").rglob("metrics.json"))}


def _git_dvc_init(root: Path) -> None:
    run(["git", "init", "-q"], root)
    run([BIN / "dvc", "init", "-q"], root)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the project with tiny synthetic sizes, after `snakemake --cores 2`."""
    root = tmp_path_factory.mktemp("project")
    _copy_project(root)
    run([BIN / "snakemake", "--cores", "2"], root)
    return root


@pytest.fixture(scope="module")
def first_metrics(project) -> dict[str, bytes]:
    return _eval_metrics(project)


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


def test_another_snakemake_run_and_dvc_repro_give_the_same_bytes(project, first_metrics, tmp_path):
    """Two Snakemake runs and a `dvc repro` of the same DAG: byte-identical evaluation metrics."""
    assert len(first_metrics) == 3 * len(RUNS_OF(yaml.safe_load((project / "params.yaml").read_text())))
    again, by_dvc = tmp_path / "again", tmp_path / "dvc"
    for root in (again, by_dvc):
        root.mkdir()
        _copy_project(root)
    run([BIN / "snakemake", "--cores", "2"], again)
    _git_dvc_init(by_dvc)
    run([BIN / "dvc", "repro", "--quiet"], by_dvc)
    for root in (again, by_dvc):
        got = _eval_metrics(root)
        assert got.keys() == first_metrics.keys()
        assert [k for k in got if got[k] != first_metrics[k]] == [], root.name


def _dvc_changed(project) -> set[str]:
    return set(json.loads(run([BIN / "dvc", "status", "--json"], project).stdout))


def _snakemake_rules(project) -> set[str]:
    """Rules `snakemake -n` would run (empty: nothing to do)."""
    out = run([BIN / "snakemake", "-n", "--cores", "1", "--quiet", "rules"], project)
    if "Nothing to be done" in out.stdout + out.stderr:
        return set()
    rows = [line.split() for line in out.stdout.splitlines()]
    return {r[0] for r in rows if len(r) == 2 and r[1].isdigit() and r[0] not in ("total", "all")}


def test_sync_records_the_snakemake_run_for_dvc(project, first_metrics):
    _git_dvc_init(project)
    assert _dvc_changed(project)  # DVC has no record of the Snakemake run yet
    run([BIN / "epamnet", "sync", "dvc"], project)  # as `make run` does; no prompt (stdin is closed)
    assert _dvc_changed(project) == set()
    assert _snakemake_rules(project) == set()
    assert _eval_metrics(project) == first_metrics  # nothing was re-run


def test_caches_are_never_dependencies(project):
    """Compiled caches in the source tree (imports, tests, a fresh clone) leave both tools clean."""
    run([BIN / "python", "-m", "compileall", "-q", "src"], project)  # what importing every module leaves
    run([BIN / "python", "-c", "import epamnet.cli"], project)
    assert list((project / "src/epamnet/prepare").glob("__pycache__/*.pyc"))
    assert _dvc_changed(project) == set()
    assert _snakemake_rules(project) == set()


DOWNSTREAM_OF_CROP = {"crop", "crop_merge", "splits", "train_unimodal", "train_fusion", "evaluate", "report"}


@pytest.mark.parametrize(
    "module, dvc_rules, snakemake_rules",
    [
        ("prepare/global_box.py", {"crop", "crop_merge"}, DOWNSTREAM_OF_CROP),
        ("report/figures.py", {"report"}, {"report"}),
    ],
)
def test_editing_code_reruns_exactly_its_stages(project, module, dvc_rules, snakemake_rules):
    path = project / "src/epamnet" / module
    text, stat = path.read_text(), path.stat()
    path.write_text(text + "\n# an edit\n")
    try:
        # DVC lists the stages whose own dependencies changed; Snakemake also what depends on them.
        assert {name.split("-")[0] for name in _dvc_changed(project)} == dvc_rules
        assert _snakemake_rules(project) == snakemake_rules
    finally:
        path.write_text(text)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert _dvc_changed(project) == set() and _snakemake_rules(project) == set()


def test_dvc_reruns_only_what_a_parameter_change_touches_then_snakemake_syncs(project):
    assert _dvc_changed(project) == set()
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["prepare"]["crop"]["padding"] = 0.3
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    assert {name.split("-")[0] for name in _dvc_changed(project)} == {"crop"}  # only crop reads prepare.crop directly
    # Snakemake sees the same change through its params trigger (and would redo everything below crop).
    rerun = _snakemake_rules(project)
    assert "crop" in rerun and not rerun & {"acquire", "pose", "clips", "profile"}
    params["prepare"]["crop"]["padding"] = 0.25  # back: everything is up to date again
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert _dvc_changed(project) == set()

    # A fusion setting: only fusion training, its evaluation and the report re-run.
    params["train"]["fusion"]["base_lr"] = 0.005
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    repro = run([BIN / "dvc", "repro"], project).stdout
    ran = {line.split("'")[1] for line in repro.splitlines() if line.startswith("Running stage")}
    expected = {f"{rule}-{ds}-{p}-fusion" for ds, p in RUNS_OF(params) for rule in ("train_fusion", "evaluate")}
    assert ran == expected | {"report-all"}, ran
    assert _snakemake_rules(project) == {"train_fusion", "evaluate", "report"}  # Snakemake has no record of it
    run([BIN / "epamnet", "sync", "snakemake"], project)
    assert _snakemake_rules(project) == set() and _dvc_changed(project) == set()

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
    run([BIN / "epamnet", "sync", "snakemake"], project)
    assert _snakemake_rules(project) == set() and _dvc_changed(project) == set()
