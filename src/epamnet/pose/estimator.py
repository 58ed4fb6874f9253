"""HRNet-W32 top-down pose estimator (mmpose 1.3.2, COCO-17), built offline.

The model comes from the config shipped inside the mmpose package
(``mmpose/.mim/configs/...``). Every ``init_cfg`` that names pretrained weights (the
HRNet backbone's ImageNet URL) is removed before the model is built, and
``init_model`` is called without a checkpoint, so nothing can try to download.
Weights come from a user-supplied checkpoint file (``pose.checkpoint`` in
params.yaml, DVC-tracked), read by :func:`load_state_dict` with torch's weights-only
unpickler plus a small numpy allow-list: an mmpose checkpoint's metadata holds numpy
arrays and scalars, which a plain ``weights_only=True`` load refuses, and anything
else (a class, a callable) is refused before it could run. Tests and CI build the
same network with random weights (``random_init=True``).

:class:`PoseEstimator` runs several person crops through the network in one forward
pass: each crop goes through the config's own test pipeline (LoadImage,
GetBBoxCenterScale, TopdownAffine, PackPoseInputs), the crops are collated into one
batch and ``model.test_step`` decodes keypoints back into image coordinates. That is
``mmpose.apis.inference_topdown`` generalised from "the boxes of one image" to "any
boxes of any frames".
"""

from __future__ import annotations

import contextlib
import logging
import pickle
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from epamnet.errors import EpamnetError, file_error

logger = logging.getLogger(__name__)

#: The HRNet-W32 COCO-17 top-down config, relative to mmpose's shipped configs.
DEFAULT_CONFIG = "body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w32_8xb64-210e_coco-256x192.py"

#: The released weights of that config (mmpose model zoo); the user downloads them.
DEFAULT_CHECKPOINT_NAME = "td-hm_hrnet-w32_8xb64-210e_coco-256x192-81c58e40_20220909.pth"
CHECKPOINT_URL = (
    "https://download.openmmlab.com/mmpose/v1/body_2d_keypoint/topdown_heatmap/coco/" + DEFAULT_CHECKPOINT_NAME
)

NUM_KEYPOINTS = 17

INSTALL_HINT = "install the pose stack: `make venv` (scripts/install_pose.sh, envs/pose.txt)"


def _mmpose_apis() -> Any:
    """``mmpose.apis`` imported through the compatibility shims; a clear error if missing."""
    from epamnet.pose.compat import import_mmpose_apis

    try:
        return import_mmpose_apis()
    except ImportError as exc:
        raise EpamnetError(f"mmpose: cannot import mmpose ({exc}); {INSTALL_HINT}") from None


# ----------------------------------------------------------------------------- checkpoints


def _numpy_safe_globals() -> list[Any]:
    """numpy's array, dtype and scalar reconstruction, under the numpy 1.x and 2.x module paths.

    Given as (object, "module.name") pairs so the names written by numpy 1.x
    (``numpy.core.multiarray._reconstruct``) resolve to the installed numpy 2 functions.
    The dtype classes (``numpy.dtypes.Float32DType`` ...) are listed because the
    unpickler restores a dtype's state only for allow-listed types.
    """
    from epamnet.io.skeleton import _numpy_attr

    reconstruct = _numpy_attr("_reconstruct", "numpy._core.multiarray", "numpy.core.multiarray")
    scalar = _numpy_attr("scalar", "numpy._core.multiarray", "numpy.core.multiarray")
    frombuffer = _numpy_attr("_frombuffer", "numpy._core.numeric", "numpy.core.numeric")
    allowed: list[Any] = [(np.ndarray, "numpy.ndarray"), (np.dtype, "numpy.dtype")]
    for core in ("numpy._core", "numpy.core"):
        allowed += [
            (reconstruct, f"{core}.multiarray._reconstruct"),
            (scalar, f"{core}.multiarray.scalar"),
            (frombuffer, f"{core}.numeric._frombuffer"),
        ]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        for name in dir(dtypes):
            cls = getattr(dtypes, name)
            if isinstance(cls, type) and issubclass(cls, np.dtype):
                allowed.append((cls, f"numpy.dtypes.{name}"))
    return allowed


@contextlib.contextmanager
def _numpy_allowed() -> Iterator[None]:
    with torch.serialization.safe_globals(_numpy_safe_globals()):
        yield


def missing_checkpoint_error(path: str | Path | None) -> EpamnetError:
    """The one-line error for an unset or absent HRNet checkpoint."""
    fix = (
        f"download {DEFAULT_CHECKPOINT_NAME} from the mmpose model zoo ({CHECKPOINT_URL}) on a machine with "
        "internet, put it at that path (`dvc add` it) or set pose.checkpoint in params.yaml to where it is"
    )
    if path is None:
        return EpamnetError(f"pose.checkpoint: no HRNet-W32 checkpoint is configured; {fix}")
    return file_error(path, "HRNet-W32 checkpoint not found", fix)


def _unpickling_detail(message: str) -> str:
    """The informative line of torch's weights-only error (it wraps it in boilerplate)."""
    boilerplate = ("Weights only load failed", "Please file an issue", "Check the documentation")
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(boilerplate)]
    detail = (useful or lines or ["unreadable pickle"])[0]
    return detail.removeprefix("WeightsUnpickler error:").strip() or "unreadable pickle"


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a model state dict from a checkpoint file without unpickling arbitrary objects.

    Accepts a bare state dict or an mmengine/mmpose checkpoint (``{"state_dict": ...,
    "meta": ...}``); the metadata may hold numpy arrays and scalars. Anything else
    named in the pickle (classes, functions) makes the load fail before it runs.
    ``module.`` prefixes (DataParallel) are stripped.
    """
    path = Path(path)
    if not path.is_file():
        raise missing_checkpoint_error(path)
    try:
        with _numpy_allowed():
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = _unpickling_detail(str(exc))
        if not any(word in detail for word in ("GLOBAL", "global", "reduce", "Can only", "NEWOBJ")):
            raise file_error(path, f"is not a readable torch checkpoint ({detail})", "download it again") from None
        raise file_error(
            path,
            f"refuses to load: the checkpoint holds objects other than tensors and numpy arrays ({detail})",
            "get the checkpoint from its source again, or on a machine you trust re-save only its weights: "
            "torch.save(torch.load(src, weights_only=False)['state_dict'], dst)",
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise file_error(path, f"is not a readable torch checkpoint ({detail})", "download it again") from None
    state = obj.get("state_dict", obj) if isinstance(obj, Mapping) else None
    if not isinstance(state, Mapping) or not state or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise file_error(
            path, "holds no state dict (a mapping of parameter names to tensors)", "point pose.checkpoint to a model checkpoint"
        )
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load ``path``'s state dict into ``model`` strictly; mismatches raise one line naming the keys."""
    state = load_state_dict(path)
    result = model.load_state_dict(state, strict=False)
    problems = []
    if result.missing_keys:
        problems.append(f"{len(result.missing_keys)} missing (e.g. {', '.join(result.missing_keys[:3])})")
    if result.unexpected_keys:
        problems.append(f"{len(result.unexpected_keys)} unexpected (e.g. {', '.join(result.unexpected_keys[:3])})")
    if problems:
        raise file_error(
            path, f"does not fit the model: keys {'; '.join(problems)}",
            "use the checkpoint that belongs to pose.config",
        )


# ----------------------------------------------------------------------------- config


def config_path(config: str | Path) -> Path:
    """Resolve ``config``: an existing file, or a path relative to mmpose's shipped configs."""
    candidate = Path(config)
    if candidate.is_file():
        return candidate
    try:
        import mmpose
    except ImportError as exc:
        raise EpamnetError(f"mmpose: cannot import mmpose ({exc}); {INSTALL_HINT}") from None
    root = Path(mmpose.__file__).parent / ".mim" / "configs"
    shipped = root / str(config)
    if not shipped.is_file():
        raise file_error(
            config, "pose config not found (neither a file nor a config shipped with mmpose)",
            f"set pose.config to a config file or to a path under {root}",
        )
    return shipped


def strip_pretrained(cfg: Any) -> int:
    """Set every ``init_cfg`` that names pretrained weights to None, recursively; return how many.

    Pretrained ``init_cfg`` entries point to URLs (``https://...``, ``torchvision://``);
    with them gone, building or initialising the model never downloads.
    """
    count = 0
    if isinstance(cfg, Mapping):
        for key in list(cfg.keys()):
            value = cfg[key]
            if key == "init_cfg" and value is not None and _names_weights(value):
                cfg[key] = None
                count += 1
            else:
                count += strip_pretrained(value)
    elif isinstance(cfg, (list, tuple)):
        count += sum(strip_pretrained(v) for v in cfg)
    return count


def _names_weights(init_cfg: Any) -> bool:
    items = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    return any(
        isinstance(c, Mapping) and (c.get("type") == "Pretrained" or "checkpoint" in c) for c in items
    )


# ----------------------------------------------------------------------------- estimator


@dataclass
class PoseEstimator:
    """A built top-down pose model and its test pipeline: boxes in, COCO-17 keypoints out."""

    model: torch.nn.Module
    pipeline: Any  # mmcv Compose of the config's test pipeline
    dataset_meta: dict[str, Any]
    flip_test: bool
    device: str

    def set_flip_test(self, flip_test: bool) -> None:
        """Switch the flip test on or off (the model reads ``test_cfg`` at every forward)."""
        self.model.test_cfg["flip_test"] = bool(flip_test)
        self.flip_test = bool(flip_test)

    @torch.no_grad()
    def predict(self, crops: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """Estimate the keypoints of several person crops in one forward pass.

        ``crops``: (image, box) pairs, image H x W x 3 uint8 **BGR** (OpenCV order, as
        mmpose expects), box (x0, y0, x1, y1) in that image's pixels; crops may come
        from different frames. Returns keypoints N x 17 x 2 (image pixels) and scores
        N x 17, float32, in the order given.
        """
        if not crops:
            return np.zeros((0, NUM_KEYPOINTS, 2), np.float32), np.zeros((0, NUM_KEYPOINTS), np.float32)
        from mmengine.dataset import pseudo_collate

        data = []
        for image, box in crops:
            info = dict(
                img=image,
                bbox=np.asarray(box, dtype=np.float32).reshape(1, 4),
                bbox_score=np.ones(1, dtype=np.float32),
            )
            info.update(self.dataset_meta)
            data.append(self.pipeline(info))
        samples = self.model.test_step(pseudo_collate(data))
        keypoints = np.stack([s.pred_instances.keypoints[0] for s in samples]).astype(np.float32)
        scores = np.stack([s.pred_instances.keypoint_scores[0] for s in samples]).astype(np.float32)
        return keypoints, scores


def build_estimator(
    checkpoint: str | Path | None,
    *,
    config: str | Path = DEFAULT_CONFIG,
    flip_test: bool = True,
    device: str = "cpu",
    random_init: bool = False,
    seed: int = 0,
    channels_last: bool = True,
) -> PoseEstimator:
    """Build the pose model from ``config`` and load ``checkpoint`` (or random weights).

    ``random_init=True`` (tests, CI) ignores ``checkpoint`` and seeds torch with
    ``seed``; otherwise a missing or unset checkpoint raises a one-line error that says
    where to get it. ``flip_test`` sets the config's ``test_cfg.flip_test`` (averaging
    the heatmaps of the crop and its mirror image: more accurate, about 2x slower).
    ``channels_last`` stores the weights (and so the activations) NHWC, which oneDNN's CPU
    convolutions run faster (``benchmarks/bench_pose_batching.py``); results are unchanged
    up to float rounding.
    """
    if not random_init:
        if checkpoint is None or not Path(checkpoint).is_file():
            raise missing_checkpoint_error(checkpoint)
    apis = _mmpose_apis()
    from mmengine.config import Config
    from mmengine.dataset import Compose

    cfg_file = config_path(config)
    cfg = Config.fromfile(str(cfg_file))
    stripped = strip_pretrained(cfg._cfg_dict)
    cfg.model.setdefault("test_cfg", {})
    cfg.model.test_cfg["flip_test"] = bool(flip_test)
    from epamnet.pose.compat import quiet_pose_warnings

    with torch.random.fork_rng(devices=[]), quiet_pose_warnings():
        torch.manual_seed(seed)
        # cfg_options={} keeps init_model from touching init_cfg (we already did) and
        # checkpoint=None keeps it from calling mmengine's full-unpickling loader.
        model = apis.init_model(cfg, checkpoint=None, device="cpu", cfg_options={})
    if not random_init:
        load_weights(model, checkpoint)  # type: ignore[arg-type]
    model.to(device).eval()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
    logger.info(
        "pose model: %s (%s weights, flip test %s, channels_last %s, %d pretrained init_cfg removed, "
        "%.1f M parameters)",
        cfg_file.name, "random" if random_init else Path(checkpoint).name, flip_test, channels_last,  # type: ignore[arg-type]
        stripped, sum(p.numel() for p in model.parameters()) / 1e6,
    )
    return PoseEstimator(model=model, pipeline=pipeline, dataset_meta=dict(model.dataset_meta),
                         flip_test=bool(flip_test), device=device)


__all__ = [
    "CHECKPOINT_URL",
    "DEFAULT_CHECKPOINT_NAME",
    "DEFAULT_CONFIG",
    "PoseEstimator",
    "build_estimator",
    "config_path",
    "load_state_dict",
    "load_weights",
    "missing_checkpoint_error",
    "strip_pretrained",
]
