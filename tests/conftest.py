"""Fixtures shared by several test files, and the no-skip rule of ``make test``.

Under ``EPAMNET_NO_SKIP=1`` (``make test`` and CI set it) a test that skips fails instead,
at run time or at collection (a module-level ``importorskip``), with the skip's reason:
everything the suite needs is installed by the project's own setup, so a skip there
means a guarantee went unchecked.
"""

from __future__ import annotations

import logging
import os
import types

import pytest

NO_SKIP = os.environ.get("EPAMNET_NO_SKIP") == "1"


def _skip_reason(longrepr: object) -> str:
    return longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    report = outcome.get_result()
    if NO_SKIP and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under EPAMNET_NO_SKIP=1 (make test): {_skip_reason(report.longrepr)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> object:
    outcome = yield
    report = outcome.get_result()
    if NO_SKIP and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"module skipped under EPAMNET_NO_SKIP=1 (make test): {_skip_reason(report.longrepr)}"


@pytest.fixture(autouse=True)
def _fresh_logging():
    """Each test starts as a new process would: no root handlers, level or stage context left
    by an in-process ``epamnet`` call of an earlier test (``epamnet.logs.configure``)."""
    from epamnet import logs

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        if isinstance(handler, (logs.TqdmHandler, logging.FileHandler)):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    logs.set_context()
    logging.captureWarnings(False)


@pytest.fixture(scope="session")
def pose_stack() -> types.ModuleType:
    """mmpose.apis through the compatibility shims, or skip (fail under EPAMNET_REQUIRE_POSE=1, as `make test` sets)."""
    from epamnet.pose import compat

    try:
        return compat.import_mmpose_apis()
    except Exception as exc:  # ImportError, or a dependency failing at import
        message = f"mmpose not importable ({type(exc).__name__}: {exc}); install it with scripts/install_pose.sh"
        if os.environ.get("EPAMNET_REQUIRE_POSE") == "1":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def slurm_cluster():
    """A throw-away single-node SLURM cluster (tests/slurm_cluster.py), stopped after the session.

    Skips where it cannot start (not root, SLURM not installed: `make slurm`); `make test`
    turns that skip into a failure.
    """
    from slurm_cluster import ClusterUnavailable, SlurmCluster

    try:
        cluster = SlurmCluster().start()
    except ClusterUnavailable as exc:
        pytest.skip(f"SLURM test cluster unavailable: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()
