"""Dataset registry: names, protocols, naming rules and class lists.

The constants here are what ``config`` validates against; the per-dataset modules
(``ntu``, ``pku``, ``toyota``) hold the naming rules, class lists and raw layouts, and
``registry`` one adapter per dataset with every fact the pipeline asks about it.
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
