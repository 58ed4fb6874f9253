"""Dataset registry: names, protocols, naming rules and class lists.

The constants here are what ``config.py`` validates against; the per-dataset
modules (``ntu``, ``pku``, ``toyota``) hold the naming rules and class lists.
"""

from __future__ import annotations

#: Datasets the pipeline knows, and the evaluation protocols each one has.
PROTOCOLS: dict[str, tuple[str, ...]] = {
    "ntu60": ("xsub", "xview"),
    "ntu120": ("xsub", "xset"),
    "pku": ("xsub", "xview"),
    "toyota": ("cs", "cv1", "cv2"),
}

DATASETS: tuple[str, ...] = tuple(PROTOCOLS)
