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
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from epamnet.config import validate_params
from epamnet.loader.rgb import normalize_frames
from epamnet.engine.evaluate import EvalResult, write_csv, write_evaluation
from epamnet.engine.trainer import CSV_COLUMNS
from epamnet.errors import EpamnetError
from epamnet.layout import Layout
from epamnet.models.epam import build_model
from epamnet.models.profile import profile_epamnet, write_efficiency_table
from epamnet.config.model import synthetic_spec
from epamnet.provenance import machine_label, write_provenance
from epamnet.report import attention as att
from epamnet.report import figures as fig
from epamnet.report import paper, tables
from epamnet.report.dvc_plots import dvc_metrics, dvc_plots
from epamnet.stages.report import (
    configured_runs,
    read_run,
)
from epamnet.dag import report_inputs, report_outputs
from epamnet.stages.report import run as report_stage
from epamnet.datasets.registry import REPORTED_METRIC as ENGINE_REPORTED_METRIC

CLASSES = ["drink", "eat", "wave", "sit"]


# --------------------------------------------------------------------------------------
# Fake pipeline outputs


def make_params(tmp_path: Path, run: dict[str, list[str]]):
    return validate_params(
        {
            "paths": {k: str(tmp_path / k) for k in ("data", "downloads", "models", "results")},
            "datasets": {"run": list(run), **{d: {"protocols": p} for d, p in run.items()}},
        }
    )


def eval_result(correct: int, total: int = 20, num_classes: int = 4, seed: int = 0) -> EvalResult:
    """Scores where exactly ``correct`` of ``total`` samples are classified right."""
    rng = np.random.default_rng(seed)
    labels = np.arange(total) % num_classes
    preds = labels.copy()
    wrong = rng.permutation(total)[: total - correct]
    preds[wrong] = (labels[wrong] + 1) % num_classes
    scores = np.full((total, num_classes), 0.0, dtype=np.float32)
    scores[np.arange(total), preds] = 1.0
    return EvalResult(scores=scores, labels=labels, loss=0.5, num_classes=num_classes)


def write_eval(lay: Layout, d: str, p: str, s: str, correct: int, source: str = "synthetic", **extra) -> EvalResult:
    res = eval_result(correct, seed=hash((d, p, s)) % 1000)
    info = {
        "dataset": d, "protocol": p, "stream": s, "source": source, "reported_metric": ENGINE_REPORTED_METRIC[d],
        "test_clips": res.num_samples, "num_classes": res.num_classes, "selection": "last_epoch", "selected_epoch": 3,
    }  # fmt: skip
    info.update(extra)
    write_evaluation(res, lay.eval_dir(d, p, s), sample_ids=[f"v{i}" for i in range(20)], class_names=CLASSES, extra=info)
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
    assert t.ours == pytest.approx(100 * toyota.mean_class_acc) and t.top1 == pytest.approx(50.0)
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


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a mapping"),
        ('{"source": "real"}', "has no 'top1'"),
        ('{"top1": 95.0, "source": "real"}', "expected a fraction"),
        ('{"top1": 0.9, "source": "imagined"}', "expected 'synthetic' or 'real'"),
    ],
)
def test_bad_metrics_file_names_the_file(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(content)
    with pytest.raises(EpamnetError, match=problem) as info:
        tables.load_eval_metrics(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


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
    result["throughput"] = [{"batch_size": 4, "clips_per_s": 30.0, "iters": 1}, {"batch_size": 1, "clips_per_s": 12.5, "iters": 1}]
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
# The stage


def test_report_stage_end_to_end(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    params = make_params(tmp_path, {"ntu60": ["xsub"], "toyota": ["cs"]})
    lay = Layout.from_params(params)
    for s, correct in (("pose", 12), ("rgb", 14), ("fusion", 18)):
        write_eval(lay, "ntu60", "xsub", s, correct)
        write_curves(lay, "ntu60", "xsub", s)
    write_eval(lay, "toyota", "cs", "fusion", 11)  # pose and rgb of Toyota were not run
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
            "curves_toyota_cs.png", "confusion_toyota_cs.png"} == names  # fmt: skip
    assert all(p.is_file() for p in written)
    assert not stale.exists()
    assert "attention figure of toyota cs skipped" in caplog.text and "split file not found" in caplog.text
    assert "efficiency.csv not found" in caplog.text

    rows = {(r["dataset"], r["protocol"], r["stream"]): r for r in csv.DictReader(io.StringIO((lay.tables / "results.csv").read_text()))}
    assert rows[("ntu60", "xsub", "fusion")]["ours"] == "90.00"
    assert rows[("ntu60", "xsub", "pose")]["ours"] == "60.00"
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
    assert conf["template"] == "confusion" and (conf["x"], conf["y"]) == (
        "actual", {str(lay.eval_dir("ntu60", "xview", "fusion") / "predictions.csv"): "predicted"})
    assert all(k.replace("_", "").isalnum() for k in plots)  # plain HTML ids
