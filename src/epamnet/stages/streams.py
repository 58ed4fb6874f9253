"""What the ``train`` and ``evaluate`` stages share: one stream's datasets, task and run facts.

Builds, from ``params.yaml`` and the layout, the datasets of one (dataset, protocol)
split part for one stream (``pose``, ``rgb`` or ``fusion``), the task that turns a batch
into a loss and scores, and the facts that define a training run besides ``train.*``
(checked before a run resumes).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from epamnet.codedeps import code_sha256
from epamnet.config import Params
from epamnet.engine.tasks import FusionTask, SingleStreamTask
from epamnet.io.digest import sha256_file
from epamnet.layout import Layout
from epamnet.loader.dataset import (
    PoseClipConfig,
    PoseDataset,
    RGBClipConfig,
    RGBDataset,
    RGBPoseDataset,
    pose_pipeline_config,
)


def clip_configs(params: Params, stream: str = "fusion") -> tuple[PoseClipConfig, RGBClipConfig]:
    """Clip lengths and sizes from the model spec; transforms from ``data`` and the
    stream's ``train.<stream>.pose_pipeline``."""
    spec, data = params.model_spec(), params.data
    size = spec.pose.input_size
    pose = PoseClipConfig(
        clip_len=spec.pose.clip_len,
        heatmap_size=(size, size),
        sigma=data.sigma,
        use_score=data.use_score,
        padding=data.compact_padding,
        threshold=data.compact_threshold,
        allow_imgpad=data.allow_imgpad,
    )
    pose = pose_pipeline_config(pose, params.train_config(stream).pose_pipeline)
    rgb = RGBClipConfig(clip_len=spec.rgb.clip_len, size=spec.rgb.input_size)
    return pose, rgb


def build_dataset(params: Params, dataset: str, protocol: str, stream: str, part: str, *, train_mode: bool):
    """The torch Dataset of one split part for one stream."""
    lay = Layout.from_params(params)
    pose, rgb = clip_configs(params, stream)
    kwargs = dict(
        split_file=lay.split_file(dataset, protocol),
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


def run_info(
    params: Params, split: dict[str, Any], num_classes: int, annotations: Path, init: dict[str, Path]
) -> dict[str, Any]:
    """What defines a training run besides ``train.*``: checked when the run is resumed.

    The training code (hash of its files), the model spec, the clip transforms, the class
    count, the split lists and the prepared annotations (hashes; re-cropped videos change
    the annotations' crop boxes and keypoints too) and, for the fusion, the stream weights
    it starts from (hashes).
    A re-run after a change to any of them must not resume, or republish, the old run.
    """
    spec = params.model_spec().to_dict()
    return json.loads(json.dumps({
        "model": spec,
        "data": params.data.model_dump(),
        "runtime": params.runtime.model_dump(),
        "num_classes": num_classes,
        "split_sha256": hashlib.sha256(json.dumps(split, sort_keys=True).encode()).hexdigest(),
        "annotations_sha256": sha256_file(annotations),
        # An edit to the training code makes both orchestrators re-run the stage: it must not
        # then resume (or, finished, republish) the weights the old code trained.
        "code_sha256": code_sha256("train_unimodal"),
        **({"init_sha256": {k: sha256_file(v) for k, v in init.items()}} if init else {}),
    }))  # plain lists and dicts: loadable with weights_only


def stream_inputs(params: Params, dataset: str, protocol: str, stream: str) -> dict[str, Path]:
    """The files a stream's training reads, by name (recorded with their hashes in provenance.json)."""
    lay = Layout.from_params(params)
    files = {"annotations": lay.annotations(dataset), "split": lay.split_file(dataset, protocol)}
    if stream != "pose":
        files.update({f"videos/{p.name}": p for p in lay.prepared_videos(dataset, params.prepare.shards)})
    if stream == "fusion":
        files.update({f"init/{s}": lay.model_file(dataset, protocol, s) for s in ("pose", "rgb")})
    return files
