"""Skeleton annotation files (mmaction2 / PoseC3D format), read without executing code.

An annotation file is a pickle holding a list of annotation dicts, a dict ``{"split":
{name: [frame_dir, ...]}, "annotations": [...]}`` (the NTU files mmaction2 and pyskl
publish), or one annotation dict on its own (what mmaction2's
``tools/data/skeleton/ntu_pose_extraction.py`` writes for each video). Each annotation has ``frame_dir`` (str), ``label`` (int, -1 when unknown),
``img_shape`` and ``original_shape`` ((h, w)), ``total_frames`` (int), ``keypoint``
(M x T x V x 2) and ``keypoint_score`` (M x T x V); see docs/pipeline.md.

Why a restricted reader: ``pickle.load`` runs whatever callables a pickle names, so a
crafted ``.pkl`` downloaded from the internet could run ``os.system``. The
:class:`SafeUnpickler` below resolves only the few globals this format needs (numpy
array, dtype and scalar reconstruction under the numpy 1.x and 2.x module paths,
``collections.OrderedDict``, and the two helpers protocol 0-2 pickles use for bytes)
and refuses the file as soon as it names anything else, before anything is called.
"""

from __future__ import annotations

import codecs
import collections
import importlib
import logging
import os
import pickle
import struct
import sys
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from epamnet.errors import EpamnetError, file_error
from epamnet.io.atomic import atomic_write

logger = logging.getLogger(__name__)

#: Keys every annotation carries (extra keys such as ``filename`` or ``crop_box`` are kept).
REQUIRED_KEYS: tuple[str, ...] = (
    "frame_dir",
    "label",
    "img_shape",
    "original_shape",
    "total_frames",
    "keypoint",
    "keypoint_score",
)

#: COCO-17 joints.
NUM_JOINTS = 17

#: Protocol used for writing: readable by every Python 3.8+ and numpy >= 1.16. Protocol 5
#: writes each (contiguous) array straight from its buffer; protocol 4 pickles a
#: ``tobytes()`` copy of every array and the pickler's memo keeps all those copies alive
#: until the dump ends, so writing NTU-120's skeletons took twice their size in memory.
PICKLE_PROTOCOL = 5

#: Reads and writes of files at least this large report progress (a tqdm bar on a
#: terminal, else an INFO log line every 10 %).
PROGRESS_MIN_BYTES = 64 * 1024 * 1024

_FIX = "the file is not in the mmaction2 skeleton annotation format (docs/pipeline.md); re-download or regenerate it"

#: What a refused global says about the file, by the library it comes from (the first
#: part of its module): pickles of these libraries are ordinary files of another kind.
_OTHER_KINDS: dict[str, str] = {
    "torch": "PyTorch tensors, as a results file (e.g. mmaction2's `tools/test.py --dump`) or a checkpoint holds",
    "mmengine": "OpenMMLab objects (data samples, configs), as a results file or a checkpoint holds",
    "mmcv": "OpenMMLab objects (data samples, configs), as a results file or a checkpoint holds",
    "mmaction": "OpenMMLab objects (data samples, configs), as a results file or a checkpoint holds",
    "mmpose": "OpenMMLab objects (pose data samples), as mmpose's results hold",
    "mmdet": "OpenMMLab objects (detection data samples), as mmdet's results hold",
    "pandas": "a pandas table",
}


class ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle named a global outside the allow-list (raised before anything is called)."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.qualname = f"{module}.{name}"


def _bytes_from_latin1(text: str = "", encoding: str = "latin1") -> bytes:
    """Stand-in for ``_codecs.encode`` as protocol 0-2 pickles use it for ``bytes`` values.

    Only the latin-1 round trip that pickle itself emits is accepted.
    """
    if codecs.lookup(encoding).name != "iso8859-1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _numpy_attr(name: str, *modules: str) -> Any:
    """Return ``name`` from the first of ``modules`` that exists (numpy 2.x, then 1.x paths)."""
    for module in modules:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"none of {modules} provides {name}")


@cache
def _allowed_globals() -> dict[tuple[str, str], Any]:
    """The allow-list: (module, name) as written in a pickle -> the object it resolves to.

    The names were found by pickling real annotations (numpy arrays of several dtypes and
    memory orders, numpy scalars, strings, tuples, OrderedDicts) with every protocol 0-5
    under numpy 2 and listing what the unpickler looked up; numpy 1.x writes the same
    names under ``numpy.core`` instead of ``numpy._core``. Both map to the installed numpy.
    """
    reconstruct = _numpy_attr("_reconstruct", "numpy._core.multiarray", "numpy.core.multiarray")
    scalar = _numpy_attr("scalar", "numpy._core.multiarray", "numpy.core.multiarray")
    frombuffer = _numpy_attr("_frombuffer", "numpy._core.numeric", "numpy.core.numeric")
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("collections", "OrderedDict"): collections.OrderedDict,
        # protocol 0-2 encode bytes values as _codecs.encode(latin-1 text, "latin1")
        ("_codecs", "encode"): _bytes_from_latin1,
        ("builtins", "bytes"): bytes,
        ("__builtin__", "bytes"): bytes,
    }
    for core in ("numpy._core", "numpy.core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return allowed


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals of the skeleton annotation format."""

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle API
        try:
            return _allowed_globals()[(module, name)]
        except KeyError:
            raise ForbiddenGlobal(module, name) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not part of the format")


class _Progress:
    """Progress of a long read or write in bytes: a tqdm bar on a terminal, log lines otherwise."""

    def __init__(self, verb: str, path: Path, total: int) -> None:
        self.verb, self.path, self.total, self.done = verb, path, max(int(total), 1), 0
        self.enabled = total >= PROGRESS_MIN_BYTES
        self.bar = None
        if self.enabled and sys.stderr.isatty():
            self.bar = tqdm(total=total, desc=f"{verb} {path.name}", unit="B", unit_scale=True, leave=False)
        self._next_log = 10  # percent

    def update(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(n)
            return
        percent = 100 * self.done // self.total
        if percent >= self._next_log:
            logger.info("%s %s: %d%% (%.0f of %.0f MB)", self.verb, self.path, min(percent, 100),
                        self.done / 1e6, self.total / 1e6)  # fmt: skip
            self._next_log = (percent // 10 + 1) * 10

    def finished(self) -> None:
        """Say so where the last line was short of 100 % (a write's total is an estimate)."""
        if self.enabled and self.bar is None and self._next_log <= 100:
            logger.info("%s %s: done (%.0f MB)", self.verb, self.path, self.done / 1e6)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _ProgressReader:
    """A binary file that reports what the unpickler reads (``read``, ``readinto``, ``readline``)."""

    def __init__(self, fh: Any, progress: _Progress) -> None:
        self._fh, self._progress = fh, progress

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self._progress.update(len(data))
        return data

    def readinto(self, buf: Any) -> int:
        n = self._fh.readinto(buf)
        self._progress.update(n or 0)
        return n

    def readline(self, size: int = -1) -> bytes:
        data = self._fh.readline(size)
        self._progress.update(len(data))
        return data

    def peek(self, size: int = 0) -> bytes:  # lets the unpickler prefetch (no bytes consumed)
        return self._fh.peek(size)


class _ProgressWriter:
    """A binary file that reports what the pickler writes."""

    def __init__(self, fh: Any, progress: _Progress) -> None:
        self._fh, self._progress = fh, progress

    def write(self, data: Any) -> int:
        n = self._fh.write(data)
        self._progress.update(n)
        return n


def _payload_bytes(annotations: Sequence[Mapping[str, Any]]) -> int:
    """About how many bytes pickling ``annotations`` writes: array data (an array shared by
    several entries is written once) plus ~200 per entry."""
    arrays = {id(v): v.nbytes for ann in annotations for v in ann.values() if isinstance(v, np.ndarray)}
    return 200 * len(annotations) + sum(arrays.values())


def _unpickle(path: Path) -> Any:
    """Read one pickle from ``path`` with :class:`SafeUnpickler`; errors name the file.

    The file is streamed through a buffered reader, so a multi-GB file is never held
    as one ``bytes`` object next to the arrays it decodes into; numpy keeps the arrays of
    protocol 3-5 files in the buffers the unpickler read (large ones uncopied). Protocol
    0-2 files (what ``mmcv.dump`` writes by default) store each array as latin-1 text
    that the unpickler's memo keeps until the end, so they peak at about twice their
    arrays' size (benchmarks/bench_scale.py). A file of :data:`PROGRESS_MIN_BYTES` or
    more reports progress.
    """
    if not path.exists():
        raise file_error(path, "annotation file not found", "check the path or run the stage that writes it")
    if path.is_dir():
        raise file_error(path, "is a folder, not an annotation file", "point to the .pkl file inside it")
    if path.stat().st_size == 0:
        raise file_error(path, "is empty", "re-download or regenerate it")
    with open(path, "rb") as fh:
        if fh.read(4) == b"PK\x03\x04":  # torch.save's zip archive (checkpoints, saved tensors), not a pickle
            raise file_error(
                path, "is a zip archive, as torch.save writes checkpoints and tensors, not a skeleton annotation pickle",
                "pass the skeleton annotation file: a pickle of a list of dicts with numpy keypoint arrays "
                "(docs/pipeline.md)",
            )
    progress = _Progress("reading", path, path.stat().st_size)
    try:
        with open(path, "rb", buffering=1 << 20) as fh:
            obj = SafeUnpickler(_ProgressReader(fh, progress) if progress.enabled else fh).load()
            trailing = fh.read(1)
    except ForbiddenGlobal as exc:
        raise _refusal(path, exc.qualname) from None
    except EOFError:
        raise file_error(path, "ends in the middle of the pickle (truncated)", "re-download or regenerate it") from None
    except (pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            struct.error, UnicodeDecodeError, OverflowError, ImportError, RecursionError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise file_error(path, f"is not a readable pickle ({detail})", "re-download or regenerate it") from None
    except MemoryError:
        raise file_error(path, "does not fit in memory while loading", "free memory or use a machine with more RAM") from None
    finally:
        progress.close()
    if trailing:
        logger.warning("%s: extra bytes after the end of the pickle were ignored", path)
    return obj


def _refusal(path: Path, qualname: str) -> EpamnetError:
    """The one-line refusal of a pickle that names ``qualname``: what the file probably is, and what to do."""
    said = f"refuses to load: the pickle references {qualname}, which a skeleton annotation file never contains"
    kind = _OTHER_KINDS.get(qualname.split(".", 1)[0])
    if kind is not None:
        return file_error(
            path, f"{said}; it holds {kind}, not skeleton annotations (nothing in it was run)",
            "pass the skeleton annotation file instead: a list of dicts with numpy keypoint arrays (docs/pipeline.md)",
        )
    return file_error(
        path, f"{said} (nothing in it was run)",
        "it is another kind of file, or one made to run code when unpickled: do not open it with plain pickle; "
        "pass a skeleton annotation file, got again from its source or regenerated",
    )


def _a(name: str) -> str:
    """``name`` with its indefinite article: ``an int``, ``a str``."""
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _is_single_annotation(obj: Mapping[Any, Any]) -> bool:
    """A dict that is one annotation itself (it has a ``frame_dir`` or ``keypoint``), not a file-level dict."""
    return "annotations" not in obj and ("frame_dir" in obj or "keypoint" in obj)


def _check_split(split: Any, path: Path) -> dict[str, list[str]]:
    """The NTU files' ``split``: a dict of split name -> list of frame_dir strings."""
    if not isinstance(split, Mapping):
        raise file_error(path, f"'split' is {_a(type(split).__name__)}, expected a dict of name -> [frame_dir, ...]", _FIX)
    out: dict[str, list[str]] = {}
    for name, members in split.items():
        if not isinstance(name, str) or not isinstance(members, (list, tuple)) or not all(
            isinstance(m, str) for m in members
        ):
            raise file_error(path, f"'split' entry {name!r} is not a list of frame_dir strings", _FIX)
        out[name] = list(members)
    return out


def load_annotation_file(
    path: str | os.PathLike[str], *, validate: bool = True, num_joints: int | None = NUM_JOINTS
) -> tuple[list[dict[str, Any]], dict[str, list[str]] | None]:
    """Load an annotation file of either form; return ``(annotations, split)``.

    ``split`` is the NTU files' ``{name: [frame_dir, ...]}`` dict, or ``None`` for a plain
    list. With ``validate`` every entry is checked by :func:`validate_annotation` (and
    ``frame_dir`` must be unique); ``num_joints=None`` accepts any joint count.
    """
    path = Path(path)
    obj = _unpickle(path)
    split: dict[str, list[str]] | None = None
    if isinstance(obj, Mapping) and _is_single_annotation(obj):
        # one video's annotation on its own, as mmaction2's ntu_pose_extraction.py writes it
        logger.debug("%s: holds one annotation (not a list); reading it as a list of one", path)
        annotations = [dict(obj)]
    elif isinstance(obj, Mapping):
        if "annotations" not in obj:
            raise file_error(
                path,
                f"holds a dict that is neither an annotation (no 'frame_dir') nor a file of them (no 'annotations'; "
                f"keys: {sorted(map(str, obj))[:6]})",
                _FIX,
            )
        annotations = obj["annotations"]
        if "split" in obj and obj["split"] is not None:
            split = _check_split(obj["split"], path)
    elif isinstance(obj, list):
        annotations = obj
    else:
        raise file_error(
            path, f"holds {_a(type(obj).__name__)}, expected a list of annotations, one annotation dict, "
            "or a dict with 'annotations'", _FIX,
        )
    if not isinstance(annotations, list):
        raise file_error(path, f"'annotations' is {_a(type(annotations).__name__)}, expected a list", _FIX)
    if validate:
        validate_annotations(annotations, path, num_joints=num_joints)
    return annotations, split


def load_annotations(
    path: str | os.PathLike[str], *, validate: bool = True, num_joints: int | None = NUM_JOINTS
) -> list[dict[str, Any]]:
    """Load the annotation list of a file of either form (the split, if any, is dropped)."""
    return load_annotation_file(path, validate=validate, num_joints=num_joints)[0]


def save_annotations(
    path: str | os.PathLike[str],
    annotations: Sequence[Mapping[str, Any]],
    split: Mapping[str, Iterable[str]] | None = None,
    *,
    validate: bool = True,
    num_joints: int | None = NUM_JOINTS,
) -> None:
    """Write annotations atomically: a plain list, or ``{"split", "annotations"}`` if ``split``.

    Entries are validated first (``validate``), so a bad entry never reaches disk. The
    arrays are written from their own memory (no copies; see :data:`PICKLE_PROTOCOL`), and
    a large file reports progress.
    """
    path = Path(path)
    annotations = [dict(a) for a in annotations]
    if validate:
        validate_annotations(annotations, path, num_joints=num_joints)
    obj: Any = annotations
    if split is not None:
        obj = {"split": {str(k): [str(v) for v in vs] for k, vs in split.items()}, "annotations": annotations}
    progress = _Progress("writing", path, _payload_bytes(annotations))
    try:
        with atomic_write(path) as fh:
            pickle.dump(obj, _ProgressWriter(fh, progress) if progress.enabled else fh, protocol=PICKLE_PROTOCOL)
        progress.finished()
    finally:
        progress.close()
    logger.debug("wrote %d annotations to %s", len(annotations), path)


def validate_annotations(
    annotations: Sequence[Any], source: str | os.PathLike[str], *, num_joints: int | None = NUM_JOINTS
) -> None:
    """Validate every entry (see :func:`validate_annotation`) and that ``frame_dir`` is unique."""
    seen: dict[str, int] = {}
    for i, ann in enumerate(annotations):
        validate_annotation(ann, f"{source}[{i}]", num_joints=num_joints)
        name = str(ann["frame_dir"])
        if name in seen:
            raise file_error(
                source,
                f"frame_dir {name!r} appears twice (entries {seen[name]} and {i})",
                "each video must have one entry: regenerate the file",
            )
        seen[name] = i


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_shape(value: Any) -> bool:
    return (
        isinstance(value, (tuple, list, np.ndarray))
        and len(value) == 2
        and all(_is_int(v) and int(v) > 0 for v in value)
    )


def _is_real_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and (
        np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)
    )


def validate_annotation(ann: Any, source: str, *, num_joints: int | None = NUM_JOINTS) -> None:
    """Check one annotation dict; raise a one-line :class:`EpamnetError` naming ``source``.

    ``source`` says where the entry comes from (e.g. ``"skeletons.pkl[12]"``); the message
    adds the entry's ``frame_dir`` when it has one. Checks: required keys present;
    ``frame_dir`` a non-empty str; ``label`` an int >= -1; ``img_shape``/``original_shape``
    two positive ints; ``total_frames`` an int >= 1; ``keypoint`` a real-valued array
    M x T x V x 2 with T == total_frames and V == ``num_joints`` (any V if None);
    ``keypoint_score`` a real-valued array of shape M x T x V. M may be 0 (no person).
    """

    def bad(problem: str, fix: str = _FIX) -> EpamnetError:
        where = source
        if isinstance(ann, Mapping) and isinstance(ann.get("frame_dir"), str):
            where = f"{source} (frame_dir {ann['frame_dir']!r})"
        return file_error(where, problem, fix)

    if not isinstance(ann, Mapping):
        raise bad(f"annotation is {_a(type(ann).__name__)}, expected a dict")
    missing = [k for k in REQUIRED_KEYS if k not in ann]
    if missing and "keypoint" in missing and "raw_file" in ann:
        # pyskl's Kinetics-400 files keep the keypoints of each video in separate "kpfiles"
        raise bad(
            f"annotation has no keypoint but raw_file {ann['raw_file']!r}: a Kinetics-style (pyskl) annotation "
            "whose keypoints live in separate kpfiles, which this pipeline does not read",
            "write each video's keypoint (M x T x 17 x 2) and keypoint_score (M x T x 17) into its entry, "
            "or extract the skeletons with `epamnet pose-extract` (datasets.<name>.skeletons: mmpose)",
        )
    if missing:
        raise bad(f"annotation lacks key(s) {', '.join(missing)}")
    if not isinstance(ann["frame_dir"], str) or not ann["frame_dir"]:
        raise bad(f"frame_dir must be a non-empty str, got {ann['frame_dir']!r}")
    if not _is_int(ann["label"]) or int(ann["label"]) < -1:
        raise bad(f"label must be an int >= -1 (-1: unknown), got {ann['label']!r}")
    for key in ("img_shape", "original_shape"):
        if not _is_shape(ann[key]):
            raise bad(f"{key} must be (height, width) with positive ints, got {ann[key]!r}")
    total = ann["total_frames"]
    if not _is_int(total) or int(total) < 1:
        raise bad(f"total_frames must be an int >= 1, got {total!r}")
    kp, score = ann["keypoint"], ann["keypoint_score"]
    if not _is_real_array(kp):
        raise bad(f"keypoint must be a numeric numpy array, got {_describe(kp)}")
    if not _is_real_array(score):
        raise bad(f"keypoint_score must be a numeric numpy array, got {_describe(score)}")
    if kp.ndim != 4 or kp.shape[3] != 2:
        if "frame_inds" in ann:  # pyskl's compressed form: one row per detected person and frame
            raise bad(
                f"keypoint has shape {kp.shape} and the entry has frame_inds: a compressed (pyskl) annotation",
                "decompress it to keypoint M x T x V x 2 and keypoint_score M x T x V (pyskl's DecompressPose) first",
            )
        raise bad(f"keypoint must have shape M x T x V x 2, got {kp.shape}")
    if kp.shape[1] != int(total):
        raise bad(f"keypoint has {kp.shape[1]} frames (shape {kp.shape}) but total_frames is {int(total)}")
    if num_joints is not None and kp.shape[2] != num_joints:
        raise bad(f"keypoint has {kp.shape[2]} joints (shape {kp.shape}), expected {num_joints} (COCO-17)")
    if score.shape != kp.shape[:3]:
        raise bad(f"keypoint_score has shape {score.shape}, expected {kp.shape[:3]} to match keypoint {kp.shape}")


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype}"
    return _a(type(value).__name__)


__all__: list[str] = [
    "NUM_JOINTS",
    "REQUIRED_KEYS",
    "SafeUnpickler",
    "load_annotation_file",
    "load_annotations",
    "save_annotations",
    "validate_annotation",
    "validate_annotations",
]
