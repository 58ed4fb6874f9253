"""Class design and generation settings of the synthetic datasets.

Classes come in groups of four. A group has one coarse motion (easy for both
streams); inside a group, the four classes are the 2 x 2 combinations of

* a *fine motion variant*: on top of the coarse motion the whole body bounces round a
  small circle (``fine_radius``) in the frontal plane, slowly (``slow``: ``s`` turns per
  clip, ``s`` uniform in +-``fine_cycles``, its sign the direction) or fast (``fast``:
  ``fine_alias - s`` turns). Sampled ``fine_alias`` times per clip (the RGB clip length,
  8 in the synthetic model preset) the fast path is the slow one mirrored, so the two
  variants look alike to the RGB stream; the pose stream's clip, three times longer,
  sees steps of ~0.3 turn per sampled frame against at most 0.04. Both variants give
  the same distribution of single-frame poses.
* a *held object*: a clearly coloured shape drawn in the right hand, ``object_size``
  metres across. It is part of the video only; the skeleton does not carry it. At the
  synthetic model's 64x64 RGB input the default 0.13 m is ~2 px and the small RGB net
  does not learn it in 10 epochs (object 58 % on NTU-like xsub test); at 0.3 m it does
  (99-100 %, the RGB stream then at its 50 % ceiling).

Why a bounce of the whole body: a fine motion of one joint (the right wrist drawing a
small circle, told apart by its direction or by its speed) is plain in hand-made
features of the pose clip (wrist speed per sample: 1.7 vs 3.6 heatmap pixels, 98 %
separable) but the small pose stream did not learn it in 10 epochs (44-60 %, chance 50 %,
radii 0.08-0.35 m), nor in 30. With all 17 joints moving, the temporal shift sees it in
every channel. Measured on NTU-like xsub (192 training clips, 10 epochs, 2026-11-27,
radius 0.07 m): pose variant 96 %, RGB variant 54 %; test top-1 pose 0.40, RGB 0.54,
fused 0.99 (the default run's numbers: results/ and README).

So classes that differ only by object are identical to the pose stream, classes that
differ only by the bounce rate are (nearly) identical to the RGB stream, and a
fused model can tell all four apart. Class ``k`` (0-based label) is the ``k``-th entry
of :func:`class_design`, in group-major order:

=====  =============  ==========  ==============  =====================================
label  group          variant     object          Toyota activity name
=====  =============  ==========  ==============  =====================================
0      hand_to_mouth  slow        red box         Drink.Fromcup
1      hand_to_mouth  slow        blue disc       Drink.Fromglass
2      hand_to_mouth  fast        red box         Drink.Frombottle
3      hand_to_mouth  fast        blue disc       Drink.Fromcan
4      reach_forward  slow        green triangle  Pour.Frombottle
5      reach_forward  slow        yellow bar      Pour.Fromcan
6      reach_forward  fast        green triangle  Pour.Fromkettle (CS only)
7      reach_forward  fast        yellow bar      Cook.Stir (CS only)
8      arms_overhead  slow        red box         Usetelephone
9      arms_overhead  slow        blue disc       Readbook
10     arms_overhead  fast        red box         Cook.Cleanup (CS only)
11     arms_overhead  fast        blue disc       Cook.Cut (CS only)
12     bend_down      slow        green triangle  Sitdown
13     bend_down      slow        yellow bar      Getup
14     bend_down      fast        green triangle  Laydown (CS only)
15     bend_down      fast        yellow bar      Cook.Cleandishes (CS only)
16     side_raise     slow        red box         Walk
17     side_raise     slow        blue disc       Enter
18     side_raise     fast        red box         Leave
19     side_raise     fast        blue disc       Makecoffee.Pourwater (CS only)
20     squat          slow        green triangle  Eat.Attable
21     squat          slow        yellow bar      Eat.Snack
22     squat          fast        green triangle  Takepills
23     squat          fast        yellow bar      Maketea.Boilwater (CS only)
=====  =============  ==========  ==============  =====================================

With the default 8 classes the Toyota-like set has 6 classes of the 19-class CV
protocols and 2 CS-only classes. NTU-like action ids are ``A{label+1:03d}``; PKU-like
label files hold ``label + 1``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from epamnet.errors import EpamnetError

#: Coarse motion of each group, in group order.
GROUPS: tuple[str, ...] = (
    "hand_to_mouth",
    "reach_forward",
    "arms_overhead",
    "bend_down",
    "side_raise",
    "squat",
)

#: Fine motion variants: turn rate of the whole-body bounce.
VARIANTS: tuple[str, ...] = ("slow", "fast")

#: Held objects: name -> (shape, RGB colour). Even groups use the first pair, odd the second.
OBJECTS: dict[str, tuple[str, tuple[int, int, int]]] = {
    "red box": ("box", (230, 30, 30)),
    "blue disc": ("disc", (30, 70, 240)),
    "green triangle": ("triangle", (20, 200, 40)),
    "yellow bar": ("bar", (245, 225, 20)),
}
_OBJECT_PAIRS: tuple[tuple[str, str], ...] = (("red box", "blue disc"), ("green triangle", "yellow bar"))

#: Toyota Smarthome activity names used for the classes, in label order (spec section 10).
TOYOTA_NAMES: tuple[str, ...] = (
    "Drink.Fromcup", "Drink.Fromglass", "Drink.Frombottle", "Drink.Fromcan",
    "Pour.Frombottle", "Pour.Fromcan", "Pour.Fromkettle", "Cook.Stir",
    "Usetelephone", "Readbook", "Cook.Cleanup", "Cook.Cut",
    "Sitdown", "Getup", "Laydown", "Cook.Cleandishes",
    "Walk", "Enter", "Leave", "Makecoffee.Pourwater",
    "Eat.Attable", "Eat.Snack", "Takepills", "Maketea.Boilwater",
)  # fmt: skip

#: The real Toyota Smarthome cross-subject class list (31), sorted by plain string order.
TOYOTA_CS_CLASSES: tuple[str, ...] = tuple(sorted((
    "Cook.Cleandishes", "Cook.Cleanup", "Cook.Cut", "Cook.Stir", "Cook.Usestove", "Cutbread",
    "Drink.Frombottle", "Drink.Fromcan", "Drink.Fromcup", "Drink.Fromglass", "Eat.Attable",
    "Eat.Snack", "Enter", "Getup", "Laydown", "Leave", "Makecoffee.Pourgrains",
    "Makecoffee.Pourwater", "Maketea.Boilwater", "Maketea.Insertteabag", "Pour.Frombottle",
    "Pour.Fromcan", "Pour.Fromkettle", "Readbook", "Sitdown", "Takepills", "Uselaptop",
    "Usetablet", "Usetelephone", "Walk", "WatchTV",
)))  # fmt: skip

#: The real Toyota Smarthome cross-view class list (19).
TOYOTA_CV_CLASSES: tuple[str, ...] = tuple(sorted((
    "Cutbread", "Drink.Frombottle", "Drink.Fromcan", "Drink.Fromcup", "Drink.Fromglass",
    "Eat.Attable", "Eat.Snack", "Enter", "Getup", "Leave", "Pour.Frombottle", "Pour.Fromcan",
    "Readbook", "Sitdown", "Takepills", "Uselaptop", "Usetablet", "Usetelephone", "Walk",
)))  # fmt: skip

MAX_CLASSES = len(GROUPS) * 4


@dataclass(frozen=True)
class ClassSpec:
    """One synthetic class: its label, coarse motion group, fine variant and held object."""

    label: int
    group: int
    variant: int
    object: str

    @property
    def motion(self) -> str:
        return f"{GROUPS[self.group]}/{VARIANTS[self.variant]}"

    @property
    def toyota_name(self) -> str:
        return TOYOTA_NAMES[self.label]

    @property
    def toyota_cs_label(self) -> int:
        """Index of the Toyota activity name in the real 31-class CS list."""
        return TOYOTA_CS_CLASSES.index(self.toyota_name)

    def as_dict(self) -> dict[str, Any]:
        """The MANIFEST row of this class."""
        return {
            "label": self.label,
            "ntu_action": f"A{self.label + 1:03d}",
            "pku_label": self.label + 1,
            "toyota_name": self.toyota_name,
            "toyota_cs_label": self.toyota_cs_label,
            "toyota_in_cv": self.toyota_name in TOYOTA_CV_CLASSES,
            "group": GROUPS[self.group],
            "variant": VARIANTS[self.variant],
            "motion": self.motion,
            "object": self.object,
            "object_shape": OBJECTS[self.object][0],
            "object_rgb": list(OBJECTS[self.object][1]),
        }


def class_design(num_classes: int) -> list[ClassSpec]:
    """The first ``num_classes`` classes of the design table (group-major order)."""
    if not 2 <= num_classes <= MAX_CLASSES:
        raise EpamnetError(
            f"synthetic.num_classes: {num_classes} is out of range; use 2..{MAX_CLASSES}"
        )
    out = []
    for label in range(num_classes):
        group, rest = divmod(label, 4)
        variant, obj = divmod(rest, 2)
        out.append(ClassSpec(label, group, variant, _OBJECT_PAIRS[group % 2][obj]))
    return out


@dataclass(frozen=True)
class SyntheticSpec:
    """Sizes of the synthetic datasets. Defaults generate all three in well under a minute.

    Frame counts are inclusive ranges; subject, camera and setup ids are the real
    datasets' numbers, so the real split rules apply to the names.
    """

    num_classes: int = 8
    height: int = 240
    width: int = 320
    frames: tuple[int, int] = (48, 72)
    # NTU-like: every subject performs every class ``len(ntu_replications)`` times in
    # one setup (subjects cycle through the setups); the three cameras film each take.
    ntu_subjects: tuple[int, ...] = (1, 2, 4, 5, 3, 6)
    ntu_cameras: tuple[int, ...] = (1, 2, 3)
    ntu_setups: tuple[int, ...] = (1, 2)
    ntu_replications: tuple[int, ...] = (1, 2)
    ntu_fps: float = 30.0
    # PKU-like: untrimmed sequences filmed from views L, M, R.
    pku_sequences: int = 16
    pku_subjects: tuple[int, ...] = (1, 2, 3, 4)
    pku_val_subjects: tuple[int, ...] = (4,)
    pku_actions_per_video: int = 4
    pku_gap: tuple[int, int] = (8, 20)
    pku_overlap_prob: float = 0.25
    pku_overlap: tuple[int, int] = (2, 5)
    pku_fps: float = 30.0
    # Toyota-like: every subject performs every class once per replication, filmed by each camera.
    toyota_subjects: tuple[int, ...] = (3, 4, 6, 19, 2, 10)
    toyota_cameras: tuple[int, ...] = (1, 2, 5, 3)
    toyota_replications: tuple[int, ...] = (1,)
    toyota_fps: float = 20.0
    # Rendering and skeleton noise.
    second_person_prob: float = 0.15  # chance that a take has a bystander (M = 2)
    keypoint_noise: float = 0.6  # skeleton noise, pixels (sd) per 240 rows of frame height
    # Fine motion, the whole-body bounce: the slow variant's most turns per clip, the
    # samples per clip (the RGB clip length) at which the fast variant (fine_alias - s
    # turns) aliases onto the slow one, and the bounce radius in metres.
    fine_cycles: float = 1.0
    fine_alias: float = 8.0
    fine_radius: float = 0.07
    # Held object: side of its shape in metres (the hand is ~0.1 m wide).
    object_size: float = 0.13

    def __post_init__(self) -> None:
        class_design(self.num_classes)  # validates the range
        problems = []
        if self.height < 32 or self.width < 32:
            problems.append(f"frame size {self.height}x{self.width} is below 32x32")
        for name in ("frames", "pku_gap", "pku_overlap"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                problems.append(f"{name} {lo, hi} is not a range 0 < min <= max")
        if self.frames[0] < 8:
            problems.append("frames must be at least 8 per clip")
        if self.pku_overlap[1] >= self.frames[0] // 2:
            problems.append("pku_overlap must stay below half of the shortest clip")
        for name in ("ntu_subjects", "ntu_cameras", "ntu_setups", "ntu_replications", "pku_subjects",
                     "toyota_subjects", "toyota_cameras", "toyota_replications"):
            ids = getattr(self, name)
            if not ids or len(set(ids)) != len(ids) or min(ids) < 1 or max(ids) > 999:
                problems.append(f"{name} {ids} must be distinct ids in 1..999")
        if max(self.toyota_subjects, default=0) > 99 or max(self.toyota_cameras, default=0) > 99:
            problems.append("toyota ids must be below 100 (two digits in the name)")
        if not set(self.pku_val_subjects) < set(self.pku_subjects):
            problems.append("pku_val_subjects must be a proper subset of pku_subjects")
        if self.pku_sequences < len(self.pku_subjects) or self.pku_sequences > 9000:
            problems.append("pku_sequences must be at least one per subject (and at most 9000)")
        if self.pku_actions_per_video < 1:
            problems.append("pku_actions_per_video must be at least 1")
        for name in ("second_person_prob", "pku_overlap_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must lie in [0, 1]")
        for name in ("ntu_fps", "pku_fps", "toyota_fps", "fine_cycles"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive")
        if not 2 * self.fine_cycles < self.fine_alias:
            problems.append("fine_alias must exceed 2 x fine_cycles, so that the fast bounce stays faster")
        if self.keypoint_noise < 0 or not 0 <= self.fine_radius <= 0.5:
            problems.append("keypoint_noise must be >= 0 and fine_radius in [0, 0.5] (metres)")
        if not 0.02 <= self.object_size <= 0.5:
            problems.append("object_size must lie in [0.02, 0.5] (metres)")
        if problems:
            raise EpamnetError(f"synthetic settings: {'; '.join(problems)}; fix them in params.yaml (synthetic.*)")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SyntheticSpec:
        """Build a spec from plain values (YAML), lists becoming tuples; unknown keys are errors."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise EpamnetError(
                f"synthetic settings: unknown key(s) {unknown}; use only {sorted(names)}"
            )
        clean = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**clean)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}
