"""Atomic file and directory writes.

Every output of the pipeline is written to a temporary name in the destination's
folder and renamed into place only when complete, so an interrupted or failed
stage never leaves a file that Snakemake or DVC would take as finished.

A full disk (or an exhausted quota) while writing is a :class:`~epamnet.errors.DiskFullError`
naming the output and saying to free space, raised after the temporary file is gone.
A process killed outright (SIGKILL, power loss) cannot clean up: it leaves a hidden
``.<name>.*.tmp`` next to the output, never the output itself.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from epamnet.errors import DiskFullError

#: errno values that mean "no room to write": the device is full or the quota is spent.
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def _no_space_cause(exc: BaseException | None) -> OSError | None:
    """The no-space OSError behind ``exc`` (itself, or along its cause/context chain), if any."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` means "no space left": a DiskFullError, or a no-space OSError behind it."""
    return isinstance(exc, DiskFullError) or _no_space_cause(exc) is not None


def disk_full_error(path: str | Path, exc: BaseException | None = None) -> DiskFullError:
    """The one-line error for an output that could not be written for lack of space."""
    path = Path(path)
    cause = _no_space_cause(exc)
    reason = (cause.strerror if cause is not None else None) or os.strerror(errno.ENOSPC)
    return DiskFullError(
        f"{path}: could not be written ({reason}); free space on the file system holding "
        f"{path.parent} (or point paths.* in params.yaml elsewhere) and run the stage again"
    )


def _reraise(path: Path, exc: BaseException) -> NoReturn:
    """Re-raise ``exc``; for lack of space, as a DiskFullError naming ``path``.

    Nested writers (a video inside an atomic folder) re-name it on the way out, so the
    message names the outermost output, not a temporary name that no longer exists.
    """
    if is_disk_full(exc):
        raise disk_full_error(path, exc) from exc
    raise exc


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _tmp_name(path: Path, suffix: str = "") -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    # mkstemp creates 0600 files; outputs get the mode any new file would get.
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_path(path: str | Path, keep_suffix: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    The temporary name keeps ``path``'s suffix (``keep_suffix``) so that writers that
    choose a container by extension (OpenCV's VideoWriter) still work. On any
    exception the temporary file is removed and the destination is left untouched.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _tmp_name(path, path.suffix if keep_suffix else "")
    except OSError as exc:
        _reraise(path, exc)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        _reraise(path, exc)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator:
    """Open a temporary file for writing; fsync and rename it onto ``path`` on success."""
    with atomic_path(path) as tmp:
        with open(tmp, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory next to ``path``; swap it in for ``path`` on success.

    An existing ``path`` is replaced only after the new content is complete. On any
    exception the temporary directory is removed.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as exc:
        _reraise(path, exc)
    tmp.chmod(0o777 & ~_umask())
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        _reraise(path, exc)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_write(path, "w") as fh:
        fh.write(text)
