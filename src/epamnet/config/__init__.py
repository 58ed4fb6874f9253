"""The settings of the project as pydantic models: the schema of ``params.yaml``.

Below every library: the libraries receive these validated objects, and this package
imports only :mod:`epamnet.datasets`, :mod:`epamnet.errors` and third-party packages.

* :mod:`~epamnet.config.base`: strict base models, shared value types, one-line errors.
* :mod:`~epamnet.config.train`: :class:`TrainConfig` (``train.*``).
* :mod:`~epamnet.config.model`: :class:`ModelSpec`, :class:`StreamSpec` and the presets (``model.*``).
* :mod:`~epamnet.config.synthetic`: :class:`SyntheticSpec` (``synthetic.*``).
* :mod:`~epamnet.config.params`: :class:`Params` (the whole file), :func:`load_params`, the JSON schema.
"""

from epamnet.config.model import (
    ATTENTION_KINDS,
    SE_STYLES,
    ModelSpec,
    StreamSpec,
    check_spec,
    paper_spec,
    spec_from_dict,
    synthetic_spec,
)
from epamnet.config.params import (
    STREAMS,
    Acquire,
    Crop,
    Data,
    DatasetEntry,
    Datasets,
    Model,
    Params,
    Paths,
    Pose,
    Prepare,
    Profile,
    Runtime,
    Synthetic,
    Train,
    json_schema,
    load_params,
    param_values,
    read_params_file,
    validate_params,
)
from epamnet.config.synthetic import SyntheticSpec
from epamnet.config.train import (
    RESUME_FREE_KEYS,
    RESUME_WARN_KEYS,
    TrainConfig,
    TrainOverrides,
    TrainSettings,
)

__all__ = [
    "ATTENTION_KINDS",
    "RESUME_FREE_KEYS",
    "RESUME_WARN_KEYS",
    "SE_STYLES",
    "STREAMS",
    "Acquire",
    "Crop",
    "Data",
    "DatasetEntry",
    "Datasets",
    "Model",
    "ModelSpec",
    "Params",
    "Paths",
    "Pose",
    "Prepare",
    "Profile",
    "Runtime",
    "StreamSpec",
    "Synthetic",
    "SyntheticSpec",
    "Train",
    "TrainConfig",
    "TrainOverrides",
    "TrainSettings",
    "check_spec",
    "json_schema",
    "load_params",
    "paper_spec",
    "param_values",
    "read_params_file",
    "spec_from_dict",
    "synthetic_spec",
    "validate_params",
]
