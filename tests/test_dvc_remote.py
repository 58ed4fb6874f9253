"""A DVC remote, and the fresh-clone sequence of docs/cluster.md.

In a git + DVC repository holding a copy of the project (tiny synthetic NTU-60), the
first two stages (acquire -> pose) are run and their outputs pushed to a local-folder
remote. A fresh `git clone` then gets them back with `dvc pull`; `dvc status` is
clean, and `snakemake --touch --forceall <targets>` resyncs Snakemake's records, so
that `snakemake -n` has nothing to do and a later parameter change still re-runs the
stage that reads it (a plain `--touch` would leave the upstream job without records,
and Snakemake would then miss that change). Snakemake's `.snakemake_timestamp` marker,
which `--touch` writes into directory outputs, must not change DVC's view of them: the
project's .dvcignore lists it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from epamnet.config import validate_params
from epamnet.dvcfile import render_dvc_yaml
from helpers import BIN, cli_env

ROOT = Path(__file__).resolve().parents[1]
ENV = cli_env(
    GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org",
    GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org",
    DVC_NO_ANALYTICS="1",
)
STAGES = ["acquire-ntu60", "pose-ntu60"]
TARGET = "data/interim/ntu60/skeletons.pkl"  # pose's output; acquire's data/raw/ntu60 upstream
MARKER = ".snakemake_timestamp"  # Snakemake's file in directory outputs; in .dvcignore
TINY = {
    "num_classes": 4, "height": 48, "width": 64, "frames": [12, 14],
    "ntu_subjects": [1, 3], "ntu_cameras": [1], "ntu_setups": [1], "ntu_replications": [1],
}

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def run(cmd: list, cwd: Path) -> str:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)
    out = result.stdout + result.stderr
    if result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}):\n{out[-3000:]}")
    return out


def digest(path: Path) -> dict[str, str]:
    """Relative path -> sha256 of every data file under ``path`` (or of ``path`` itself)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and p.name != MARKER)
    return {str(p.relative_to(path.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_push_clone_pull_and_resync_snakemake(tmp_path: Path) -> None:
    origin, remote, clone = tmp_path / "origin", tmp_path / "remote", tmp_path / "clone"
    origin.mkdir()
    for item in ("Snakefile", "workflow", "src", "envs", ".dvcignore", ".gitignore"):
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, origin / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, origin / item)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["synthetic"].update(TINY)
    params["datasets"]["run"] = ["ntu60"]
    params["datasets"]["ntu60"]["protocols"] = ["xsub"]
    (origin / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (origin / "dvc.yaml").write_text(render_dvc_yaml(validate_params(params)))

    # Origin: run the stages, push their outputs, commit dvc.lock and the remote's config.
    run(["git", "init", "-q"], origin)
    run([BIN / "dvc", "init", "-q"], origin)
    run([BIN / "dvc", "repro", *STAGES], origin)
    run([BIN / "dvc", "remote", "add", "-d", "store", remote], origin)
    run([BIN / "dvc", "push", *STAGES], origin)
    run(["git", "add", "-A"], origin)
    run(["git", "commit", "-q", "-m", "tiny run"], origin)
    want = {**digest(origin / "data/raw/ntu60"), **digest(origin / TARGET)}

    # Fresh clone: pull, check, resync Snakemake.
    run(["git", "clone", "-q", origin, clone], tmp_path)
    assert not (clone / "data").exists()
    run([BIN / "dvc", "pull", *STAGES], clone)
    assert {**digest(clone / "data/raw/ntu60"), **digest(clone / TARGET)} == want
    assert "up to date" in run([BIN / "dvc", "status", *STAGES], clone)

    run([BIN / "snakemake", "--touch", "--forceall", "--cores", "1", TARGET], clone)
    assert "Nothing to be done" in run([BIN / "snakemake", "-n", "--cores", "1", TARGET], clone)
    assert {**digest(clone / "data/raw/ntu60"), **digest(clone / TARGET)} == want  # touched, not rewritten
    # --touch added Snakemake's marker to the directory output; DVC ignores it (.dvcignore)
    assert (clone / "data/raw/ntu60" / MARKER).is_file()
    assert "up to date" in run([BIN / "dvc", "status", *STAGES], clone)

    # The records are real: a parameter change re-runs acquire in both tools.
    params["synthetic"]["seed"] += 1
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert "modified:           synthetic" in run([BIN / "dvc", "status", *STAGES], clone)
    dry = run([BIN / "snakemake", "-n", "--cores", "1", TARGET], clone)
    assert "rule acquire:" in dry and "Params have changed" in dry, dry[-3000:]
