"""User-facing errors.

An :class:`EpamnetError` carries one line that names the file (or the setting) at
fault and says what to do about it. The CLI prints it as ``error: <message>`` and
exits with status 1, without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class EpamnetError(Exception):
    """A problem the user can fix: bad input, a missing file, a wrong setting."""


class DiskFullError(EpamnetError):
    """Writing an output failed for lack of space (ENOSPC, EDQUOT): never a per-sample failure."""


def file_error(path: str | Path, problem: str, fix: str) -> EpamnetError:
    """Build the standard one-line message: ``<path>: <problem>; <fix>``."""
    return EpamnetError(f"{path}: {problem}; {fix}")
