"""The package's floors: import-linter's contracts from pyproject.toml hold, with no exceptions.

``lint-imports`` runs as a subprocess on the real source tree, the way a developer runs it.
A second check builds a throw-away package with one upward import and one import cycle and
asserts the same contracts reject it, so a contract that silently stopped checking (a renamed
layer, an empty ancestor list) fails here too.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def contracts() -> list[dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return config["tool"]["importlinter"]["contracts"]


def lint_imports(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} is missing; install the test extra (pip install -e '.[test]')")
    env = {"PATH": str(LINT_IMPORTS.parent), "PYTHONPATH": str(pythonpath), "LANG": "C.UTF-8"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", "--config", "pyproject.toml"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )


def test_contracts_list_no_exceptions() -> None:
    kinds = {c["type"] for c in contracts()}
    assert kinds == {"layers", "acyclic_siblings"}
    for contract in contracts():
        assert "ignore_imports" not in contract, f"contract {contract['id']} lists exceptions"
        assert contract.get("exhaustive", True)


def test_every_top_level_module_is_on_a_floor() -> None:
    layers = next(c for c in contracts() if c["type"] == "layers")["layers"]
    on_floor = {name.strip() for floor in layers for name in floor.split("|")}
    package = ROOT / "src" / "epamnet"
    top = {f"epamnet.{p.stem}" for p in package.glob("*.py") if p.stem != "__init__"}
    top |= {f"epamnet.{p.parent.name}" for p in package.glob("*/__init__.py")}
    assert top - on_floor == set(), "add the new module to a floor in pyproject.toml"
    assert on_floor - top == set(), "a floor names a module that no longer exists"


def test_source_tree_keeps_the_contracts() -> None:
    result = lint_imports(ROOT, ROOT / "src")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "2 kept, 0 broken" in result.stdout


def test_contracts_reject_an_upward_import_and_a_cycle(tmp_path: Path) -> None:
    """The same contracts, on a copy of the package with two planted faults, fail."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "epamnet", src / "epamnet", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(src / "epamnet" / "errors.py", "a", encoding="utf-8") as fh:
        fh.write("\nfrom epamnet import cli  # planted: the bottom floor imports the top\n")
    io = src / "epamnet" / "io"
    (io / "planted_a.py").write_text("from epamnet.io import planted_b\n", encoding="utf-8")
    (io / "planted_b.py").write_text("from epamnet.io import planted_a\n", encoding="utf-8")

    result = lint_imports(tmp_path, src)
    assert result.returncode != 0
    assert "0 kept, 2 broken" in result.stdout, result.stdout[-4000:]
    assert "epamnet.errors -> epamnet.cli" in result.stdout
    assert ".planted_b -> .planted_a" in result.stdout  # the cycle, named inside epamnet.io
