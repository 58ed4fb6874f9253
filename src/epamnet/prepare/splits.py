"""The ``splits`` stage: train/val/test lists per protocol, from the official naming rules.

Reads the prepared annotations (``data/prepared/<D>/annotations.pkl``) and writes, into
``data/prepared/<D>/splits/`` (the whole folder atomically), for each protocol ``P``:

* ``P.json``: ``{"dataset", "protocol", "source", "classes", "num_classes", "train",
  "val", "test"}``, each part a list of ``[frame_dir, label]`` (docs/pipeline.md);
* ``P_train.txt``, ``P_val.txt``, ``P_test.txt``: ``<frame_dir>.mp4 <label>`` lines like
  the official lists, the last line without a newline (``val`` is empty where the
  protocol has no validation list).

Which part a sample belongs to, and its label, come from its name through
:mod:`epamnet.datasets.registry` (PKU-MMD: from the dataset's ``Split/`` files). The
stage checks that each annotation's own label agrees with the label its name carries
(NTU, PKU clips), and refuses a protocol whose train or test part comes out empty.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from epamnet.datasets import PROTOCOLS
from epamnet.datasets.registry import Dataset, get_dataset
from epamnet.errors import EpamnetError, file_error
from epamnet.io.atomic import atomic_dir
from epamnet.io.skeleton import load_annotations

logger = logging.getLogger(__name__)

PARTS: tuple[str, ...] = ("train", "val", "test")
SOURCES: tuple[str, ...] = ("real", "synthetic")


@dataclass
class ProtocolSplit:
    """The lists of one protocol: ``parts[part]`` is a list of ``(frame_dir, label)``."""

    dataset: str
    protocol: str
    source: str
    classes: tuple[str, ...]
    parts: dict[str, list[tuple[str, int]]] = field(default_factory=lambda: {p: [] for p in PARTS})
    skipped: int = 0  # samples that are in no part of this protocol

    def as_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "protocol": self.protocol,
            "source": self.source,
            "classes": list(self.classes),
            "num_classes": len(self.classes),
            **{p: [[name, label] for name, label in self.parts[p]] for p in PARTS},
        }


def build_split(
    info: Dataset, frame_dirs: Iterable[str], protocol: str, *, source: str = "real"
) -> ProtocolSplit:
    """Assign ``frame_dirs`` (kept in the given order) to the parts of ``protocol``."""
    split = ProtocolSplit(info.name, protocol, source, info.class_names(protocol))
    for name in frame_dirs:
        part = info.assign(name, protocol)
        label = info.label(name, protocol) if part is not None else None
        if part is None or label is None:
            split.skipped += 1
            continue
        split.parts[part].append((name, label))
    return split


def format_list(entries: Iterable[Sequence[Any]]) -> str:
    """Official-style list text: ``<frame_dir>.mp4 <label>`` lines, the last without a newline."""
    return "\n".join(f"{name}.mp4 {label}" for name, label in entries)


def format_json(obj: Mapping[str, Any]) -> str:
    """JSON with one key per line and one ``[frame_dir, label]`` sample per line."""
    lines = []
    for key, value in obj.items():
        if key in PARTS and value:
            body = ",\n".join(f"    {json.dumps(item)}" for item in value)
            lines.append(f"  {json.dumps(key)}: [\n{body}\n  ]")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def check_labels(info: Dataset, annotations: Sequence[Mapping[str, Any]], source: str | Path) -> None:
    """Each annotation's ``label`` (unless -1, unknown) must equal the label its name carries."""
    for i, ann in enumerate(annotations):
        name = ann["frame_dir"]
        expected = info.name_label(name)
        got = ann.get("label", -1)
        if expected is None or got == -1:
            continue
        if got != expected:
            raise file_error(
                source,
                f"entry {i} ({name}) has label {got} but its name says {expected}",
                "labels must follow the names (0-based class index); regenerate the annotations",
            )


def _frame_dirs(annotations: Sequence[Mapping[str, Any]], source: Path) -> list[str]:
    names = []
    for i, ann in enumerate(annotations):
        name = ann.get("frame_dir") if isinstance(ann, Mapping) else None
        if not isinstance(name, str) or not name:
            raise file_error(source, f"entry {i} has no frame_dir", "regenerate the annotations (crop-merge)")
        names.append(name)
    dupes = [n for n, c in Counter(names).items() if c > 1]
    if dupes:
        raise file_error(
            source, f"frame_dir {dupes[0]!r} appears {names.count(dupes[0])} times", "regenerate the annotations"
        )
    return sorted(names)


def _log_split(split: ProtocolSplit) -> None:
    counts = {p: len(split.parts[p]) for p in PARTS}
    logger.info(
        "%s/%s: %d train, %d val, %d test, %d in no part; %d classes",
        split.dataset, split.protocol, counts["train"], counts["val"], counts["test"], split.skipped,
        len(split.classes),
    )  # fmt: skip
    for part in PARTS:
        if not split.parts[part]:
            continue
        per_class = Counter(label for _, label in split.parts[part])
        missing = [split.classes[c] for c in range(len(split.classes)) if per_class[c] == 0]
        logger.info(
            "%s/%s %s: %d of %d classes present, %d..%d samples per present class",
            split.dataset, split.protocol, part, len(per_class), len(split.classes),
            min(per_class.values()), max(per_class.values()),
        )  # fmt: skip
        if missing and part == "train":
            logger.warning("%s/%s: no training samples for %s", split.dataset, split.protocol, ", ".join(missing))


def make_splits(
    dataset: str,
    annotations_path: str | Path,
    out_dir: str | Path,
    protocols: Sequence[str],
    *,
    num_classes: int | None = None,
    pku_split_dir: str | Path | None = None,
    source: str = "real",
) -> dict[str, ProtocolSplit]:
    """Write the split lists of ``protocols`` for ``dataset`` into ``out_dir`` (replaced whole).

    ``num_classes`` truncates the class lists (synthetic datasets); ``pku_split_dir`` is
    PKU-MMD's ``Split/`` folder; ``source`` (``real`` or ``synthetic``) is recorded in the
    JSON files. Returns the splits by protocol.
    """
    if dataset not in PROTOCOLS:
        raise EpamnetError(f"splits: unknown dataset {dataset!r}; use one of {tuple(PROTOCOLS)}")
    if source not in SOURCES:
        raise EpamnetError(f"splits: source {source!r} must be one of {SOURCES}")
    if not protocols:
        raise EpamnetError(f"splits: no protocols given for {dataset}; use some of {PROTOCOLS[dataset]}")
    unknown = [p for p in protocols if p not in PROTOCOLS[dataset]]
    if unknown:
        raise EpamnetError(f"splits: {dataset} has no protocol(s) {unknown}; use some of {PROTOCOLS[dataset]}")
    split_folder = get_dataset(dataset).split_folder
    if split_folder is not None and pku_split_dir is None:
        raise EpamnetError(
            f"splits: {dataset} needs the dataset's {split_folder}/ folder; "
            f"pass pku_split_dir (data/raw/{dataset}/{split_folder})"
        )

    annotations_path = Path(annotations_path)
    info = get_dataset(dataset, num_classes=num_classes, pku_split_dir=pku_split_dir)
    annotations = load_annotations(annotations_path)
    names = _frame_dirs(annotations, annotations_path)
    logger.info("%s: %d annotated samples in %s", dataset, len(names), annotations_path)
    check_labels(info, annotations, annotations_path)
    videos = [n for n in names if info.is_untrimmed(n)]
    if videos:
        raise file_error(
            annotations_path,
            f"{len(videos)} entries are untrimmed videos (e.g. {videos[0]}), not action clips",
            "split the clips' annotations (run the clips and crop stages first)",
        )

    splits: dict[str, ProtocolSplit] = {}
    progress = tqdm(protocols, desc=f"splits {dataset}", unit="protocol", disable=not sys.stderr.isatty())
    for protocol in progress:
        split = build_split(info, names, protocol, source=source)
        for part in ("train", "test"):
            if not split.parts[part]:
                raise file_error(
                    annotations_path,
                    f"protocol {dataset}/{protocol} has no {part} samples among {len(names)} annotations",
                    "the data must cover the protocol's training and test subjects/cameras/setups"
                    + (f" (see {pku_split_dir})" if split_folder is not None else ""),
                )
        _log_split(split)
        splits[protocol] = split

    with atomic_dir(out_dir) as tmp:
        for protocol, split in splits.items():
            (tmp / f"{protocol}.json").write_text(format_json(split.as_json()), encoding="utf-8")
            for part in PARTS:
                (tmp / f"{protocol}_{part}.txt").write_text(format_list(split.parts[part]), encoding="utf-8")
    logger.info("wrote %s splits for %s to %s", dataset, ", ".join(splits), out_dir)
    return splits
