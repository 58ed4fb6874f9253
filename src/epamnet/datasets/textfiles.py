"""Reading the datasets' own text files (label files, protocol files, class lists)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from epamnet.errors import file_error


def read_text(path: Path, what: str, fix: str) -> str:
    """The UTF-8 text of ``path``; an unreadable file is an error naming ``what`` it is and the ``fix``."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise file_error(path, f"cannot read {what} ({exc.strerror})", fix) from exc


def numbered_lines(path: Path, what: str, fix: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) of each line of ``path`` that is not blank."""
    for lineno, line in enumerate(read_text(path, what, fix).splitlines(), start=1):
        if line.strip():
            yield lineno, line
