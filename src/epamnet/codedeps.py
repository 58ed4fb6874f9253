"""A stage's code, computed from the imports: the files whose edit must re-run the stage.

The code of a stage is its module in :mod:`epamnet.stages` and every ``epamnet`` module
that module imports, directly or through others, at module level or inside a function
(an import inside a function still runs), plus the ``__init__.py`` of each package on
the way (Python runs them on import). Imports under ``if TYPE_CHECKING:`` never run and
do not count. Only ``.py`` files are listed, never folders, so compiled-file caches
(``__pycache__``) are never dependencies. ``cli.py`` only parses arguments and is no
stage's code. The import graph comes from grimp (import-linter's graph builder).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import grimp

from epamnet.io.digest import sha256_file

PACKAGE = "epamnet"
#: Where the package's source lives, relative to the project root (what both orchestrators see).
SOURCE_DIR = "src/epamnet"

#: Each rule's module in epamnet.stages.
STAGE_MODULES: dict[str, str] = {
    "acquire": "epamnet.stages.acquire",
    "pose_extract": "epamnet.stages.pose_extract",
    "pose": "epamnet.stages.pose",
    "clips": "epamnet.stages.clips",
    "crop": "epamnet.stages.crop",
    "crop_merge": "epamnet.stages.crop_merge",
    "splits": "epamnet.stages.splits",
    "train_unimodal": "epamnet.stages.train",
    "train_fusion": "epamnet.stages.train",
    "evaluate": "epamnet.stages.evaluate",
    "evaluate_released": "epamnet.stages.released",
    "profile": "epamnet.stages.profile",
    "report": "epamnet.stages.report",
}


@functools.cache
def _graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, cache_dir=None, exclude_type_checking_imports=True)


def module_closure(module: str) -> set[str]:
    """``module``, the ``epamnet`` modules it imports transitively, and their parent packages."""
    graph = _graph()
    if module not in graph.modules:
        raise KeyError(f"{module} is not a module of {PACKAGE}")
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(graph.find_modules_directly_imported_by(name))
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
    return seen


@functools.cache
def _package_dir() -> Path:
    import epamnet

    return Path(epamnet.__file__).resolve().parent


def module_file(module: str) -> str:
    """The source file of ``module``, relative to the project root (``src/epamnet/...``)."""
    rel = Path(*module.split(".")[1:])
    if (_package_dir() / rel).is_dir():
        rel = rel / "__init__.py"
    else:
        rel = rel.with_suffix(".py")
    return f"{SOURCE_DIR}/{rel.as_posix()}" if rel.parts else f"{SOURCE_DIR}/__init__.py"


@functools.cache
def stage_code(rule: str) -> tuple[str, ...]:
    """Sorted source files of ``rule``'s stage: its module's import closure."""
    return tuple(sorted(module_file(m) for m in module_closure(STAGE_MODULES[rule])))


def code_sha256(rule: str) -> str:
    """SHA-256 of ``rule``'s code as it runs here (the installed package's files)."""
    root = _package_dir()
    prefix = f"{SOURCE_DIR}/"
    entries = [(f, sha256_file(root / f[len(prefix):])) for f in stage_code(rule)]
    return hashlib.sha256(json.dumps(entries, separators=(",", ":")).encode()).hexdigest()
