"""``pose-extract``: HRNet-W32 (mmpose) skeletons of one shard of a dataset's raw videos."""

from __future__ import annotations

from epamnet.config import Params
from epamnet.errors import EpamnetError
from epamnet.layout import Layout
from epamnet.logs import set_context
from epamnet.stages.checks import dataset_arg, shard_arg


def run(params: Params, dataset: str, shard: int) -> None:
    ds = dataset_arg(params, dataset)
    if params.datasets.entry(ds).skeletons != "mmpose":
        raise EpamnetError(
            f"params.yaml: datasets.{ds}.skeletons is {params.datasets.entry(ds).skeletons!r}; "
            "set it to 'mmpose' to extract skeletons with HRNet"
        )
    shard_arg("pose-extract", shard, params.pose.shards, "pose.shards")
    set_context(ds, f"pose shard {shard}")
    lay = Layout.from_params(params)
    from epamnet.prepare.pose import extract_skeletons
    from epamnet.runtime import set_torch_threads

    set_torch_threads(params.runtime.threads)
    extract_skeletons(ds, lay.raw(ds), params.pose, shard, lay.pose_shard(ds, shard))
