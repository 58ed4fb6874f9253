"""Typed, validated view of ``params.yaml``.

``params.yaml`` is the one parameter file of the project: Snakemake reads it as its
config (and validates it against ``workflow/schemas/params.schema.json``), DVC reads
it for its ``params`` dependencies, and every CLI stage loads it through
:func:`load_params`. The JSON schema is generated from the models below
(``epamnet schema``), and a test keeps the committed copy in step with them, so both
validators accept and reject the same files.

A wrong value fails at start-up with one line naming the key and the allowed values,
e.g. ``params.yaml: datasets.ntu60.protocols.0: input should be 'xsub' or 'xview'
(got 'xset')``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from epamnet.datasets import PROTOCOLS
from epamnet.engine.train_config import TrainConfig
from epamnet.errors import EpamnetError
from epamnet.models.specs import (
    ATTENTION_KINDS,
    ModelSpec,
    StreamSpec,
    paper_spec,
    spec_from_dict,
    synthetic_spec,
)
from epamnet.prepare.synthetic.design import SyntheticSpec

DatasetName = Literal["ntu60", "ntu120", "pku", "toyota"]
Source = Literal["synthetic", "real"]
SkeletonSource = Literal["provided", "mmpose"]

#: What the training stages train: the two unimodal streams, then their fusion.
STREAMS = ("pose", "rgb", "fusion")

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class Strict(BaseModel):
    """Base model: unknown keys are errors, values are not coerced across types."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Paths(Strict):
    data: str = "data"
    downloads: str = "downloads"
    models: str = "models"
    results: str = "results"


class DatasetEntry(Strict):
    """How one dataset is obtained and evaluated."""

    source: Source = "synthetic"
    protocols: list[str]
    skeletons: SkeletonSource = "provided"


class Ntu60Entry(DatasetEntry):
    protocols: list[Literal["xsub", "xview"]] = Field(default_factory=lambda: ["xsub", "xview"], min_length=1)


class Ntu120Entry(DatasetEntry):
    source: Source = "real"
    protocols: list[Literal["xsub", "xset"]] = Field(default_factory=lambda: ["xsub", "xset"], min_length=1)


class PkuEntry(DatasetEntry):
    protocols: list[Literal["xsub", "xview"]] = Field(default_factory=lambda: ["xsub", "xview"], min_length=1)


class ToyotaEntry(DatasetEntry):
    protocols: list[Literal["cs", "cv1", "cv2"]] = Field(default_factory=lambda: ["cs", "cv2"], min_length=1)


class Datasets(Strict):
    run: list[DatasetName] = Field(default_factory=lambda: ["ntu60", "pku", "toyota"], min_length=1)
    ntu60: Ntu60Entry = Field(default_factory=Ntu60Entry)
    ntu120: Ntu120Entry = Field(default_factory=Ntu120Entry)
    pku: PkuEntry = Field(default_factory=PkuEntry)
    toyota: ToyotaEntry = Field(default_factory=ToyotaEntry)

    @model_validator(mode="after")
    def _unique_run(self) -> "Datasets":
        if len(set(self.run)) != len(self.run):
            raise ValueError(f"lists a dataset twice: {self.run}")
        return self

    def entry(self, name: str) -> DatasetEntry:
        return getattr(self, name)


def _yaml_type(tp: Any) -> Any:
    """The YAML-side type of a dataclass field: tuples are lists (fixed ones keep their length)."""
    if get_origin(tp) is not tuple:
        return tp
    args = get_args(tp)
    if args[-1] is Ellipsis:
        return list[args[0]]
    return Annotated[list[args[0]], Field(min_length=len(args), max_length=len(args))]


def section_from_dataclass(
    cls: type, name: str, *, optional: bool = False, exclude: tuple[str, ...] = (), **extra: Any
) -> type[BaseModel]:
    """A params.yaml section with one key per field of the dataclass ``cls``.

    The generator's and the models' sizes are declared once, in their dataclasses;
    this gives them a typed, schema-visible section. ``optional``: every key may be
    left out (it then keeps the preset's value). Cross-field rules stay in the
    dataclasses and run in :class:`Params`'s validator.
    """
    hints = get_type_hints(cls)
    fields: dict[str, Any] = dict(extra)
    for f in dataclasses.fields(cls):
        if not f.init or f.name == "name" or f.name in exclude:
            continue
        tp = _yaml_type(hints[f.name])
        if optional:
            fields[f.name] = (tp | None, None)
        else:
            default = list(f.default) if isinstance(f.default, tuple) else f.default
            fields[f.name] = (tp, Field(default=default))
    return create_model(name, __base__=Strict, **fields)


Synthetic = section_from_dataclass(SyntheticSpec, "Synthetic", seed=(NonNegativeInt, 0))
StreamOverrides = section_from_dataclass(StreamSpec, "StreamOverrides", optional=True)


class Model(Strict):
    """EPAM-Net's sizes: a preset, and any stream size overridden key by key."""

    preset: Literal["synthetic", "paper"] = "synthetic"
    rgb: StreamOverrides = Field(default_factory=StreamOverrides)  # type: ignore[valid-type]
    pose: StreamOverrides = Field(default_factory=StreamOverrides)  # type: ignore[valid-type]
    attention: Literal[ATTENTION_KINDS] | None = None  # type: ignore[valid-type]
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] | None = None


TrainCommon = section_from_dataclass(TrainConfig, "TrainCommon", exclude=("selection",))
TrainOverrides = section_from_dataclass(TrainConfig, "TrainOverrides", optional=True, exclude=("selection",))


class Data(Strict):
    """Clip transforms (clip lengths and sizes come from the model spec)."""

    sigma: Annotated[float, Field(gt=0)] = 0.6  # Gaussian of each joint, in heatmap pixels
    use_score: bool = True  # heatmap peak = keypoint score
    compact_padding: Annotated[float, Field(ge=0)] = 0.25  # pose compaction box padding
    compact_threshold: Annotated[float, Field(ge=0)] = 10.0  # smaller pose boxes keep the whole frame
    allow_imgpad: bool = False  # the fusion pipeline's compaction (official pose-only: true)
    flip_ratio: Fraction = 0.5  # horizontal flip probability in training (RGB and pose together)


class Train(Strict):
    """Training: shared settings, overridden key by key per stream."""

    common: TrainCommon = Field(default_factory=TrainCommon)  # type: ignore[valid-type]
    pose: TrainOverrides = Field(default_factory=TrainOverrides)  # type: ignore[valid-type]
    rgb: TrainOverrides = Field(default_factory=TrainOverrides)  # type: ignore[valid-type]
    fusion: TrainOverrides = Field(default_factory=TrainOverrides)  # type: ignore[valid-type]


class Profile(Strict):
    """``epamnet profile``: parameters, multiply-adds and clips/s of the paper model."""

    device: str = "cpu"
    iters: NonNegativeInt = 5  # timed forward passes per batch size (0: counts only)
    batch_sizes: list[PositiveInt] = Field(default_factory=lambda: [1, 4], min_length=1)


class Acquire(Strict):
    """Real data: how downloads and licence-gated archives become ``data/raw/<dataset>``."""

    link: Literal["auto", "hardlink", "symlink", "copy"] = "auto"  # extracted folders -> raw layout
    timeout: Annotated[float, Field(gt=0)] = 60.0  # seconds per network read
    retries: NonNegativeInt = 3
    skeleton_url: str | None = None  # a mirror of the NTU skeleton pickle (replaces the registry URL)
    skeleton_sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")] | None = None  # pin for that file


class Crop(Strict):
    size: PositiveInt = 224
    padding: Annotated[float, Field(ge=0.0, le=4.0)] = 0.25
    threshold: Annotated[float, Field(ge=0.0)] = 10.0


class Pose(Strict):
    """``pose-extract``: mmpose HRNet-W32 top-down extraction (datasets with ``skeletons: mmpose``)."""

    checkpoint: str = "checkpoints/td-hm_hrnet-w32_8xb64-210e_coco-256x192-81c58e40_20220909.pth"  # DVC-tracked
    config: str = "body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w32_8xb64-210e_coco-256x192.py"
    random_init: bool = False  # tests/CI only: a randomly initialised HRNet, checkpoint not read
    shards: PositiveInt = 2  # extraction jobs per dataset (real NTU-120: e.g. 64)
    batch_size: PositiveInt = 8  # person crops per forward pass
    flip_test: bool = True
    max_persons: PositiveInt = 2  # persons kept per frame, by mean keypoint score
    box_source: Literal["skeleton", "full_frame", "detector"] = "skeleton"
    box_padding: Annotated[float, Field(ge=0.0)] = 0.1  # skeleton boxes: padding per side
    det_config: str | None = None  # mmdet config (box_source: detector; needs mmcv with ops)
    det_checkpoint: str | None = None
    det_score_threshold: Fraction = 0.5
    device: str = "cpu"

    @model_validator(mode="after")
    def _detector_files(self) -> "Pose":
        if self.box_source == "detector" and not (self.det_config and self.det_checkpoint):
            raise ValueError("box_source 'detector' needs det_config and det_checkpoint (an mmdet config and its weights)")
        return self


class Runtime(Strict):
    """How every stage uses the CPU, applied in code (``epamnet.runtime``), whatever launched it."""

    threads: PositiveInt = 1  # CPU threads of each job (each torchrun process); changes torch's numbers
    portable_cpu: bool = False  # pin MKL, ATen, oneDNN and numpy to AVX2 code paths (slower; same numbers on more CPUs)


class Prepare(Strict):
    shards: PositiveInt = 2
    on_sample_error: Literal["fail", "skip"] = "fail"
    crop: Crop = Field(default_factory=Crop)


class Params(Strict):
    """The whole of ``params.yaml``."""

    paths: Paths = Field(default_factory=Paths)
    datasets: Datasets = Field(default_factory=Datasets)
    synthetic: Synthetic = Field(default_factory=Synthetic)  # type: ignore[valid-type]
    acquire: Acquire = Field(default_factory=Acquire)
    model: Model = Field(default_factory=Model)
    data: Data = Field(default_factory=Data)
    train: Train = Field(default_factory=Train)
    profile: Profile = Field(default_factory=Profile)
    prepare: Prepare = Field(default_factory=Prepare)
    pose: Pose = Field(default_factory=Pose)
    runtime: Runtime = Field(default_factory=Runtime)

    @model_validator(mode="after")
    def _protocols_known(self) -> "Params":
        # The per-dataset Literal types already restrict protocols; this guards the
        # registry and the models against drifting apart.
        for name in self.datasets.run:
            unknown = set(self.datasets.entry(name).protocols) - set(PROTOCOLS[name])
            if unknown:
                raise ValueError(f"datasets.{name}.protocols: {sorted(unknown)} not in {PROTOCOLS[name]}")
        # Cross-field rules of the dataclasses: fail at start-up, not mid-pipeline.
        self.synthetic_spec()
        self.model_spec()
        for stream in STREAMS:
            self.train_config(stream)
        return self

    def train_config(self, stream: str) -> TrainConfig:
        """Training settings of one stream: ``train.common`` with ``train.<stream>`` applied."""
        values = self.train.common.model_dump()
        values.update(getattr(self.train, stream).model_dump(exclude_none=True))
        return TrainConfig.from_dict(values)

    def model_spec(self) -> ModelSpec:
        """EPAM-Net's sizes: ``model.preset`` with the keys set under ``model`` applied."""
        base = paper_spec() if self.model.preset == "paper" else synthetic_spec()
        overrides = self.model.model_dump(exclude={"preset"}, exclude_none=True)
        overrides = {k: v for k, v in overrides.items() if v != {}}
        return spec_from_dict(overrides, base=base, where="model")

    def synthetic_spec(self) -> SyntheticSpec:
        """The generator's sizes (``synthetic`` without ``seed``), cross-checked."""
        return SyntheticSpec.from_mapping(self.synthetic.model_dump(exclude={"seed"}))


def param_values(params: Params, keys: Iterable[str]) -> dict[str, Any]:
    """``{dotted key: value}`` of ``params`` (defaults included), e.g. ``{"train.common": {...}}``."""
    values = params.model_dump(mode="json")
    out = {}
    for key in keys:
        value: Any = values
        for part in key.split("."):
            value = value[part]
        out[key] = value
    return out


def _format_error(err: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
    msg = err.get("msg", "invalid value")
    msg = msg[0].lower() + msg[1:] if msg else msg
    if err.get("type") == "extra_forbidden":
        return f"{loc}: unknown key; remove it or fix its spelling"
    got = err.get("input")
    shown = "" if isinstance(got, (dict, list)) or got is None else f" (got {got!r})"
    return f"{loc}: {msg}{shown}"


def validate_params(data: Any, source: str | Path = "params.yaml") -> Params:
    """Validate a parsed ``params.yaml``; raise one-line :class:`EpamnetError` on error."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise EpamnetError(f"{source}: top level must be a mapping of sections, got {type(data).__name__}")
    try:
        return Params.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise EpamnetError(f"{source}: {_format_error(errors[0])}{more}") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EpamnetError(f"{path}: parameter file not found; run from the project root or pass --params") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise EpamnetError(f"{path}: not valid YAML{where}; fix the syntax") from None
    return validate_params(data, path)


def json_schema() -> dict[str, Any]:
    """The JSON schema that Snakemake's ``validate()`` applies to ``params.yaml``."""
    schema = Params.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "epamnet params.yaml"
    return schema
