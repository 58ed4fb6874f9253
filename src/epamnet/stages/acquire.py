"""``acquire``: a dataset's raw files, generated (synthetic) or downloaded and verified (real)."""

from __future__ import annotations

from epamnet.config import Params
from epamnet.layout import Layout
from epamnet.logs import set_context
from epamnet.stages.checks import dataset_arg


def run(params: Params, dataset: str) -> None:
    ds = dataset_arg(params, dataset)
    set_context(ds, "acquire")
    lay = Layout.from_params(params)
    if params.datasets.entry(ds).source == "synthetic":
        from epamnet.prepare.synthetic.formats import generate

        generate(ds, lay.raw(ds), params.synthetic_spec(), seed=params.synthetic.seed)
        return
    from epamnet.prepare.acquire import acquire_real

    acq = params.acquire
    acquire_real(
        ds,
        lay.downloads,
        lay.raw(ds),
        link=acq.link,
        skeleton_url=acq.skeleton_url,
        skeleton_sha256=acq.skeleton_sha256,
        timeout=acq.timeout,
        retries=acq.retries,
    )
