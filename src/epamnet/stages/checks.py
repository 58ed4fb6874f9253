"""Command-line values checked against ``params.yaml``, with one-line errors saying the fix."""

from __future__ import annotations

from epamnet.config import STREAMS, Params
from epamnet.datasets import PROTOCOLS
from epamnet.errors import EpamnetError, did_you_mean
from epamnet.io.shards import check_shard


def dataset_arg(params: Params, name: str) -> str:
    """``--dataset``: a dataset the pipeline knows and ``datasets.run`` lists."""
    run = params.datasets.run
    if name not in PROTOCOLS:
        raise EpamnetError(
            f"unknown dataset {name!r}; use one of {', '.join(run)} (datasets.run in params.yaml)"
            f"{did_you_mean(name, PROTOCOLS)}"
        )
    if name not in run:
        raise EpamnetError(
            f"params.yaml: dataset {name!r} is not in datasets.run [{', '.join(run)}]; "
            f"add it to datasets.run or pick one of them"
        )
    return name


def protocol_arg(params: Params, dataset: str, protocol: str) -> str:
    """``--protocol``: one of the dataset's protocols that ``datasets.<dataset>.protocols`` lists."""
    enabled = params.datasets.entry(dataset).protocols
    if protocol not in PROTOCOLS[dataset]:
        elsewhere = [name for name, protocols in PROTOCOLS.items() if protocol in protocols]
        owners = f" ({', '.join(elsewhere)} {'have' if len(elsewhere) > 1 else 'has'} it)" if elsewhere else ""
        raise EpamnetError(
            f"{dataset} has no protocol {protocol!r}{owners}; use one of {', '.join(enabled)} "
            f"(datasets.{dataset}.protocols in params.yaml){did_you_mean(protocol, PROTOCOLS[dataset])}"
        )
    if protocol not in enabled:
        raise EpamnetError(
            f"params.yaml: protocol {protocol!r} is not in datasets.{dataset}.protocols [{', '.join(enabled)}]; "
            f"add it to datasets.{dataset}.protocols or pick one of them"
        )
    return protocol


def shard_arg(stage: str, shard: int, n: int, key: str) -> int:
    """Check a shard number against the shard count ``n`` (params key ``key``); return ``n``."""
    check_shard(stage, shard, n, key)
    return n


#: ``train.*`` settings ``epamnet check`` shows for each training, in this order.
SHOWN_TRAIN_KEYS = (
    "epochs", "batch_size", "nproc_per_node", "base_lr", "reference_batch", "warmup_epochs", "momentum",
    "weight_decay", "grad_clip", "sync_bn", "seed", "init",
)  # fmt: skip


def training_summary(params: Params) -> list[str]:
    """The effective settings of each training (pose, rgb, fusion), each value with its origin
    (``params.yaml``, ``recipe <name>`` or ``default``): what ``epamnet check`` prints."""
    spec = params.model_spec()
    preset = params.origin("model.preset")
    lines = [f"recipe: {params.recipe}"]
    for stream in STREAMS:
        cfg = params.train_config(stream)
        rows: list[tuple[str, str, str]] = [("model.preset", params.model.preset, preset)]
        for part in ("pose", "rgb") if stream == "fusion" else (stream,):
            size = getattr(spec, part)
            for key in ("clip_len", "input_size"):
                written = getattr(getattr(params.model, part), key) is not None  # model.<part>.<key>
                rows.append((f"{part}.{key}", str(getattr(size, key)), "params.yaml" if written else preset))
        if stream != "rgb":
            rows.append(("pose_pipeline", cfg.pose_pipeline, params.origin(f"train.{stream}.pose_pipeline")))
        for key in SHOWN_TRAIN_KEYS:
            rows.append((key, str(getattr(cfg, key)), params.origin(f"train.{stream}.{key}")))
        lr = cfg.lr(cfg.nproc_per_node)
        rule = f"{cfg.base_lr:g} x {cfg.batch_size} x {cfg.nproc_per_node} / {cfg.reference_batch}"
        rows.append(("lr", f"{lr:g} = {rule}", "base_lr x batch_size x nproc_per_node / reference_batch"))
        rows.append(("schedule", f"cosine to 0 after {cfg.warmup_epochs:g} warm-up epochs", "fixed"))
        lines.append(f"train {stream}:")
        width = max(len(name) for name, _, _ in rows)
        vwidth = max(len(value) for _, value, _ in rows)
        lines += [f"  {name:<{width}}  {value:<{vwidth}}  [{origin}]" for name, value, origin in rows]
    return lines
