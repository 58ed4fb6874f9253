"""Classification metrics on score matrices: top-k, confusion matrix, class accuracies.

Scores are an ``N x C`` array (one row of class scores per sample, e.g. summed logits)
and labels an ``N`` array of 0-based class indices. All results are plain floats in
[0, 1] or NumPy arrays.

Mean class accuracy, two definitions
------------------------------------
The official code (``core/evalMetrics.py``, ``EvalMetrics.mean_class_accuracy``)
builds a confusion matrix over the *union of the predicted and the true labels*, takes
per-row recall ``hit / count`` with ``0.0`` for rows whose count is zero, and averages
over all rows of that union. A class that is predicted but has no ground-truth sample
therefore enters the mean with accuracy 0. That is the default here
(``definition="official"``).

``definition="present"`` averages recall over the classes present in the ground truth
only (the textbook "mean per-class recall"). The two agree whenever every predicted
class also occurs in the ground truth, e.g. on test splits that contain all classes;
they differ on splits with missing classes (Toyota ``validation_CS`` holds 28 of 31).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

MeanClassDefinition = Literal["official", "present"]


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if scores.ndim != 2 or scores.shape[0] != labels.shape[0]:
        raise ValueError(f"scores must be N x C with N = len(labels); got {scores.shape} and {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise ValueError(f"labels must lie in [0, {scores.shape[1]}); got range [{labels.min()}, {labels.max()}]")
    return scores, labels


def predictions(scores: np.ndarray) -> np.ndarray:
    """Top-1 class per row (the first maximum on ties, like ``np.argmax``)."""
    return np.asarray(scores).argmax(axis=1).astype(np.int64)


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """Fraction of samples whose label is among the ``k`` highest scores.

    ``k`` is capped by the number of classes (top-5 with 3 classes is top-3 = 1.0).
    Ties are broken towards the lower class index, consistently with :func:`predictions`.
    """
    scores, labels = _check(scores, labels)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if labels.size == 0:
        return float("nan")
    k = min(k, scores.shape[1])
    # Stable sort of the negated scores: descending order, lower index first on ties.
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """``num_classes x num_classes`` counts; row = actual class, column = predicted class."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    preds = np.asarray(preds, dtype=np.int64).reshape(-1)
    if labels.shape != preds.shape:
        raise ValueError(f"labels and preds differ in length: {labels.shape} vs {preds.shape}")
    for name, arr in (("labels", labels), ("preds", preds)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"{name} must lie in [0, {num_classes})")
    flat = np.bincount(labels * num_classes + preds, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """Recall of each class (diagonal / row sum); NaN for classes without samples."""
    confusion = np.asarray(confusion, dtype=np.float64)
    counts = confusion.sum(axis=1)
    hits = np.diag(confusion)
    out = np.full(counts.shape, np.nan)
    np.divide(hits, counts, out=out, where=counts > 0)
    return out


def mean_class_accuracy(
    labels: np.ndarray,
    preds: np.ndarray,
    num_classes: int,
    definition: MeanClassDefinition = "official",
) -> float:
    """Mean per-class recall; see the module docstring for the two definitions."""
    cm = confusion_matrix(labels, preds, num_classes)
    counts = cm.sum(axis=1)
    if counts.sum() == 0:
        return float("nan")
    recall = np.where(counts > 0, np.diag(cm) / np.maximum(counts, 1), 0.0)
    if definition == "official":
        # Union of predicted and true labels; rows without ground truth count as 0.
        used = (counts > 0) | (cm.sum(axis=0) > 0)
    elif definition == "present":
        used = counts > 0
    else:
        raise ValueError(f"definition must be 'official' or 'present', got {definition!r}")
    return float(recall[used].mean())
