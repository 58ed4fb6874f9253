"""The ``train`` and ``evaluate`` stages: params.yaml + prepared data -> models -> metrics.

This is the glue between the pipeline's files (:mod:`epamnet.layout`) and the generic
engine: it builds the datasets of one (dataset, protocol) split, the model of one
stream, and calls :func:`~epamnet.engine.trainer.train` or
:func:`~epamnet.engine.evaluate.evaluate`.

- ``pose`` and ``rgb``: the X-ShiftNet classifiers, trained from scratch.
- ``fusion``: EPAM-Net initialised from both trained streams (strict loading, nothing
  frozen; the attention starts from its own initialisation), trained end to end with
  CE(rgb) + CE(pose).

Model selection uses the protocol's validation list where it has one (the metric the
paper reports for that dataset), otherwise the last epoch; never the test list.
Training works in ``models/.work/...`` (checkpoints survive an interrupted run, so a
re-run resumes; a re-run after the settings or the inputs changed starts over instead,
see :func:`run_info`) and publishes ``metrics.csv``, ``metrics.json`` and then
``model.pt`` atomically when done.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from epamnet.config import Params
from epamnet.data.dataset import PoseClipConfig, PoseDataset, RGBClipConfig, RGBDataset, RGBPoseDataset
from epamnet.engine.distributed import distributed, resolve_device, world_size_from_env
from epamnet.engine.evaluate import evaluate, write_evaluation
from epamnet.engine.tasks import FusionTask, SingleStreamTask
from epamnet.engine.trainer import seed_everything, stale_checkpoint, train
from epamnet.errors import EpamnetError
from epamnet.io.atomic import atomic_path
from epamnet.layout import Layout
from epamnet.models.convert import read_checkpoint
from epamnet.models.epam import build_model, load_stream_weights

logger = logging.getLogger(__name__)

#: The metric each dataset's results are reported in (Toyota: mean class accuracy).
REPORTED_METRIC = {"ntu60": "top1", "ntu120": "top1", "pku": "top1", "toyota": "mean_class_acc"}


def clip_configs(params: Params) -> tuple[PoseClipConfig, RGBClipConfig]:
    """Clip lengths and sizes from the model spec; transforms from ``data``."""
    spec, data = params.model_spec(), params.data
    size = spec.pose.input_size
    pose = PoseClipConfig(
        clip_len=spec.pose.clip_len,
        heatmap_size=(size, size),
        sigma=data.sigma,
        use_score=data.use_score,
        padding=data.padding,
        threshold=data.threshold,
        allow_imgpad=data.allow_imgpad,
    )
    rgb = RGBClipConfig(clip_len=spec.rgb.clip_len, size=spec.rgb.input_size)
    return pose, rgb


def split_file(lay: Layout, dataset: str, protocol: str) -> Path:
    return lay.splits(dataset) / f"{protocol}.json"


def read_split(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EpamnetError(f"{path}: split file not found; run the splits stage first") from None
    except json.JSONDecodeError as exc:
        raise EpamnetError(f"{path}: not valid JSON ({exc.msg}); rerun the splits stage") from None


def build_dataset(params: Params, dataset: str, protocol: str, stream: str, part: str, *, train_mode: bool):
    """The torch Dataset of one split part for one stream."""
    lay = Layout.from_params(params)
    pose, rgb = clip_configs(params)
    kwargs = dict(
        split_file=split_file(lay, dataset, protocol),
        part=part,
        annotations=lay.annotations(dataset),
        prepared_root=lay.prepared(dataset),
        train=train_mode,
        flip_ratio=params.data.flip_ratio,
        seed=params.train_config(stream).seed,
    )
    if stream == "pose":
        return PoseDataset(pose=pose, **kwargs)
    if stream == "rgb":
        return RGBDataset(rgb=rgb, **kwargs)
    return RGBPoseDataset(pose=pose, rgb=rgb, **kwargs)


def task_for(stream: str):
    if stream == "pose":
        return SingleStreamTask(input_key="heatmaps")
    if stream == "rgb":
        return SingleStreamTask(input_key="imgs")
    return FusionTask()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_info(
    params: Params, split: dict[str, Any], num_classes: int, annotations: Path, init: dict[str, Path]
) -> dict[str, Any]:
    """What defines a training run besides ``train.*``: checked when the run is resumed.

    The model spec, the clip transforms, the class count, the split lists and the
    prepared annotations (hashes; re-cropped videos change the annotations' crop boxes
    and keypoints too) and, for the fusion, the stream weights it starts from (hashes).
    A re-run after a change to any of them must not resume, or republish, the old run.
    """
    spec = dataclasses.asdict(params.model_spec())
    spec.pop("name", None)
    return json.loads(json.dumps({
        "model": spec,
        "data": params.data.model_dump(),
        "num_classes": num_classes,
        "split_sha256": hashlib.sha256(json.dumps(split, sort_keys=True).encode()).hexdigest(),
        "annotations_sha256": _sha256(annotations),
        **({"init_sha256": {k: _sha256(v) for k, v in init.items()}} if init else {}),
    }))  # plain lists and dicts: loadable with weights_only


def _publish(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def train_stage(params: Params, dataset: str, protocol: str, stream: str, *, resume: bool = True) -> dict[str, Any]:
    """Train one stream (or the fusion) of one (dataset, protocol); return metrics.json."""
    lay = Layout.from_params(params)
    split = read_split(split_file(lay, dataset, protocol))
    num_classes = split["num_classes"]
    cfg = params.train_config(stream)
    has_val = bool(split.get("val"))
    metric = REPORTED_METRIC[dataset]
    cfg = dataclasses.replace(cfg, selection="val_mean_class_acc" if metric == "mean_class_acc" else "val_top1")

    seed_everything(cfg.seed)
    model = build_model(params.model_spec(), num_classes, stream)
    init: dict[str, Path] = {}
    if stream == "fusion":
        for part in ("pose", "rgb"):
            weights = init[part] = lay.model_file(dataset, protocol, part)
            load_stream_weights(model, read_checkpoint(weights), part, weights)
            logger.info("fusion: %s stream initialised from %s", part, weights)

    train_set = build_dataset(params, dataset, protocol, stream, "train", train_mode=True)
    val_set = build_dataset(params, dataset, protocol, stream, "val", train_mode=False) if has_val else None
    logger.info(
        "train %s %s %s: %d train / %s val clips, %d classes, %d epochs; selection: %s",
        dataset, protocol, stream, len(train_set), len(val_set) if val_set is not None else "no", num_classes,
        cfg.epochs, cfg.selection if has_val else "last epoch",
    )
    work = lay.train_work(dataset, protocol, stream)
    info = run_info(params, split, num_classes, lay.annotations(dataset), init)
    if resume:
        # Snakemake and DVC re-run this stage because a setting or an input changed: the
        # checkpoints of the earlier run are then another run's, and training starts over.
        why = stale_checkpoint(work, cfg, world_size_from_env(), info)
        if why is not None:
            logger.warning("not resuming: %s; starting over", why)
            resume = False
    # Hold the torchrun process group (if any) across train(), which then leaves it up,
    # so that the rank is still known here: rank 0 alone publishes the outputs.
    with distributed(cfg.device) as ctx:
        result = train(
            task_for(stream), model, train_set, val_set, cfg, work, resume=resume, num_classes=num_classes,
            run_info=info,
        )
        if not ctx.is_main:
            return result.metrics
        out = lay.train_dir(dataset, protocol, stream)
        # model.pt last: the file later stages read never appears without its metrics.
        for name in ("metrics.csv", "metrics.json", "model.pt"):
            _publish(work / name, out / name)
        logger.info("published %s (%d process(es))", out, ctx.world_size)
    return result.metrics


def evaluate_stage(params: Params, dataset: str, protocol: str, stream: str) -> dict[str, Any]:
    """Evaluate one trained stream on the protocol's test list (1 clip per video)."""
    lay = Layout.from_params(params)
    split = read_split(split_file(lay, dataset, protocol))
    num_classes = split["num_classes"]
    cfg = params.train_config(stream)
    model = build_model(params.model_spec(), num_classes, stream)
    weights = lay.model_file(dataset, protocol, stream)
    from epamnet.models.convert import load_state_strict

    load_state_strict(model, read_checkpoint(weights), weights)
    test_set = build_dataset(params, dataset, protocol, stream, "test", train_mode=False)
    device = resolve_device(cfg.device)
    result = evaluate(
        task_for(stream), model.to(device), test_set,
        batch_size=cfg.eval_batch_size or cfg.batch_size, device=device, num_classes=num_classes,
        num_workers=cfg.num_workers, desc=f"eval {dataset} {protocol} {stream}",
    )
    trained = json.loads(lay.train_metrics(dataset, protocol, stream).read_text(encoding="utf-8"))
    extra = {
        "dataset": dataset,
        "protocol": protocol,
        "stream": stream,
        "source": split.get("source", "real"),
        "reported_metric": REPORTED_METRIC[dataset],
        "test_clips": len(test_set),
        "num_classes": num_classes,
        "selection": trained.get("selection"),
        "selected_epoch": trained.get("selected_epoch"),
    }
    out = lay.eval_dir(dataset, protocol, stream)
    write_evaluation(
        result, out, sample_ids=[name for name, _ in split["test"]], class_names=split["classes"], extra=extra
    )
    summary = result.summary()
    logger.info("evaluate %s %s %s: %s", dataset, protocol, stream, {k: round(v, 4) for k, v in summary.items() if isinstance(v, float)})
    return summary
