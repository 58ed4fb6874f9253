"""Sharded stages (``pose-extract``, ``crop``): which samples a shard takes, and joining shards.

A shard ``i`` of ``n`` takes the positions ``i, i+n, ...`` of the sorted sample names, so
the shards partition the samples whatever their order in the source file. Their outputs
are annotation pickles that a merge joins into one file, sorted by ``frame_dir``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from epamnet.errors import EpamnetError, file_error
from epamnet.io.skeleton import load_annotations, save_annotations

logger = logging.getLogger(__name__)


def shard_name(shard: int | str) -> str:
    """``shard-007`` for shard 7; a string (a workflow wildcard such as ``{shard}``) is kept as is."""
    return f"shard-{shard:03d}" if isinstance(shard, int) else f"shard-{shard}"


def failures_path(shard_file: str | Path) -> Path:
    """Where a shard lists the samples it skipped: ``<stem>.failures.json`` beside its pickle."""
    shard_file = Path(shard_file)
    return shard_file.with_name(f"{shard_file.stem}.failures.json")


def check_shard(stage: str, shard: int, num_shards: int, key: str) -> None:
    """Refuse a shard number outside ``0..num_shards-1`` (``key``: the params key that sets the count)."""
    if num_shards < 1 or not 0 <= shard < num_shards:
        raise EpamnetError(
            f"{stage}: shard {shard} of {num_shards} is out of range; {key} is {num_shards}, "
            f"use 0..{max(num_shards - 1, 0)}"
        )


def shard_members(names: Iterable[str], shard: int, num_shards: int, *, stage: str, key: str) -> list[str]:
    """The names of shard ``shard`` of ``num_shards``: positions shard, shard+n, ... of the sorted names."""
    check_shard(stage, shard, num_shards, key)
    return sorted(names)[shard::num_shards]


def merge_annotation_shards(
    shard_files: Sequence[str | Path],
    out_file: str | Path,
    *,
    stage: str,
    rerun: str,
    item: str = "sample",
    check: Callable[[Path, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Join shard pickles into ``out_file`` (sorted by ``frame_dir``), atomically.

    A ``frame_dir`` found twice is refused naming the ``item`` (sample, video), both shards
    and ``rerun`` (what to do);
    ``check(shard_file, annotation)`` may refuse an annotation by raising. Nothing is
    written when a check fails.
    """
    merged: list[dict[str, Any]] = []
    origin: dict[str, Path] = {}
    for shard_file in map(Path, shard_files):
        for ann in load_annotations(shard_file):
            name = str(ann["frame_dir"])
            if name in origin:
                raise file_error(shard_file, f"{item} {name} is also in {origin[name]}", rerun)
            origin[name] = shard_file
            if check is not None:
                check(shard_file, ann)
            merged.append(ann)
    merged.sort(key=lambda a: str(a["frame_dir"]))
    save_annotations(out_file, merged)
    logger.info("%s: %d samples from %d shards into %s", stage, len(merged), len(shard_files), out_file)
    return merged
