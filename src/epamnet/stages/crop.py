"""``crop``: one global box per video, cropped and resized, for one shard of a dataset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from epamnet.config import Params
from epamnet.datasets.registry import get_dataset
from epamnet.layout import Layout
from epamnet.logs import set_context
from epamnet.stages.checks import dataset_arg, shard_arg


def _video_finder(lay: Layout, ds: str) -> Callable[[str], Path]:
    """Map a sample's frame_dir to the video ``crop`` reads: its action clip, or its raw video."""
    info = get_dataset(ds)
    if info.needs_clips:
        return lambda name: lay.clip_video(ds, name)
    raw = lay.raw(ds)
    return lambda name: raw / info.video_relpath(name)


def run(params: Params, dataset: str, shard: int) -> None:
    ds = dataset_arg(params, dataset)
    n = shard_arg("crop", shard, params.prepare.shards, "prepare.shards")
    set_context(ds, f"crop shard {shard}")
    lay = Layout.from_params(params)
    skeletons, _ = lay.crop_source(ds)
    crop = params.prepare.crop
    from epamnet.prepare.crop import crop_shard

    crop_shard(
        skeletons,
        _video_finder(lay, ds),
        shard,
        n,
        lay.crop_shard(ds, shard),
        lay.crop_videos(ds, shard),
        size=crop.size,
        padding=crop.padding,
        threshold=crop.threshold,
        on_error=params.prepare.on_sample_error,
        root=lay.prepared(ds),
    )
