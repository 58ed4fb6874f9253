"""``train.*.selection: test``: the official selection protocol, as an opt-in only.

- The train stage (in-process, the tiny pose projects of test_train_stage.py) with
  ``selection: test`` evaluates the test list after every epoch and keeps the epoch with
  the best test value of the dataset's reported metric (top-1; Toyota: mean class
  accuracy). Predictions are scripted per list and epoch (the real clips still go
  through the real model and the real metrics) so that the test-best epoch is neither
  the validation-best nor the last one. The outputs say so: metrics.json and
  evaluation.json carry the selection and a sentence, a warning is logged once.
- The default never reads the test list during training, and a test set handed to the
  engine without ``selection: test`` is ignored.
- The report: the row's selection cell, the footnote of results.md and results.tex, and
  the titles of the figures drawn from such a run say it.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from matplotlib.figure import Figure
from test_train_stage import EPOCHS, PREDS, make_project, read_rows, same_weights
from torch import nn
from torch.utils.data import TensorDataset

import epamnet.engine.trainer as trainer_module
from epamnet.config import load_params, validate_params
from epamnet.config.train import TEST_SELECTION_NOTE, TrainConfig
from epamnet.engine.checkpoint import epoch_path, load_checkpoint
from epamnet.engine.evaluate import EvalResult, write_csv, write_evaluation
from epamnet.engine.tasks import SingleStreamTask
from epamnet.engine.trainer import TEST_COLUMNS, seed_everything, train
from epamnet.errors import EpamnetError
from epamnet.layout import Layout
from epamnet.report import figures as fig
from epamnet.report import tables
from epamnet.stages.evaluate import run as evaluate_stage
from epamnet.stages.report import run as report_stage
from epamnet.stages.train import run as train_stage

#: Scripted test-list predictions of epochs 1, 2, 3 on TEST_LABELS [0, 1, 1, 1] (by hand):
#: epoch 1: [0, 1, 0, 0] -> top-1 2/4, mean class (1 + 1/3) / 2
#: epoch 2: [1, 1, 1, 1] -> top-1 3/4, mean class (0 + 1) / 2
#: epoch 3: [1, 0, 0, 1] -> top-1 1/4, mean class (0 + 1/3) / 2
#: Test-best: top-1 epoch 2, mean class epoch 1; validation-best (PREDS): top-1 epoch 1,
#: mean class epoch 2; last: 3. So each selection picks an epoch the others do not.
TEST_PREDS = ([0, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 1])
TEST_TOP1 = [0.5, 0.75, 0.25]
TEST_MEAN_CLASS = [2 / 3, 0.5, 1 / 6]
VAL_BEST = {"top1": 1, "mean_class_acc": 2}


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[list[str]]]:
    """The trainer's evaluations with scripted predictions per list; the sample names of each call, by list."""
    real_evaluate = trainer_module.evaluate
    calls: dict[str, list[list[str]]] = {"val": [], "test": []}

    def evaluate(task, model, dataset, **kwargs):
        real = real_evaluate(task, model, dataset, **kwargs)
        part = "test" if kwargs.get("desc", "").startswith("test") else "val"
        calls[part].append([name for name, _ in dataset.samples])
        preds = np.asarray((TEST_PREDS if part == "test" else PREDS)[(len(calls[part]) - 1) % EPOCHS])
        scores = np.eye(real.num_classes, dtype=np.float32)[preds]
        return EvalResult(scores=scores, labels=real.labels, loss=real.loss, num_classes=real.num_classes,
                          mean_class_definition=real.mean_class_definition)  # fmt: skip

    monkeypatch.setattr(trainer_module, "evaluate", evaluate)
    return calls


@pytest.mark.parametrize(("dataset", "metric", "selected"), [("ntu60", "top1", 2), ("toyota", "mean_class_acc", 1)])
def test_selection_test_keeps_the_best_test_epoch_and_says_so(
    tmp_path: Path, scripted: dict, caplog: pytest.LogCaptureFixture, dataset: str, metric: str, selected: int
) -> None:
    params, protocol, val, test = make_project(tmp_path, dataset, selection="test")
    with caplog.at_level(logging.WARNING):
        metrics = train_stage(load_params(params), dataset, protocol, "pose")

    # Every epoch evaluated on the test list (in its order), and still validated on the val list.
    assert scripted["test"] == [[n for n, _ in test]] * EPOCHS
    assert scripted["val"] == [[n for n, _ in val]] * EPOCHS
    out = tmp_path / "models" / dataset / protocol / "pose"
    rows = read_rows(out / "metrics.csv")
    assert [float(r["test_top1"]) for r in rows] == pytest.approx(TEST_TOP1)
    assert [float(r["test_mean_class_acc"]) for r in rows] == pytest.approx(TEST_MEAN_CLASS)
    # The epoch with the best test value of the reported metric: not the val-best, not the last.
    per_epoch = [float(r[f"test_{metric}"]) for r in rows]
    assert selected == 1 + per_epoch.index(max(per_epoch)) and selected not in (VAL_BEST[metric], EPOCHS)
    published = json.loads((out / "metrics.json").read_text())
    assert published == metrics
    assert published["selection"] == f"test_{metric}" and published["selected_epoch"] == selected
    assert published["selection_note"] == TEST_SELECTION_NOTE and "test split" in TEST_SELECTION_NOTE
    assert published[f"test_{metric}"] == pytest.approx(per_epoch[selected - 1])
    checkpoints = tmp_path / "models" / ".work" / dataset / protocol / "pose" / "checkpoints"
    model = torch.load(out / "model.pt", weights_only=True)
    assert same_weights(model, load_checkpoint(epoch_path(checkpoints, selected))["model"])
    warnings = [r.getMessage() for r in caplog.records if "TEST split" in r.getMessage()]
    assert len(warnings) == 1 and "optimistic" in warnings[0]

    # evaluation.json says it beside the numbers (metrics.json stays numbers only).
    evaluate_stage(load_params(params), dataset, protocol, "pose")
    ev = tmp_path / "results" / "metrics" / dataset / protocol / "pose"
    facts = json.loads((ev / "evaluation.json").read_text())
    assert facts["selection"] == f"test_{metric}" and facts["selection_note"] == TEST_SELECTION_NOTE
    assert all(isinstance(v, (int, float)) for v in json.loads((ev / "metrics.json").read_text()).values())


def test_default_selection_never_reads_the_test_list(tmp_path: Path, scripted: dict) -> None:
    params, protocol, val, _ = make_project(tmp_path, "toyota")
    assert load_params(params).train.common.selection == "validation"
    train_stage(load_params(params), "toyota", protocol, "pose")
    assert scripted["test"] == [] and scripted["val"] == [[n for n, _ in val]] * EPOCHS
    out = tmp_path / "models" / "toyota" / protocol / "pose"
    assert not any(c.startswith("test_") for c in read_rows(out / "metrics.csv")[0])
    published = json.loads((out / "metrics.json").read_text())
    assert published["selection"] == "val_mean_class_acc" and "selection_note" not in published


def test_per_stream_selection_and_bad_value(tmp_path: Path) -> None:
    params, *_ = make_project(tmp_path, "ntu60")
    values = yaml.safe_load(params.read_text())
    values["train"]["fusion"] = {"selection": "test"}
    p = validate_params(values)
    assert (p.train_config("pose").selection, p.train_config("fusion").selection) == ("val_top1", "test_top1")
    values["train"]["fusion"] = {"selection": "val_top1"}
    with pytest.raises(EpamnetError, match=r"train\.fusion\.selection: .*'validation' or 'test'"):
        validate_params(values)


# ----------------------------------------------------------------------------- the engine

TASK = SingleStreamTask(input_key=0, label_key=1)


def _data(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    return TensorDataset(torch.randn(n, 8, generator=g) + nn.functional.one_hot(y, 8).float() * 2.0, y)


def _model() -> nn.Module:
    seed_everything(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def _cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": 4, "batch_size": 6, "base_lr": 0.2, "reference_batch": 6, "device": "cpu", **kw})


def test_engine_selects_on_the_recorded_test_metric(tmp_path: Path) -> None:
    res = train(TASK, _model(), _data(29, 1), None, _cfg(selection="test"), tmp_path, test_set=_data(11, 3))
    rows = read_rows(tmp_path / "metrics.csv")
    values = [float(r["test_top1"]) for r in rows]
    best = 1 + values.index(max(values))  # earliest on ties
    assert best != len(rows)  # else keeping the last epoch would pass too
    assert res.selection == "test_top1" and res.selected_epoch == best
    assert json.loads((tmp_path / "metrics.json").read_text())["selected_epoch"] == best


def test_engine_ignores_a_test_set_unless_asked_and_needs_one_when_asked(tmp_path: Path) -> None:
    res = train(TASK, _model(), _data(29, 1), None, _cfg(epochs=2), tmp_path / "a", test_set=_data(11, 3))
    assert res.selection == "last_epoch" and "test_top1" not in read_rows(tmp_path / "a" / "metrics.csv")[0]
    with pytest.raises(EpamnetError, match="needs the test set"):
        train(TASK, _model(), _data(29, 1), None, _cfg(selection="test"), tmp_path / "b")


# ----------------------------------------------------------------------------- the report


def test_report_marks_test_selected_rows_tables_and_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = validate_params({"paths": {k: str(tmp_path / k) for k in ("data", "downloads", "models", "results")},
                              "datasets": {"run": ["ntu60"], "ntu60": {"protocols": ["xsub"]}}})  # fmt: skip
    lay = Layout.from_params(params)
    rng = np.random.default_rng(0)
    for stream in ("pose", "rgb", "fusion"):
        selection = "test_top1" if stream == "fusion" else "last_epoch"
        labels = rng.integers(0, 4, 20)
        res = EvalResult(scores=rng.random((20, 4)).astype(np.float32), labels=labels, loss=0.5, num_classes=4)
        facts = {"dataset": "ntu60", "protocol": "xsub", "stream": stream, "source": "real", "reported_metric": "top1",
                 "test_clips": 20, "num_classes": 4, "selection": selection, "selected_epoch": 2}  # fmt: skip
        write_evaluation(res, lay.eval_dir("ntu60", "xsub", stream), sample_ids=[f"v{i}" for i in range(20)],
                         class_names=["a", "b", "c", "d"], extra=facts)  # fmt: skip
        train_dir = lay.train_dir("ntu60", "xsub", stream)
        columns = ["epoch", "lr", "train_loss", "train_top1", *TEST_COLUMNS, "time"]  # as the trainer writes them
        epochs = [[e, 0.1, 1.0 / e, 0.5, 0.4 + e / 10, 0.3 + e / 10, 1.0] for e in (1, 2)]
        write_csv(train_dir / "metrics.csv", columns, epochs)
        (train_dir / "metrics.json").write_text(json.dumps({"selected_epoch": 2, "selection": selection}))
    drawn: dict[str, Figure] = {}
    save = Figure.savefig

    def capture(self: Figure, fname, *args, **kwargs):
        name = Path(fname).name
        atomic = re.fullmatch(r"\.(.+)\.[^.]+\.tmp(?:\.[^.]+)?", name)
        drawn[atomic.group(1) if atomic else name] = self
        return save(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", capture)
    report_stage(params, attention_clips=0)

    rows = {r["stream"]: r for r in csv.DictReader(io.StringIO((lay.tables / "results.csv").read_text()))
            if (r["dataset"], r["protocol"]) == ("ntu60", "xsub")}  # fmt: skip
    assert rows["fusion"]["selection"] == "test split (official protocol; optimistic), test top-1 (epoch 2)"
    assert rows["pose"]["selection"] == "last epoch (epoch 2)"
    md = (lay.tables / "results.md").read_text()
    fused = next(line for line in md.splitlines() if "EPAM-Net" in line and "XSub" in line and "NTU-60" in line)
    assert "test split (official protocol; optimistic)" in fused and "‡" in fused
    assert tables.TEST_SELECTION_FOOTNOTE in md and "test split" in tables.TEST_SELECTION_FOOTNOTE
    tex = (lay.tables / "results.tex").read_text()
    assert "$^\\ddagger$Selected on the test split (train.*.selection: test in params.yaml; the official protocol)" in tex
    assert sum("$^\\ddagger$" in line for line in tex.splitlines() if "&" in line) == 1  # only the fused row

    for name in ("curves_ntu60_xsub.png", "confusion_ntu60_xsub.png", "per_class_ntu60_xsub.png"):
        title = drawn[name].get_suptitle()
        assert title.endswith(f"\n{fig.TEST_SELECTED}: EPAM-Net (fused)"), (name, title)
    (ax,) = drawn["accuracy_vs_gflops.png"].axes
    assert f"‡ {fig.TEST_SELECTED}" in ax.get_title()
    marked = [t.get_text() for t in ax.texts if t.get_text().endswith(" ‡")]
    assert marked == ["NTU-60 XSub (fused) ‡"]


def test_report_without_test_selection_says_nothing_of_it(tmp_path: Path) -> None:
    rows = [tables.result_row("ntu60", "xsub", "fusion", {"top1": 0.5, "source": "real", "selection": "val_top1"})]
    assert not rows[0].selected_on_test and rows[0].selection == "val top-1"
    assert tables.TEST_SELECTION_FOOTNOTE not in tables.results_markdown(rows)
    assert "ddagger" not in tables.results_latex(rows)
    assert fig.test_selection_title("T", {"fusion": "val_top1", "pose": "last_epoch"}) == "T"
