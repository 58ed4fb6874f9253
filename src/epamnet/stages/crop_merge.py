"""``crop-merge``: the crop shards merged into the prepared annotation file."""

from __future__ import annotations

from epamnet.config import Params
from epamnet.layout import Layout
from epamnet.logs import set_context
from epamnet.stages.checks import dataset_arg


def run(params: Params, dataset: str) -> None:
    ds = dataset_arg(params, dataset)
    set_context(ds, "crop-merge")
    lay = Layout.from_params(params)
    from epamnet.prepare.crop import merge_shards

    merge_shards([lay.crop_shard(ds, i) for i in range(params.prepare.shards)], lay.annotations(ds))
