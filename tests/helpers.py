"""Plain helpers shared by the test files (most of them run the CLI in subprocesses).

pytest puts this folder on ``sys.path`` (rootdir-relative, no package), so test files
``from helpers import ...``.
"""

from __future__ import annotations

import os
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
