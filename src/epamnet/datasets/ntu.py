"""NTU RGB+D 60 and 120: sample names, class names and the official protocols.

A sample is named ``SsssCcccPpppRrrrAaaa`` (setup, camera, performer, replication,
action; three digits each), e.g. ``S001C002P003R002A013``. That name is the skeleton
annotation's ``frame_dir``; the source video is ``<name>_rgb.avi``.

Protocols (NTU RGB+D and NTU RGB+D 120 papers; spec section 7):

* ``xsub`` (both): the performers in :data:`XSUB_TRAIN_SUBJECTS_60` (NTU-60) or
  :data:`XSUB_TRAIN_SUBJECTS_120` (NTU-120) train, every other performer tests.
* ``xview`` (NTU-60): cameras 2 and 3 train, camera 1 tests.
* ``xset`` (NTU-120): even setup ids train, odd setup ids test.

None of the protocols has a validation list. NTU-60 is setups S001-S017 with actions
A001-A060, NTU-120 is S001-S032 with A001-A120; a name outside its dataset's range is
in no split. The label of a sample is ``action - 1``.

The raw videos are ``nturgb+d_rgb/<name>_rgb.avi`` (:data:`VIDEO_FOLDER`, :data:`VIDEO_SUFFIX`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from epamnet.datasets import PROTOCOLS
from epamnet.datasets.actions import ActionLabel
from epamnet.errors import EpamnetError

NAME_RE = re.compile(r"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})$")

#: Where the raw videos are: ``<VIDEO_FOLDER>/<name><VIDEO_SUFFIX>``.
VIDEO_FOLDER = "nturgb+d_rgb"
VIDEO_SUFFIX = "_rgb.avi"

#: Setups and actions of each dataset (inclusive upper bounds).
MAX_SETUP: dict[str, int] = {"ntu60": 17, "ntu120": 32}
MAX_ACTION: dict[str, int] = {"ntu60": 60, "ntu120": 120}

#: Cross-subject training performers of NTU RGB+D (60).
XSUB_TRAIN_SUBJECTS_60: frozenset[int] = frozenset(
    (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
)
#: Cross-subject training performers of NTU RGB+D 120: the 20 above plus 33 more.
XSUB_TRAIN_SUBJECTS_120: frozenset[int] = XSUB_TRAIN_SUBJECTS_60 | frozenset(
    (45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86,
     89, 91, 92, 93, 94, 95, 97, 98, 100, 103)
)  # fmt: skip
#: Cross-subject training performers, by dataset.
XSUB_TRAIN_SUBJECTS: dict[str, frozenset[int]] = {"ntu60": XSUB_TRAIN_SUBJECTS_60, "ntu120": XSUB_TRAIN_SUBJECTS_120}
#: Cross-view cameras (NTU-60).
XVIEW_TRAIN_CAMERAS: frozenset[int] = frozenset((2, 3))
XVIEW_TEST_CAMERAS: frozenset[int] = frozenset((1,))

#: The 120 action names of the dataset README (shahroudy/NTURGB-D), A001 first. The
#: typographic apostrophes of A109, A117 and A119 are written as plain ``'``.
CLASS_NAMES_120: tuple[str, ...] = (
    "drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop", "pickup",
    "throw", "sitting down", "standing up (from sitting position)", "clapping", "reading",
    "writing", "tear up paper", "wear jacket", "take off jacket", "wear a shoe",
    "take off a shoe", "wear on glasses", "take off glasses", "put on a hat/cap",
    "take off a hat/cap", "cheer up", "hand waving", "kicking something",
    "put something inside pocket / take out something from pocket",
    "hopping (one foot jumping)", "jump up", "make a phone call/answer phone",
    "playing with phone/tablet", "typing on a keyboard", "pointing to something with finger",
    "taking a selfie", "check time (from watch)", "rub two hands together", "nod head/bow",
    "shake head", "wipe face", "salute", "put the palms together",
    "cross hands in front (say stop)", "sneeze/cough", "staggering", "falling",
    "touch head (headache)", "touch chest (stomachache/heart pain)", "touch back (backache)",
    "touch neck (neckache)", "nausea or vomiting condition",
    "use a fan (with hand or paper)/feeling warm", "punching/slapping other person",
    "kicking other person", "pushing other person", "pat on back of other person",
    "point finger at the other person", "hugging other person",
    "giving something to other person", "touch other person's pocket", "handshaking",
    "walking towards each other", "walking apart from each other",
    # NTU RGB+D 120 additions (A061-A120)
    "put on headphone", "take off headphone", "shoot at the basket", "bounce ball",
    "tennis bat swing", "juggling table tennis balls", "hush (quite)", "flick hair",
    "thumb up", "thumb down", "make ok sign", "make victory sign", "staple book",
    "counting money", "cutting nails", "cutting paper (using scissors)", "snapping fingers",
    "open bottle", "sniff (smell)", "squat down", "toss a coin", "fold paper", "ball up paper",
    "play magic cube", "apply cream on face", "apply cream on hand back", "put on bag",
    "take off bag", "put something into a bag", "take something out of a bag", "open a box",
    "move heavy objects", "shake fist", "throw up cap/hat", "hands up (both hands)",
    "cross arms", "arm circles", "arm swings", "running on the spot",
    "butt kicks (kick backward)", "cross toe touch", "side kick", "yawn", "stretch oneself",
    "blow nose", "hit other person with something", "wield knife towards other person",
    "knock over other person (hit with body)", "grab other person's stuff",
    "shoot at other person with a gun", "step on foot", "high-five", "cheers and drink",
    "carry something with other person", "take a photo of other person",
    "follow other person", "whisper in other person's ear",
    "exchange things with other person",
    "support somebody with one's hand (someone is sick, help him to walk)",
    "finger-guessing game (playing rock-paper-scissors)",
)  # fmt: skip
CLASS_NAMES_60: tuple[str, ...] = CLASS_NAMES_120[:60]


@dataclass(frozen=True)
class NtuName(ActionLabel):
    """The five numbers of an NTU sample name (``label`` is ``action - 1``)."""

    setup: int
    camera: int
    performer: int
    replication: int
    action: int

    def __str__(self) -> str:
        return format_name(self.setup, self.camera, self.performer, self.replication, self.action)


def parse_name(name: str) -> NtuName:
    """Parse ``SsssCcccPpppRrrrAaaa``; anything else is an :class:`EpamnetError`."""
    m = NAME_RE.match(name)
    if m is None or min(int(g) for g in m.groups()) < 1:
        raise EpamnetError(
            f"{name!r} is not an NTU sample name; expected SsssCcccPpppRrrrAaaa with ids from 001, "
            "e.g. S001C002P003R002A013"
        )
    return NtuName(*(int(g) for g in m.groups()))


def format_name(setup: int, camera: int, performer: int, replication: int, action: int) -> str:
    """``SsssCcccPpppRrrrAaaa`` from its five numbers (each 1..999)."""
    parts = (setup, camera, performer, replication, action)
    if any(not 1 <= int(p) <= 999 for p in parts):
        raise EpamnetError(f"NTU name ids {parts} must each lie in 1..999")
    return "S{:03d}C{:03d}P{:03d}R{:03d}A{:03d}".format(*parts)


def video_name(name: str) -> str:
    """File name of a sample's source video: ``<name>_rgb.avi``."""
    parse_name(name)
    return f"{name}{VIDEO_SUFFIX}"


def in_dataset(sample: NtuName, dataset: str) -> bool:
    """Whether a sample belongs to ``dataset`` (its setup and action ranges)."""
    return sample.setup <= MAX_SETUP[dataset] and sample.action <= MAX_ACTION[dataset]


def assign(sample: NtuName, dataset: str, protocol: str) -> str | None:
    """``'train'`` or ``'test'`` under ``dataset``'s ``protocol``; ``None`` if outside the dataset."""
    if dataset not in MAX_SETUP:
        raise EpamnetError(f"{dataset!r} is not an NTU dataset; use ntu60 or ntu120")
    if protocol not in PROTOCOLS[dataset]:
        raise EpamnetError(f"{dataset} has no protocol {protocol!r}; use one of {PROTOCOLS[dataset]}")
    if not in_dataset(sample, dataset):
        return None
    if is_train(sample, dataset, protocol):
        return "train"
    if protocol == "xview" and sample.camera not in XVIEW_TEST_CAMERAS:
        return None
    return "test"


def is_train(sample: NtuName, dataset: str, protocol: str) -> bool:
    """Whether ``protocol`` trains on the sample: its performer (xsub), camera (xview) or even setup (xset)."""
    if protocol == "xsub":
        return sample.performer in XSUB_TRAIN_SUBJECTS[dataset]
    if protocol == "xview":
        return sample.camera in XVIEW_TRAIN_CAMERAS
    return sample.setup % 2 == 0  # xset
