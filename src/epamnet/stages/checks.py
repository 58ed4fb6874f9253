"""Command-line values checked against ``params.yaml``, with one-line errors saying the fix."""

from __future__ import annotations

from epamnet.config import Params
from epamnet.errors import EpamnetError
from epamnet.io.shards import check_shard


def dataset_arg(params: Params, name: str) -> str:
    if name not in params.datasets.run:
        raise EpamnetError(
            f"params.yaml: dataset {name!r} is not in datasets.run {params.datasets.run}; add it there or pick one of them"
        )
    return name


def protocol_arg(params: Params, dataset: str, protocol: str) -> str:
    protocols = params.datasets.entry(dataset).protocols
    if protocol not in protocols:
        raise EpamnetError(
            f"params.yaml: protocol {protocol!r} is not in datasets.{dataset}.protocols {protocols}; add it there or pick one of them"
        )
    return protocol


def shard_arg(stage: str, shard: int, n: int, key: str) -> int:
    """Check a shard number against the shard count ``n`` (params key ``key``); return ``n``."""
    check_shard(stage, shard, n, key)
    return n
