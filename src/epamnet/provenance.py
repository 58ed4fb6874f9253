"""Provenance of a result: the code, settings, inputs, software and machine behind it.

A stage that produces numbers (train, evaluate) writes ``provenance.json`` next to
them, so a table can say which commit, inputs and machine its numbers came from.
The same CPU model, thread count and library versions matter: PyTorch (MKL, oneDNN,
ATen) and NumPy choose SIMD code paths by CPU at run time, and those paths round
differently.

The file holds no timestamps, host names or wall times: two runs on one machine
from one commit with the same settings and inputs write byte-identical files, so
the file itself never makes a pipeline stage look changed.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from epamnet.errors import file_error
from epamnet.io.atomic import write_text
from epamnet.io.digest import sha256_file
from epamnet.io.jsonfile import read_json_mapping
from epamnet.runtime import OTHER_CPU_ENV, PINNED_CPU_ENV

PROVENANCE_FILE = "provenance.json"

#: Environment variables that pin the CPU code paths of MKL, oneDNN, ATen and NumPy.
CPU_PINNING_VARS = (*PINNED_CPU_ENV, *OTHER_CPU_ENV)

#: Names left out of a directory's hash: caches and Snakemake's markers, not content.
_SKIP_NAMES = frozenset({"__pycache__", ".snakemake_timestamp"})
_GIT_TIMEOUT_S = 10


# --------------------------------------------------------------------------------------
# Software and machine


def _version(module: str, attr: str = "__version__") -> str:
    try:
        return str(getattr(importlib.import_module(module), attr))
    except (ImportError, AttributeError):  # a missing library is recorded, never fatal
        return "unknown"


def software() -> dict[str, str]:
    """Versions of Python, epamnet and the numeric libraries, and the OS."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        epamnet = version("epamnet")
    except PackageNotFoundError:
        epamnet = "unknown"
    return {
        "python": platform.python_version(),
        "epamnet": epamnet,
        "torch": _version("torch"),
        "numpy": _version("numpy"),
        "opencv": _version("cv2"),
        "platform": platform.platform(),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _numpy_cpu() -> tuple[list[str], list[str]]:
    """(SIMD features NumPy enabled at run time, its compiled-in baseline), sorted / as built."""
    for name in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):  # numpy 2, numpy 1
        try:
            umath = importlib.import_module(name)
        except ImportError:
            continue
        features = getattr(umath, "__cpu_features__", None) or {}
        baseline = getattr(umath, "__cpu_baseline__", None) or []
        enabled = sorted(str(k) for k, on in dict(features).items() if on)
        return enabled, [str(b) for b in baseline]
    return [], []


def machine(device: str = "cpu") -> dict[str, Any]:
    """The CPU, the code paths torch and NumPy chose on it, threads, and the device used."""
    import torch

    enabled, baseline = _numpy_cpu()
    gpu = None
    if device.startswith("cuda") and torch.cuda.is_available():
        try:
            gpu = torch.cuda.get_device_name(torch.device(device))
        except (RuntimeError, AssertionError, ValueError):  # a bad index: the device string alone
            gpu = None
    try:
        capability = str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):  # torch too old to say
        capability = "unknown"
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "arch": platform.machine(),
        "torch_cpu_capability": capability,
        "numpy_cpu_dispatch": enabled,
        "numpy_cpu_baseline": baseline,
        "mkl": bool(torch.backends.mkl.is_available()),
        "onednn": bool(torch.backends.mkldnn.is_available()),
        "threads": torch.get_num_threads(),
        "device": device,
        "gpu": gpu,
        "cpu_pinning": {k: os.environ[k] for k in CPU_PINNING_VARS if k in os.environ},
    }


# --------------------------------------------------------------------------------------
# Code, settings and inputs


def _git(root: Path, *args: str) -> str | None:
    """stdout of a git command run in ``root``; None when git is missing or fails."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=_GIT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(root: Path = Path("."), outputs: Sequence[str] = ()) -> dict[str, Any]:
    """The commit checked out in ``root`` and whether tracked files differ from it.

    ``outputs``: paths (relative to ``root``) the pipeline itself writes, such as the
    git-tracked results and ``dvc.lock``; a run rewriting them does not make the code
    it ran dirty. ``commit`` is "unknown" and ``dirty`` None when git is absent or
    ``root`` is not in a repository; this never raises.
    """
    head = _git(root, "rev-parse", "HEAD")
    commit = head.strip() if head and head.strip() else "unknown"
    spec = [".", *(f":(exclude){p}" for p in outputs)]
    status = _git(root, "status", "--porcelain", "--untracked-files=no", "--", *spec) if commit != "unknown" else None
    return {"commit": commit, "dirty": None if status is None else bool(status.strip())}


def params_sha256(values: Mapping[str, Any]) -> str:
    """sha256 of the settings as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _skipped(name: str) -> bool:
    return name in _SKIP_NAMES or name.endswith(".pyc")


def input_sha256(path: Path) -> str:
    """sha256 of a file; of a folder, over its files' relative paths and hashes.

    A folder's hash changes when any file's bytes or name change, and ignores Python
    caches and Snakemake's ``.snakemake_timestamp`` markers.
    """
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    if not path.is_dir():
        raise file_error(path, "input not found", "run the stage that writes it first")
    entries: list[tuple[str, str]] = []
    for folder, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if not _skipped(d)]
        for name in files:
            full = Path(folder) / name
            if not _skipped(name) and full.is_file():
                entries.append((full.relative_to(path).as_posix(), sha256_file(full)))
    listing = json.dumps(sorted(entries), separators=(",", ":"))
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------
# The record


def stage_provenance(
    *,
    params_values: Mapping[str, Any],
    inputs: Mapping[str, Path],
    device: str = "cpu",
    root: Path = Path("."),
    outputs: Sequence[str] = (),
) -> dict[str, Any]:
    """Everything a stage's outputs depend on, short of the data itself (hashed instead).

    ``outputs``: what the pipeline writes into the git tree (see :func:`git_state`).
    """
    return {
        "git": git_state(root, outputs),
        "params_sha256": params_sha256(params_values),
        "params_keys": sorted(params_values),
        "inputs": {name: {"path": str(p), "sha256": input_sha256(Path(p))} for name, p in sorted(inputs.items())},
        "software": software(),
        "machine": machine(device),
    }


def write_provenance(out_dir: Path, prov: Mapping[str, Any]) -> Path:
    """Write ``out_dir/provenance.json`` atomically (stable key order); return its path."""
    path = Path(out_dir) / PROVENANCE_FILE
    write_text(path, json.dumps(prov, indent=2, sort_keys=True) + "\n")
    return path


def read_provenance(path: Path) -> dict[str, Any] | None:
    """The provenance record at ``path``; None when the file does not exist."""
    return read_json_mapping(path)


def machine_label(prov: Mapping[str, Any]) -> str:
    """One line naming the machine, libraries and commit of a record, for tables."""
    mach = prov.get("machine") or {}
    soft = prov.get("software") or {}
    git = prov.get("git") or {}
    threads = mach.get("threads")
    device = str(mach.get("device") or "unknown device")
    if mach.get("gpu"):
        device += f" {mach['gpu']}"
    where = [
        str(mach.get("arch") or "unknown arch"),
        f"torch CPU capability {mach.get('torch_cpu_capability') or 'unknown'}",
        f"{threads} thread{'' if threads == 1 else 's'}" if threads is not None else "unknown threads",
        device,
    ]
    libs = ", ".join(f"{label} {soft.get(key) or 'unknown'}" for label, key in
                     (("torch", "torch"), ("numpy", "numpy"), ("OpenCV", "opencv")))  # fmt: skip
    commit = str(git.get("commit") or "unknown")
    label = f"{mach.get('cpu_model') or 'unknown CPU'} ({', '.join(where)}); {libs}; commit {commit[:7] if commit != 'unknown' else commit}"
    if git.get("dirty"):
        label += " (dirty)"
    if mach.get("cpu_pinning"):
        label += ", CPU paths pinned"
    return label
