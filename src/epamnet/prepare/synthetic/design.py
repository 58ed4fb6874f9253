"""Class design of the synthetic datasets (their sizes: :class:`epamnet.config.synthetic.SyntheticSpec`).

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
  metres across. It is part of the video only; the skeleton does not carry it.

Why the whole body bounces, and how the object size was chosen (with the measurements
behind both): docs/synthetic-data.md.

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

from dataclasses import dataclass
from typing import Any

from epamnet.config.synthetic import MAX_CLASSES
from epamnet.datasets.toyota import CS_CLASSES, CV_CLASSES, SYNTHETIC_ACTIVITIES
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

# Four classes per group (2 variants x 2 objects): the schema's bound on synthetic.num_classes.
assert len(GROUPS) * len(VARIANTS) * 2 == MAX_CLASSES == len(SYNTHETIC_ACTIVITIES)


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
        return SYNTHETIC_ACTIVITIES[self.label]

    @property
    def toyota_cs_label(self) -> int:
        """Index of the Toyota activity name in the real 31-class CS list."""
        return CS_CLASSES.index(self.toyota_name)

    def as_dict(self) -> dict[str, Any]:
        """The MANIFEST row of this class."""
        return {
            "label": self.label,
            "ntu_action": f"A{self.label + 1:03d}",
            "pku_label": self.label + 1,
            "toyota_name": self.toyota_name,
            "toyota_cs_label": self.toyota_cs_label,
            "toyota_in_cv": self.toyota_name in CV_CLASSES,
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
