"""Class names of a recognizer's outputs: a names file, a split JSON, or the dataset's own list."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from epamnet.datasets.registry import get_dataset
from epamnet.errors import EpamnetError, file_error
from epamnet.io.splitfile import read_split, split_classes

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassSource:
    """Where the class names come from: the first one set wins; none set gives generic names."""

    classes: Path | None = None  # one name per line, or a JSON list (or object with `classes`)
    split: Path | None = None  # a split JSON written by the splits stage
    dataset: str | None = None  # with protocol: the dataset's official class list
    protocol: str | None = None


def read_class_file(path: str | Path) -> list[str]:
    """Class names from a text file (one per line) or a JSON list / object with ``classes``."""
    path = Path(path)
    fix = "give one class name per line, a JSON list of names, or a split JSON"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise file_error(path, "class file not found", "check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise file_error(path, f"cannot read the class file ({type(exc).__name__})", fix) from None
    stripped = text.lstrip()
    if path.suffix.lower() == ".json" or stripped.startswith(("[", "{")):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise file_error(path, f"not valid JSON ({exc.msg})", fix) from None
        names = obj.get("classes") if isinstance(obj, Mapping) else obj
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise file_error(path, "holds no list of class names (strings)", fix)
        return list(names)
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise file_error(path, "lists no class names", fix)
    return names


def read_split_classes(path: Path) -> list[str]:
    """The ``classes`` list of a split JSON (errors point at the splits stage and ``--classes``)."""
    split = read_split(path, missing_fix="run the splits stage, or pass --classes FILE", fix="rerun the splits stage")
    return split_classes(split, path, fix="pass a split JSON written by the splits stage")


def dataset_classes(dataset: str, protocol: str, num_classes: int) -> list[str] | None:
    """The dataset's official class list (first ``num_classes`` for synthetic ones), if it fits."""
    try:
        info = get_dataset(dataset)
        full = info.class_names(protocol)
        names = full if len(full) == num_classes else get_dataset(dataset, num_classes=num_classes).class_names(protocol)
    except (EpamnetError, ValueError, KeyError):
        return None
    return list(names) if len(names) == num_classes else None


def resolve_class_names(num_classes: int, source: ClassSource, checkpoint: Path) -> tuple[list[str], str | None]:
    """The names of the ``num_classes`` outputs of ``checkpoint``, and where they came from."""
    names: list[str] | None = None
    origin: str | None = None
    if source.classes is not None:
        names, origin = read_class_file(source.classes), str(source.classes)
    elif source.split is not None:
        names, origin = read_split_classes(source.split), str(source.split)
    elif source.dataset is not None and source.protocol is not None:
        names = dataset_classes(source.dataset, source.protocol, num_classes)
        origin = f"the {source.dataset} {source.protocol} class list" if names is not None else None
    if names is None:
        logger.warning(
            "predict: no class names for %s; showing class indices (pass --classes FILE, --split FILE or "
            "--dataset/--protocol)", checkpoint,
        )
        return [f"class {k}" for k in range(num_classes)], None
    if len(names) != num_classes:
        raise file_error(
            origin or "class names",
            f"lists {len(names)} classes but {checkpoint} was trained for {num_classes}",
            "pass the class list of the dataset and protocol the model was trained on",
        )
    return names, origin
