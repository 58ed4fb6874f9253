"""Fixtures shared by several test files."""

from __future__ import annotations

import os
import types

import pytest


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
