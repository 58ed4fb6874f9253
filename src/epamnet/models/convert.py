"""Strict state-dict loading, and the converter for the official released checkpoints.

The official checkpoints (spec section 5) are ``{'epoch', 'model_state_dict',
'optimizer_state_dict'}`` dicts whose keys carry DDP's ``module.`` prefix and the
mmaction-style names ``rgb_backbone.layer1.0.conv2.bn.weight``,
``attention_module.spatial.conv.weight``, ``rgb_cls_head.fc_cls.bias`` ... Our modules
use the same names, so the conversion is: read with ``weights_only=True``, strip the
prefixes, apply :data:`KEY_RENAMES` (none are needed for the released EPAM-Net), and
load **strictly**: any missing, unexpected or wrong-shape key is an EpamnetError that
lists them (the official loader used ``strict=False`` and silently dropped keys).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from epamnet.errors import file_error
from epamnet.io.atomic import atomic_write

logger = logging.getLogger(__name__)

#: Prefixes that wrappers add in front of our keys (DDP, torch.compile).
WRAPPER_PREFIXES = ("module.", "_orig_mod.")

#: Official key prefix -> our key prefix, applied after the wrapper prefixes are gone.
#: Empty because our modules copy the official names; kept as the one place to add a
#: mapping if another official variant names a submodule differently.
KEY_RENAMES: dict[str, str] = {}


def strip_prefixes(state: Mapping[str, Any], prefixes: Iterable[str] = WRAPPER_PREFIXES) -> dict[str, Any]:
    """Remove any of ``prefixes`` (repeatedly) from the front of every key."""
    prefixes = tuple(prefixes)
    out: dict[str, Any] = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for p in prefixes:
                if key.startswith(p):
                    key, changed = key[len(p) :], True
        out[key] = value
    return out


def official_to_ours(state: Mapping[str, Any]) -> dict[str, Any]:
    """Map official checkpoint keys (with or without ``module.``) onto our module names."""
    out: dict[str, Any] = {}
    for key, value in strip_prefixes(state).items():
        for old, new in KEY_RENAMES.items():
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        out[key] = value
    return out


def _summary(keys: list[str], limit: int = 3) -> str:
    shown = ", ".join(keys[:limit])
    return f"{len(keys)} ({shown}{', ...' if len(keys) > limit else ''})"


def check_state_dict(
    expected: Mapping[str, torch.Tensor], state: Mapping[str, Any], source: str | Path, fix: str
) -> None:
    """Raise one EpamnetError if ``state``'s keys or shapes differ from ``expected``'s."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
        for k in set(expected) & set(state)
        if not isinstance(state[k], torch.Tensor) or state[k].shape != expected[k].shape
    )
    problems = []
    if missing:
        problems.append(f"missing keys {_summary(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_summary(unexpected)}")
    if wrong:
        problems.append(f"wrong shapes {_summary(wrong)}")
    if problems:
        raise file_error(source, "weights do not match the model: " + "; ".join(problems), fix)


def load_state_strict(
    module: nn.Module,
    state: Mapping[str, Any],
    source: str | Path,
    only_prefixes: tuple[str, ...] | None = None,
    fix: str = "check num_classes and the model settings against the ones the weights were trained with",
) -> None:
    """Load ``state`` into ``module`` strictly, with one clear error listing every mismatch.

    ``only_prefixes``: load just the part of ``module`` whose keys start with one of them
    (e.g. ``('rgb_backbone.', 'rgb_cls_head.')``); ``state`` must then match that part
    exactly and the rest of ``module`` is left as it is.
    """
    state = strip_prefixes(state)
    expected = module.state_dict()
    if only_prefixes is not None:
        expected = {k: v for k, v in expected.items() if k.startswith(only_prefixes)}
    check_state_dict(expected, state, source, fix)
    module.load_state_dict(state, strict=only_prefixes is None)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with file errors turned into EpamnetError."""
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "checkpoint not found", "download it or fix the path")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise file_error(path, f"not a readable PyTorch checkpoint ({first[:200]})", "re-download the file") from exc
    if not isinstance(ckpt, dict):
        raise file_error(path, f"checkpoint holds a {type(ckpt).__name__}, not a dict", "pass a state-dict checkpoint")
    return ckpt


def checkpoint_state(ckpt: Mapping[str, Any], path: str | Path) -> dict[str, torch.Tensor]:
    """The model state inside a checkpoint: ``model_state_dict``, ``state_dict``, or the dict itself."""
    for key in ("model_state_dict", "state_dict"):
        if key in ckpt:
            state = ckpt[key]
            break
    else:
        state = ckpt
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise file_error(path, "no model state dict found (expected 'model_state_dict')", "pass a model checkpoint")
    return dict(state)


def load_official_checkpoint(model: nn.Module, path: str | Path) -> int | None:
    """Load an official EPAM-Net checkpoint into ``model`` (an :class:`EPAMNet`) strictly.

    Returns the checkpoint's ``epoch`` (None if absent). The optimizer state is ignored.
    """
    ckpt = read_checkpoint(path)
    state = official_to_ours(checkpoint_state(ckpt, path))
    load_state_strict(model, state, path)
    epoch = ckpt.get("epoch")
    logger.info("loaded official checkpoint %s (epoch %s, %d tensors)", path, epoch, len(state))
    return int(epoch) if isinstance(epoch, int) else None


def convert_official_checkpoint(src: str | Path, dst: str | Path, model: nn.Module) -> int | None:
    """Check ``src`` against ``model`` and write our form ``{'model_state_dict', 'epoch', 'source'}`` to ``dst``.

    ``model`` fixes the expected architecture (spec and num_classes); the file is
    written atomically and only after strict loading succeeded.
    """
    epoch = load_official_checkpoint(model, src)
    out = {"model_state_dict": model.state_dict(), "epoch": epoch, "source": str(src)}
    with atomic_write(dst) as fh:  # a file object: a full disk is an OSError, not torch's "unexpected pos"
        torch.save(out, fh)
    return epoch


__all__ = [
    "KEY_RENAMES",
    "check_state_dict",
    "checkpoint_state",
    "convert_official_checkpoint",
    "load_official_checkpoint",
    "load_state_strict",
    "official_to_ours",
    "read_checkpoint",
    "strip_prefixes",
]
