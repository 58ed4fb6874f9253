"""Model sizes as plain dataclasses, with the paper configuration as the default.

A :class:`ModelSpec` holds everything that sets the shape of EPAM-Net: the two
X-ShiftNet streams (:class:`StreamSpec`), the attention kind and the head dropout.
The defaults are the paper / official configuration (spec sections 1-3); the small
synthetic configuration (:func:`synthetic_spec`) is the same code with smaller numbers.
:func:`spec_from_dict` builds a spec from the plain dict that ``params.yaml`` holds
and rejects unknown keys and bad values with an :class:`EpamnetError` naming the key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from epamnet.errors import EpamnetError

ATTENTION_KINDS = ("cbam_nested", "spatial_temporal")
SE_STYLES = ("half", "all", "none")


@dataclass(frozen=True)
class StreamSpec:
    """One X-ShiftNet stream (backbone) and the clip it reads.

    ``stage_blocks[i]`` blocks of output width ``base_channels * 2**i`` and bottleneck
    width ``int(width * widen_factor)``; the first block of stage ``i`` has spatial
    stride ``spatial_strides[i]``. conv5 maps the last stage to
    ``int(last_width * widen_factor)`` channels (:attr:`out_channels`).
    """

    in_channels: int
    base_channels: int
    stage_blocks: tuple[int, ...]
    spatial_strides: tuple[int, ...]
    stem_stride: int
    widen_factor: float
    fold_div: int
    se_ratio: float
    se_style: str
    clip_len: int
    input_size: int

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


@dataclass(frozen=True)
class ModelSpec:
    """EPAM-Net: the two streams, the attention kind and the heads' dropout.

    ``attention``: ``'cbam_nested'`` (the paper's CBAM spatial attention with nested
    efficient temporal attention) or ``'spatial_temporal'`` (the official alternative;
    its temporal MLP is sized by the RGB clip length).
    """

    rgb: StreamSpec = RGB_PAPER
    pose: StreamSpec = POSE_PAPER
    attention: str = "cbam_nested"
    dropout: float = 0.5
    # Not a size: kept out of equality so that specs compare by architecture only.
    name: str = field(default="paper", compare=False)

    @property
    def time_stride(self) -> int:
        """Pose frames per RGB frame (3 in the paper: 48 pose frames, 16 RGB frames)."""
        return self.pose.clip_len // self.rgb.clip_len

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (lists for tuples) that :func:`spec_from_dict` reads back."""
        out = dataclasses.asdict(self)
        out.pop("name")
        for stream in ("rgb", "pose"):
            for key, value in out[stream].items():
                if isinstance(value, tuple):
                    out[stream][key] = list(value)
        return out


def paper_spec() -> ModelSpec:
    """The paper configuration (RGB 3x16x224x224, pose 17x48x56x56)."""
    return ModelSpec()


def synthetic_spec() -> ModelSpec:
    """The small configuration for the synthetic datasets: same code, smaller numbers.

    RGB: 8 frames at 64x64, width 8, blocks (1, 2, 2, 1), last stage without spatial
    stride, so conv5 features are 4x4. Pose: 24 frames at 32x32, width 8, blocks
    (1, 2, 1), features 4x4. Time stride 24 / 8 = 3 as in the paper.
    """
    rgb = dataclasses.replace(
        RGB_PAPER,
        base_channels=8,
        stage_blocks=(1, 2, 2, 1),
        spatial_strides=(2, 2, 2, 1),
        clip_len=8,
        input_size=64,
    )
    pose = dataclasses.replace(
        POSE_PAPER, base_channels=8, stage_blocks=(1, 2, 1), clip_len=24, input_size=32
    )
    return ModelSpec(rgb=rgb, pose=pose, name="synthetic")


# ---------------------------------------------------------------------------------------
# Building and checking specs from plain dicts (params.yaml).


def _bad(key: str, problem: str, fix: str) -> EpamnetError:
    return EpamnetError(f"params.yaml: {key} {problem}; {fix}")


def _int(key: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(key, f"must be an integer, got {value!r}", f"set an integer >= {minimum}")
    if value < minimum:
        raise _bad(key, f"must be >= {minimum}, got {value}", f"set an integer >= {minimum}")
    return value


def _float(key: str, value: Any, low: float, high: float, high_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(key, f"must be a number, got {value!r}", f"set a number in [{low}, {high}]")
    ok = low <= value < high if high_open else low <= value <= high
    if not ok:
        bound = f"[{low}, {high})" if high_open else f"[{low}, {high}]"
        raise _bad(key, f"must be in {bound}, got {value}", f"set a number in {bound}")
    return float(value)


def _int_tuple(key: str, value: Any, minimum: int = 1) -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise _bad(key, f"must be a non-empty list of integers, got {value!r}", "write e.g. [3, 5, 11, 7]")
    return tuple(_int(f"{key}[{i}]", v, minimum) for i, v in enumerate(value))


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _bad(key, f"must be one of {', '.join(choices)}, got {value!r}", "pick one of those")
    return value


def _check_keys(where: str, data: Any, allowed: list[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise _bad(where, f"must be a mapping, got {type(data).__name__}", "write it as key: value lines")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise _bad(f"{where}.{unknown[0]}", "is not a known setting", f"use only {', '.join(allowed)}")
    return data


def stream_from_dict(data: Mapping[str, Any], base: StreamSpec, where: str) -> StreamSpec:
    """Override ``base`` with the keys of ``data``; validate every value."""
    names = [f.name for f in dataclasses.fields(StreamSpec)]
    data = _check_keys(where, data, names)
    values = {**dataclasses.asdict(base), **data}
    k = lambda name: f"{where}.{name}"  # noqa: E731
    spec = StreamSpec(
        in_channels=_int(k("in_channels"), values["in_channels"]),
        base_channels=_int(k("base_channels"), values["base_channels"]),
        stage_blocks=_int_tuple(k("stage_blocks"), values["stage_blocks"]),
        spatial_strides=_int_tuple(k("spatial_strides"), values["spatial_strides"]),
        stem_stride=_int(k("stem_stride"), values["stem_stride"]),
        widen_factor=_float(k("widen_factor"), values["widen_factor"], 1.0, 16.0),
        fold_div=_int(k("fold_div"), values["fold_div"], minimum=2),
        se_ratio=_float(k("se_ratio"), values["se_ratio"], 0.0, 1.0),
        se_style=_choice(k("se_style"), values["se_style"], SE_STYLES),
        clip_len=_int(k("clip_len"), values["clip_len"]),
        input_size=_int(k("input_size"), values["input_size"]),
    )
    if len(spec.spatial_strides) != len(spec.stage_blocks):
        raise _bad(
            k("spatial_strides"),
            f"has {len(spec.spatial_strides)} entries but stage_blocks has {len(spec.stage_blocks)}",
            "give one stride per stage",
        )
    if spec.base_channels // spec.fold_div < 1:
        raise _bad(k("fold_div"), f"shifts no channel of the {spec.base_channels}-channel stem", "lower fold_div")
    return spec


def spec_from_dict(
    data: Mapping[str, Any] | None, base: ModelSpec | None = None, where: str = "model", name: str | None = None
) -> ModelSpec:
    """Build a :class:`ModelSpec` from ``data`` (keys missing from it keep ``base``'s values).

    ``data`` looks like ``{"rgb": {...}, "pose": {...}, "attention": ..., "dropout": ...}``;
    ``base`` defaults to the paper configuration. ``where`` names the dict in errors;
    ``name`` labels the result in tables (default: ``base``'s name, or "custom" when
    ``data`` overrides anything).
    """
    base = base or paper_spec()
    data = _check_keys(where, data or {}, ["rgb", "pose", "attention", "dropout"])
    rgb = stream_from_dict(data.get("rgb", {}), base.rgb, f"{where}.rgb")
    pose = stream_from_dict(data.get("pose", {}), base.pose, f"{where}.pose")
    spec = ModelSpec(
        rgb=rgb,
        pose=pose,
        attention=_choice(f"{where}.attention", data.get("attention", base.attention), ATTENTION_KINDS),
        dropout=_float(f"{where}.dropout", data.get("dropout", base.dropout), 0.0, 1.0, high_open=True),
        name=name or (base.name if not data else "custom"),
    )
    check_spec(spec, where)
    return spec


def check_spec(spec: ModelSpec, where: str = "model") -> None:
    """Check that the two streams can be fused: integer time stride, equal feature sizes."""
    if spec.pose.clip_len % spec.rgb.clip_len:
        raise _bad(
            f"{where}.pose.clip_len",
            f"({spec.pose.clip_len}) is not a multiple of {where}.rgb.clip_len ({spec.rgb.clip_len})",
            "pose frames must be an integer number of RGB frames apart (paper: 48 and 16)",
        )
    if spec.rgb.feature_size != spec.pose.feature_size:
        raise _bad(
            f"{where}.pose.input_size",
            f"gives {spec.pose.feature_size}x{spec.pose.feature_size} pose features but the RGB stream "
            f"gives {spec.rgb.feature_size}x{spec.rgb.feature_size}",
            "choose input sizes and strides whose conv5 features have the same size (paper: 224 -> 7, 56 -> 7)",
        )
