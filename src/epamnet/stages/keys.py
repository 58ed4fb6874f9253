"""Parameter keys the training and evaluation stages read.

Declared by :mod:`epamnet.dag` (so a changed value re-runs the stage) and hashed into
each run's ``provenance.json``; kept apart from the stage code so that declaring the
graph does not load torch.
"""

from __future__ import annotations


def train_params(stream: str) -> tuple[str, ...]:
    """Parameter keys a training (and evaluation) of ``stream`` reads."""
    return ("model", "data", "train.common", f"train.{stream}", "runtime")
