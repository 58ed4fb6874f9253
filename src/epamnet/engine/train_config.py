"""Training settings (:class:`TrainConfig`), validated on construction.

Learning rate
-------------
``lr = base_lr * (batch_size * world_size) / reference_batch`` where ``batch_size`` is
per process and ``world_size`` the *real* number of processes. The defaults reproduce
the official run: 0.0015 for 12 samples x 2 GPUs = 24 (the official script computed
round(2 * 12 * 0.001 / 16, 4) with the GPU count hard-coded to 2; here it follows the
actual world size, so 1 GPU x 12 gives 0.00075 and 4 GPUs x 12 give 0.003).

Processes
---------
``nproc_per_node`` > 1 makes ``epamnet train`` re-launch itself as that many ``torchrun``
processes on this node (:mod:`epamnet.engine.launch`): one per GPU, or several CPU
processes (Gloo). A process that is already under ``torchrun`` trains as one rank.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from epamnet.errors import EpamnetError

Selection = Literal["val_top1", "val_mean_class_acc"]


def _bad(key: str, problem: str, value: Any) -> EpamnetError:
    return EpamnetError(f"train.{key}: {problem} (got {value!r}); fix it in params.yaml")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping settings for :func:`epamnet.engine.train`.

    Defaults follow the official EPAM-Net fusion training (spec section 5).
    """

    epochs: int = 10
    batch_size: int = 12  # per process
    base_lr: float = 0.0015  # lr at reference_batch samples per step
    reference_batch: int = 24  # 12 per GPU x 2 GPUs in the official run
    momentum: float = 0.9
    weight_decay: float = 3e-4  # on all parameters, as official
    grad_clip: float | None = 40.0  # L2 norm (clip_grad_norm_); None disables
    warmup_epochs: float = 0.0  # linear warm-up before the cosine (official: none)
    num_workers: int = 0
    seed: int = 100
    amp: bool = False  # mixed precision; GPU only (ignored with a log line on CPU)
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    sync_bn: bool | None = None  # None: on for multi-GPU DDP, off otherwise
    selection: Selection = "val_top1"  # what picks model.pt when a validation set is given
    keep_checkpoints: int = 2  # epoch checkpoints kept (the selected one is always kept)
    eval_batch_size: int | None = None  # None: batch_size
    deterministic: bool = True  # deterministic algorithms (CPU) / cudnn.deterministic (GPU)
    nproc_per_node: int = 1  # training processes (torchrun DDP) on one node; 1: no torchrun

    def __post_init__(self) -> None:
        def positive_int(key: str, minimum: int = 1) -> None:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise _bad(key, f"must be an integer >= {minimum}", value)

        def finite_float(key: str, minimum: float, strict: bool) -> None:
            value = getattr(self, key)
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or value < minimum or (strict and value == minimum):
                raise _bad(key, f"must be a number {'>' if strict else '>='} {minimum}", value)

        positive_int("epochs")
        positive_int("batch_size")
        positive_int("reference_batch")
        positive_int("num_workers", 0)
        positive_int("keep_checkpoints")
        positive_int("nproc_per_node")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**31:
            raise _bad("seed", "must be an integer in [0, 2**31)", self.seed)
        finite_float("base_lr", 0.0, strict=True)
        finite_float("weight_decay", 0.0, strict=False)
        finite_float("warmup_epochs", 0.0, strict=False)
        finite_float("momentum", 0.0, strict=False)
        if self.momentum >= 1:
            raise _bad("momentum", "must be in [0, 1)", self.momentum)
        if self.grad_clip is not None:
            finite_float("grad_clip", 0.0, strict=True)
        if self.warmup_epochs >= self.epochs:
            raise _bad("warmup_epochs", f"must be smaller than epochs ({self.epochs})", self.warmup_epochs)
        if self.eval_batch_size is not None:
            positive_int("eval_batch_size")
        if self.selection not in ("val_top1", "val_mean_class_acc"):
            raise _bad("selection", "must be 'val_top1' or 'val_mean_class_acc'", self.selection)
        if not isinstance(self.device, str) or not self.device:
            raise _bad("device", "must be 'auto', 'cpu', 'cuda' or 'cuda:N'", self.device)
        for key in ("amp", "deterministic"):
            if not isinstance(getattr(self, key), bool):
                raise _bad(key, "must be true or false", getattr(self, key))
        if self.sync_bn is not None and not isinstance(self.sync_bn, bool):
            raise _bad("sync_bn", "must be true, false or null", self.sync_bn)

    def lr(self, world_size: int) -> float:
        """Learning rate for ``world_size`` processes: linear scaling by the global batch."""
        return self.base_lr * (self.batch_size * world_size) / self.reference_batch

    def as_dict(self) -> dict[str, Any]:
        """Plain-typed copy (stored in checkpoints, compared on resume)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a mapping (e.g. the ``train`` section of params.yaml); unknown keys are errors."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise EpamnetError(f"train.{unknown[0]}: unknown setting; allowed: {', '.join(sorted(known))}")
        return cls(**values)


# Settings that may change between a run and its resumption without changing the weights.
# (nproc_per_node: the checkpoint's world size is checked on its own, whatever launched it.)
RESUME_FREE_KEYS = frozenset({"keep_checkpoints", "eval_batch_size", "nproc_per_node"})
# Settings that may change on resume but can change the numbers (logged as a warning):
# another device changes floating-point results, other worker counts change which
# worker draws the random augmentations of a sample.
RESUME_WARN_KEYS = frozenset({"num_workers", "device"})
