"""What the paper reports, each number with where it comes from.

Only numbers found in the paper's own material are here (spec
``official-code-facts.md`` section 8): the per-dataset accuracies of the official
README and the GFLOPs of the paper's Table 1 (the repository figure
``comparison_multimodal_HAR_approaches.png``). The other methods' parameter counts and
accuracies were not found, so they are absent, not guessed. Accuracies are
percentages, as printed; our metrics files hold fractions.
"""

from __future__ import annotations

from dataclasses import dataclass

# How the report names each dataset and which metric it reports: facts of the dataset adapters.
from epamnet.datasets.registry import DISPLAY_NAME as DATASET_LABEL
from epamnet.datasets.registry import REPORTED_METRIC

# EPAM-Net's own Table 1 figure: written once, where `epamnet profile` (below the report) puts it in efficiency.csv.
from epamnet.models.profile import PAPER_GFLOPS

__all__ = [
    "DATASET_LABEL", "METRIC_LABEL", "PAPER_ACCURACY", "PAPER_EFFICIENCY", "PROTOCOL_LABEL", "REPORTED_METRIC",
    "STREAM_LABEL", "ReportedAccuracy", "ReportedEfficiency", "paper_runs", "reported_accuracy",
]  # fmt: skip

METRIC_LABEL = {"top1": "top-1", "mean_class_acc": "mean class acc."}
PROTOCOL_LABEL = {"xsub": "XSub", "xview": "XView", "xset": "XSet", "cs": "CS", "cv1": "CV1", "cv2": "CV2"}
STREAM_LABEL = {"pose": "Pose X-ShiftNet", "rgb": "RGB X-ShiftNet", "fusion": "EPAM-Net (fused)"}

README_SOURCE = "EPAM-Net official README results table, 1 clip (spec official-code-facts.md s.8)"
TABLE1_SOURCE = "EPAM-Net paper Table 1 / repo figure comparison_multimodal_HAR_approaches.png (spec s.8)"


@dataclass(frozen=True)
class ReportedAccuracy:
    """One accuracy of the fused EPAM-Net as the paper reports it (percent)."""

    dataset: str
    protocol: str
    metric: str  # 'top1' | 'mean_class_acc'
    value: float
    source: str = README_SOURCE


#: The paper's results table, in its order.
PAPER_ACCURACY: tuple[ReportedAccuracy, ...] = (
    ReportedAccuracy("ntu60", "xsub", "top1", 96.1),
    ReportedAccuracy("ntu60", "xview", "top1", 99.0),
    ReportedAccuracy("ntu120", "xsub", "top1", 92.4),
    ReportedAccuracy("ntu120", "xset", "top1", 94.3),
    ReportedAccuracy("pku", "xsub", "top1", 96.2),
    ReportedAccuracy("pku", "xview", "top1", 98.4),
    ReportedAccuracy("toyota", "cs", "mean_class_acc", 71.7),
    ReportedAccuracy("toyota", "cv2", "mean_class_acc", 67.8),
)


@dataclass(frozen=True)
class ReportedEfficiency:
    """One method of the paper's Table 1: GFLOPs per clip (parameters: not reported there)."""

    method: str
    gflops: float
    source: str = TABLE1_SOURCE
    is_epamnet: bool = False


PAPER_EFFICIENCY: tuple[ReportedEfficiency, ...] = (
    ReportedEfficiency("EPAM-Net", PAPER_GFLOPS, is_epamnet=True),
    ReportedEfficiency("VPN", 107.9),
    ReportedEfficiency("VPN++", 125.8),
    ReportedEfficiency("MMNet", 89.2),
    ReportedEfficiency("TCEM-MMNet", 85.4),
    ReportedEfficiency("pi-ViT", 590.0),
)


def reported_accuracy(dataset: str, protocol: str) -> ReportedAccuracy | None:
    """The paper's number for (dataset, protocol), or None where it reports none."""
    for row in PAPER_ACCURACY:
        if (row.dataset, row.protocol) == (dataset, protocol):
            return row
    return None


def paper_runs() -> list[tuple[str, str]]:
    """(dataset, protocol) pairs of the paper's results table, in its order."""
    return [(r.dataset, r.protocol) for r in PAPER_ACCURACY]
