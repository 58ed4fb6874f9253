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
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from epamnet.datasets import PROTOCOLS
from epamnet.errors import EpamnetError
from epamnet.prepare.synthetic.design import SyntheticSpec

DatasetName = Literal["ntu60", "ntu120", "pku", "toyota"]
Source = Literal["synthetic", "real"]
SkeletonSource = Literal["provided"]

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


def _synthetic_model() -> type[BaseModel]:
    """The ``synthetic`` section: ``seed`` plus every field of :class:`SyntheticSpec`.

    Built from the dataclass so the generator's sizes are declared once; tuples become
    YAML lists (fixed-length tuples keep their length). Cross-field rules live in
    ``SyntheticSpec.__post_init__`` and run in :meth:`Params.synthetic_spec`.
    """
    hints = get_type_hints(SyntheticSpec)
    fields: dict[str, Any] = {"seed": (NonNegativeInt, 0)}
    for f in dataclasses.fields(SyntheticSpec):
        tp = hints[f.name]
        default = f.default
        if get_origin(tp) is tuple:
            args = get_args(tp)
            if args[-1] is Ellipsis:
                tp = list[args[0]]
            else:
                tp = Annotated[list[args[0]], Field(min_length=len(args), max_length=len(args))]
            default = list(default)
        fields[f.name] = (tp, Field(default=default))
    return create_model("Synthetic", __base__=Strict, **fields)


Synthetic = _synthetic_model()


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
    prepare: Prepare = Field(default_factory=Prepare)

    @model_validator(mode="after")
    def _protocols_known(self) -> "Params":
        # The per-dataset Literal types already restrict protocols; this guards the
        # registry and the models against drifting apart.
        for name in self.datasets.run:
            unknown = set(self.datasets.entry(name).protocols) - set(PROTOCOLS[name])
            if unknown:
                raise ValueError(f"datasets.{name}.protocols: {sorted(unknown)} not in {PROTOCOLS[name]}")
        return self

    def synthetic_spec(self) -> SyntheticSpec:
        """The generator's sizes (``synthetic`` without ``seed``), cross-checked."""
        return SyntheticSpec.from_mapping(self.synthetic.model_dump(exclude={"seed"}))


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
