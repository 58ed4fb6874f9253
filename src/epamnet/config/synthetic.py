"""Sizes of the synthetic datasets (:class:`SyntheticSpec`, ``params.yaml``'s ``synthetic``).

The generator that reads them is :mod:`epamnet.prepare.synthetic`; its class design
(:mod:`epamnet.prepare.synthetic.design`) has :data:`MAX_CLASSES` classes.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from epamnet.config.base import (
    Fraction,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    Spec,
    rule_error,
)

#: Classes of the synthetic class design: six coarse motions x four (variant, object) pairs.
MAX_CLASSES = 24


def _ordered(value: tuple[int, int]) -> tuple[int, int]:
    if value[0] > value[1]:
        raise ValueError(f"{list(value)} is not a range [min, max] with min <= max")
    return value


def _distinct(value: tuple[int, ...]) -> tuple[int, ...]:
    if len(set(value)) != len(value):
        raise ValueError(f"{list(value)} lists an id twice")
    return value


#: An inclusive range ``[min, max]`` of positive integers.
Range = Annotated[tuple[PositiveInt, PositiveInt], Field(strict=False), AfterValidator(_ordered)]
#: Distinct subject / camera / setup / replication ids, as in the real datasets' names.
Ids = Annotated[
    tuple[Annotated[int, Field(ge=1, le=999)], ...], Field(min_length=1, strict=False), AfterValidator(_distinct)
]
#: Toyota ids have two digits in the names.
ToyotaIds = Annotated[
    tuple[Annotated[int, Field(ge=1, le=99)], ...], Field(min_length=1, strict=False), AfterValidator(_distinct)
]


class SyntheticSpec(Spec):
    """Sizes of the synthetic datasets. Defaults generate all three in well under a minute.

    Frame counts are inclusive ranges; subject, camera and setup ids are the real
    datasets' numbers, so the real split rules apply to the names.
    """

    where = "synthetic"

    num_classes: Annotated[int, Field(ge=2, le=MAX_CLASSES)] = 8
    height: Annotated[int, Field(ge=32)] = 240
    width: Annotated[int, Field(ge=32)] = 320
    frames: Range = (48, 72)
    # NTU-like: every subject performs every class ``len(ntu_replications)`` times in
    # one setup (subjects cycle through the setups); the three cameras film each take.
    ntu_subjects: Ids = (1, 2, 4, 5, 3, 6)
    ntu_cameras: Ids = (1, 2, 3)
    ntu_setups: Ids = (1, 2)
    ntu_replications: Ids = (1, 2)
    ntu_fps: PositiveFloat = 30.0
    # PKU-like: untrimmed sequences filmed from views L, M, R.
    pku_sequences: Annotated[int, Field(ge=1, le=9000)] = 16
    pku_subjects: Ids = (1, 2, 3, 4)
    pku_val_subjects: Annotated[tuple[int, ...], Field(strict=False)] = (4,)
    pku_actions_per_video: PositiveInt = 4
    pku_gap: Range = (8, 20)
    pku_overlap_prob: Fraction = 0.25
    pku_overlap: Range = (2, 5)
    pku_fps: PositiveFloat = 30.0
    # Toyota-like: every subject performs every class once per replication, filmed by each camera.
    toyota_subjects: ToyotaIds = (3, 4, 6, 19, 2, 10)
    toyota_cameras: ToyotaIds = (1, 2, 5, 3)
    toyota_replications: Ids = (1,)
    toyota_fps: PositiveFloat = 20.0
    # Rendering and skeleton noise.
    second_person_prob: Fraction = 0.15  # chance that a take has a bystander (M = 2)
    keypoint_noise: NonNegativeFloat = 0.6  # skeleton noise, pixels (sd) per 240 rows of frame height
    # Fine motion, the whole-body bounce: the slow variant's most turns per clip, the
    # samples per clip (the RGB clip length) at which the fast variant (fine_alias - s
    # turns) aliases onto the slow one, and the bounce radius in metres.
    fine_cycles: PositiveFloat = 1.0
    fine_alias: float = 8.0
    fine_radius: Annotated[float, Field(ge=0.0, le=0.5)] = 0.07
    # Held object: side of its shape in metres (the hand is ~0.1 m wide).
    object_size: Annotated[float, Field(ge=0.02, le=0.5)] = 0.13

    @model_validator(mode="after")
    def _consistent(self) -> SyntheticSpec:
        frames, overlap = list(self.frames), list(self.pku_overlap)
        if frames[0] < 8:
            raise rule_error("frames", f"{frames} has clips shorter than 8 frames")
        if overlap[1] >= frames[0] // 2:
            raise rule_error("pku_overlap", f"{overlap} must stay below half of the shortest clip ({frames[0]} frames)")
        if not set(self.pku_val_subjects) < set(self.pku_subjects):
            raise rule_error(
                "pku_val_subjects",
                f"{list(self.pku_val_subjects)} must be a proper subset of pku_subjects {list(self.pku_subjects)}",
            )
        if self.pku_sequences < len(self.pku_subjects):
            raise rule_error(
                "pku_sequences", f"{self.pku_sequences} is fewer than one per subject ({len(self.pku_subjects)})"
            )
        if not 2 * self.fine_cycles < self.fine_alias:
            raise rule_error(
                "fine_alias",
                f"{self.fine_alias} must exceed 2 x fine_cycles ({self.fine_cycles}), so that the fast bounce stays faster",
            )
        return self

    @classmethod
    def from_mapping(cls, values: Any) -> SyntheticSpec:
        """Same as :meth:`from_dict`: a MANIFEST's or params.yaml's plain values."""
        return cls.from_dict(values)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (tuples as lists)."""
        return self.model_dump(mode="json")
