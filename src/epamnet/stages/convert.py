"""``convert-official``: an official released checkpoint -> our checkpoint form, loaded strictly.

EPAM-Net's fusion weights (the official trainer's format) or one stream's (mmcv's format,
``backbone.*``/``cls_head.*``): :mod:`epamnet.models.convert` maps the keys and checks
every one against our model of the chosen sizes and class count.
"""

from __future__ import annotations

from pathlib import Path

from epamnet.config.model import paper_spec, synthetic_spec
from epamnet.models.convert import convert_official_checkpoint
from epamnet.models.epam import build_model


def run(src: str | Path, dst: str | Path, num_classes: int, stream: str = "fusion", preset: str = "paper") -> str:
    """Convert ``src`` into ``dst``; return the line that says what was written."""
    spec = paper_spec() if preset == "paper" else synthetic_spec()
    model = build_model(spec, num_classes, stream)
    epoch = convert_official_checkpoint(src, dst, model)
    return (
        f"converted {src} -> {dst} ({stream}, {num_classes} classes, {preset} sizes, epoch {epoch}; "
        "strict: no missing or unexpected keys)"
    )
