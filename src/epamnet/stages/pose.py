"""``pose``: 2D skeletons of every raw video, the dataset's own or the merged extraction shards."""

from __future__ import annotations

from epamnet.config import Params
from epamnet.layout import Layout
from epamnet.logs import set_context
from epamnet.stages.checks import dataset_arg


def run(params: Params, dataset: str) -> None:
    ds = dataset_arg(params, dataset)
    set_context(ds, "pose")
    lay = Layout.from_params(params)
    if params.datasets.entry(ds).skeletons == "mmpose":
        from epamnet.prepare.pose import merge_extracted

        merge_extracted([lay.pose_shard(ds, i) for i in range(params.pose.shards)], lay.skeletons(ds))
        return
    from epamnet.prepare.pose import provided_skeletons

    provided_skeletons(ds, lay.raw(ds), lay.skeletons(ds))
