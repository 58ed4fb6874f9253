"""``clips`` (PKU-MMD): the untrimmed videos cut into one clip per label row."""

from __future__ import annotations

from epamnet.config import Params
from epamnet.datasets import DATASETS
from epamnet.datasets.registry import get_dataset
from epamnet.errors import EpamnetError
from epamnet.layout import Layout
from epamnet.logs import set_context
from epamnet.stages.checks import dataset_arg


def run(params: Params, dataset: str) -> None:
    ds = dataset_arg(params, dataset)
    if not get_dataset(ds).needs_clips:
        cut = next(d for d in map(get_dataset, DATASETS) if d.needs_clips)
        raise EpamnetError(
            f"clips: only {cut.display_name} has untrimmed videos to cut, not {ds!r}; run it with --dataset {cut.name}"
        )
    set_context(ds, "clips")
    lay = Layout.from_params(params)
    from epamnet.prepare.pku_clips import make_clips

    make_clips(lay.raw(ds), lay.skeletons(ds), lay.clips(ds), on_error=params.prepare.on_sample_error)
