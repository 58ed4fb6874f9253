"""Toyota Smarthome: clip names, class lists and the CS / CV protocols.

A clip is ``<Activity>_pSS_rRR_vVV_cCC.mp4`` (subject, repetition, video, camera), e.g.
``Drink.Fromcup_p17_r02_v09_c01.mp4``; its activity is the part before the first ``_``.

Labels are the index of the activity in the protocol's own class list, sorted by plain
string order (upper case before lower case), as in the official lists (spec section 10):
31 classes for ``cs``, 19 for ``cv1`` and ``cv2``. Clips of the 12 other activities are
not part of the CV protocols. A clip whose subject (CS) or camera (CV) is in none of the
protocol's lists is in no split.

Official list files hold ``<name>.mp4 <label>`` lines, the last one without a newline.

Synthetic Toyota datasets name their classes after :data:`SYNTHETIC_ACTIVITIES`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from epamnet.datasets import PROTOCOLS
from epamnet.errors import EpamnetError

NAME_RE = re.compile(r"^([^_\s]+)_p(\d{2})_r(\d{2,})_v(\d{2,})_c(\d{2})$")

#: Where the clips are: ``<VIDEO_FOLDER>/<name><VIDEO_SUFFIX>``.
VIDEO_FOLDER = "mp4"
VIDEO_SUFFIX = ".mp4"

#: Cross-subject classes (31), in label order.
CS_CLASSES: tuple[str, ...] = (
    "Cook.Cleandishes", "Cook.Cleanup", "Cook.Cut", "Cook.Stir", "Cook.Usestove", "Cutbread",
    "Drink.Frombottle", "Drink.Fromcan", "Drink.Fromcup", "Drink.Fromglass", "Eat.Attable",
    "Eat.Snack", "Enter", "Getup", "Laydown", "Leave", "Makecoffee.Pourgrains",
    "Makecoffee.Pourwater", "Maketea.Boilwater", "Maketea.Insertteabag", "Pour.Frombottle",
    "Pour.Fromcan", "Pour.Fromkettle", "Readbook", "Sitdown", "Takepills", "Uselaptop",
    "Usetablet", "Usetelephone", "Walk", "WatchTV",
)  # fmt: skip
#: Cross-view classes (19), in label order.
CV_CLASSES: tuple[str, ...] = (
    "Cutbread", "Drink.Frombottle", "Drink.Fromcan", "Drink.Fromcup", "Drink.Fromglass",
    "Eat.Attable", "Eat.Snack", "Enter", "Getup", "Leave", "Pour.Frombottle", "Pour.Fromcan",
    "Readbook", "Sitdown", "Takepills", "Uselaptop", "Usetablet", "Usetelephone", "Walk",
)  # fmt: skip

#: The activities synthetic classes are named after, in synthetic label order (spec
#: section 10): a K-class synthetic dataset uses the first K. Some are CS-only activities.
SYNTHETIC_ACTIVITIES: tuple[str, ...] = (
    "Drink.Fromcup", "Drink.Fromglass", "Drink.Frombottle", "Drink.Fromcan",
    "Pour.Frombottle", "Pour.Fromcan", "Pour.Fromkettle", "Cook.Stir",
    "Usetelephone", "Readbook", "Cook.Cleanup", "Cook.Cut",
    "Sitdown", "Getup", "Laydown", "Cook.Cleandishes",
    "Walk", "Enter", "Leave", "Makecoffee.Pourwater",
    "Eat.Attable", "Eat.Snack", "Takepills", "Maketea.Boilwater",
)  # fmt: skip


@dataclass(frozen=True)
class Groups:
    """Which subject (CS) or camera (CV) ids make up each part of a protocol."""

    by: str  # "subject" or "camera"
    train: frozenset[int]
    val: frozenset[int]
    test: frozenset[int]

    def part(self, value: int) -> str | None:
        for name in ("train", "val", "test"):
            if value in getattr(self, name):
                return name
        return None


SPLITS: dict[str, Groups] = {
    "cs": Groups(
        "subject",
        frozenset((3, 4, 6, 7, 9, 12, 13, 15, 17)),
        frozenset((19, 25)),
        frozenset((2, 10, 11, 14, 16, 18, 20)),
    ),
    "cv1": Groups("camera", frozenset((1,)), frozenset((5,)), frozenset((2,))),
    "cv2": Groups("camera", frozenset((1, 3, 4, 6, 7)), frozenset((5,)), frozenset((2,))),
}


@dataclass(frozen=True)
class ToyotaName:
    """The parts of a Toyota Smarthome clip name."""

    activity: str
    subject: int
    repetition: int
    video: int
    camera: int


def parse_name(name: str) -> ToyotaName:
    """Parse ``<Activity>_pSS_rRR_vVV_cCC`` (a trailing ``.mp4`` is allowed)."""
    stem = name.removesuffix(".mp4")
    m = NAME_RE.match(stem)
    if m is None:
        raise EpamnetError(
            f"{name!r} is not a Toyota Smarthome clip name; expected <Activity>_pSS_rRR_vVV_cCC, "
            "e.g. Drink.Fromcup_p17_r02_v09_c01"
        )
    return ToyotaName(m.group(1), *(int(g) for g in m.groups()[1:]))


def format_name(activity: str, subject: int, repetition: int, video: int, camera: int) -> str:
    """``<Activity>_pSS_rRR_vVV_cCC`` (without ``.mp4``)."""
    if not re.fullmatch(r"[^_\s]+", activity) or not (0 <= subject <= 99 and 0 <= camera <= 99):
        raise EpamnetError(f"Toyota name parts {activity!r}, p{subject}, c{camera} are not valid")
    return f"{activity}_p{subject:02d}_r{repetition:02d}_v{video:02d}_c{camera:02d}"


def protocol_classes(protocol: str) -> tuple[str, ...]:
    """The full class list of ``protocol``."""
    if protocol not in SPLITS:
        raise EpamnetError(f"toyota has no protocol {protocol!r}; use one of {PROTOCOLS['toyota']}")
    return CS_CLASSES if protocol == "cs" else CV_CLASSES


def assign(clip: ToyotaName, protocol: str) -> str | None:
    """``'train'``, ``'val'``, ``'test'`` or ``None`` (not part of ``protocol``)."""
    if clip.activity not in protocol_classes(protocol):
        return None
    groups = SPLITS[protocol]
    return groups.part(clip.subject if groups.by == "subject" else clip.camera)
