"""The report stage: tables against known numbers, figures that draw, the DVC sections.

Evaluation and training files are written with the engine's own writers
(``write_evaluation``, the trainer's CSV columns) into a tmp layout, so the report
reads exactly the formats the pipeline produces.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.lines import Line2D
from matplotlib.text import Annotation, Text

from epamnet.config import validate_params
from epamnet.loader.rgb import normalize_frames
from epamnet.engine.evaluate import EvalResult, write_csv, write_evaluation
from epamnet.engine.trainer import CSV_COLUMNS
from epamnet.errors import EpamnetError
from epamnet.layout import RUN_FIGURES, Layout
from epamnet.models.epam import build_model
from epamnet.models.profile import profile_epamnet, write_efficiency_table
from epamnet.config.model import synthetic_spec
from epamnet.provenance import machine_label, write_provenance
from epamnet.report import attention as att
from epamnet.report import figures as fig
from epamnet.report import paper, tables
from epamnet.report.dvc_plots import dvc_metrics, dvc_plots
from epamnet.stages import report as report_module
from epamnet.stages.report import (
    all_run_figures,
    configured_runs,
    model_cost,
    read_run,
)
from epamnet.dag import report_inputs, report_outputs
from epamnet.stages.report import run as report_stage
from epamnet.datasets.registry import REPORTED_METRIC as ENGINE_REPORTED_METRIC

CLASSES = ["drink", "eat", "wave", "sit"]


# --------------------------------------------------------------------------------------
# Fake pipeline outputs


def make_params(tmp_path: Path, run: dict[str, list[str]], real: tuple[str, ...] = ()):
    """Params running ``run`` (dataset -> protocols) under tmp_path; datasets in ``real`` with ``source: real``."""
    entries = {d: {"protocols": p} | ({"source": "real"} if d in real else {}) for d, p in run.items()}
    return validate_params(
        {
            "paths": {k: str(tmp_path / k) for k in ("data", "downloads", "models", "results")},
            "datasets": {"run": list(run), **entries},
        }
    )


#: Test samples per class of the fake evaluations: imbalanced (8, 6, 4, 2 of 20), so that the
#: mean class accuracy differs from top-1 (with balanced classes they are always equal, and a
#: table showing one in place of the other would pass unnoticed).
CLASS_SIZES = (8, 6, 4, 2)


def stable_seed(*names: str) -> int:
    """A seed from names that is the same in every process (``hash`` of str is salted per process)."""
    return zlib.crc32("/".join(names).encode())


def eval_result(correct: int, seed: int = 0) -> EvalResult:
    """Scores where exactly ``correct`` of the 20 samples (classes of :data:`CLASS_SIZES`) are classified right.

    The wrong samples are taken from the largest classes first (which ones within a class:
    ``seed``), so for 0 < correct < 20 the mean class accuracy is strictly above top-1.
    """
    rng = np.random.default_rng(seed)
    num_classes, total = len(CLASS_SIZES), sum(CLASS_SIZES)
    labels = rng.permutation(np.repeat(np.arange(num_classes), CLASS_SIZES))
    preds = labels.copy()
    by_size = sorted(range(num_classes), key=lambda c: -CLASS_SIZES[c])
    candidates = np.concatenate([rng.permutation(np.flatnonzero(labels == c)) for c in by_size])
    wrong = candidates[: total - correct]
    preds[wrong] = (labels[wrong] + 1) % num_classes
    scores = np.full((total, num_classes), 0.0, dtype=np.float32)
    scores[np.arange(total), preds] = 1.0
    res = EvalResult(scores=scores, labels=labels, loss=0.5, num_classes=num_classes)
    top1, mean_class = expected_accuracies(res)
    assert (top1 != mean_class) == (0 < correct < total)  # the fixture's promise
    return res


def expected_accuracies(res: EvalResult) -> tuple[float, float]:
    """(top-1, mean class accuracy) in percent, from the scores and labels alone (not EvalResult's metrics)."""
    preds, labels = res.scores.argmax(axis=1), res.labels
    top1 = 100.0 * float(np.mean(preds == labels))
    mean_class = 100.0 * float(np.mean([np.mean(preds[labels == c] == c) for c in np.unique(labels)]))
    return top1, mean_class


def expected_ours(dataset: str, res: EvalResult) -> float:
    """The number the results table must show: mean class accuracy for Toyota, top-1 elsewhere."""
    top1, mean_class = expected_accuracies(res)
    return mean_class if dataset == "toyota" else top1


def write_eval(
    lay: Layout, d: str, p: str, s: str, correct: int, source: str = "synthetic", folder: Path | None = None, **extra
) -> EvalResult:
    res = eval_result(correct, seed=stable_seed(d, p, s))
    info = {
        "dataset": d, "protocol": p, "stream": s, "source": source, "reported_metric": ENGINE_REPORTED_METRIC[d],
        "test_clips": res.num_samples, "num_classes": res.num_classes, "selection": "last_epoch", "selected_epoch": 3,
    }  # fmt: skip
    info.update(extra)
    write_evaluation(res, folder or lay.eval_dir(d, p, s), sample_ids=[f"v{i}" for i in range(res.num_samples)],
                     class_names=CLASSES, extra=info)  # fmt: skip
    return res


def write_curves(lay: Layout, d: str, p: str, s: str, epochs: int = 4, val: bool = False) -> None:
    cols = [c for c in CSV_COLUMNS if val or not c.startswith("val_")]
    rows = []
    for e in range(1, epochs + 1):
        v = {"epoch": e, "lr": 0.01, "train_loss": 2.0 / e, "train_top1": 1 - 1 / (e + 1), "val_top1": 0.4 + 0.1 * e,
             "val_mean_class_acc": 0.3 + 0.1 * e, "time": 1.5}  # fmt: skip
        rows.append([v[c] for c in cols])
    write_csv(lay.train_dir(d, p, s) / "metrics.csv", cols, rows)
    (lay.train_dir(d, p, s) / "metrics.json").write_text(json.dumps({"selected_epoch": epochs, "selection": "last_epoch"}))


def png_stats(path: Path) -> tuple[float, float]:
    """(grey-level std, fraction of clearly coloured pixels) of a PNG."""
    img = imread(path)[..., :3].astype(float)
    chroma = img.max(axis=2) - img.min(axis=2)
    return float(img.mean(axis=2).std()), float((chroma > 0.25).mean())


# --------------------------------------------------------------------------------------
# Paper numbers


def test_paper_numbers_are_the_reported_ones() -> None:
    got = {(r.dataset, r.protocol): r.value for r in paper.PAPER_ACCURACY}
    assert got == {
        ("ntu60", "xsub"): 96.1, ("ntu60", "xview"): 99.0, ("ntu120", "xsub"): 92.4, ("ntu120", "xset"): 94.3,
        ("pku", "xsub"): 96.2, ("pku", "xview"): 98.4, ("toyota", "cs"): 71.7, ("toyota", "cv2"): 67.8,
    }  # fmt: skip
    assert {e.method: e.gflops for e in paper.PAPER_EFFICIENCY} == {
        "EPAM-Net": 8.1, "VPN": 107.9, "VPN++": 125.8, "MMNet": 89.2, "TCEM-MMNet": 85.4, "pi-ViT": 590.0,
    }  # fmt: skip
    assert all(r.source and e.source for r in paper.PAPER_ACCURACY for e in paper.PAPER_EFFICIENCY)
    # The report's metric per dataset is the one the engine selects models with.
    assert paper.REPORTED_METRIC == ENGINE_REPORTED_METRIC
    assert all(r.metric == paper.REPORTED_METRIC[r.dataset] for r in paper.PAPER_ACCURACY)


# --------------------------------------------------------------------------------------
# Results table


def test_rows_numbers_paper_difference_and_not_run(tmp_path: Path) -> None:
    params = make_params(tmp_path, {"ntu60": ["xsub"], "toyota": ["cs", "cv1"]})
    lay = Layout.from_params(params)
    write_eval(lay, "ntu60", "xsub", "fusion", 19, source="real", selection="val_top1", selected_epoch=7)
    write_eval(lay, "ntu60", "xsub", "rgb", 15, source="real")
    toyota = write_eval(lay, "toyota", "cs", "fusion", 10)
    metrics = {
        k: tables.load_eval_metrics(lay.eval_dir(*k) / "metrics.json")
        for k in [("ntu60", "xsub", "fusion"), ("ntu60", "xsub", "rgb"), ("toyota", "cs", "fusion")]
    }
    runs = tables.table_runs(configured_runs(params))
    # The paper's 8 rows plus the configured extra (Toyota CV1), in registry order.
    assert runs == [("ntu60", "xsub"), ("ntu60", "xview"), ("ntu120", "xsub"), ("ntu120", "xset"),
                    ("pku", "xsub"), ("pku", "xview"), ("toyota", "cs"), ("toyota", "cv1"), ("toyota", "cv2")]  # fmt: skip
    rows = {(r.dataset, r.protocol, r.stream): r for r in tables.results_rows(runs, metrics)}
    assert len(rows) == 27

    fused = rows[("ntu60", "xsub", "fusion")]
    assert fused.ours == pytest.approx(95.0) and fused.paper == 96.1
    assert fused.difference == pytest.approx(-1.1)
    assert (fused.data, fused.selection, fused.test_clips) == ("real", "val top-1 (epoch 7)", 20)
    rgb = rows[("ntu60", "xsub", "rgb")]
    assert rgb.ours == pytest.approx(75.0) and rgb.paper is None and rgb.difference is None

    # Toyota: our number is the mean class accuracy, and synthetic rows get no difference.
    t = rows[("toyota", "cs", "fusion")]
    assert t.metric == "mean_class_acc"
    assert t.ours == pytest.approx(expected_ours("toyota", toyota)) and t.top1 == pytest.approx(50.0)
    assert t.ours != pytest.approx(t.top1)  # imbalanced classes: the two metrics differ
    assert t.paper == 71.7 and t.difference is None and t.synthetic

    for key in [("ntu60", "xsub", "pose"), ("ntu120", "xsub", "fusion"), ("toyota", "cv1", "fusion")]:
        r = rows[key]
        assert (r.status, r.data, r.ours, r.difference, r.selection) == ("not run", "not run", None, None, "")
    assert rows[("ntu120", "xsub", "fusion")].paper == 92.4  # the paper's number still shows
    assert rows[("toyota", "cv1", "fusion")].paper is None  # the paper reports no CV1


def test_written_tables_mark_synthetic_and_not_run(tmp_path: Path) -> None:
    params = make_params(tmp_path, {"ntu60": ["xsub"], "pku": ["xsub"]})
    lay = Layout.from_params(params)
    write_eval(lay, "ntu60", "xsub", "fusion", 19, source="real")
    write_eval(lay, "pku", "xsub", "fusion", 12)
    metrics = {k: tables.load_eval_metrics(lay.eval_dir(*k) / "metrics.json") for k in [("ntu60", "xsub", "fusion"), ("pku", "xsub", "fusion")]}
    rows = tables.results_rows(tables.table_runs(configured_runs(params)), metrics)
    md, csv_path, tex = tables.write_results_table(rows, tmp_path / "tables")

    found = {(r["dataset"], r["protocol"], r["stream"]): r for r in csv.DictReader(io.StringIO(csv_path.read_text()))}
    assert len(found) == 24
    ntu = found[("ntu60", "xsub", "fusion")]
    assert (ntu["ours"], ntu["paper"], ntu["difference"], ntu["data"], ntu["synthetic"]) == ("95.00", "96.1", "-1.10", "real", "false")
    assert "README" in ntu["paper_source"]
    pku = found[("pku", "xsub", "fusion")]
    assert (pku["ours"], pku["paper"], pku["difference"], pku["synthetic"]) == ("60.00", "96.2", "", "true")
    toy = found[("toyota", "cs", "fusion")]
    assert (toy["status"], toy["ours"], toy["paper"], toy["metric"]) == ("not run", "", "71.7", "mean_class_acc")

    text = md.read_text()
    assert "| NTU-60 | XSub | EPAM-Net (fused) | top-1 | 95.00 | 96.1 | -1.10 | real |" in text
    assert "| PKU-MMD | XSub | EPAM-Net (fused) | top-1 | 60.00 † | 96.2 |  | **synthetic** † |" in text
    assert "| Toyota Smarthome | CS | EPAM-Net (fused) | mean class acc. | not run | 71.7 |  | not run |" in text
    assert "not comparable to the paper" in text
    latex = tex.read_text()
    assert "\\toprule" in latex and "\\bottomrule" in latex
    assert "60.00$^\\dagger$" in latex and "synthetic$^\\dagger$" in latex
    assert latex.count("\\\\") >= 25  # header + 24 rows


def test_toyota_rows_show_mean_class_accuracy_and_the_others_top1(tmp_path: Path) -> None:
    """Every written form of the table (rows, CSV, Markdown, LaTeX) shows the paper's metric per dataset.

    The fake evaluations have imbalanced classes, so top-1 and mean class accuracy differ in
    every row: a table showing the wrong one for any dataset fails here.
    """
    params = make_params(tmp_path, {"ntu60": ["xsub"], "pku": ["xview"], "toyota": ["cs", "cv2"]})
    lay = Layout.from_params(params)
    planted: dict[tuple[str, str, str], EvalResult] = {}
    for i, (d, p) in enumerate(configured_runs(params)):
        for j, s in enumerate(tables.STREAMS):
            planted[(d, p, s)] = write_eval(lay, d, p, s, 8 + 3 * j + i, source="synthetic" if d == "pku" else "real")
    runs = {run: read_run(lay, *run) for run in configured_runs(params)}  # as the stage reads them
    metrics = {(*run, s): m for run, r in runs.items() for s, m in r.metrics.items()}
    rows = {(r.dataset, r.protocol, r.stream): r for r in tables.results_rows(tables.table_runs(configured_runs(params)), metrics)}
    md, csv_path, tex = tables.write_results_table(list(rows.values()), tmp_path / "tables")
    found = {(r["dataset"], r["protocol"], r["stream"]): r for r in csv.DictReader(io.StringIO(csv_path.read_text()))}
    md_text, tex_text = md.read_text(), tex.read_text()

    for (d, p, s), res in planted.items():
        top1, mean_class = expected_accuracies(res)
        assert round(top1, 2) != round(mean_class, 2), (d, p, s)  # the rows can tell the metrics apart
        metric = "mean_class_acc" if d == "toyota" else "top1"
        ours = mean_class if d == "toyota" else top1
        r = rows[(d, p, s)]
        assert (r.metric, r.data) == (metric, "synthetic" if d == "pku" else "real")
        assert r.ours == pytest.approx(ours) and r.top1 == pytest.approx(top1) and r.mean_class_acc == pytest.approx(mean_class)
        theirs = paper.reported_accuracy(d, p)
        if s == "fusion" and theirs is not None and d != "pku":
            assert r.difference == pytest.approx(ours - theirs.value)
        else:
            assert r.difference is None
        c = found[(d, p, s)]
        assert (c["metric"], c["ours"], c["top1"], c["mean_class_acc"]) == (metric, f"{ours:.2f}", f"{top1:.2f}", f"{mean_class:.2f}")
        labels = paper.DATASET_LABEL[d], paper.PROTOCOL_LABEL[p], paper.STREAM_LABEL[s]
        mark = " †" if d == "pku" else ""
        assert f"| {' | '.join(labels)} | {paper.METRIC_LABEL[metric]} | {ours:.2f}{mark} |" in md_text, (d, p, s)
        tex_mark = "$^\\dagger$" if d == "pku" else ""
        assert re.search(rf"{re.escape(' & '.join(labels))}\s*&\s*{re.escape(f'{ours:.2f}{tex_mark}')}\s*&", tex_text), (d, p, s)


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("metrics.json", "{not json", "not valid JSON"),
        ("metrics.json", "[1, 2]", "expected a mapping"),
        ("metrics.json", '{"loss": 0.5}', "has no 'top1'"),
        ("metrics.json", '{"top1": 95.0}', "expected a fraction"),
        ("evaluation.json", '{"source": "imagined"}', "expected 'synthetic' or 'real'"),
        ("evaluation.json", "{not json", "not valid JSON"),
        ("evaluation.json", None, "not found beside metrics.json"),
    ],
)
def test_bad_metrics_file_names_the_file(tmp_path: Path, name: str, content: str | None, problem: str) -> None:
    files = {"metrics.json": '{"top1": 0.9}', "evaluation.json": '{"source": "real"}', name: content}
    for file, text in files.items():
        if text is not None:
            (tmp_path / file).write_text(text)
    with pytest.raises(EpamnetError, match=problem) as info:
        tables.load_eval_metrics(tmp_path / "metrics.json")
    assert str(tmp_path / name) in str(info.value) and "\n" not in str(info.value)


def test_eval_metrics_reader_joins_the_numbers_and_the_facts(tmp_path: Path) -> None:
    params = make_params(tmp_path, {"toyota": ["cs"]})
    lay = Layout.from_params(params)
    res = write_eval(lay, "toyota", "cs", "rgb", 15, source="real")
    ev = lay.eval_dir("toyota", "cs", "rgb")
    assert "source" not in json.loads((ev / "metrics.json").read_text())  # written apart, read together
    m = tables.load_eval_metrics(ev / "metrics.json")
    assert (m["top1"], m["mean_class_acc"]) == (pytest.approx(res.top1), pytest.approx(res.mean_class_acc))
    assert (m["source"], m["dataset"], m["num_classes"], m["selection"]) == ("real", "toyota", 4, "last_epoch")


def test_latex_escape() -> None:
    assert tables.latex_escape("a_b & 50% #1 {x}") == "a\\_b \\& 50\\% \\#1 \\{x\\}"


# --------------------------------------------------------------------------------------
# Where the numbers come from


def provenance_record(cpu: str, threads: int = 1, commit: str = "0123456789abcdef") -> dict:
    """A provenance.json as the train/evaluate stages write it, on a made-up machine."""
    return {
        "git": {"commit": commit, "dirty": False},
        "params_sha256": "0" * 64,
        "params_keys": ["train"],
        "inputs": {},
        "software": {"python": "3.11", "epamnet": "0.1.0", "torch": "2.13.0", "numpy": "2.4.6", "opencv": "4.10.0",
                     "platform": "Linux"},
        "machine": {"cpu_model": cpu, "cpu_count": 8, "arch": "x86_64", "torch_cpu_capability": "AVX2",
                    "numpy_cpu_dispatch": ["AVX2"], "numpy_cpu_baseline": ["SSE3"], "mkl": True, "onednn": True,
                    "threads": threads, "device": "cpu", "gpu": None, "cpu_pinning": {}},
    }  # fmt: skip


def provenance_tables(tmp_path: Path, planted: dict[tuple[str, str, str], dict | None]) -> tuple[str, dict, str]:
    """Evaluate every key of ``planted`` (with its provenance.json where not None); the written tables.

    Returns (results.md, csv rows by (dataset, protocol, stream), results.tex).
    """
    params = make_params(tmp_path, {"ntu60": ["xsub"], "pku": ["xsub"]})
    lay = Layout.from_params(params)
    for key, record in planted.items():
        write_eval(lay, *key, 19 if key[2] == "fusion" else 15, source="real")
        if record is not None:
            write_provenance(lay.eval_dir(*key), record)
    runs = {run: read_run(lay, *run) for run in configured_runs(params)}  # as the stage reads them
    metrics = {(*run, s): m for run, r in runs.items() for s, m in r.metrics.items()}
    prov = {(*run, s): v for run, r in runs.items() for s, v in r.provenance.items()}
    assert set(metrics) == set(planted) and set(prov) == {k for k, v in planted.items() if v is not None}
    md, csv_path, tex = tables.write_results_table(
        tables.results_rows(tables.table_runs(configured_runs(params)), metrics, prov), tmp_path / "tables"
    )
    found = {(r["dataset"], r["protocol"], r["stream"]): r for r in csv.DictReader(io.StringIO(csv_path.read_text()))}
    return md.read_text(), found, tex.read_text()


def test_rows_from_two_machines_are_numbered(tmp_path: Path) -> None:
    a, b = provenance_record("CPU Alpha"), provenance_record("CPU Beta", threads=8)
    la, lb = machine_label(a), machine_label(b)
    assert la != lb and "CPU Alpha" in la and "8 threads" in lb
    md, found, tex = provenance_tables(
        tmp_path, {("ntu60", "xsub", "rgb"): a, ("ntu60", "xsub", "fusion"): b, ("pku", "xsub", "fusion"): None}
    )
    assert found[("ntu60", "xsub", "rgb")]["machine"] == la
    assert found[("ntu60", "xsub", "fusion")]["machine"] == lb
    assert found[("pku", "xsub", "fusion")]["machine"] == ""  # evaluated, provenance not recorded
    assert found[("ntu60", "xsub", "pose")]["machine"] == ""  # not run

    # Machines are numbered in table order: the RGB row comes first.
    assert "| NTU-60 | XSub | RGB X-ShiftNet | top-1 | 75.00 [1] |  |  | real |" in md
    assert "| NTU-60 | XSub | EPAM-Net (fused) | top-1 | 95.00 [2] | 96.1 | -1.10 | real |" in md
    assert "| PKU-MMD | XSub | EPAM-Net (fused) | top-1 | 95.00 | 96.2 | -1.20 | real |" in md
    assert "| NTU-60 | XSub | Pose X-ShiftNet | top-1 | not run |" in md
    notes = md.split("## Where these numbers come from", 1)[1]
    assert f"\n- [1] {la}\n- [2] {lb}\n" in notes
    assert "PKU-MMD XSub EPAM-Net (fused): provenance not recorded" in notes
    assert "NTU-60" not in notes.replace(la, "").replace(lb, "").split("PKU-MMD")[0]  # only PKU lacks it
    assert "`runtime.portable_cpu: true`" in notes and "MKL, oneDNN, ATen" in notes
    assert "75.00\\textsuperscript{[1]}" in tex and "95.00\\textsuperscript{[2]}" in tex
    assert f"{{[1]}}~{tables.latex_escape(la)}" in tex and "\\texttt{runtime.portable\\_cpu: true}" in tex
    assert "$$" not in tex  # two math groups back to back would open display math


def test_rows_from_one_machine_name_it_once(tmp_path: Path) -> None:
    a = provenance_record("CPU Alpha")
    md, found, tex = provenance_tables(tmp_path, {("ntu60", "xsub", "fusion"): a, ("pku", "xsub", "fusion"): a})
    assert {found[k]["machine"] for k in [("ntu60", "xsub", "fusion"), ("pku", "xsub", "fusion")]} == {machine_label(a)}
    assert f"All numbers in the Ours column were computed on: {machine_label(a)}." in md
    assert "[1]" not in md and "provenance not recorded" not in md
    assert "| NTU-60 | XSub | EPAM-Net (fused) | top-1 | 95.00 | 96.1 |" in md
    assert "textsuperscript" not in tex and "computed on: CPU Alpha" in tex


def test_rows_without_provenance_say_not_recorded(tmp_path: Path) -> None:
    md, found, tex = provenance_tables(tmp_path, {("ntu60", "xsub", "fusion"): None})
    assert found[("ntu60", "xsub", "fusion")]["machine"] == ""
    assert "All rows: provenance not recorded" in md and "All rows: provenance not recorded" in tex
    assert "computed on:" not in md and "[1]" not in md


def test_nothing_run_says_so() -> None:
    rows = tables.results_rows(tables.table_runs([]), {})
    md = tables.results_markdown(rows)
    assert "No evaluation has been run yet." in md and "provenance not recorded" not in md


def test_corrupt_provenance_names_the_file(tmp_path: Path) -> None:
    params = make_params(tmp_path, {"ntu60": ["xsub"]})
    lay = Layout.from_params(params)
    write_eval(lay, "ntu60", "xsub", "fusion", 18)
    (lay.eval_dir("ntu60", "xsub", "fusion") / "provenance.json").write_text("[1, 2]")
    with pytest.raises(EpamnetError, match="fusion/provenance.json: is not a JSON mapping"):
        read_run(lay, "ntu60", "xsub")


# --------------------------------------------------------------------------------------
# Efficiency table


def test_efficiency_comparison_from_profile_csv(tmp_path: Path) -> None:
    result = profile_epamnet(synthetic_spec(), 8, throughput_iters=0)
    timing = {"repeats": 5, "warmup": 2, "load_before": 0.5, "load_after": 1.0}
    result["throughput"] = [
        {"batch_size": 4, "clips_per_s": 30.0, "clips_per_s_min": 28.0, "clips_per_s_max": 31.0, **timing},
        {"batch_size": 1, "clips_per_s": 12.5, "clips_per_s_min": 12.0, "clips_per_s_max": 13.0, **timing},
    ]
    result["device_name"] = "testcpu"
    write_efficiency_table(result, tmp_path)
    measured = tables.read_profile_csv(tmp_path / "efficiency.csv")
    by = {r.method: r for r in measured}
    fused = next(c for c in result["components"] if c["component"] == "epam_net")
    assert by["EPAM-Net"].params == fused["params"]
    assert by["EPAM-Net"].gflops == pytest.approx(fused["gmacs"], abs=1e-4)
    assert by["EPAM-Net"].clips_per_s == 12.5 and "batch 1 on testcpu" in by["EPAM-Net"].note
    assert by["EPAM-Net"].config == "profiled configuration"  # synthetic spec: not the paper's
    assert by["RGB X-ShiftNet"].clips_per_s is None

    rows = measured + tables.paper_efficiency_rows()
    md, csv_path, tex = tables.write_efficiency_comparison(rows, tmp_path)
    found = {r["method"] + "/" + r["origin"]: r for r in csv.DictReader(io.StringIO(csv_path.read_text()))}
    assert found["pi-ViT/paper"]["gflops"] == "590.0000" and found["pi-ViT/paper"]["params"] == ""
    assert found["EPAM-Net/paper"]["gflops"] == "8.1000"
    assert found["EPAM-Net/measured"]["clips_per_s"] == "12.500"
    text = md.read_text()
    for name in ("VPN", "VPN++", "MMNet", "TCEM-MMNet", "pi-ViT"):
        assert f"| {name} | as published | paper |" in text
    assert "Table 1" in tex.read_text()


def test_bad_profile_csv(tmp_path: Path) -> None:
    path = tmp_path / "efficiency.csv"
    path.write_text("component,params\nepam_net,10\n")
    with pytest.raises(EpamnetError, match="lacks columns"):
        tables.read_profile_csv(path)
    path.write_text(",".join(tables.PROFILE_COLUMNS) + "\nepam_net,many,,,,,,\n")
    with pytest.raises(EpamnetError, match="params is 'many'"):
        tables.read_profile_csv(path)
    with pytest.raises(EpamnetError, match="run `epamnet profile` first"):
        tables.read_profile_csv(tmp_path / "absent.csv")


# --------------------------------------------------------------------------------------
# Figures


def test_confusion_roundtrip_and_figure(tmp_path: Path) -> None:
    lay = Layout.from_params(make_params(tmp_path, {"ntu60": ["xsub"]}))
    res = write_eval(lay, "ntu60", "xsub", "fusion", 14)
    matrix, names = fig.read_confusion(lay.eval_dir("ntu60", "xsub", "fusion") / "confusion.csv")
    assert names == CLASSES
    np.testing.assert_array_equal(matrix, res.confusion)
    out = fig.plot_confusions({"pose": None, "rgb": (matrix, names), "fusion": (matrix, names)}, tmp_path / "c.png", "t")
    std, colour = png_stats(out)
    assert std > 0.05 and colour > 0.02


def test_bad_confusion_and_curves(tmp_path: Path) -> None:
    bad = tmp_path / "confusion.csv"
    bad.write_text("actual,predicted,count\na,b,-1\n")
    with pytest.raises(EpamnetError, match="negative count"):
        fig.read_confusion(bad)
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(EpamnetError, match="expected actual,predicted,count"):
        fig.read_confusion(bad)
    curves = tmp_path / "metrics.csv"
    curves.write_text("epoch,lr\n1,0.1\n")
    with pytest.raises(EpamnetError, match="no 'train_loss' column"):
        fig.read_training_curves(curves)
    curves.write_text("epoch,train_loss\n1,abc\n")
    with pytest.raises(EpamnetError, match="line 2: train_loss is 'abc'"):
        fig.read_training_curves(curves)


def test_training_curves_figure(tmp_path: Path) -> None:
    lay = Layout.from_params(make_params(tmp_path, {"toyota": ["cs"]}))
    write_curves(lay, "toyota", "cs", "fusion", val=True)
    c = fig.read_training_curves(lay.train_dir("toyota", "cs", "fusion") / "metrics.csv")
    np.testing.assert_allclose(c["val_mean_class_acc"], [0.4, 0.5, 0.6, 0.7])
    out = fig.plot_training_curves({"pose": None, "rgb": c, "fusion": c}, tmp_path / "curves.png", "Training", {"fusion": 4})
    std, colour = png_stats(out)
    assert std > 0.03 and colour > 0.002


def test_run_figures_drawn_in_parallel_are_the_ones_drawn_in_turn(tmp_path: Path, monkeypatch) -> None:
    """The report draws the runs' figures in one process per CPU while it draws the
    accuracy figure itself: same files, same bytes, the accuracy figure first and then the
    runs' in their order, as one process drawing them all in turn."""
    params = make_params(tmp_path, {"ntu60": ["xsub", "xview"], "toyota": ["cs"]})
    lay = Layout.from_params(params)
    for d, p in configured_runs(params):
        for s in tables.STREAMS:
            write_eval(lay, d, p, s, 12)
            write_curves(lay, d, p, s, val=d == "toyota")
    runs = {run: read_run(lay, *run) for run in configured_runs(params)}
    drawn = {}
    for cpus in (1, 2):
        monkeypatch.setattr(report_module.os, "sched_getaffinity", lambda pid, n=cpus: set(range(n)))
        folder = tmp_path / f"figures-{cpus}"
        folder.mkdir()
        point = fig.AccuracyPoint("NTU-60 XSub", 0.02, 80.0, "fusion", "ours", True)
        names = all_run_figures(
            params, runs, folder, attention_clips=0,
            meanwhile=lambda f=folder, pt=point: [fig.plot_accuracy_vs_gflops([pt], f / "accuracy.png").name],
        )
        drawn[cpus] = (names, {n: (folder / n).read_bytes() for n in names})
    names, files = drawn[1]
    assert len(names) == 1 + 3 * 3 and names[0] == "accuracy.png"
    assert names[1].endswith("ntu60_xsub.png") and names[-1].endswith("toyota_cs.png")
    assert drawn[2] == drawn[1]


def test_accuracy_vs_gflops_figure(tmp_path: Path) -> None:
    pts = [fig.AccuracyPoint("NTU-60 XSub", 8.1, 96.1, "fusion", "paper"),
           fig.AccuracyPoint("NTU-60 XSub", 0.02, 80.0, "fusion", "ours", True),
           fig.AccuracyPoint("NTU-60 XSub (rgb)", 0.01, 60.0, "rgb", "ours", True)]  # fmt: skip
    out = fig.plot_accuracy_vs_gflops(pts, tmp_path / "acc.png")
    std, colour = png_stats(out)
    assert std > 0.03 and colour > 0.0005


def test_attention_maps_on_tiny_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    spec = synthetic_spec()
    model = build_model(spec, 4, "fusion")
    imgs = torch.randn(2, 3, spec.rgb.clip_len, spec.rgb.input_size, spec.rgb.input_size)
    heatmaps = torch.rand(2, 17, spec.pose.clip_len, spec.pose.input_size, spec.pose.input_size)
    maps, scores = att.compute_attention(model, imgs, heatmaps)
    f = spec.rgb.feature_size
    assert maps.shape == (2, spec.rgb.clip_len, f, f) and scores.shape == (2, 4)
    assert ((maps > 0) & (maps < 1)).all()
    assert model.training  # mode restored
    out = att.attention_figure(model, imgs, heatmaps, tmp_path / "att.png", labels=[0, 3], class_names=CLASSES)
    std, colour = png_stats(out)
    assert std > 0.05 and colour > 0.1  # the jet overlay covers the frame strip
    with pytest.raises(ValueError, match="matching frames"):
        att.plot_attention(np.zeros((2, 3, 8, 8, 3), np.uint8), maps, tmp_path / "x.png")


def test_denormalize_inverts_the_model_input() -> None:
    frames = np.random.default_rng(0).integers(0, 256, size=(3, 5, 6, 3), dtype=np.uint8)
    imgs = torch.from_numpy(normalize_frames(frames))[None]
    np.testing.assert_array_equal(att.denormalize(imgs)[0], frames)


def test_upsample_keeps_constant_maps() -> None:
    maps = np.full((2, 4, 4), 0.3, np.float32)
    up = att.upsample(maps, (16, 12))
    assert up.shape == (2, 16, 12)
    np.testing.assert_allclose(up, 0.3, atol=1e-6)


# --------------------------------------------------------------------------------------
# What the figures show: the matplotlib Figures themselves, captured as they are saved


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> dict[str, Figure]:
    """The Figures the report saves, by PNG name (captured in ``Figure.savefig``; the PNG is still written)."""
    figures: dict[str, Figure] = {}
    save = Figure.savefig

    def capture(self: Figure, fname, *args, **kwargs):
        name = Path(fname).name
        atomic = re.fullmatch(r"\.(.+)\.[^.]+\.tmp(?:\.[^.]+)?", name)  # atomic writes save to .<name>.<random>.tmp
        figures[atomic.group(1) if atomic else name] = self
        return save(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", capture)
    one_process(monkeypatch)  # the figures are captured in this process, so they must be drawn here
    return figures


def one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The report draws the runs' figures in this process (it forks one per CPU otherwise;
    ``test_run_figures_drawn_in_parallel_are_the_ones_drawn_in_turn`` checks both agree)."""
    monkeypatch.setattr(report_module.os, "sched_getaffinity", lambda pid: {0})


def legend_texts(ax: Axes) -> list[str]:
    legend = ax.get_legend()
    return [] if legend is None else [t.get_text() for t in legend.get_texts()]


def labelled_lines(ax: Axes) -> dict[str, Line2D]:
    """The axes' lines by label (each label once)."""
    lines = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    by_label = {line.get_label(): line for line in lines}
    assert len(by_label) == len(lines), [line.get_label() for line in lines]
    return by_label


def plain_texts(ax: Axes) -> list[str]:
    return [t.get_text() for t in ax.texts if not isinstance(t, Annotation)]


def grid_axes(figure: Figure) -> dict[tuple[int, int], Axes]:
    """The figure's subplot grid by (row, column); axes outside the grid (colour bars) left out."""
    out = {}
    for ax in figure.axes:
        spec = ax.get_subplotspec()
        if spec is not None and spec.get_gridspec() is figure.axes[0].get_subplotspec().get_gridspec():
            out[(spec.rowspan.start, spec.colspan.start)] = ax
    return out


def curve_values(stream: str, epochs: int, val: bool) -> dict[str, list[float]]:
    """A training metrics.csv's columns, different for every stream and every accuracy column."""
    k = {"pose": 0, "rgb": 1, "fusion": 2}[stream]
    e = np.arange(1, epochs + 1, dtype=float)
    cols = {
        "epoch": e, "lr": np.full(epochs, 0.01), "train_loss": 3.0 / e + 0.1 * k, "train_top1": 0.2 + 0.1 * e + 0.01 * k,
        "val_top1": 0.1 + 0.08 * e + 0.02 * k, "val_mean_class_acc": 0.05 + 0.06 * e + 0.03 * k, "time": np.full(epochs, 1.5),
    }  # fmt: skip
    return {c: [float(x) for x in cols[c]] for c in CSV_COLUMNS if val or not c.startswith("val_")}


def write_curve_values(lay: Layout, d: str, p: str, s: str, epochs: int, val: bool) -> dict[str, list[float]]:
    values = curve_values(s, epochs, val)
    rows = [[int(v) if c == "epoch" else v for c, v in zip(values, row, strict=True)] for row in zip(*values.values(), strict=True)]
    write_csv(lay.train_dir(d, p, s) / "metrics.csv", list(values), rows)
    (lay.train_dir(d, p, s) / "metrics.json").write_text(json.dumps({"selected_epoch": epochs - 1, "selection": "val"}))
    return values


ACCURACY_LINES = {"train top-1": "train_top1", "val top-1": "val_top1", "val mean class acc.": "val_mean_class_acc"}


def check_curves_panel(top: Axes, bottom: Axes, stream: str, values: dict[str, list[float]], selected: int | None) -> None:
    """One stream's column of the curves figure: its name, loss above, accuracies (%) below, the selected epoch."""
    assert top.get_title() == paper.STREAM_LABEL[stream]
    assert (top.get_ylabel(), bottom.get_ylabel()) == ("loss", "accuracy (%)")
    assert top.get_xlabel() == bottom.get_xlabel() == "epoch"
    sel = [] if selected is None else [f"selected epoch {selected}"]
    lines = labelled_lines(top)
    assert set(lines) == {"train loss", *sel} and legend_texts(top) == ["train loss", *sel]
    np.testing.assert_allclose(lines["train loss"].get_xdata(), values["epoch"])
    np.testing.assert_allclose(lines["train loss"].get_ydata(), values["train_loss"])
    shown = [label for label, column in ACCURACY_LINES.items() if column in values]
    lines = labelled_lines(bottom)
    assert set(lines) == {*shown, *sel} and legend_texts(bottom) == [*shown, *sel]
    for label in shown:
        np.testing.assert_allclose(lines[label].get_xdata(), values["epoch"])
        np.testing.assert_allclose(lines[label].get_ydata(), 100 * np.asarray(values[ACCURACY_LINES[label]]), err_msg=label)
    for ax in (top, bottom):
        if selected is not None:
            np.testing.assert_allclose(labelled_lines(ax)[sel[0]].get_xdata(), [selected, selected])


def check_not_run(ax: Axes) -> None:
    assert plain_texts(ax) == ["not run"] and not ax.get_lines() and not ax.images


def test_curves_figure_draws_each_streams_metrics_csv(tmp_path: Path, drawn: dict[str, Figure]) -> None:
    lay = Layout.from_params(make_params(tmp_path, {"toyota": ["cs"]}))
    values = {"rgb": write_curve_values(lay, "toyota", "cs", "rgb", 5, val=False),
              "fusion": write_curve_values(lay, "toyota", "cs", "fusion", 5, val=True)}  # fmt: skip
    curves = {s: fig.read_training_curves(lay.train_dir("toyota", "cs", s) / "metrics.csv") for s in values}
    fig.plot_training_curves({"pose": None, **curves}, tmp_path / "curves.png", "Training curves: X", {"fusion": 4})
    figure = drawn["curves.png"]
    assert figure.get_suptitle() == "Training curves: X"
    panels = grid_axes(figure)
    assert len(figure.axes) == len(panels) == 6  # 2 rows x 3 streams
    assert panels[(0, 0)].get_title() == "Pose X-ShiftNet"
    check_not_run(panels[(0, 0)])
    check_not_run(panels[(1, 0)])
    check_curves_panel(panels[(0, 1)], panels[(1, 1)], "rgb", values["rgb"], None)
    check_curves_panel(panels[(0, 2)], panels[(1, 2)], "fusion", values["fusion"], 4)


def row_normalised(counts: np.ndarray) -> np.ndarray:
    rows = counts.sum(axis=1, keepdims=True).astype(float)
    return np.where(rows > 0, counts / np.where(rows > 0, rows, 1), 0.0)


def check_confusion_panel(ax: Axes, stream: str, counts: np.ndarray, caption: str) -> None:
    """One stream's panel: its name and caption, the row-normalised matrix (rows actual), counts in the cells."""
    assert ax.get_title() == f"{paper.STREAM_LABEL[stream]}\n{caption}"
    (image,) = ax.images
    np.testing.assert_allclose(image.get_array(), row_normalised(counts))
    assert image.get_clim() == (0.0, 1.0)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "actual")
    assert [t.get_text() for t in ax.get_xticklabels()] == CLASSES
    assert [t.get_text() for t in ax.get_yticklabels()] == CLASSES
    cells = {(tuple(round(v) for v in t.get_position()), t.get_text()) for t in ax.texts}
    k = counts.shape[0]
    assert cells == {((p, a), str(counts[a, p])) for a in range(k) for p in range(k) if counts[a, p]}  # x: predicted


def test_confusion_figure_shows_each_streams_matrix(tmp_path: Path, drawn: dict[str, Figure]) -> None:
    rgb = np.array([[5, 2, 1, 0], [0, 3, 0, 3], [1, 0, 2, 0], [0, 0, 0, 0]])  # no test clip of class 4
    fused = np.array([[7, 1, 0, 0], [1, 5, 0, 0], [0, 0, 3, 1], [0, 2, 0, 0]])
    fig.plot_confusions({"pose": None, "rgb": (rgb, CLASSES), "fusion": (fused, CLASSES)}, tmp_path / "conf.png",
                        "Confusion matrices (test): X", {"fusion": "mean class acc. 52.1% (20 clips)"})  # fmt: skip
    figure = drawn["conf.png"]
    assert figure.get_suptitle() == "Confusion matrices (test): X"
    panels = grid_axes(figure)
    assert len(panels) == 3 and len(figure.axes) == 4  # one panel per stream and the colour bar
    (bar,) = [ax for ax in figure.axes if ax not in panels.values()]
    assert bar.get_ylabel() == "fraction of the actual class"
    assert panels[(0, 0)].get_title() == "Pose X-ShiftNet"
    check_not_run(panels[(0, 0)])
    check_confusion_panel(panels[(0, 1)], "rgb", rgb, "top-1 58.8% (17 clips)")  # default caption: top-1 of the matrix
    check_confusion_panel(panels[(0, 2)], "fusion", fused, "mean class acc. 52.1% (20 clips)")


def test_accuracy_vs_gflops_draws_each_point_at_its_cost_and_accuracy(tmp_path: Path, drawn: dict[str, Figure]) -> None:
    pts = [fig.AccuracyPoint("NTU-60 XSub", 8.1, 96.1, "fusion", "paper"),
           fig.AccuracyPoint("Toyota Smarthome CS", 8.1, 71.7, "fusion", "paper"),
           fig.AccuracyPoint("NTU-60 XSub", 0.02, 80.0, "fusion", "ours", True),
           fig.AccuracyPoint("NTU-60 XSub (rgb)", 0.01, 60.0, "rgb", "ours", True),
           fig.AccuracyPoint("Toyota Smarthome CS (pose)", 0.005, 35.0, "pose", "ours"),
           fig.AccuracyPoint("Toyota Smarthome CS", 0.02, 55.0, "fusion", "ours")]  # fmt: skip
    fig.plot_accuracy_vs_gflops(pts, tmp_path / "acc.png")
    (ax,) = drawn["acc.png"].axes
    assert ax.get_xscale() == "log" and "GFLOPs" in ax.get_xlabel()
    assert ax.get_ylabel().startswith("accuracy (%)") and "Toyota: mean class acc." in ax.get_ylabel()
    # One marker per point, where its numbers say; solid markers for real data, hollow for synthetic.
    markers = [(tuple(c.get_offsets()[0]), c) for c in ax.collections]
    assert all(len(c.get_offsets()) == 1 for _, c in markers)
    assert sorted(xy for xy, _ in markers) == sorted((p.gflops, p.accuracy) for p in pts)
    hollow = {xy for xy, c in markers if len(c.get_facecolors()) == 0 or c.get_facecolors()[0][3] == 0}
    assert hollow == {(p.gflops, p.accuracy) for p in pts if p.synthetic}
    # Each point's label points at it; the other methods of Table 1 are lines at their cost, named.
    notes = {(a.get_text(), tuple(map(float, a.xy))) for a in ax.texts if isinstance(a, Annotation)}
    assert {(p.label, (p.gflops, p.accuracy)) for p in pts} <= notes
    others = [m for m in paper.PAPER_EFFICIENCY if not m.is_epamnet]
    assert {(f"{m.method} ({m.gflops:g})", m.gflops) for m in others} <= {(t, xy[0]) for t, xy in notes}
    vlines = sorted(line.get_xdata()[0] for line in ax.get_lines() if len(set(line.get_xdata())) == 1)
    assert vlines == sorted(m.gflops for m in others)
    # The legend names each kind of marker once: per stream (and data kind), and the paper's.
    assert sorted(legend_texts(ax)) == sorted([
        "EPAM-Net, paper (README)", "ours: EPAM-Net (fused) (synthetic data)", "ours: RGB X-ShiftNet (synthetic data)",
        "ours: Pose X-ShiftNet", "ours: EPAM-Net (fused)", "paper Table 1: GFLOPs only (accuracy not in our sources)",
    ])  # fmt: skip
    lo, hi = ax.get_ylim()
    assert lo <= min(p.accuracy for p in pts) and max(p.accuracy for p in pts) <= hi
    lo, hi = ax.get_xlim()
    assert lo <= min(p.gflops for p in pts) and max(m.gflops for m in paper.PAPER_EFFICIENCY) <= hi


#: The default run's points (README table; counted costs of the synthetic preset): labels crowd at 0.01-0.06 GFLOPs.
DEFAULT_RUN_POINTS = {
    "rgb": (0.0107, [54.2, 56.2, 50.0, 45.3, 50.8, 16.7]),
    "pose": (0.0455, [33.3, 14.6, 29.2, 14.1, 23.4, 27.8]),
    "fusion": (0.0562, [90.6, 71.9, 85.4, 62.5, 55.5, 69.4]),
}
DEFAULT_RUN_NAMES = ["NTU-60 XSub", "NTU-60 XView", "PKU-MMD XSub", "PKU-MMD XView", "Toyota Smarthome CS", "Toyota Smarthome CV2"]


def test_accuracy_vs_gflops_labels_do_not_overlap(tmp_path: Path, drawn: dict[str, Figure]) -> None:
    pts = [fig.AccuracyPoint(f"{name} ({'fused' if s == 'fusion' else s})", cost, value, s, "ours", True)
           for s, (cost, values) in DEFAULT_RUN_POINTS.items() for name, value in zip(DEFAULT_RUN_NAMES, values)]
    pts += [fig.AccuracyPoint(f"{paper.DATASET_LABEL[r.dataset]} {paper.PROTOCOL_LABEL[r.protocol]}", 8.1, r.value,
                              "fusion", "paper") for r in paper.PAPER_ACCURACY]  # fmt: skip
    fig.plot_accuracy_vs_gflops(pts, tmp_path / "acc.png")
    figure = drawn["acc.png"]
    (ax,) = figure.axes
    labels = [a for a in ax.texts if isinstance(a, Annotation) and a.get_text() in {p.label for p in pts}]
    assert len(labels) == len(pts)
    boxes = [(a.get_text(), fig.text_box(a, figure)) for a in labels]
    overlapping = [(a, b) for i, (a, box) in enumerate(boxes) for b, other in boxes[i + 1 :] if box.overlaps(other)]
    assert not overlapping, overlapping
    inside = ax.get_window_extent()
    assert all(inside.y0 - 1 <= box.y0 and box.y1 <= inside.y1 + 1 for _, box in boxes)
    assert all(a.get_fontsize() >= 8 for a in labels)


def test_training_curves_val_top1_shows_where_it_equals_mean_class_accuracy(tmp_path: Path, drawn: dict[str, Figure]) -> None:
    """Toyota's balanced validation lists give val top-1 == val mean class acc.: both lines must still be seen."""
    values = curve_values("fusion", 5, val=True)
    values["val_mean_class_acc"] = list(values["val_top1"])
    curves = {k: np.asarray(v) for k, v in values.items()}
    fig.plot_training_curves({"fusion": curves}, tmp_path / "curves.png", "T")
    bottom = grid_axes(drawn["curves.png"])[(1, 0)]
    lines = labelled_lines(bottom)
    top1, mean_class = lines["val top-1"], lines["val mean class acc."]
    np.testing.assert_allclose(top1.get_ydata(), mean_class.get_ydata())
    # Drawn above, hollow and larger, so the line under it shows through its markers; its own colour and dashes.
    assert top1.get_zorder() > mean_class.get_zorder()
    assert top1.get_markerfacecolor() == "none" and top1.get_markersize() > mean_class.get_markersize()
    assert top1.get_color() != mean_class.get_color() and top1.get_linestyle() != mean_class.get_linestyle()
    assert bottom.get_title() == fig.COINCIDE_NOTE
    values["val_mean_class_acc"][2] -= 0.1  # differing curves get no note
    fig.plot_training_curves({"fusion": {k: np.asarray(v) for k, v in values.items()}}, tmp_path / "c2.png", "T")
    assert grid_axes(drawn["c2.png"])[(1, 0)].get_title() == ""


def check_per_class_figure(figure: Figure, per_class: dict[str, list[float] | None], classes: list[str]) -> None:
    """One axes; per stream that ran, one bar per class (class order, top down) as long as its accuracy (%)."""
    (ax,) = figure.axes
    assert [t.get_text().rsplit(" (", 1)[0] for t in ax.get_yticklabels()] == classes
    bars = {c.get_label(): c for c in ax.containers}
    (legend,) = figure.legends  # below the axes, the figure's
    legend_entries = [t.get_text() for t in legend.get_texts()]
    for stream, values in per_class.items():
        name = paper.STREAM_LABEL[stream]
        if values is None:
            assert f"{name}: not run" in legend_entries
            assert not [k for k in bars if k.startswith(name)]
            continue
        (label,) = [k for k in bars if k.startswith(name)]
        assert label == f"{name} (mean class acc. {np.mean(values):.1f}%)" and label in legend_entries
        patches = bars[label].patches
        assert len(patches) == len(classes)  # one bar per class
        np.testing.assert_allclose([p.get_width() for p in patches], values, atol=1e-3, err_msg=stream)  # csv: 6 decimals
        centres = [p.get_y() + p.get_height() / 2 for p in patches]
        assert [round(c) for c in centres] == list(range(len(classes))) and centres == sorted(centres)
    assert ax.yaxis_inverted()  # the first class on top


def test_per_class_figure_one_bar_per_class_per_stream(tmp_path: Path, drawn: dict[str, Figure]) -> None:
    lay = Layout.from_params(make_params(tmp_path, {"ntu60": ["xsub"]}))
    expected = {}
    for s, correct in (("rgb", 9), ("fusion", 17)):
        res = write_eval(lay, "ntu60", "xsub", s, correct)
        preds = res.scores.argmax(axis=1)
        expected[s] = [100.0 * float(np.mean(preds[res.labels == c] == c)) for c in range(len(CLASSES))]
    read = {s: fig.read_per_class(lay.eval_dir("ntu60", "xsub", s) / "per_class.csv") for s in expected}
    assert read["rgb"].names == CLASSES and list(read["rgb"].counts) == list(CLASS_SIZES)
    fig.plot_per_class({"pose": None, **read}, tmp_path / "pc.png", "Per-class: X")
    figure = drawn["pc.png"]
    assert figure.get_suptitle() == "Per-class: X"
    check_per_class_figure(figure, {"pose": None, **expected}, CLASSES)
    tick_labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert tick_labels == [f"{c} ({n})" for c, n in zip(CLASSES, CLASS_SIZES)]  # test clips per class


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("class,name,count\n0,a,3\n", "lacks columns ['accuracy']"),
        ("class,name,count,correct,accuracy\n", "has no classes"),
        ("class,name,count,correct,accuracy\n0,a,x,1,0.5\n", "line 2: count 'x'"),
        ("class,name,count,correct,accuracy\n0,a,4,1,25\n", "line 2: accuracy 25.0 is not a fraction"),
    ],
)
def test_bad_per_class_file_names_it(tmp_path: Path, content: str, problem: str) -> None:
    bad = tmp_path / "per_class.csv"
    bad.write_text(content)
    with pytest.raises(EpamnetError, match=re.escape(f"{bad}: {problem}")):
        fig.read_per_class(bad)


def test_attention_variants_figure_one_bar_per_variant_and_run(tmp_path: Path, drawn: dict[str, Figure]) -> None:
    values = {"cbam_nested": {"NTU-60 XSub": 90.6, "Toyota Smarthome CS": 55.5},
              "spatial_temporal": {"NTU-60 XSub": 84.0}}  # fmt: skip
    fig.plot_attention_variants(values, tmp_path / "v.png", "Attention variants", "accuracy (%)")
    (ax,) = drawn["v.png"].axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["NTU-60 XSub", "Toyota Smarthome CS"]
    assert legend_texts(ax) == ["cbam_nested", "spatial_temporal"] and ax.get_legend().get_title().get_text() == "model.attention"
    bars = {c.get_label(): c.patches for c in ax.containers if c.get_label() in values}
    for variant, runs in values.items():
        got = {round(p.get_x() + p.get_width() / 2): p.get_height() for p in bars[variant]}
        assert got == pytest.approx({["NTU-60 XSub", "Toyota Smarthome CS"].index(r): v for r, v in runs.items()})
    assert {t.get_text() for t in ax.texts} >= {"90.6", "55.5", "84.0"}  # values written on the bars
    assert [t.get_text() for t in ax.texts].count("not run") == 1  # spatial_temporal has no Toyota number


def check_attention_figure(figure: Figure, frames: np.ndarray, attention: np.ndarray, titles: list[str], suptitle: str) -> None:
    """Per clip: T frames each under its map A[t], the bars mean A[t]; one colour scale (all clips) and one colour bar."""
    n, t, h, w, _ = frames.shape
    assert figure.get_suptitle() == suptitle
    assert len(figure.axes) == n * (t + 1) + 1
    cax = figure.axes[-1]
    assert cax.get_ylabel() == "A (one scale for every clip)"
    colorbars = [ax for ax in figure.axes if getattr(ax, "_colorbar", None) is not None]  # set by matplotlib's Colorbar
    assert colorbars == [cax]  # one colour bar, not one per clip
    for i in range(n):
        axes = figure.axes[i * (t + 1) : (i + 1) * (t + 1)]
        strip, bars = axes[:t], axes[t]
        assert strip[0].get_title(loc="left") == titles[i]
        up = att.upsample(attention[i], (h, w))
        for k, ax in enumerate(strip):
            frame, overlay = ax.images
            np.testing.assert_array_equal(frame.get_array(), frames[i, k])
            np.testing.assert_allclose(overlay.get_array(), up[k], rtol=1e-6, err_msg=f"clip {i}, frame {k}")
            np.testing.assert_allclose(overlay.get_clim(), (attention.min(), attention.max()), rtol=1e-6)
        assert [round(p.get_x() + p.get_width() / 2, 6) for p in bars.patches] == list(range(t))
        np.testing.assert_allclose([p.get_height() for p in bars.patches], attention[i].mean(axis=(1, 2)), rtol=1e-6)
        assert [x.get_text() for x in bars.get_xticklabels()] == [str(k + 1) for k in range(t)]
        assert bars.get_ylabel() == "mean A" and bars.get_xlabel().startswith("RGB frame")


def test_attention_figure_shows_each_frames_map_and_weight(tmp_path: Path, drawn: dict[str, Figure]) -> None:
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(2, 3, 8, 10, 3), dtype=np.uint8)
    attention = rng.uniform(0.05, 0.95, size=(2, 3, 4, 5)).astype(np.float32)
    attention[1] *= 0.5  # the second clip has its own colour scale
    titles = ["clip 1: a", "clip 2: b"]
    att.plot_attention(frames, attention, tmp_path / "att.png", titles=titles, suptitle="Attention: X")
    check_attention_figure(drawn["att.png"], frames, attention, titles, "Attention: X")


def visible_texts(figure: Figure) -> list[Text]:
    """Every text a reader sees: titles, labels, tick labels, legends, colour-bar ticks."""
    figure.draw_without_rendering()  # tick labels are made when drawn

    def shown(t: Text) -> bool:
        return t.get_visible() and bool(t.get_text().strip()) and (t.axes is None or t.axes.get_visible())

    return [t for t in figure.findobj(Text) if shown(t)]


def test_attention_figure_fonts_are_readable_at_the_saved_size(tmp_path: Path, drawn: dict[str, Figure]) -> None:
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 256, size=(3, 8, 16, 16, 3), dtype=np.uint8)
    attention = rng.uniform(0.05, 0.95, size=(3, 8, 4, 4)).astype(np.float32)
    att.plot_attention(frames, attention, tmp_path / "att.png", titles=["a", "b", "c"], suptitle="S")
    figure = drawn["att.png"]
    texts = visible_texts(figure)
    assert {"mean A", "A (one scale for every clip)", "8"} <= {t.get_text() for t in texts}
    small = sorted({(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < att.MIN_FONT})
    assert att.MIN_FONT >= 9 and not small, small
    # Saved without scaling: the PNG is the figure's size in inches at the report's DPI (fonts keep their points).
    width, height = figure.get_size_inches() * fig.DPI
    img = imread(tmp_path / "att.png")
    assert img.shape[1] <= width * 1.05 and img.shape[0] <= height * 1.05


@torch.no_grad()
def test_attention_figure_titles_name_the_predicted_and_actual_class(tmp_path: Path, drawn: dict[str, Figure]) -> None:
    torch.manual_seed(0)
    spec = synthetic_spec()
    model = build_model(spec, 4, "fusion")
    imgs = torch.randn(2, 3, spec.rgb.clip_len, spec.rgb.input_size, spec.rgb.input_size)
    heatmaps = torch.rand(2, 17, spec.pose.clip_len, spec.pose.input_size, spec.pose.input_size)
    model.eval()
    rgb_logits, pose_logits, attention = model(imgs, heatmaps, return_attention=True)
    model.train()
    predicted = (rgb_logits + pose_logits).argmax(dim=1).tolist()
    att.attention_figure(model, imgs, heatmaps, tmp_path / "att.png", labels=[0, 3], class_names=CLASSES, suptitle="S")
    titles = [f"clip 1: predicted {CLASSES[predicted[0]]}, actual drink", f"clip 2: predicted {CLASSES[predicted[1]]}, actual sit"]
    check_attention_figure(drawn["att.png"], att.denormalize(imgs), attention[:, 0].numpy(), titles, "S")


# --------------------------------------------------------------------------------------
# The stage


def test_report_stage_end_to_end(tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch) -> None:
    one_process(monkeypatch)  # the skipped attention figure's warning is logged where it is drawn
    params = make_params(tmp_path, {"ntu60": ["xsub"], "toyota": ["cs"]})
    lay = Layout.from_params(params)
    for s, correct in (("pose", 12), ("rgb", 14), ("fusion", 18)):
        write_eval(lay, "ntu60", "xsub", s, correct)
        write_curves(lay, "ntu60", "xsub", s)
    toyota = write_eval(lay, "toyota", "cs", "fusion", 11)  # pose and rgb of Toyota were not run
    write_curves(lay, "toyota", "cs", "fusion", val=True)
    # A fused model.pt whose test data is absent: the attention figure is skipped, with a warning.
    model = build_model(params.model_spec(), 4, "fusion")
    lay.model_file("toyota", "cs", "fusion").parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), lay.model_file("toyota", "cs", "fusion"))
    stale = lay.results / "figures" / "old.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"x")

    with caplog.at_level(logging.WARNING):
        written = report_stage(params)
    names = {p.name for p in written}
    assert {"results.md", "results.csv", "results.tex", "efficiency_comparison.md", "efficiency_comparison.csv",
            "efficiency_comparison.tex", "accuracy_vs_gflops.png", "curves_ntu60_xsub.png", "confusion_ntu60_xsub.png",
            "per_class_ntu60_xsub.png", "curves_toyota_cs.png", "confusion_toyota_cs.png", "per_class_toyota_cs.png",
            } == names  # fmt: skip
    assert "attention_variants.png" not in names  # one attention variant only
    assert all(p.is_file() for p in written)
    assert not stale.exists()
    assert "attention figure of toyota cs skipped" in caplog.text and "split file not found" in caplog.text
    assert "efficiency.csv not found" in caplog.text

    rows = {(r["dataset"], r["protocol"], r["stream"]): r for r in csv.DictReader(io.StringIO((lay.tables / "results.csv").read_text()))}
    assert rows[("ntu60", "xsub", "fusion")]["ours"] == "90.00"
    assert rows[("ntu60", "xsub", "pose")]["ours"] == "60.00"
    # Toyota's number is its mean class accuracy (which differs from its top-1 here).
    assert rows[("toyota", "cs", "fusion")]["ours"] == f"{expected_ours('toyota', toyota):.2f}" != rows[("toyota", "cs", "fusion")]["top1"]
    assert rows[("toyota", "cs", "rgb")]["status"] == "not run"
    assert rows[("pku", "xsub", "fusion")]["status"] == "not run"  # not in datasets.run
    eff = (lay.tables / "efficiency_comparison.csv").read_text()
    assert "synthetic configuration (trained), 4 classes" in eff and "pi-ViT" in eff
    for png in (p for p in written if p.suffix == ".png"):
        std, _ = png_stats(png)
        assert std > 0.02, png


def test_report_stage_draws_attention_from_real_test_clips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a fused model and its test clips, the stage writes the attention figure."""
    params = make_params(tmp_path, {"ntu60": ["xsub"]})
    lay = Layout.from_params(params)
    write_eval(lay, "ntu60", "xsub", "fusion", 18)
    spec = params.model_spec()
    model = build_model(spec, 4, "fusion")
    lay.model_file("ntu60", "xsub", "fusion").parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), lay.model_file("ntu60", "xsub", "fusion"))
    split = lay.splits("ntu60") / "xsub.json"
    split.parent.mkdir(parents=True)
    split.write_text(json.dumps({"classes": CLASSES, "num_classes": 4, "test": [[f"v{i}", i % 4] for i in range(5)]}))

    class FakeTest:  # stands in for RGBPoseDataset (its video decoding is tested elsewhere)
        def __len__(self) -> int:
            return 5

        def __getitem__(self, i: int) -> dict:
            g = torch.Generator().manual_seed(i)
            return {
                "imgs": torch.randn(3, spec.rgb.clip_len, spec.rgb.input_size, spec.rgb.input_size, generator=g),
                "heatmaps": torch.rand(17, spec.pose.clip_len, spec.pose.input_size, spec.pose.input_size, generator=g),
                "label": torch.tensor(i % 4),
            }

    seen: list[tuple] = []

    def fake_build(p, d, proto, stream, part, *, train_mode):
        seen.append((d, proto, stream, part, train_mode))
        return FakeTest()

    monkeypatch.setattr("epamnet.stages.streams.build_dataset", fake_build)
    written = report_stage(params, attention_clips=2)
    out = lay.results / "figures" / "attention_ntu60_xsub.png"
    assert out in written and seen == [("ntu60", "xsub", "fusion", "test", False)]
    std, colour = png_stats(out)
    assert std > 0.05 and colour > 0.1


def test_report_stage_figures_show_each_runs_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, drawn: dict[str, Figure]
) -> None:
    """The stage's figures: titles name the dataset and protocol (and synthetic data); each number is the run's own."""
    params = make_params(tmp_path, {"ntu60": ["xsub"], "toyota": ["cs"]}, real=("ntu60",))
    lay = Layout.from_params(params)
    spec = params.model_spec()
    evals, curves = {}, {}
    for i, (d, p) in enumerate(configured_runs(params)):
        for j, s in enumerate(tables.STREAMS):
            evals[(d, p, s)] = write_eval(lay, d, p, s, 9 + 3 * j + i, source="real")
            curves[(d, p, s)] = write_curve_values(lay, d, p, s, 3 + i, val=d == "toyota")
    # Toyota's fused model and its test clips, for the attention figure.
    torch.manual_seed(0)
    lay.model_file("toyota", "cs", "fusion").parent.mkdir(parents=True, exist_ok=True)
    torch.save(build_model(spec, 4, "fusion").state_dict(), lay.model_file("toyota", "cs", "fusion"))
    lay.splits("toyota").mkdir(parents=True)
    (lay.splits("toyota") / "cs.json").write_text(json.dumps({"classes": CLASSES, "num_classes": 4, "test": [[f"v{i}", i % 4] for i in range(4)]}))

    class FakeTest:
        def __len__(self) -> int:
            return 4

        def __getitem__(self, i: int) -> dict:
            g = torch.Generator().manual_seed(i)
            return {
                "imgs": torch.randn(3, spec.rgb.clip_len, spec.rgb.input_size, spec.rgb.input_size, generator=g),
                "heatmaps": torch.rand(17, spec.pose.clip_len, spec.pose.input_size, spec.pose.input_size, generator=g),
                "label": torch.tensor(3 - i),
            }

    monkeypatch.setattr("epamnet.stages.streams.build_dataset", lambda *a, **k: FakeTest())
    report_stage(params, attention_clips=2)
    assert set(drawn) == {"accuracy_vs_gflops.png", "curves_ntu60_xsub.png", "confusion_ntu60_xsub.png",
                          "per_class_ntu60_xsub.png", "curves_toyota_cs.png", "confusion_toyota_cs.png",
                          "per_class_toyota_cs.png", "attention_toyota_cs.png"}  # fmt: skip

    # Accuracy vs GFLOPs: every evaluated stream at its counted cost and its reported metric; the paper's rows at 8.1.
    (ax,) = drawn["accuracy_vs_gflops.png"].axes
    notes = {(a.get_text(), tuple(map(float, a.xy))) for a in ax.texts if isinstance(a, Annotation)}
    markers = [tuple(map(float, c.get_offsets()[0])) for c in ax.collections]
    cost = model_cost(spec, 4)
    for (d, p, s), res in evals.items():
        name = f"{paper.DATASET_LABEL[d]} {paper.PROTOCOL_LABEL[p]} ({'fused' if s == 'fusion' else s})"
        want = (pytest.approx(cost[s][1]), pytest.approx(expected_ours(d, res)))
        assert [xy for text, xy in notes if text == name and xy[0] == pytest.approx(cost[s][1])] == [want], (d, p, s)
        assert want in markers, (d, p, s)  # the marker itself, not only its label
    for r in paper.PAPER_ACCURACY:
        assert (f"{paper.DATASET_LABEL[r.dataset]} {paper.PROTOCOL_LABEL[r.protocol]}", (8.1, r.value)) in notes
    assert cost["fusion"][1] > max(cost["rgb"][1], cost["pose"][1])
    assert sorted(legend_texts(ax)) == sorted(["EPAM-Net, paper (README)", "ours: Pose X-ShiftNet", "ours: RGB X-ShiftNet",
                                               "ours: EPAM-Net (fused)", "paper Table 1: GFLOPs only (accuracy not in our sources)"])  # fmt: skip

    for d, p in configured_runs(params):
        title = f"{paper.DATASET_LABEL[d]} {paper.PROTOCOL_LABEL[p]}" + (" (synthetic data)" if d == "toyota" else "")
        # Training curves: one column per stream, each drawing its own metrics.csv; the epoch model.pt comes from.
        figure = drawn[f"curves_{d}_{p}.png"]
        assert figure.get_suptitle() == f"Training curves: {title}"
        panels = grid_axes(figure)
        assert len(panels) == len(figure.axes) == 6
        for j, s in enumerate(tables.STREAMS):
            check_curves_panel(panels[(0, j)], panels[(1, j)], s, curves[(d, p, s)], len(curves[(d, p, s)]["epoch"]) - 1)
        # Confusion matrices: each stream's own, captioned with the dataset's reported metric.
        figure = drawn[f"confusion_{d}_{p}.png"]
        assert figure.get_suptitle() == f"Confusion matrices (test): {title}"
        panels = grid_axes(figure)
        assert len(panels) == 3 and len(figure.axes) == 4
        metric = paper.METRIC_LABEL[paper.REPORTED_METRIC[d]]
        for j, s in enumerate(tables.STREAMS):
            res = evals[(d, p, s)]
            counts = np.zeros((4, 4), dtype=np.int64)
            np.add.at(counts, (res.labels, res.scores.argmax(axis=1)), 1)
            check_confusion_panel(panels[(0, j)], s, counts, f"{metric} {expected_ours(d, res):.1f}% (20 clips)")
        # Per-class accuracy: one bar per class and stream, the class's share of right answers.
        figure = drawn[f"per_class_{d}_{p}.png"]
        assert figure.get_suptitle() == f"Per-class test accuracy: {title}"
        per_class = {}
        for s in tables.STREAMS:
            res = evals[(d, p, s)]
            preds = res.scores.argmax(axis=1)
            per_class[s] = [100.0 * float(np.mean(preds[res.labels == c] == c)) for c in range(4)]
        check_per_class_figure(figure, per_class, CLASSES)

    # Attention: the Toyota CS test clips spread over the list (first and last), actual classes in the titles.
    figure = drawn["attention_toyota_cs.png"]
    assert figure.get_suptitle() == "EPAM-Net pose-driven attention: Toyota Smarthome CS (synthetic data), test clips"
    assert len(figure.axes) == 2 * (spec.rgb.clip_len + 1) + 1
    firsts = [figure.axes[i * (spec.rgb.clip_len + 1)].get_title(loc="left") for i in range(2)]
    assert [re.sub(r"predicted \w+", "predicted ?", t) for t in firsts] == [
        "clip 1: synthetic clip of class sit, predicted ?", "clip 2: synthetic clip of class drink, predicted ?"
    ]  # fmt: skip


def test_report_stage_compares_attention_variants_it_finds(tmp_path: Path, drawn: dict[str, Figure]) -> None:
    """This run's fused results count for model.attention; a copy of another variant's results/metrics beside them adds bars."""
    params = make_params(tmp_path, {"ntu60": ["xsub"], "toyota": ["cs"]})
    lay = Layout.from_params(params)
    assert params.model_spec().attention == "cbam_nested"
    live = {d: write_eval(lay, d, p, "fusion", 17) for d, p in (("ntu60", "xsub"), ("toyota", "cs"))}
    other = write_eval(lay, "ntu60", "xsub", "fusion", 12, folder=lay.attention_variant_eval_dir("spatial_temporal", "ntu60", "xsub", "fusion"))
    # A kept copy of the variant that is live now is not drawn twice: the live run wins.
    write_eval(lay, "ntu60", "xsub", "fusion", 3, folder=lay.attention_variant_eval_dir("cbam_nested", "ntu60", "xsub", "fusion"))
    written = report_stage(params, attention_clips=0)
    assert lay.attention_variants_figure() in written and lay.attention_variants_figure().is_file()
    (ax,) = drawn["attention_variants.png"].axes
    runs = [t.get_text() for t in ax.get_xticklabels()]
    assert runs == ["NTU-60 XSub", "Toyota Smarthome CS"] and legend_texts(ax) == ["cbam_nested", "spatial_temporal"]
    heights = {c.get_label(): [p.get_height() for p in c.patches] for c in ax.containers}
    assert heights["cbam_nested"] == pytest.approx([expected_ours("ntu60", live["ntu60"]), expected_ours("toyota", live["toyota"])])
    assert heights["spatial_temporal"] == pytest.approx([expected_ours("ntu60", other)])


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("metrics.json", "{broken", "rgb/metrics.json: not valid JSON"),
        ("confusion.csv", "actual,predicted,count\ndrink,eat,many\n", "rgb/confusion.csv: line 2: count 'many'"),
    ],
)
def test_report_stage_corrupt_input_writes_nothing(tmp_path: Path, name: str, content: str, problem: str) -> None:
    params = make_params(tmp_path, {"ntu60": ["xsub"]})
    lay = Layout.from_params(params)
    write_eval(lay, "ntu60", "xsub", "fusion", 18)
    write_eval(lay, "ntu60", "xsub", "rgb", 15)
    (lay.eval_dir("ntu60", "xsub", "rgb") / name).write_text(content)
    old = lay.tables / "results.md"
    old.parent.mkdir(parents=True)
    old.write_text("previous table\n")
    with pytest.raises(EpamnetError, match=problem):
        report_stage(params)
    assert old.read_text() == "previous table\n"
    assert not (lay.tables / "results.csv").exists() and not (lay.results / "figures").exists()
    assert sorted(p.name for p in lay.results.iterdir()) == ["metrics", "tables"]  # no temporary folder left


def test_report_io_lists(tmp_path: Path) -> None:
    params = make_params(tmp_path, {"ntu60": ["xsub"], "toyota": ["cs", "cv2"]})
    lay = Layout.from_params(params)
    outs = report_outputs(params)
    assert lay.tables / "results.md" in outs and lay.results / "figures" in outs
    assert lay.tables / "efficiency.csv" not in outs  # profile's output
    deps = report_inputs(params)
    assert lay.eval_dir("toyota", "cv2", "pose") / "metrics.json" in deps
    ev = lay.eval_dir("ntu60", "xsub", "rgb")
    assert deps[deps.index(ev / "metrics.json") + 1] == ev / "provenance.json"  # read beside its metrics
    assert lay.model_file("ntu60", "xsub", "fusion") in deps and lay.tables / "efficiency.csv" in deps
    assert ev / "per_class.csv" in deps  # the per-class figure's input
    # Every figure path the layout gives lies in the figures folder, which is the declared output.
    figures = [lay.accuracy_figure(), lay.attention_variants_figure(), *(lay.run_figure(k, "ntu60", "xsub") for k in RUN_FIGURES)]
    assert all(f.parent == lay.figures for f in figures) and len(set(figures)) == len(figures)


# --------------------------------------------------------------------------------------
# dvc.yaml sections


def test_dvc_sections_cover_every_run(tmp_path: Path) -> None:
    params = make_params(tmp_path, {"ntu60": ["xsub", "xview"], "toyota": ["cs"]})
    lay = Layout.from_params(params)
    metrics = dvc_metrics(params)
    assert len(metrics) == 9 and str(lay.eval_dir("toyota", "cs", "rgb") / "metrics.json") in metrics
    plots = {k: v for entry in dvc_plots(params) for k, v in entry.items()}
    assert len(plots) == 3 * 5
    acc = plots["accuracy_toyota_cs"]["y"]
    assert acc[str(lay.train_dir("toyota", "cs", "pose") / "metrics.csv")] == ["train_top1", "val_top1", "val_mean_class_acc"]
    assert plots["accuracy_ntu60_xsub"]["y"][str(lay.train_dir("ntu60", "xsub", "rgb") / "metrics.csv")] == ["train_top1"]
    conf = plots["confusion_ntu60_xview_fusion"]
    assert conf["template"] == "epamnet_confusion" and (conf["x"], conf["y"]) == (
        "actual", {str(lay.eval_dir("ntu60", "xview", "fusion") / "confusion.csv"): "predicted"})
    assert {v.get("template") for k, v in plots.items() if not k.startswith("confusion")} == {"epamnet_curves"}
    templates = Path(__file__).resolve().parent.parent / ".dvc" / "plots"  # where DVC finds them
    for name in ("epamnet_curves", "epamnet_confusion"):
        assert json.loads((templates / f"{name}.json").read_text())["data"] == {"values": "<DVC_METRIC_DATA>"}
    assert all(k.replace("_", "").isalnum() for k in plots)  # plain HTML ids
