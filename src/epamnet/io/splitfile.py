"""Reading a split file the ``splits`` stage wrote (``data/prepared/<D>/splits/<P>.json``).

The file is ``{"dataset", "protocol", "source", "classes", "num_classes", "train", "val",
"test"}``, each part a list of ``[frame_dir, label]`` (docs/pipeline.md). Every reader (the
train/evaluate/report stages, the torch datasets, predict's class names) goes through
:func:`read_split`; :func:`split_part` and :func:`split_classes` check the piece it uses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from epamnet.errors import file_error
from epamnet.io.jsonfile import read_json_mapping

SPLIT_PARTS: tuple[str, ...] = ("train", "val", "test")

#: The fix hints of the one-line errors: a missing file, a damaged one.
RUN_SPLITS = "run the splits stage first"
REGENERATE = "regenerate it with the splits stage (format: docs/pipeline.md)"


def check_part(part: str) -> None:
    if part not in SPLIT_PARTS:
        raise ValueError(f"part must be one of {SPLIT_PARTS}, got {part!r}")


def read_split(
    path: str | os.PathLike[str], *, missing_fix: str = RUN_SPLITS, fix: str = REGENERATE
) -> dict[str, Any]:
    """The JSON object of a split file; one-line errors when it is missing or not a JSON object."""
    path = Path(path)
    split = read_json_mapping(path, fix=fix)
    if split is None:
        raise file_error(path, "split file not found", missing_fix)
    return split


def split_part(
    split: Mapping[str, Any], part: str, path: str | os.PathLike[str], *, fix: str = REGENERATE
) -> list[tuple[str, int]]:
    """The ``(frame_dir, label)`` rows of one part (train/val/test) of the split read from ``path``."""
    check_part(part)
    if not isinstance(split.get(part), list):
        raise file_error(path, f"has no list {part!r}", fix)
    rows: list[tuple[str, int]] = []
    for i, row in enumerate(split[part]):
        ok = (
            isinstance(row, Sequence)
            and not isinstance(row, str)
            and len(row) == 2
            and isinstance(row[0], str)
            and isinstance(row[1], int)
            and not isinstance(row[1], bool)
            and row[1] >= 0
        )
        if not ok:
            raise file_error(path, f"{part}[{i}] is {row!r}, expected [frame_dir, label >= 0]", fix)
        rows.append((row[0], row[1]))
    return rows


def split_classes(
    split: Mapping[str, Any], path: str | os.PathLike[str], *, fix: str = REGENERATE
) -> list[str]:
    """The ``classes`` list (names of the labels) of the split read from ``path``."""
    names = split.get("classes")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise file_error(path, "has no `classes` list", fix)
    return list(names)


def load_split(path: str | os.PathLike[str], part: str) -> list[tuple[str, int]]:
    """Read the ``[[frame_dir, label], ...]`` of one part (train/val/test) of a split file."""
    check_part(part)
    return split_part(read_split(path), part, path)
