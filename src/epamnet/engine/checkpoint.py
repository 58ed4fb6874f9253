"""Training checkpoints: atomic saves, safe loads, RNG states, pruning.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so it
loads with ``torch.load(weights_only=True)`` (no arbitrary unpickling):

``format``, ``epoch`` (epochs completed), ``model`` (state dict, no ``module.``
prefix), ``optimizer``, ``scheduler``, ``scaler`` (or None), ``sampler_epoch``,
``rng`` (one entry per rank: torch/CUDA/NumPy/Python states as tensors and ints),
``history`` (metric rows so far), ``best`` (selected epoch and value), ``config``
(the TrainConfig as a dict), ``world_size`` and ``run`` (the caller's ``run_info``: model
and data settings and input hashes, or None).

Files: ``<out>/checkpoints/epoch_{k:03d}.pt`` for each epoch k (the newest N kept,
plus the selected one) and ``<out>/checkpoints/last.pt``, a copy of the newest.
"""

from __future__ import annotations

import logging
import random
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from epamnet.errors import file_error
from epamnet.io.atomic import atomic_path, atomic_write
from epamnet.models.convert import load_weights_only

logger = logging.getLogger(__name__)

FORMAT = "epamnet-train-checkpoint/1"
_EPOCH_FILE = re.compile(r"^epoch_(\d{3,})\.pt$")


def epoch_path(ckpt_dir: Path, epoch: int) -> Path:
    return Path(ckpt_dir) / f"epoch_{epoch:03d}.pt"


def last_path(ckpt_dir: Path) -> Path:
    return Path(ckpt_dir) / "last.pt"


def save_checkpoint(state: dict[str, Any], ckpt_dir: str | Path) -> Path:
    """Write ``epoch_{k:03d}.pt`` and ``last.pt`` atomically; return the epoch file."""
    ckpt_dir = Path(ckpt_dir)
    target = epoch_path(ckpt_dir, int(state["epoch"]))
    # Through a Python file object: a full disk is then an OSError that atomic_write turns
    # into a one-line error (torch's own file writer reports it as "unexpected pos").
    with atomic_write(target) as fh:
        torch.save({"format": FORMAT, **state}, fh)
    with atomic_path(last_path(ckpt_dir)) as tmp:
        shutil.copyfile(target, tmp)
    return target


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint on the CPU with ``weights_only=True``; a damaged file is a one-line error."""
    path = Path(path)
    try:
        # A file that is not one (text, truncated, refused objects) says what it is instead.
        state = load_weights_only(path, "delete it to resume from the previous epoch's checkpoint")
    except FileNotFoundError:
        raise file_error(path, "checkpoint not found", "check the path") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise file_error(path, "not an epamnet training checkpoint", "delete it or point to the right folder")
    return state


def latest_checkpoint(ckpt_dir: str | Path) -> Path | None:
    """``last.pt`` if present, else the highest-numbered ``epoch_*.pt``, else None."""
    ckpt_dir = Path(ckpt_dir)
    if last_path(ckpt_dir).is_file():
        return last_path(ckpt_dir)
    epochs = sorted(epoch_checkpoints(ckpt_dir))
    return epochs[-1][1] if epochs else None


def epoch_checkpoints(ckpt_dir: str | Path) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of every ``epoch_*.pt`` in the folder."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    out = []
    for p in ckpt_dir.iterdir():
        m = _EPOCH_FILE.match(p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def prune_checkpoints(ckpt_dir: str | Path, keep_last: int, keep: Iterable[int] = ()) -> list[Path]:
    """Delete epoch checkpoints except the newest ``keep_last`` and the epochs in ``keep``."""
    files = epoch_checkpoints(ckpt_dir)
    protected = {e for e, _ in files[-keep_last:]} | set(keep)
    removed = []
    for epoch, path in files:
        if epoch not in protected:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


# --- RNG states as weights_only-loadable values --------------------------------------


def rng_state() -> dict[str, Any]:
    """This process's torch, CUDA, NumPy and Python RNG states as tensors and plain types."""
    np_state = np.random.get_state(legacy=False)
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": {"version": py_version, "internal": list(py_internal), "gauss": py_gauss},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    npst = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": npst["key"].numpy().astype(np.uint32), "pos": npst["pos"]},
            "has_gauss": npst["has_gauss"],
            "gauss": npst["gauss"],
        },
    )
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
