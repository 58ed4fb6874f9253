"""Training settings: ``train.common``, ``train.<stream>`` and :class:`TrainConfig`.

Learning rate
-------------
``lr = base_lr * (batch_size * world_size) / reference_batch`` where ``batch_size`` is
per process and ``world_size`` the *real* number of processes. The defaults reproduce
the official run: 0.0015 for 12 samples x 2 GPUs = 24 (the official script computed
round(2 * 12 * 0.001 / 16, 4) with the GPU count hard-coded to 2; here it follows the
actual world size, so 1 GPU x 12 gives 0.00075 and 4 GPUs x 12 give 0.003).

Pose pipeline
-------------
``pose_pipeline`` picks the pose stream's clip transforms: ``fusion`` (default) is the
official fusion pipeline, through which the official code also pre-trained the pose
stream; ``official_pose`` is the official pose-only pipeline (compaction with
``allow_imgpad``, then in training ``Resize(-1, 64)``, ``RandomResizedCrop`` of area
0.56-1 and the resize to the heatmap size; :mod:`epamnet.loader.dataset`). The RGB
stream has no pose input and ignores it; the fusion stream must keep ``fusion`` (the
crop would move the heatmaps but not the RGB frames), which ``params.yaml`` validation
checks.

Model selection
---------------
``selection: validation`` (default) selects on the protocol's validation list where it has
one (the dataset's reported metric), else keeps the last epoch; the test list is never
read during training. ``selection: test`` is the official protocol, opt-in: every epoch is
evaluated on the test list and the best one by the reported metric is kept, so its test
numbers are optimistic; every file and figure made from such a run says so.

Processes
---------
``nproc_per_node`` > 1 makes ``epamnet train`` re-launch itself as that many ``torchrun``
processes on this node (:mod:`epamnet.engine.launch`): one per GPU, or several CPU
processes (Gloo). A process that is already under ``torchrun`` trains as one rank.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from epamnet.config.base import (
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Spec,
    Strict,
    rule_error,
)

#: ``train.*.selection``, the split that picks ``model.pt``: ``validation`` (default: the
#: protocol's validation list where it has one, else the last epoch) or ``test`` (the official
#: protocol: the best test value each epoch; optimistic, opt-in only; see "Model selection").
SelectionSplit = Literal["validation", "test"]
#: What :func:`epamnet.engine.train` selects on: ``<split>_<metric>`` (a column of metrics.csv).
Selection = Literal["val_top1", "val_mean_class_acc", "test_top1", "test_mean_class_acc"]
#: The sentence every file and figure made from a test-selected run carries.
TEST_SELECTION_NOTE = (
    "model selected on the test split (official protocol): the test numbers are optimistic "
    "and not comparable to a validation-selected run"
)


def selects_on_test(selection: str | None) -> bool:
    """Whether a recorded ``selection`` (metrics.json, evaluation.json) chose on the test split."""
    return bool(selection) and str(selection).startswith("test")
PosePipeline = Literal["fusion", "official_pose"]  # the pose stream's clip transforms
Momentum = Annotated[float, Field(ge=0.0, lt=1.0)]
Seed = Annotated[int, Field(ge=0, lt=2**31)]
Device = Annotated[str, Field(min_length=1)]  # "auto" | "cpu" | "cuda" | "cuda:N"
#: A checkpoint to start from: a path (relative: to the repository root) or a bare file name,
#: looked for under ``paths.downloads`` (:meth:`epamnet.layout.Layout.init_file`).
InitFile = Annotated[str, Field(min_length=1)]


class TrainSettings(Spec):
    """``train.common``: optimisation and bookkeeping settings shared by the streams.

    Defaults follow the official EPAM-Net fusion training (spec section 5); in ``params.yaml``
    the recipe (:mod:`epamnet.config.recipes`) supplies the values a file leaves out.
    """

    where = "train"

    epochs: PositiveInt = 10
    batch_size: PositiveInt = 12  # per process
    base_lr: PositiveFloat = 0.0015  # lr at reference_batch samples per step
    reference_batch: PositiveInt = 24  # 12 per GPU x 2 GPUs in the official run
    momentum: Momentum = 0.9
    weight_decay: NonNegativeFloat = 3e-4  # on all parameters, as official
    grad_clip: PositiveFloat | None = 40.0  # L2 norm (clip_grad_norm_); None disables
    warmup_epochs: NonNegativeFloat = 0.0  # linear warm-up before the cosine (official: none)
    num_workers: NonNegativeInt = 0
    seed: Seed = 100
    amp: bool = False  # mixed precision; GPU only (ignored with a log line on CPU)
    device: Device = "auto"
    sync_bn: bool | None = None  # None: on for multi-GPU DDP, off otherwise
    keep_checkpoints: PositiveInt = 2  # epoch checkpoints kept (the selected one is always kept)
    eval_batch_size: PositiveInt | None = None  # None: batch_size
    deterministic: bool = True  # deterministic algorithms (CPU) / cudnn.deterministic (GPU)
    nproc_per_node: PositiveInt = 1  # training processes (torchrun DDP) on one node; 1: no torchrun
    # The pose stream's clip transforms: fusion (official fusion pipeline) | official_pose (the
    # official pose-only one, with a random resized crop); see "Pose pipeline" above.
    pose_pipeline: PosePipeline = "fusion"
    init: InitFile | None = None  # weights to start from (released or converted checkpoint); None: from scratch
    # validation (default) | test: the official protocol, optimistic; see "Model selection" above.
    selection: SelectionSplit = "validation"


class TrainOverrides(Strict):
    """``train.<stream>``: any key of ``train.common``, for one stream; a key left out keeps
    the common value. The types are :class:`TrainSettings`' own."""

    epochs: PositiveInt | None = None
    batch_size: PositiveInt | None = None
    base_lr: PositiveFloat | None = None
    reference_batch: PositiveInt | None = None
    momentum: Momentum | None = None
    weight_decay: NonNegativeFloat | None = None
    grad_clip: PositiveFloat | None = None
    warmup_epochs: NonNegativeFloat | None = None
    num_workers: NonNegativeInt | None = None
    seed: Seed | None = None
    amp: bool | None = None
    device: Device | None = None
    sync_bn: bool | None = None
    keep_checkpoints: PositiveInt | None = None
    eval_batch_size: PositiveInt | None = None
    deterministic: bool | None = None
    nproc_per_node: PositiveInt | None = None
    pose_pipeline: PosePipeline | None = None
    init: InitFile | None = None
    selection: SelectionSplit | None = None


class TrainConfig(TrainSettings):
    """The settings :func:`epamnet.engine.train` runs with: one stream's ``train.*`` values
    and what picks ``model.pt``: ``<split>_<metric>``, set by the train stage from
    ``selection`` and the dataset's reported metric (a bare ``validation``/``test``, as in
    ``params.yaml``, means that split's top-1)."""

    selection: Selection = "val_top1"  # type: ignore[assignment]

    @field_validator("selection", mode="before")
    @classmethod
    def _split_to_column(cls, value: Any) -> Any:
        return {"validation": "val_top1", "test": "test_top1"}.get(value, value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _warmup_shorter_than_training(self) -> TrainConfig:
        if self.warmup_epochs >= self.epochs:
            raise rule_error(
                "warmup_epochs", f"must be smaller than epochs ({self.epochs}), got {self.warmup_epochs!r}"
            )
        return self

    def lr(self, world_size: int) -> float:
        """Learning rate for ``world_size`` processes: linear scaling by the global batch."""
        return self.base_lr * (self.batch_size * world_size) / self.reference_batch

    def as_dict(self) -> dict[str, Any]:
        """Plain-typed copy (stored in checkpoints, compared on resume)."""
        return self.model_dump()


# Settings that may change between a run and its resumption without changing the weights.
# (nproc_per_node: the checkpoint's world size is checked on its own, whatever launched it.)
RESUME_FREE_KEYS = frozenset({"keep_checkpoints", "eval_batch_size", "nproc_per_node"})
# Settings that may change on resume but can change the numbers (logged as a warning):
# another device changes floating-point results, other worker counts change which
# worker draws the random augmentations of a sample.
RESUME_WARN_KEYS = frozenset({"num_workers", "device"})
