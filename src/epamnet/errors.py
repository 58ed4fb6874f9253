"""User-facing errors.

An :class:`EpamnetError` carries one line that names the file (or the setting) at
fault and says what to do about it. The CLI prints it as ``error: <message>`` and
exits with status 1, without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches
from pathlib import Path


class EpamnetError(Exception):
    """A problem the user can fix: bad input, a missing file, a wrong setting."""


class DiskFullError(EpamnetError):
    """Writing an output failed for lack of space (ENOSPC, EDQUOT): never a per-sample failure."""


def file_error(path: str | Path, problem: str, fix: str) -> EpamnetError:
    """Build the standard one-line message: ``<path>: <problem>; <fix>``."""
    return EpamnetError(f"{path}: {problem}; {fix}")


def did_you_mean(value: object, choices: Iterable[object]) -> str:
    """``"; did you mean 'x'?"`` for the choice closest to a mistyped ``value``, or ``""``.

    Compared as text with difflib (cutoff 0.6), against each choice and, for a value of
    three characters or more, against the choice's start of the same length, so that a
    misspelt beginning also finds a long name (``'spatail'``: ``'spatial_temporal'``). A
    value like none of the choices gets no suggestion.
    """
    text = str(value)
    options: dict[str, object] = {}
    for choice in choices:
        options.setdefault(str(choice), choice)
        if len(text) >= 3:
            options.setdefault(str(choice)[: len(text)], choice)
    close = get_close_matches(text, list(options), n=1)
    return f"; did you mean {options[close[0]]!r}?" if close else ""
