"""The two import-time gaps of mmpose 1.3.2 on a CPU-only, compile-free install.

The pose stack (envs/pose.txt) uses ``mmcv-lite`` (no compiled ops) and no
torchvision (its wheels pull a multi-GB CUDA torch). Two imports on mmpose's import
path then fail, although inference with a top-down HRNet never uses either:

1. ``mmcv._ext``: ``mmcv.ops`` (imported by a transformer head of mmpose, and by
   mmdet) loads the compiled extension at import time and checks that each op name
   exists. :func:`ensure_mmcv_ext` registers a stub module whose every attribute is a
   function raising a clear error when called, and whose ``__spec__`` has loader
   ``None``, so ``mmengine.utils.is_mmcv_full()`` (``pkgutil.find_loader``) still
   reports that mmcv's compiled ops are unavailable.
2. ``torchvision.transforms.ToPILImage``: imported by ``mmpose.visualization.simcc_vis``
   (a visualiser we never use). :func:`torchvision_placeholder` provides it only for the
   duration of the mmpose import and removes the placeholder modules afterwards, so
   code that later probes for torchvision (``try: import torchvision``) still sees it
   missing.

Both act only when the real module cannot be found; with a real mmcv (with ops) or a
real torchvision installed they do nothing. This module touches ``sys.modules`` only,
the one process-wide registry the fixes need.

Warnings: importing and building the pose stack warns about things inside mmengine,
mmcv, mmpose and torch that a user of ``epamnet`` cannot act on (:data:`POSE_WARNINGS`).
:func:`quiet_pose_warnings` hides exactly those, by message and module, while the
stack is imported and the model built; any other warning still shows.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import importlib.util
import logging
import sys
import types
import warnings
from collections.abc import Iterator
from typing import Any, NoReturn

logger = logging.getLogger(__name__)

#: Attribute the stub carries so that :func:`mmcv_ops_available` can recognise it.
STUB_MARKER = "__epamnet_stub__"

_OPS_MISSING = (
    "mmcv's compiled ops are not installed (mmcv-lite; epamnet registered a stub for mmcv._ext): "
    "install mmcv 2.1.0 with ops (mmcv-full) to use {what}"
)


def _find_spec(name: str) -> importlib.machinery.ModuleSpec | None:
    """``importlib.util.find_spec`` that returns None instead of raising for a missing parent."""
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def _missing_op(name: str) -> Any:
    def op(*_args: Any, **_kwargs: Any) -> NoReturn:
        raise RuntimeError(_OPS_MISSING.format(what=f"the op {name!r}"))

    op.__name__ = name
    return op


def _stub_getattr(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return _missing_op(name)


def ensure_mmcv_ext() -> bool:
    """Register a stub ``mmcv._ext`` when mmcv is importable but its compiled ops are not.

    Returns True when the stub is (now) in place, False when nothing was needed (real
    ops present) or possible (mmcv itself missing). Idempotent.
    """
    existing = sys.modules.get("mmcv._ext")
    if existing is not None:
        return bool(getattr(existing, STUB_MARKER, False))
    if _find_spec("mmcv") is None:
        return False
    if _find_spec("mmcv._ext") is not None:
        return False  # mmcv-full: the real compiled extension is there
    stub = types.ModuleType("mmcv._ext", "Stub for mmcv's compiled ops (not installed): every op raises.")
    # loader None: pkgutil.find_loader('mmcv._ext') -> None, so mmengine's
    # is_mmcv_full() stays False and nothing mistakes the stub for the real ops.
    stub.__spec__ = importlib.machinery.ModuleSpec("mmcv._ext", None)
    stub.__getattr__ = _stub_getattr  # type: ignore[method-assign]  # PEP 562: any op name resolves
    setattr(stub, STUB_MARKER, True)
    sys.modules["mmcv._ext"] = stub
    logger.debug("compat: registered a stub mmcv._ext (mmcv-lite has no compiled ops)")
    return True


def mmcv_ops_available() -> bool:
    """True when mmcv's real compiled ops (``mmcv._ext``) can be imported."""
    module = sys.modules.get("mmcv._ext")
    if module is not None:
        return not getattr(module, STUB_MARKER, False)
    return _find_spec("mmcv") is not None and _find_spec("mmcv._ext") is not None


class ToPILImage:
    """Placeholder for ``torchvision.transforms.ToPILImage``: raises when used."""

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError(
            "torchvision is not installed (epamnet's pose stack leaves it out); "
            "mmpose's SimCC visualiser needs it: install a torchvision matching torch to use it"
        )


@contextlib.contextmanager
def torchvision_placeholder() -> Iterator[bool]:
    """Provide ``torchvision.transforms.ToPILImage`` while mmpose is imported, if torchvision is missing.

    Yields True when the placeholder is active. On exit the placeholder modules are
    removed from ``sys.modules`` (names already bound by the importing module keep
    pointing at :class:`ToPILImage`, which raises only if called).
    """
    if "torchvision" in sys.modules or _find_spec("torchvision") is not None:
        yield False
        return
    package = types.ModuleType("torchvision", "epamnet placeholder: torchvision is not installed")
    package.__path__ = []  # a package, so 'torchvision.transforms' resolves as a submodule
    transforms = types.ModuleType("torchvision.transforms", "epamnet placeholder")
    transforms.ToPILImage = ToPILImage  # type: ignore[attr-defined]
    package.transforms = transforms  # type: ignore[attr-defined]
    sys.modules["torchvision"] = package
    sys.modules["torchvision.transforms"] = transforms
    try:
        yield True
    finally:
        for name in ("torchvision.transforms", "torchvision"):
            if sys.modules.get(name) in (package, transforms):
                del sys.modules[name]


#: (category, message regex, module regex) of the warnings the pose stack gives that a
#: user cannot act on; each is matched by its text and by the module it is attributed to.
POSE_WARNINGS: tuple[tuple[type[Warning], str, str], ...] = (
    # mmengine imports pkg_resources (setuptools deprecates it); fixed upstream, not by us
    (UserWarning, r"pkg_resources is deprecated as an API", r"mmengine\.utils\.package_utils"),
    # mmpose finds its COCO metainfo in its own package (.mim) instead of the config's relative path
    (UserWarning, r'The metainfo config file ".*" does not exist\. A matched config file', r"mmpose\.datasets\.datasets\.utils"),
    # mmcv's transformer module re-exports an op that moved to mmcv.ops
    (ImportWarning, r"``MultiScaleDeformableAttention`` has been moved", r"mmcv\.cnn\.bricks\.transformer"),
    # torch deprecates TorchScript; mmcv and mmpose decorate functions with it at import time
    (DeprecationWarning, r"`torch\.jit\.(script|interface)` is deprecated", r"torch\.jit\._script"),
)


@contextlib.contextmanager
def quiet_pose_warnings() -> Iterator[None]:
    """Hide :data:`POSE_WARNINGS` (only those) inside the block; the filters are restored after."""
    with warnings.catch_warnings():
        for category, message, module in POSE_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category, module=module)
        yield


def import_mmpose_apis() -> types.ModuleType:
    """Import ``mmpose.apis`` with both gaps covered and :data:`POSE_WARNINGS` hidden; return the module.

    Raises ImportError (unchanged) when mmpose itself or one of its real dependencies
    is missing; callers turn that into an install hint.
    """
    ensure_mmcv_ext()
    with torchvision_placeholder(), quiet_pose_warnings():
        return importlib.import_module("mmpose.apis")


__all__ = [
    "POSE_WARNINGS",
    "ToPILImage",
    "ensure_mmcv_ext",
    "import_mmpose_apis",
    "mmcv_ops_available",
    "quiet_pose_warnings",
    "torchvision_placeholder",
]
