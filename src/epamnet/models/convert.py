"""Strict state-dict loading, and the converter for the official released checkpoints.

The official checkpoints come in two formats:

- the official trainer's (``ddp/trainer.py``; the EPAM-Net fusion weights):
  ``{'epoch', 'model_state_dict', 'optimizer_state_dict'}``, keys with DDP's ``module.``
  prefix and the mmaction-style names ``rgb_backbone.layer1.0.conv2.bn.weight``,
  ``attention_module.spatial.conv.weight``, ``rgb_cls_head.fc_cls.bias`` ...;
- mmcv's (the unimodal X-ShiftNet streams, trained with mmaction2):
  ``{'meta': {..., 'epoch': N}, 'state_dict', 'optimizer'}``, keys of a single-stream
  recognizer: ``backbone.*`` and ``cls_head.*``.

Our modules use the same names (a stream's parts are ``<stream>_backbone`` and
``<stream>_cls_head``), so the conversion is: read with ``weights_only=True``, strip the
wrapper prefixes, name a unimodal recognizer's parts after its stream, apply
:data:`KEY_RENAMES` (none are needed for the released weights), and load **strictly**:
any missing, unexpected or wrong-shape key is an EpamnetError that lists them (the
official loader used ``strict=False`` and silently dropped keys). The epoch is read from
the top level (official trainer) or from ``meta`` (mmcv).
"""

from __future__ import annotations

import logging
import pickle
import re
import zipfile
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


#: The parts of an official single-stream recognizer (mmaction2's Recognizer3D, the official
#: PoseActionRecognition / RGBActionRecognition): named ``<stream>_<part>`` in our models.
UNIMODAL_PARTS = ("backbone.", "cls_head.")


def official_to_ours(state: Mapping[str, Any], stream: str = "fusion") -> dict[str, Any]:
    """Map official checkpoint keys (with or without ``module.``) onto our module names.

    ``stream`` ``'pose'`` or ``'rgb'``: the checkpoint is a single-stream recognizer's, whose
    ``backbone.*`` and ``cls_head.*`` become ``<stream>_backbone.*`` and ``<stream>_cls_head.*``
    (keys already named after the stream are kept).
    """
    out: dict[str, Any] = {}
    for key, value in strip_prefixes(state).items():
        if stream in ("pose", "rgb") and key.startswith(UNIMODAL_PARTS):
            key = f"{stream}_{key}"
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


#: What a file saved by ``torch.save`` starts with: a zip archive (torch >= 1.6) or a pickle
#: (the legacy format, protocol 2).
ZIP_MAGIC = b"PK\x03\x04"
PICKLE_MAGIC = b"\x80"
NOT_READABLE = "not a readable PyTorch checkpoint"


def _refusal(message: str) -> str:
    """The reason inside torch's weights-only refusal (it wraps it in paragraphs of advice); "" if none."""
    found = re.search(r"WeightsUnpickler error: (.+?)(?:\. |\.?$)", message, flags=re.MULTILINE)
    return found.group(1).strip() if found else ""


def unreadable_checkpoint(path: str | Path, exc: BaseException) -> str:
    """Why ``torch.load(path, weights_only=True)`` raised ``exc``, told from the file's first bytes.

    torch's own messages say little for a file that is not a checkpoint (a text file fails
    with "pop from empty list" or a KeyError from inside its unpickler); this names what
    the file is instead: empty, text, another format, a truncated or damaged zip archive or
    pickle, or a checkpoint holding objects that the weights-only load refuses.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(64)
    except OSError as err:
        return f"{NOT_READABLE}: cannot be read ({err.strerror or type(err).__name__})"
    refused = _refusal(str(exc)) if isinstance(exc, pickle.UnpicklingError) else ""
    if not head:
        why = "the file is empty (0 bytes)"
    elif refused and head.startswith((ZIP_MAGIC, PICKLE_MAGIC)):
        why = (
            "it holds objects other than tensors and plain values, which the safe (weights-only) load "
            f"refuses ({refused})"
        )
    elif head.startswith(ZIP_MAGIC):
        why = _zip_problem(path, exc)
    elif head.startswith(PICKLE_MAGIC):
        if isinstance(exc, EOFError) or any(word in str(exc) for word in ("truncated", "unexpected EOF")):
            why = "truncated (a legacy pickle checkpoint that ends early)"
        else:
            why = "a pickle that torch.save did not write (or a damaged legacy checkpoint)"
    elif any(byte < 0x20 and byte not in b"\t\n\r" for byte in head):  # control bytes: binary
        why = "the file is neither a zip archive nor a legacy pickle, the two formats torch.save writes"
    else:
        first = (head.decode("utf-8", errors="replace").strip().splitlines() or [""])[0][:40]
        why = f"a text file, not a zip archive or legacy pickle as torch.save writes (it starts {first!r})"
    return f"{NOT_READABLE}: {why}"


def _zip_problem(path: Path, exc: BaseException) -> str:
    if not zipfile.is_zipfile(path):
        return "truncated or damaged (the end of its zip archive, the directory, is missing)"
    with zipfile.ZipFile(path) as archive:
        if not any(name.endswith("data.pkl") for name in archive.namelist()):
            return "a zip archive without data.pkl, not one torch.save wrote"
    detail = (str(exc).strip().splitlines() or [""])[0][:120]
    return f"a damaged zip archive ({type(exc).__name__}{': ' if detail else ''}{detail})"


def load_weights_only(path: str | Path, fix: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; a file it cannot read raises the
    one-line ``<path>: <what the file is>; <fix>`` (:func:`unreadable_checkpoint`).

    A missing file raises ``FileNotFoundError``, for the caller to say where it comes from.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise file_error(path, unreadable_checkpoint(path, exc), fix) from None


#: What to do about an unreadable checkpoint when the caller knows nothing better.
CHECKPOINT_FIX = (
    "pass a file that torch.save wrote (a model.pt of `epamnet train`, or a released EPAM-Net checkpoint); "
    "fetch it again if it was cut short"
)


def read_checkpoint(path: str | Path, fix: str = CHECKPOINT_FIX) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with file errors turned into EpamnetError.

    ``fix``: what to do about a file that is not a readable checkpoint (where it comes from).
    """
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "checkpoint not found", "download it or fix the path")
    ckpt = load_weights_only(path, fix)
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


def checkpoint_epoch(ckpt: Mapping[str, Any]) -> int | None:
    """The epoch a checkpoint was saved at: top-level ``epoch`` (official trainer, ours) or
    ``meta.epoch`` (mmcv); None if neither is an integer."""
    epoch = ckpt.get("epoch")
    meta = ckpt.get("meta")
    if epoch is None and isinstance(meta, Mapping):
        epoch = meta.get("epoch")
    return int(epoch) if isinstance(epoch, int) and not isinstance(epoch, bool) else None


def model_stream(model: nn.Module) -> str:
    """``'fusion'`` for EPAM-Net, else the one stream (``'pose'``, ``'rgb'``) ``model`` classifies."""
    names = {name for name, _ in model.named_children()}
    if "attention_module" in names or {"pose_backbone", "rgb_backbone"} <= names:
        return "fusion"
    return "pose" if "pose_backbone" in names else "rgb"


def load_official_checkpoint(model: nn.Module, path: str | Path, fix: str | None = None) -> int | None:
    """Load an official checkpoint into ``model`` strictly: EPAM-Net's (an :class:`EPAMNet`) or
    one stream's (a pose or RGB classifier, from a ``backbone.*``/``cls_head.*`` checkpoint).

    Returns the checkpoint's epoch (:func:`checkpoint_epoch`). The optimizer state is ignored.
    ``fix``: what to do about weights that do not match ``model``.
    """
    ckpt = read_checkpoint(path)
    stream = model_stream(model)
    raw = checkpoint_state(ckpt, path)
    state = official_to_ours(raw, stream)
    if fix is None:
        fix = "check num_classes and the model settings against the ones the weights were trained with"
        if stream == "fusion" and any(k.startswith(UNIMODAL_PARTS) for k in strip_prefixes(raw)):
            fix = "it holds one stream's weights (backbone.*, cls_head.*): convert it as the pose or rgb stream"
    load_state_strict(model, state, path, fix=fix)
    epoch = checkpoint_epoch(ckpt)
    logger.info("loaded official %s checkpoint %s (epoch %s, %d tensors)", stream, path, epoch, len(state))
    return epoch


#: Where the released EPAM-Net checkpoints are published: the authors' repository.
RELEASE_PAGE = "https://github.com/ahmed-nady/Multimodal-Action-Recognition"


def require_released(path: str | Path, setting: str, downloads: str | Path) -> Path:
    """``path`` if it is a file; else the one-line error saying where released checkpoints come from.

    ``setting``: the params.yaml key that named the file (``train.pose.init``, ...).
    """
    path = Path(path)
    if path.is_file():
        return path
    raise file_error(
        path,
        f"not found ({setting})",
        f"download the released checkpoint from the EPAM-Net authors ({RELEASE_PAGE}) into {Path(downloads)}/ "
        f"(a bare file name is looked for there), or set {setting} to the file's path",
    )


def convert_official_checkpoint(src: str | Path, dst: str | Path, model: nn.Module) -> int | None:
    """Check ``src`` against ``model`` and write our form ``{'model_state_dict', 'epoch', 'source',
    'stream'}`` to ``dst``.

    ``model`` fixes the expected architecture (EPAM-Net or one stream, spec and
    num_classes); the file is written atomically and only after strict loading succeeded.
    """
    epoch = load_official_checkpoint(model, src)
    out = {"model_state_dict": model.state_dict(), "epoch": epoch, "source": str(src), "stream": model_stream(model)}
    with atomic_write(dst) as fh:  # a file object: a full disk is an OSError, not torch's "unexpected pos"
        torch.save(out, fh)
    return epoch


__all__ = [
    "KEY_RENAMES",
    "RELEASE_PAGE",
    "UNIMODAL_PARTS",
    "check_state_dict",
    "checkpoint_epoch",
    "checkpoint_state",
    "convert_official_checkpoint",
    "load_official_checkpoint",
    "load_state_strict",
    "load_weights_only",
    "model_stream",
    "official_to_ours",
    "read_checkpoint",
    "require_released",
    "strip_prefixes",
    "unreadable_checkpoint",
]
