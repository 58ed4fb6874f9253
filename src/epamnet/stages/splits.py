"""``splits``: train/val/test lists per protocol from the official naming rules."""

from __future__ import annotations

from epamnet.config import Params
from epamnet.layout import Layout
from epamnet.logs import set_context
from epamnet.stages.checks import dataset_arg


def run(params: Params, dataset: str) -> None:
    ds = dataset_arg(params, dataset)
    set_context(ds, "splits")
    lay = Layout.from_params(params)
    entry = params.datasets.entry(ds)
    from epamnet.prepare.splits import make_splits

    num_classes = params.synthetic_spec().num_classes if entry.source == "synthetic" else None
    make_splits(
        ds,
        lay.annotations(ds),
        lay.splits(ds),
        list(entry.protocols),
        num_classes=num_classes,
        pku_split_dir=lay.protocol_files(ds),
        source=entry.source,
    )
