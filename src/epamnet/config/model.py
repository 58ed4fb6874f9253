"""EPAM-Net's sizes: :class:`ModelSpec`, its two streams (:class:`StreamSpec`) and the presets.

A :class:`ModelSpec` holds everything that sets the shape of EPAM-Net: the two
X-ShiftNet streams, the attention kind and the head dropout. The defaults are the
paper / official configuration (spec sections 1-3); the small synthetic configuration
(:func:`synthetic_spec`) is the same code with smaller numbers. ``params.yaml``'s
``model`` section picks a preset and overrides any of its keys (:func:`spec_from_dict`);
the fusion rules (integer time stride, equal feature sizes) are checked whenever a spec
is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, ValidationError, model_validator

from epamnet.config.base import (
    Fraction,
    PositiveInt,
    PositiveInts,
    Spec,
    Strict,
    error_key,
    error_problem,
    rule_error,
)
from epamnet.errors import EpamnetError

AttentionKind = Literal["cbam_nested", "spatial_temporal"]
SeStyle = Literal["half", "all", "none"]
ATTENTION_KINDS: tuple[str, ...] = get_args(AttentionKind)
SE_STYLES: tuple[str, ...] = get_args(SeStyle)

WidenFactor = Annotated[float, Field(ge=1.0, le=16.0)]
FoldDiv = Annotated[int, Field(ge=2)]
Dropout = Annotated[float, Field(ge=0.0, lt=1.0)]


class StreamSpec(Spec):
    """One X-ShiftNet stream (backbone) and the clip it reads.

    ``stage_blocks[i]`` blocks of output width ``base_channels * 2**i`` and bottleneck
    width ``int(width * widen_factor)``; the first block of stage ``i`` has spatial
    stride ``spatial_strides[i]``. conv5 maps the last stage to
    ``int(last_width * widen_factor)`` channels (:attr:`out_channels`).
    """

    where = "stream"

    in_channels: PositiveInt
    base_channels: PositiveInt
    stage_blocks: PositiveInts
    spatial_strides: PositiveInts
    stem_stride: PositiveInt
    widen_factor: WidenFactor
    fold_div: FoldDiv
    se_ratio: Fraction
    se_style: SeStyle
    clip_len: PositiveInt
    input_size: PositiveInt

    @model_validator(mode="after")
    def _consistent(self) -> StreamSpec:
        if len(self.spatial_strides) != len(self.stage_blocks):
            raise rule_error(
                "spatial_strides",
                f"has {len(self.spatial_strides)} entries but stage_blocks has {len(self.stage_blocks)}; "
                "give one stride per stage",
            )
        if self.base_channels // self.fold_div < 1:
            raise rule_error(
                "fold_div", f"{self.fold_div} shifts no channel of the {self.base_channels}-channel stem; lower it"
            )
        return self

    @property
    def stage_widths(self) -> tuple[int, ...]:
        """Block output width per stage (``inplanes`` in the official code)."""
        return tuple(self.base_channels * 2**i for i in range(len(self.stage_blocks)))

    @property
    def stage_planes(self) -> tuple[int, ...]:
        """Bottleneck (depthwise) width per stage (``planes`` in the official code)."""
        return tuple(int(w * self.widen_factor) for w in self.stage_widths)

    @property
    def out_channels(self) -> int:
        """Channels of the conv5 features fed to the head and the attention."""
        return int(self.stage_widths[-1] * self.widen_factor)

    @property
    def feature_size(self) -> int:
        """Spatial side of the conv5 features for an ``input_size`` square input."""
        size = self.input_size
        for stride in (self.stem_stride, *self.spatial_strides):
            size = (size - 1) // stride + 1  # 3x3 conv, padding 1
        return size


# The paper configuration (spec sections 1 and 2).
RGB_PAPER = StreamSpec(
    in_channels=3,
    base_channels=24,
    stage_blocks=(3, 5, 11, 7),
    spatial_strides=(2, 2, 2, 2),
    stem_stride=2,
    widen_factor=2.25,
    fold_div=8,
    se_ratio=1 / 16,
    se_style="half",
    clip_len=16,
    input_size=224,
)
POSE_PAPER = StreamSpec(
    in_channels=17,
    base_channels=24,
    stage_blocks=(5, 11, 7),
    spatial_strides=(2, 2, 2),
    stem_stride=1,
    widen_factor=2.25,
    fold_div=4,
    se_ratio=1 / 16,
    se_style="half",
    clip_len=48,
    input_size=56,
)


def _fusion_problem(rgb: StreamSpec, pose: StreamSpec) -> tuple[str, str] | None:
    """(key, problem) when the two streams cannot be fused, else None."""
    if pose.clip_len % rgb.clip_len:
        return "pose.clip_len", (
            f"{pose.clip_len} is not a multiple of rgb.clip_len ({rgb.clip_len}); pose frames must be "
            "an integer number of RGB frames apart (paper: 48 and 16)"
        )
    if rgb.feature_size != pose.feature_size:
        return "pose.input_size", (
            f"gives {pose.feature_size}x{pose.feature_size} pose features but the RGB stream gives "
            f"{rgb.feature_size}x{rgb.feature_size}; choose input sizes and strides whose conv5 features "
            "have the same size (paper: 224 -> 7, 56 -> 7)"
        )
    return None


class ModelSpec(Spec):
    """EPAM-Net: the two streams, the attention kind and the heads' dropout.

    ``attention``: ``'cbam_nested'`` (the paper's CBAM spatial attention with nested
    efficient temporal attention) or ``'spatial_temporal'`` (the official alternative;
    its temporal MLP is sized by the RGB clip length). ``name`` labels the spec in
    tables; it is not a size, so specs compare (``==``) by architecture only.
    """

    where = "model"

    rgb: StreamSpec = RGB_PAPER
    pose: StreamSpec = POSE_PAPER
    attention: AttentionKind = "cbam_nested"
    dropout: Dropout = 0.5
    name: str = "paper"

    @model_validator(mode="after")
    def _fusable(self) -> ModelSpec:
        if problem := _fusion_problem(self.rgb, self.pose):
            raise rule_error(*problem)
        return self

    def _architecture(self) -> tuple[Any, ...]:
        return (self.rgb, self.pose, self.attention, self.dropout)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ModelSpec):
            return NotImplemented
        return self._architecture() == other._architecture()

    def __hash__(self) -> int:
        return hash(self._architecture())

    @property
    def time_stride(self) -> int:
        """Pose frames per RGB frame (3 in the paper: 48 pose frames, 16 RGB frames)."""
        return self.pose.clip_len // self.rgb.clip_len

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (lists for tuples, no name) that :func:`spec_from_dict` reads back."""
        return self.model_dump(mode="json", exclude={"name"})


def paper_spec() -> ModelSpec:
    """The paper configuration (RGB 3x16x224x224, pose 17x48x56x56)."""
    return ModelSpec()


def synthetic_spec() -> ModelSpec:
    """The small configuration for the synthetic datasets: same code, smaller numbers.

    RGB: 8 frames at 64x64, width 8, blocks (1, 2, 2, 1), last stage without spatial
    stride, so conv5 features are 4x4. Pose: 24 frames at 32x32, width 8, blocks
    (1, 2, 1), features 4x4. Time stride 24 / 8 = 3 as in the paper.
    """
    rgb = RGB_PAPER.replace(
        base_channels=8, stage_blocks=(1, 2, 2, 1), spatial_strides=(2, 2, 2, 1), clip_len=8, input_size=64
    )
    pose = POSE_PAPER.replace(base_channels=8, stage_blocks=(1, 2, 1), clip_len=24, input_size=32)
    return ModelSpec(rgb=rgb, pose=pose, name="synthetic")


# ---------------------------------------------------------------------------------------
# A preset with some keys overridden (params.yaml's ``model`` section).


class StreamOverrides(Strict):
    """``model.rgb`` / ``model.pose``: any :class:`StreamSpec` key; a key left out keeps the
    preset's value. The types are :class:`StreamSpec`'s own."""

    in_channels: PositiveInt | None = None
    base_channels: PositiveInt | None = None
    stage_blocks: PositiveInts | None = None
    spatial_strides: PositiveInts | None = None
    stem_stride: PositiveInt | None = None
    widen_factor: WidenFactor | None = None
    fold_div: FoldDiv | None = None
    se_ratio: Fraction | None = None
    se_style: SeStyle | None = None
    clip_len: PositiveInt | None = None
    input_size: PositiveInt | None = None


class ModelOverrides(Strict):
    """The keys of a :class:`ModelSpec` that ``params.yaml`` may set, each optional."""

    rgb: StreamOverrides = Field(default_factory=StreamOverrides)
    pose: StreamOverrides = Field(default_factory=StreamOverrides)
    attention: AttentionKind | None = None
    dropout: Dropout | None = None


def apply_overrides(data: Mapping[str, Any] | None, base: ModelSpec, name: str | None = None) -> ModelSpec:
    """``base`` with the keys of ``data`` applied; raises pydantic's ValidationError.

    ``data`` looks like ``{"rgb": {...}, "pose": {...}, "attention": ..., "dropout": ...}``.
    ``name`` labels the result (default: ``base``'s name, or "custom" when ``data``
    overrides anything).
    """
    overrides = ModelOverrides.model_validate(data or {}).model_dump(exclude_none=True)
    values: dict[str, Any] = dict(base)
    for stream in ("rgb", "pose"):
        values[stream] = {**dict(values[stream]), **overrides.pop(stream)}
    values.update(overrides)
    values["name"] = name or (base.name if not data else "custom")
    return ModelSpec.model_validate(values)


def spec_from_dict(
    data: Mapping[str, Any] | None, base: ModelSpec | None = None, where: str = "model", name: str | None = None
) -> ModelSpec:
    """Build a :class:`ModelSpec` from ``data`` (keys missing from it keep ``base``'s values).

    ``base`` defaults to the paper configuration; ``where`` names the dict in errors,
    e.g. ``params.yaml: model.pose.stage_blocks[1] is invalid: input should be a valid
    integer (got 'x')``. See :func:`apply_overrides` for ``name``.
    """
    try:
        return apply_overrides(data, base or paper_spec(), name)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = error_key(err, where, brackets=True)
        if err.get("type") == "extra_forbidden":
            raise EpamnetError(f"params.yaml: {key} is an {error_problem(err, ModelOverrides)}") from None
        raise EpamnetError(f"params.yaml: {key} is invalid: {error_problem(err)}") from None


def check_spec(spec: ModelSpec, where: str = "model") -> None:
    """Check that the two streams can be fused: integer time stride, equal feature sizes.

    A validated :class:`ModelSpec` always passes; this guards specs built without
    validation (``model_construct``).
    """
    if problem := _fusion_problem(spec.rgb, spec.pose):
        raise EpamnetError(f"params.yaml: {where}.{problem[0]} is invalid: {problem[1]}")
