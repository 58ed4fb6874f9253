"""Plain helpers shared by the test files (most of them run the CLI in subprocesses).

pytest puts this folder on ``sys.path`` (rootdir-relative, no package), so test files
``from helpers import ...``.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

#: The virtual environment's bin folder: ``epamnet``, ``snakemake``, ``dvc``.
BIN = Path(sys.executable).parent


def cli_env(**extra: str) -> dict[str, str]:
    """This process's environment with ``BIN`` first on ``PATH``, plus ``extra``."""
    return {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}", **extra}


#: A tiny synthetic NTU-60 (16 videos of 72x96, 16-20 frames): subjects 1 (xsub train)
#: and 3 (test), cameras 1 (xview test) and 2 (train), 4 classes.
TINY_NTU = {
    "num_classes": 4,
    "height": 72,
    "width": 96,
    "frames": [16, 20],
    "ntu_subjects": [1, 3],
    "ntu_cameras": [1, 2],
    "ntu_setups": [1],
    "ntu_replications": [1],
}


def copy_tiny_ntu_project(root: Path, *, shards: int = 1) -> dict:
    """The workflow (Snakefile, workflow/, src/, envs/) copied to ``root`` with a params.yaml for the
    tiny NTU-60, xsub only: 48-pixel crops in ``shards`` shards, 2 epochs of batch 4. Returns the
    params, written as params.yaml; a caller that changes them writes them again."""
    import yaml

    repo = Path(__file__).resolve().parents[1]
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(repo / "Snakefile", root / "Snakefile")
    for item in ("workflow", "src", "envs"):
        shutil.copytree(repo / item, root / item, ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["datasets"]["run"] = ["ntu60"]
    params["datasets"]["ntu60"]["protocols"] = ["xsub"]
    params["synthetic"].update(TINY_NTU)
    params["prepare"]["crop"]["size"] = 48
    params["prepare"]["shards"] = shards
    params["train"]["common"].update({"epochs": 2, "batch_size": 4})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def read_toyota_list(path: Path) -> list[tuple[str, int]]:
    """Entries ``(name without .mp4, label)`` of an official Toyota Smarthome list file
    (``<name>.mp4 <label>`` per line): the oracle the split tests compare against."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.split():
            name, label = line.split()
            assert name.endswith(".mp4") and label.isdigit(), f"{path}: bad line {line!r}"
            out.append((name[:-4], int(label)))
    return out


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """``epamnet <argv>`` in-process; return (exit status, stderr). Restores the logging setup."""
    from epamnet import cli

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        rc = cli.main(argv)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return rc, capsys.readouterr().err


def one_error_line(err: str) -> str:
    """The CLI's error: exactly one ``error:`` line, the last one, and no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and err.strip().splitlines()[-1] == lines[0], err
    return lines[0]
