"""``profile``: parameters, multiply-adds and clips/s of EPAM-Net at the paper's input sizes."""

from __future__ import annotations

from pathlib import Path

from epamnet.config import Params
from epamnet.config.model import paper_spec
from epamnet.layout import Layout
from epamnet.logs import set_context
from epamnet.models.profile import profile_epamnet, write_efficiency_table
from epamnet.runtime import set_torch_threads


def run(params: Params, num_classes: int) -> Path:
    """Write ``efficiency.{md,csv}``; return the Markdown file."""
    set_context("profile")
    set_torch_threads(params.runtime.threads)
    prof = params.profile
    result = profile_epamnet(
        paper_spec(),
        num_classes,
        device=prof.device,
        throughput_iters=prof.iters,
        batch_sizes=tuple(prof.batch_sizes),
    )
    md, _csv = write_efficiency_table(result, Layout.from_params(params).tables)
    return md
