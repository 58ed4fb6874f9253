"""``make test`` skips nothing: under EPAMNET_NO_SKIP=1 the suite's conftest turns a skip into a failure.

Checked on a throw-away test folder with this suite's conftest.py and two tests that skip,
one at run time and one at collection, run by pytest in a subprocess.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def run_pytest(folder: Path, no_skip: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "EPAMNET_NO_SKIP"}
    if no_skip:
        env["EPAMNET_NO_SKIP"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfs", str(folder)],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.fixture
def skipping_suite(tmp_path: Path) -> Path:
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_runtime_skip.py").write_text(
        "import pytest\n\ndef test_needs_a_tool():\n    pytest.skip('tool not installed')\n\n"
        "def test_plain():\n    assert True\n", encoding="utf-8")
    (tmp_path / "test_module_skip.py").write_text(
        "import pytest\n\npytest.importorskip('a_module_nobody_has')\n\ndef test_never_collected():\n    pass\n",
        encoding="utf-8")
    return tmp_path


def test_skips_are_skips_without_the_rule(skipping_suite: Path) -> None:
    result = run_pytest(skipping_suite, no_skip=False)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 2 skipped" in result.stdout


def test_skips_fail_under_make_test(skipping_suite: Path) -> None:
    module_skip = skipping_suite / "test_module_skip.py"
    module_source = module_skip.read_text(encoding="utf-8")
    module_skip.unlink()
    result = run_pytest(skipping_suite, no_skip=True)
    assert result.returncode == 1, result.stdout
    assert "1 failed, 1 passed" in result.stdout, result.stdout
    assert "skipped under EPAMNET_NO_SKIP=1 (make test): Skipped: tool not installed" in result.stdout

    module_skip.write_text(module_source, encoding="utf-8")  # a module-level skip stops the run
    result = run_pytest(skipping_suite, no_skip=True)
    assert result.returncode not in (0, 5), result.stdout
    assert "module skipped under EPAMNET_NO_SKIP=1 (make test)" in result.stdout
    assert "a_module_nobody_has" in result.stdout


def test_make_test_sets_the_rule() -> None:
    makefile = (HERE.parent / "Makefile").read_text(encoding="utf-8")
    test_recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "EPAMNET_NO_SKIP=1" in test_recipe
