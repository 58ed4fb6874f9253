"""Parameter keys the training and evaluation stages read.

Declared by :mod:`epamnet.dag` (so a changed value re-runs the stage) and hashed into
each run's ``provenance.json``; kept apart from the stage code so that declaring the
graph does not load torch.
"""

from __future__ import annotations


def train_params(stream: str) -> tuple[str, ...]:
    """Parameter keys a training (and evaluation) of ``stream`` reads.

    ``recipe`` fills in ``model`` and ``train.*`` values that ``params.yaml`` leaves out: DVC
    reads the file as written, so the recipe is a key of its own."""
    return ("recipe", "model", "data", "train.common", f"train.{stream}", "runtime")
