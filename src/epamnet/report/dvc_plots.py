"""The top-level ``plots:`` and ``metrics:`` sections of ``dvc.yaml``.

``dvc plots show`` then renders, per dataset and protocol, the training loss and the
accuracies of the three streams from ``models/<d>/<p>/<stream>/metrics.csv`` (x:
epoch), and per stream the test confusion matrix from
``results/metrics/<d>/<p>/<stream>/confusion.csv`` (x = actual, y = predicted). Both
use the project's Vega-Lite templates, committed in ``.dvc/plots/`` (DVC looks there
for a template named in ``dvc.yaml``): :data:`CURVES_TEMPLATE` gives each stream its
own colour (DVC's ``linear`` colours by revision, so all streams shared one) and each
metric its own dash, and marks every epoch with a point, so a one-epoch run shows;
:data:`CONFUSION_TEMPLATE` sums ``confusion.csv``'s counts, which has a row for every
pair of classes, so a class never predicted keeps its row (DVC's ``confusion``
template counts ``predictions.csv`` rows and loses it). ``dvc metrics show`` lists the
evaluation ``metrics.json`` of every dataset x protocol x stream: numbers only (the
facts beside them are in ``evaluation.json``), so the table stays narrow.

Validation columns exist only where the protocol has a validation list (the adapter's
``has_validation``: Toyota Smarthome; NTU and PKU-MMD have none), and DVC fails on a y
column a file lacks, so the accuracy plot asks for them only there. Plot ids are plain
words joined by '_' because DVC uses them as HTML element ids in the rendered page.
"""

from __future__ import annotations

from typing import Any

from epamnet.config import STREAMS, Params
from epamnet.datasets import DATASETS
from epamnet.datasets.registry import get_dataset
from epamnet.layout import Layout
from epamnet.report.paper import DATASET_LABEL, PROTOCOL_LABEL

#: The plot templates in ``.dvc/plots/<name>.json``.
CURVES_TEMPLATE = "epamnet_curves"
CONFUSION_TEMPLATE = "epamnet_confusion"

#: Datasets whose protocols have a validation list (so metrics.csv has val_ columns).
VALIDATION_DATASETS = frozenset(d for d in DATASETS if get_dataset(d).has_validation)


def accuracy_columns(dataset: str) -> list[str]:
    """The accuracy columns every metrics.csv of ``dataset`` has."""
    cols = ["train_top1"]
    if dataset in VALIDATION_DATASETS:
        cols += ["val_top1", "val_mean_class_acc"]
    return cols


def dvc_plots(params: Params) -> list[dict[str, Any]]:
    """The ``plots:`` list for the runs in ``params.datasets.run`` (paths as strings)."""
    lay = Layout.from_params(params)
    plots: list[dict[str, Any]] = []
    for d in params.datasets.run:
        for p in params.datasets.entry(d).protocols:
            title = f"{DATASET_LABEL[d]} {PROTOCOL_LABEL[p]}"
            curves = {s: str(lay.train_dir(d, p, s) / "metrics.csv") for s in STREAMS}
            plots.append(
                {
                    f"loss_{d}_{p}": {
                        "template": CURVES_TEMPLATE,
                        "x": "epoch",
                        "y": {curves[s]: "train_loss" for s in STREAMS},
                        "title": f"{title}: training loss (pose, rgb, fusion)",
                        "x_label": "epoch",
                        "y_label": "training loss",
                    }
                }
            )
            plots.append(
                {
                    f"accuracy_{d}_{p}": {
                        "template": CURVES_TEMPLATE,
                        "x": "epoch",
                        "y": {curves[s]: accuracy_columns(d) for s in STREAMS},
                        "title": f"{title}: accuracy per epoch (pose, rgb, fusion)",
                        "x_label": "epoch",
                        "y_label": "accuracy (fraction)",
                    }
                }
            )
            for s in STREAMS:
                plots.append(
                    {
                        f"confusion_{d}_{p}_{s}": {
                            "template": CONFUSION_TEMPLATE,
                            "x": "actual",
                            "y": {str(lay.eval_dir(d, p, s) / "confusion.csv"): "predicted"},
                            "title": f"{title} {s}: test confusion matrix",
                            "x_label": "actual",
                            "y_label": "predicted",
                        }
                    }
                )
    return plots


def dvc_metrics(params: Params) -> list[str]:
    """The ``metrics:`` list: every evaluation metrics.json of the configured runs."""
    lay = Layout.from_params(params)
    return [
        str(lay.eval_dir(d, p, s) / "metrics.json")
        for d in params.datasets.run
        for p in params.datasets.entry(d).protocols
        for s in STREAMS
    ]
