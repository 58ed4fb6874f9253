"""Metrics against hand-computed examples, and the evaluation writer's files."""

from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from epamnet.engine import metrics as M
from epamnet.engine.evaluate import evaluate, write_evaluation
from epamnet.engine.tasks import SingleStreamTask

# 4 samples, 3 classes. Predictions: 0 (right), 1 (wrong, label 0), 1 (right), 0 (wrong, label 2).
SCORES = np.array(
    [
        [0.9, 0.1, 0.0],
        [0.2, 0.5, 0.3],
        [0.1, 0.7, 0.2],
        [0.6, 0.1, 0.3],
    ]
)
LABELS = np.array([0, 0, 1, 2])


def test_topk_by_hand() -> None:
    assert M.topk_accuracy(SCORES, LABELS, 1) == 0.5
    # top-2 sets: {0,1} {1,2} {1,2} {0,2}: samples 0, 2, 3 hit.
    assert M.topk_accuracy(SCORES, LABELS, 2) == 0.75
    # k is capped by the class count: top-5 of 3 classes always hits.
    assert M.topk_accuracy(SCORES, LABELS, 5) == 1.0


def test_topk_ties_break_towards_lower_index() -> None:
    scores = np.array([[1.0, 1.0, 0.0]])
    assert M.predictions(scores).tolist() == [0]
    assert M.topk_accuracy(scores, np.array([1]), 1) == 0.0
    assert M.topk_accuracy(scores, np.array([1]), 2) == 1.0


def test_confusion_and_per_class_by_hand() -> None:
    cm = M.confusion_matrix(LABELS, M.predictions(SCORES), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]  # rows actual, columns predicted
    assert M.per_class_accuracy(cm).tolist() == [0.5, 1.0, 0.0]
    assert M.mean_class_accuracy(LABELS, M.predictions(SCORES), 3) == pytest.approx(0.5)


def test_per_class_is_nan_for_classes_without_samples() -> None:
    cm = M.confusion_matrix(np.array([0, 0]), np.array([0, 2]), 3)
    acc = M.per_class_accuracy(cm)
    assert acc[0] == 0.5 and np.isnan(acc[1]) and np.isnan(acc[2])


def test_mean_class_official_counts_predicted_only_classes_as_zero() -> None:
    # Ground truth has classes 0 and 1; class 3 is only predicted; class 2 appears nowhere.
    labels = np.array([0, 0, 1, 1])
    preds = np.array([0, 3, 1, 1])
    # official: union {0, 1, 3} -> (0.5 + 1.0 + 0.0) / 3
    assert M.mean_class_accuracy(labels, preds, 4) == pytest.approx(0.5)
    # present: classes {0, 1} -> (0.5 + 1.0) / 2
    assert M.mean_class_accuracy(labels, preds, 4, definition="present") == pytest.approx(0.75)
    # Both agree when every predicted class has ground truth.
    preds_ok = np.array([0, 1, 1, 1])
    assert M.mean_class_accuracy(labels, preds_ok, 4) == M.mean_class_accuracy(labels, preds_ok, 4, "present") == 0.75


@pytest.mark.parametrize(
    ("scores", "labels"),
    [
        (np.zeros((3, 2)), np.array([0, 1])),  # length mismatch
        (np.zeros((2, 2)), np.array([0, 2])),  # label out of range
        (np.zeros(4), np.array([0, 1, 0, 1])),  # not N x C
    ],
)
def test_bad_inputs_raise(scores: np.ndarray, labels: np.ndarray) -> None:
    with pytest.raises(ValueError):
        M.topk_accuracy(scores, labels, 1)


def test_bad_k_and_definition() -> None:
    with pytest.raises(ValueError):
        M.topk_accuracy(SCORES, LABELS, 0)
    with pytest.raises(ValueError):
        M.mean_class_accuracy(LABELS, LABELS, 3, definition="macro")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        M.confusion_matrix(np.array([0, 5]), np.array([0, 1]), 3)


class _FixedScores(torch.nn.Module):
    """Returns the row of SCORES selected by the input index, so outputs are known exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("table", torch.tensor(SCORES, dtype=torch.float32))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.table[idx]


def test_evaluate_and_write_files(tmp_path) -> None:
    ds = TensorDataset(torch.arange(4), torch.tensor(LABELS))
    res = evaluate(SingleStreamTask(0, 1), _FixedScores(), ds, batch_size=3, device="cpu", num_classes=3)
    assert res.num_samples == 4
    np.testing.assert_array_equal(res.scores, SCORES.astype(np.float32))
    assert (res.top1, res.top5, res.mean_class_acc) == (0.5, 1.0, 0.5)
    expected_loss = torch.nn.functional.cross_entropy(torch.tensor(SCORES, dtype=torch.float32), torch.tensor(LABELS))
    assert res.loss == pytest.approx(float(expected_loss), rel=1e-6)

    out = tmp_path / "eval"
    write_evaluation(res, out, sample_ids=["a", "b", "c", "d"], class_names=["x", "y", "z"], extra={"split": "test"})
    m = json.loads((out / "metrics.json").read_text())
    assert m["top1"] == 0.5 and m["top5"] == 1.0 and m["mean_class_acc"] == 0.5
    # metrics.json: only the numbers DVC compares; the rest beside it in evaluation.json
    assert list(m) == ["top1", "top5", "mean_class_acc", "loss", "num_samples"] and m["num_samples"] == 4
    assert all(type(v) in (int, float) for v in m.values())
    facts = json.loads((out / "evaluation.json").read_text())
    assert facts == {"mean_class_acc_definition": "official", "num_classes": 3, "split": "test"}

    conf = list(csv.DictReader((out / "confusion.csv").open()))
    assert len(conf) == 9 and sum(int(r["count"]) for r in conf) == 4
    assert {(r["actual"], r["predicted"]): int(r["count"]) for r in conf}[("z", "x")] == 1

    preds = list(csv.DictReader((out / "predictions.csv").open()))
    assert [(r["sample"], r["actual"], r["predicted"]) for r in preds] == [
        ("a", "x", "x"), ("b", "x", "y"), ("c", "y", "y"), ("d", "z", "x"),
    ]
    per_class = list(csv.DictReader((out / "per_class.csv").open()))
    assert [(r["name"], r["count"], r["correct"]) for r in per_class] == [("x", "2", "1"), ("y", "1", "1"), ("z", "1", "0")]
    assert float(per_class[0]["accuracy"]) == 0.5

    with np.load(out / "scores.npz", allow_pickle=False) as npz:
        assert npz["ids"].tolist() == ["a", "b", "c", "d"]
        np.testing.assert_array_equal(npz["labels"], LABELS)
        np.testing.assert_array_equal(npz["scores"], SCORES.astype(np.float32))
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


def test_evaluate_rejects_wrong_class_count() -> None:
    ds = TensorDataset(torch.arange(4), torch.tensor(LABELS))
    with pytest.raises(ValueError, match="num_classes"):
        evaluate(SingleStreamTask(0, 1), _FixedScores(), ds, batch_size=2, device="cpu", num_classes=5)


def test_write_evaluation_rejects_wrong_id_count(tmp_path) -> None:
    ds = TensorDataset(torch.arange(4), torch.tensor(LABELS))
    res = evaluate(SingleStreamTask(0, 1), _FixedScores(), ds, batch_size=4, device="cpu")
    with pytest.raises(ValueError, match="sample ids"):
        write_evaluation(res, tmp_path / "e", sample_ids=["a"])
    assert not (tmp_path / "e" / "metrics.json").exists()


def test_evaluate_rejects_an_empty_dataset() -> None:
    empty = TensorDataset(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="empty"):
        evaluate(SingleStreamTask(0, 1), _FixedScores(), empty, batch_size=2, device="cpu")


# ================================================================ edges found by mutation testing
# (`make mutation`): label shapes and dtypes, one sample, empty input, ties among many
# classes, default k, exact messages. Expected values are worked out by hand.


def test_labels_as_a_column_or_as_floats():
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert M.topk_accuracy(scores, np.array([[1], [1], [1]])) == pytest.approx(2 / 3)
    cm = M.confusion_matrix(np.array([[0.0], [1.0], [1.0]]), np.array([0.0, 0.0, 1.0]), 2)
    np.testing.assert_array_equal(cm, [[1, 0], [1, 1]])
    assert cm.dtype == np.int64


def test_default_k_is_top1():
    scores = np.array([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]])
    assert M.topk_accuracy(scores, np.array([0, 1])) == 0.5  # top-2 would be 1.0


def test_ties_among_many_classes_go_to_the_lowest_index():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 3, (50, 40)).astype(np.float64)  # many ties; more classes than a small sort
    first_max = [min(i for i in range(40) if row[i] == max(row)) for row in scores.tolist()]
    assert M.topk_accuracy(scores, np.array(first_max), k=1) == 1.0


def test_one_sample_and_no_sample():
    assert M.mean_class_accuracy(np.array([2]), np.array([2]), 3) == 1.0
    assert M.mean_class_accuracy(np.array([2]), np.array([1]), 3) == 0.0
    assert np.isnan(M.mean_class_accuracy(np.array([], np.int64), np.array([], np.int64), 3))
    assert np.isnan(M.topk_accuracy(np.zeros((0, 3)), np.array([], np.int64), k=2))


def test_present_definition_counts_a_class_with_one_sample():
    # class 0: 2 of 2 right; class 1: its one sample predicted as 0 -> recall 0; mean 0.5
    assert M.mean_class_accuracy(np.array([0, 0, 1]), np.array([0, 0, 0]), 3, definition="present") == 0.5


def test_per_class_accuracy_of_an_empty_class_is_nan_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        acc = M.per_class_accuracy(np.array([[3, 1], [0, 0]]))
    assert acc[0] == 0.75 and np.isnan(acc[1])


def test_metric_error_messages():
    with pytest.raises(ValueError) as err:
        M.topk_accuracy(np.zeros((2, 3)), np.array([0, 1, 2]))
    assert str(err.value) == "scores must be N x C with N = len(labels); got (2, 3) and (3,)"
    with pytest.raises(ValueError) as err:
        M.topk_accuracy(np.zeros((2, 3)), np.array([0, 3]))
    assert str(err.value) == "labels must lie in [0, 3); got range [0, 3]"
    with pytest.raises(ValueError) as err:
        M.topk_accuracy(np.zeros((2, 3)), np.array([0, 1]), k=0)
    assert str(err.value) == "k must be >= 1, got 0"
    with pytest.raises(ValueError) as err:
        M.mean_class_accuracy(np.array([0]), np.array([0]), 2, definition="macro")  # type: ignore[arg-type]
    assert str(err.value) == "definition must be 'official' or 'present', got 'macro'"


def test_confusion_matrix_error_messages():
    for labels, preds, message in (
        ([0, 1], [0], "labels and preds differ in length: (2,) vs (1,)"),
        ([0, -1], [0, 1], "labels must lie in [0, 3)"),
        ([0, 3], [0, 1], "labels must lie in [0, 3)"),
        ([0, 1], [-1, 1], "preds must lie in [0, 3)"),
        ([0, 1], [0, 3], "preds must lie in [0, 3)"),
    ):
        with pytest.raises(ValueError) as err:
            M.confusion_matrix(np.array(labels), np.array(preds), 3)
        assert str(err.value) == message
