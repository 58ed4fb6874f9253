"""EPAM-Net models: X-ShiftNet streams, pose-driven attention, fusion, profiling, conversion.

Import the pieces from their modules; the most used names are re-exported here.
"""

from epamnet.models.epam import (
    EPAMNet,
    PoseClassifier,
    RGBClassifier,
    build_model,
    load_stream_weights,
)
from epamnet.models.specs import ModelSpec, StreamSpec, paper_spec, spec_from_dict, synthetic_spec

__all__ = [
    "EPAMNet",
    "ModelSpec",
    "PoseClassifier",
    "RGBClassifier",
    "StreamSpec",
    "build_model",
    "load_stream_weights",
    "paper_spec",
    "spec_from_dict",
    "synthetic_spec",
]
