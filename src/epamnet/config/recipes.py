"""Training recipes: ``recipe: synthetic | paper`` sets every training value at once.

A recipe fixes what the paper's training fixes, for each of the three trainings (the pose
stream, the RGB stream, their fusion): the model preset (and with it the clip lengths and
sizes), the pose stream's pipeline, epochs, batch per process, the learning-rate rule
(``lr = base_lr * batch_size * processes / reference_batch``), the schedule (cosine after
``warmup_epochs``), weight decay, gradient clipping, SyncBN and the seed.

Precedence: the recipe's values < the keys written in ``params.yaml`` (``model.*``,
``train.common``, then ``train.<stream>``). A key written under ``train.common`` beats the
recipe's value for every stream, including a recipe value given for one stream only.

``synthetic`` (the default) is the small CPU configuration of the embedded datasets.
``paper`` is the official EPAM-Net training for the real datasets; the official code
trains the fusion only, so the stream pre-training epochs are the spec's choice.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

Recipe = Literal["synthetic", "paper"]

TRAIN_SECTIONS = ("common", "pose", "rgb", "fusion")

#: recipe -> {"model": {...}, "train": {"common": {...}, "<stream>": {...}}}; each value
#: names its source.
RECIPES: dict[str, dict[str, Any]] = {
    "synthetic": {
        "model": {"preset": "synthetic"},  # small streams: RGB 8x64x64, pose 24x32x32 (config/model.py)
        "train": {
            "common": {
                "epochs": 10,  # enough for the embedded datasets on a CPU
                "batch_size": 8,
                "base_lr": 0.05,  # per reference_batch clips: 0.05 at 8 clips
                "reference_batch": 8,
                "momentum": 0.9,  # as the official trainer
                "weight_decay": 0.0003,  # as the official trainer
                "grad_clip": 40.0,  # as the official trainer
                "warmup_epochs": 0.0,
                "sync_bn": None,  # on for multi-process DDP only
                "seed": 100,  # as the official trainer
                "pose_pipeline": "fusion",
            },
            "pose": {},
            "rgb": {},
            "fusion": {"base_lr": 0.01},  # the streams arrive trained: a gentler rate
        },
    },
    "paper": {
        "model": {"preset": "paper"},  # X-ShiftNet: RGB 16x224x224, pose 48x56x56 (x3dTemporalshift.py, x3dTShiftPose.py)
        "train": {
            "common": {
                # spec: not in the official code (no stream training script); the released stream
                # checkpoints come from epochs 155-290 of runs of about 150-300 epochs.
                "epochs": 300,
                "batch_size": 12,  # per GPU (ddp_train_MMActionRecognition_model_pytorch.py)
                "base_lr": 0.0015,  # round(2 * 12 * 0.001 / 16, 4) (ddp_train_MMActionRecognition_model_pytorch.py)
                "reference_batch": 24,  # that lr is for 12 clips x 2 GPUs (same file)
                "momentum": 0.9,  # SGD (same file)
                "weight_decay": 0.0003,  # on all parameters (same file)
                "grad_clip": 40.0,  # L2 norm (ddp/trainer.py)
                "warmup_epochs": 0.0,  # CosineAnnealingLR per iteration, no warm-up (ddp/trainer.py)
                "sync_bn": True,  # convert_sync_batchnorm (ddp_train_MMActionRecognition_model_pytorch.py)
                "seed": 100,  # with cudnn deterministic (same file)
                "pose_pipeline": "fusion",  # the fusion pipeline (dataPrepMultiModality.py)
            },
            # the pose-only pipeline with its random resized crop (dataPrep.py)
            "pose": {"pose_pipeline": "official_pose"},
            # the RGB-only pipeline (dataPrepRGB.py): uniform frames, flip 0.5, normalise, pre-cropped
            # 224 videos; the project's RGB clip transforms are these
            "rgb": {},
            "fusion": {"epochs": 10},  # ddp_train_MMActionRecognition_model_pytorch.py default
        },
    },
}


def _dotted(tree: dict[str, Any], prefix: str) -> set[str]:
    return {f"{prefix}.{key}" for key in tree}


def recipe_keys(name: str) -> frozenset[str]:
    """Dotted keys a recipe sets: ``model.preset``, ``train.common.epochs``, ``train.pose.pose_pipeline``..."""
    table = RECIPES[name]
    keys = _dotted(table["model"], "model")
    for section in TRAIN_SECTIONS:
        keys |= _dotted(table["train"][section], f"train.{section}")
    return frozenset(keys)


def written_keys(data: dict[str, Any]) -> frozenset[str]:
    """Dotted keys of ``model`` and ``train.<section>`` that ``params.yaml`` writes itself."""
    keys: set[str] = set()
    model = data.get("model")
    if isinstance(model, dict):
        keys |= _dotted(model, "model")
    train = data.get("train")
    if isinstance(train, dict):
        for section in TRAIN_SECTIONS:
            if isinstance(train.get(section), dict):
                keys |= _dotted(train[section], f"train.{section}")
    return frozenset(keys)


def apply_recipe(data: dict[str, Any]) -> dict[str, Any]:
    """``params.yaml`` (parsed) with its recipe's values filled in where it sets none.

    An unknown recipe name, or a section that is not a mapping, is left for validation to
    report."""
    table = RECIPES.get(data.get("recipe", "synthetic"))
    if table is None:
        return data
    out = dict(data)
    model = out.get("model", {})
    if isinstance(model, dict):
        out["model"] = {**table["model"], **model}
    train = out.get("train", {})
    if not isinstance(train, dict):
        return out
    train = dict(train)
    user_common = train.get("common") or {}
    if not isinstance(user_common, dict):
        return out
    train["common"] = {**copy.deepcopy(table["train"]["common"]), **user_common}
    for stream in TRAIN_SECTIONS[1:]:
        user = train.get(stream) or {}
        if not isinstance(user, dict):
            continue
        # a key written under train.common beats the recipe's per-stream value
        recipe = {k: v for k, v in table["train"][stream].items() if k not in user_common}
        train[stream] = {**recipe, **user}
    out["train"] = train
    return out
