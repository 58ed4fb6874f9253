"""``params.yaml`` as one model: :class:`Params`, its sections, loading and the JSON schema.

``params.yaml`` is the one parameter file of the project: Snakemake reads it as its
config (and validates it against ``workflow/schemas/params.schema.json``), DVC reads
it for its ``params`` dependencies, and every CLI stage loads it through
:func:`load_params`. The JSON schema is generated from the models below
(``epamnet schema``), and a test keeps the committed copy in step with them, so both
validators accept and reject the same files.

The sections ``synthetic``, ``model`` and ``train`` are the library settings models
themselves (:mod:`epamnet.config.synthetic`, :mod:`epamnet.config.model`,
:mod:`epamnet.config.train`) or their all-optional override forms; the settings they
combine into (a model spec, a stream's training config) are checked here too, so a
wrong value fails at start-up, not mid-pipeline.

A wrong value fails with one line naming the key and the allowed values, e.g.
``params.yaml: datasets.ntu60.protocols.0: input should be 'xsub' or 'xview'
(got 'xset')``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, PrivateAttr, ValidationError, model_validator

from epamnet.config.base import (
    Fraction,
    NonNegativeInt,
    PositiveInt,
    Strict,
    nested_rule_error,
    rule_error,
    settings_error,
)
from epamnet.config.model import (
    ModelOverrides,
    ModelSpec,
    apply_overrides,
    paper_spec,
    spec_from_dict,
    synthetic_spec,
)
from epamnet.config.recipes import Recipe, apply_recipe, recipe_keys, written_keys
from epamnet.config.synthetic import SyntheticSpec
from epamnet.config.train import TrainConfig, TrainOverrides, TrainSettings
from epamnet.datasets import PROTOCOLS
from epamnet.errors import EpamnetError

DatasetName = Literal["ntu60", "ntu120", "pku", "toyota"]
Source = Literal["synthetic", "real"]
SkeletonSource = Literal["provided", "mmpose"]

#: What the training stages train: the two unimodal streams, then their fusion.
STREAMS = ("pose", "rgb", "fusion")


class Paths(Strict):
    data: str = "data"
    downloads: str = "downloads"
    models: str = "models"
    results: str = "results"


class DatasetEntry(Strict):
    """How one dataset is obtained and evaluated.

    ``released``: protocol -> the released EPAM-Net checkpoint of that protocol (a path, or a
    file name under ``paths.downloads``); each is evaluated beside the trained streams and
    reported as its own row, "released weights".
    """

    source: Source = "synthetic"
    protocols: list[str]
    skeletons: SkeletonSource = "provided"
    released: dict[str, Annotated[str, Field(min_length=1)]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _released_protocols(self) -> DatasetEntry:
        for protocol in self.released:
            if protocol not in self.protocols:
                raise rule_error(
                    f"released.{protocol}",
                    f"is not one of this dataset's protocols ({', '.join(self.protocols)}); "
                    "add it to protocols or remove the entry",
                )
        return self


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
    def _unique_run(self) -> Datasets:
        if len(set(self.run)) != len(self.run):
            raise ValueError(f"lists a dataset twice: {self.run}")
        return self

    def entry(self, name: str) -> DatasetEntry:
        return getattr(self, name)


class Synthetic(SyntheticSpec):
    """The generator's sizes (:class:`SyntheticSpec`, cross-checked) and its random seed."""

    seed: NonNegativeInt = 0


class Model(ModelOverrides):
    """EPAM-Net's sizes: a preset, and any of its keys overridden (:class:`ModelOverrides`)."""

    preset: Literal["synthetic", "paper"] = "synthetic"


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

    common: TrainSettings = Field(default_factory=TrainSettings)
    pose: TrainOverrides = Field(default_factory=TrainOverrides)
    rgb: TrainOverrides = Field(default_factory=TrainOverrides)
    fusion: TrainOverrides = Field(default_factory=TrainOverrides)


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
    def _detector_files(self) -> Pose:
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
    """The whole of ``params.yaml``, with its recipe's values filled in (:mod:`epamnet.config.recipes`)."""

    recipe: Recipe = "synthetic"  # synthetic | paper: every training value at once; written keys win
    paths: Paths = Field(default_factory=Paths)
    datasets: Datasets = Field(default_factory=Datasets)
    synthetic: Synthetic = Field(default_factory=Synthetic)
    acquire: Acquire = Field(default_factory=Acquire)
    model: Model = Field(default_factory=Model)
    data: Data = Field(default_factory=Data)
    train: Train = Field(default_factory=Train)
    profile: Profile = Field(default_factory=Profile)
    prepare: Prepare = Field(default_factory=Prepare)
    pose: Pose = Field(default_factory=Pose)
    runtime: Runtime = Field(default_factory=Runtime)

    #: Dotted keys of ``model`` and ``train.*`` written in the parameter file itself.
    _written: frozenset[str] = PrivateAttr(default_factory=frozenset)

    @model_validator(mode="wrap")
    @classmethod
    def _apply_recipe(cls, data: Any, handler: Any) -> Params:
        # The recipe's values go in before validation, so that every reader (the stages, their
        # params hashes, the Snakemake rule params) sees the effective settings.
        if not isinstance(data, dict):
            return handler(data)
        params = handler(apply_recipe(data))
        params._written = written_keys(data)
        return params

    @model_validator(mode="after")
    def _protocols_known(self) -> Params:
        # The per-dataset Literal types already restrict protocols; this guards the
        # registry and the models against drifting apart.
        for name in self.datasets.run:
            unknown = set(self.datasets.entry(name).protocols) - set(PROTOCOLS[name])
            if unknown:
                raise ValueError(f"datasets.{name}.protocols: {sorted(unknown)} not in {PROTOCOLS[name]}")
        return self

    @model_validator(mode="after")
    def _combined_settings_valid(self) -> Params:
        # The model spec and each stream's training config combine several keys: their
        # cross-field rules are checked here, naming the key that was set.
        try:
            apply_overrides(self._model_overrides(), self._model_preset())
        except ValidationError as exc:
            raise nested_rule_error(exc, "model") from None
        for stream in STREAMS:
            try:
                TrainConfig.model_validate(self._train_values(stream))
            except ValidationError as exc:
                # Name the key where it was set: under train.<stream>, or else train.common.
                err = exc.errors()[0]
                key = err["loc"][0] if err["loc"] else err.get("ctx", {}).get("key")
                section = stream if getattr(getattr(self.train, stream), str(key), None) is not None else "common"
                raise nested_rule_error(exc, f"train.{section}") from None
        # The pose-only pipeline's random crop would move the heatmaps but not the RGB frames.
        if (pipeline := self._train_values("fusion")["pose_pipeline"]) != "fusion":
            section = "fusion" if self.train.fusion.pose_pipeline is not None else "common"
            raise rule_error(
                f"train.{section}.pose_pipeline",
                f"the fusion stream cannot use {pipeline!r} (its crop moves the heatmaps, not the RGB frames); "
                "set it under train.pose only and keep train.fusion.pose_pipeline: fusion",
            )
        return self

    def _train_values(self, stream: str) -> dict[str, Any]:
        values = self.train.common.model_dump()
        values.update(getattr(self.train, stream).model_dump(exclude_none=True))
        return values

    def _model_preset(self) -> ModelSpec:
        return paper_spec() if self.model.preset == "paper" else synthetic_spec()

    def _model_overrides(self) -> dict[str, Any]:
        overrides = self.model.model_dump(exclude={"preset"}, exclude_none=True)
        return {k: v for k, v in overrides.items() if v != {}}

    def origin(self, key: str) -> str:
        """Where the effective value of a dotted ``model.*`` key, or of a ``train.<stream>.<key>``
        setting of one stream, comes from: ``params.yaml``, ``recipe <name>`` or ``default``."""
        parts = key.split(".")
        candidates = [key]
        if parts[0] == "train" and len(parts) == 3 and parts[1] != "common":
            candidates = [key, f"train.common.{parts[2]}"]
        if any(k in self._written for k in candidates):
            return "params.yaml"
        if any(k in recipe_keys(self.recipe) for k in candidates):
            return f"recipe {self.recipe}"
        return "default"

    def train_config(self, stream: str) -> TrainConfig:
        """Training settings of one stream: ``train.common`` with ``train.<stream>`` applied."""
        return TrainConfig.from_dict(self._train_values(stream))

    def model_spec(self) -> ModelSpec:
        """EPAM-Net's sizes: ``model.preset`` with the keys set under ``model`` applied."""
        return spec_from_dict(self._model_overrides(), base=self._model_preset(), where="model")

    def synthetic_spec(self) -> SyntheticSpec:
        """The generator's sizes (``synthetic`` without ``seed``)."""
        return SyntheticSpec.from_dict(self.synthetic.model_dump(exclude={"seed"}))


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


def validate_params(data: Any, source: str | Path = "params.yaml") -> Params:
    """Validate a parsed ``params.yaml``; raise one-line :class:`EpamnetError` on error."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise EpamnetError(f"{source}: top level must be a mapping of sections, got {type(data).__name__}")
    try:
        return Params.model_validate(data)
    except ValidationError as exc:
        raise settings_error(exc, source=str(source), model=Params) from None


def read_params_file(path: str | Path = "params.yaml") -> Any:
    """The parsed YAML of ``path``, unvalidated; a missing file or bad syntax is a one-line error."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EpamnetError(f"{path}: parameter file not found; run from the project root or pass --params") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        raise EpamnetError(f"{path}: not valid YAML{where}{f' ({problem})' if problem else ''}; fix the syntax") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``path``."""
    return validate_params(read_params_file(path), path)


def json_schema() -> dict[str, Any]:
    """The JSON schema that Snakemake's ``validate()`` applies to ``params.yaml``."""
    schema = Params.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "epamnet params.yaml"
    return schema
