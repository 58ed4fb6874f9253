"""Keep the two orchestrators' records in step, without re-running anything.

Snakemake and DVC each record what they ran in their own way (``.snakemake/`` with file
times, ``dvc.lock`` with hashes), so results produced by one look out of date to the
other. ``epamnet sync`` hands the results over:

- ``epamnet sync dvc``: after Snakemake (``make run`` does it for you): checks that
  Snakemake has nothing left to do, then records every stage in ``dvc.lock``
  (``dvc commit --force``), so ``dvc status`` is clean.
- ``epamnet sync snakemake``: after ``dvc repro``, ``dvc exp run``, ``dvc exp apply``
  or ``dvc pull``: checks that DVC has nothing left to do, then marks every job done in
  Snakemake's records (``snakemake --touch --forceall``), so ``snakemake -n`` is a no-op.

Each direction refuses, naming what is out of date, when the side it copies from is not
complete itself: copying a half-finished state would make stale results look current.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

from epamnet.errors import EpamnetError

logger = logging.getLogger(__name__)


def _tool(name: str) -> str:
    """``name`` from this Python's environment (the project's venv), else from PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        raise EpamnetError(f"sync: `{name}` is not installed; run `make venv` (or pip install the workflow extra)")
    return found


def _run(cmd: list[str], what: str) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise EpamnetError(f"sync: {what} failed (exit status {result.returncode}): {tail[0]}")
    return result


def snakemake_pending() -> list[str]:
    """Jobs Snakemake would run now, as ``rule: count`` lines (empty: up to date)."""
    result = _run([_tool("snakemake"), "--dry-run", "--cores", "1", "--quiet", "rules"], "snakemake --dry-run")
    text = result.stdout + result.stderr
    if "Nothing to be done" in text:
        return []
    lines = [ln.split() for ln in result.stdout.splitlines()]
    # The job table: a header 'job count', a rule line, then 'rule count' rows and 'total N'.
    rows = [f"{ln[0]}: {ln[1]}" for ln in lines if len(ln) == 2 and ln[1].isdigit() and ln[0] not in ("total", "all")]
    return rows or ["(jobs pending; run `snakemake -n` to see them)"]


def dvc_pending() -> list[str]:
    """Stages ``dvc status`` reports as changed (empty: up to date)."""
    result = _run([_tool("dvc"), "status", "--json"], "dvc status")
    status = json.loads(result.stdout or "{}")
    return sorted(status)


def to_dvc() -> None:
    """Record Snakemake's finished results in ``dvc.lock``."""
    pending = snakemake_pending()
    if pending:
        raise EpamnetError(
            f"sync dvc: Snakemake has jobs left to run ({', '.join(pending)}); run `snakemake --cores all` first"
        )
    _run([_tool("dvc"), "commit", "--force", "--quiet"], "dvc commit")
    # DVC may rewrite outputs from its cache; keep Snakemake's file times in order then.
    if snakemake_pending():
        _run([_tool("snakemake"), "--touch", "--cores", "1", "--quiet", "all"], "snakemake --touch")
    left = dvc_pending()
    if left:
        raise EpamnetError(f"sync dvc: dvc status still lists {', '.join(left)} after dvc commit; run `dvc status` to see why")
    logger.info("sync: dvc.lock records Snakemake's results; dvc status and snakemake -n are both clean")


def to_snakemake() -> None:
    """Mark DVC's finished results as done in Snakemake's records."""
    pending = dvc_pending()
    if pending:
        raise EpamnetError(f"sync snakemake: DVC has stages left to run ({', '.join(pending)}); run `dvc repro` first")
    _run([_tool("snakemake"), "--touch", "--forceall", "--cores", "1", "--quiet", "all"], "snakemake --touch")
    left = snakemake_pending()
    if left:
        raise EpamnetError(f"sync snakemake: Snakemake still wants to run {', '.join(left)}; run `snakemake -n -r` to see why")
    logger.info("sync: Snakemake's records match DVC's results; snakemake -n and dvc status are both clean")
