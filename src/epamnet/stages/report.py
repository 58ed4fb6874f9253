"""``report``: the paper's tables and figures from the finished runs."""

from __future__ import annotations

from pathlib import Path

from epamnet.config import Params
from epamnet.report.stage import report_stage


def run(params: Params, attention_clips: int) -> list[Path]:
    """Write results/tables and results/figures; return the files written."""
    return report_stage(params, attention_clips=attention_clips)
