"""What DVC's own views show of the pipeline: `dvc exp show` fits a terminal, `dvc plots show` draws every class and epoch.

- ``dvc exp show --only-changed`` at 120 columns: a tmp git + DVC project whose stage
  writes an evaluation with the engine's own writer (the keys the evaluate stage adds
  included), run as the baseline and as an experiment that changes one parameter.
  The changed numbers fit, none cut to "…".
- ``dvc plots show`` of a one-epoch run whose model never predicts one class, drawn by
  headless Chromium (SVG renderer): each stream has its own colour, each curve has a
  point for its one epoch, and the confusion matrix has every class on both axes; the
  page lands in DVC's default ``dvc_plots/``, which the project's .gitignore ignores.
  Skipped when /usr/bin/chromium is missing, unless ``EPAMNET_REQUIRE_CHROMIUM=1``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dvc", reason="dvc is not installed (pip install -e '.[workflow]')")

from epamnet.config import STREAMS, validate_params  # noqa: E402
from epamnet.engine.evaluate import EvalResult, write_csv, write_evaluation  # noqa: E402
from epamnet.engine.trainer import CSV_COLUMNS  # noqa: E402
from epamnet.layout import Layout  # noqa: E402
from epamnet.report.dvc_plots import dvc_metrics, dvc_plots  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CLASSES = ["drink", "eat", "wave", "sit", "read"]
ENV = {
    "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
}  # fmt: skip

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def run(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    cmd = [sys.executable, "-m", "dvc", *args[1:]] if args[0] == "dvc" else list(args)
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=300, env={**os.environ, **ENV, **(env or {})})
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


# The stage of the tmp project: an evaluation whose numbers depend on one parameter,
# written by the engine with the facts the evaluate stage adds (src/epamnet/stages/evaluate.py).
EVALUATE = textwrap.dedent(
    """\
    import numpy as np, yaml
    from epamnet.engine.evaluate import EvalResult, write_evaluation
    epochs = yaml.safe_load(open("params.yaml"))["train"]["fusion"]["epochs"]
    labels = np.arange(48) % 8
    scores = np.random.default_rng(epochs).random((48, 8)).astype(np.float32)
    scores[np.arange(epochs), labels[:epochs]] += 1.0  # more epochs, more right
    res = EvalResult(scores=scores, labels=labels, loss=1.0 / epochs, num_classes=8)
    extra = {"dataset": "ntu60", "protocol": "xsub", "stream": "fusion", "source": "synthetic",
             "reported_metric": "top1", "test_clips": 48, "num_classes": 8, "selection": "last_epoch",
             "selected_epoch": epochs}
    write_evaluation(res, "results/metrics/ntu60/xsub/fusion", class_names=[f"action {k}" for k in range(8)], extra=extra)
    """
)


def test_exp_show_only_changed_fits_120_columns(tmp_path: Path) -> None:
    repo = tmp_path / "project"
    repo.mkdir()
    run(repo, "git", "init", "-q")
    run(repo, "dvc", "init", "-q")
    (repo / "evaluate.py").write_text(EVALUATE)
    (repo / "params.yaml").write_text("train:\n  fusion:\n    epochs: 10\n")
    ev = "results/metrics/ntu60/xsub/fusion"
    stage = {
        "cmd": f"{sys.executable} evaluate.py", "deps": ["evaluate.py"], "params": ["train.fusion.epochs"],
        "outs": [{f"{ev}/{name}": {"cache": False}} for name in ("metrics.json", "evaluation.json")],
    }  # fmt: skip
    (repo / "dvc.yaml").write_text(json.dumps({"stages": {"evaluate": stage}, "metrics": [f"{ev}/metrics.json"]}))
    run(repo, "dvc", "repro", "-q")
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-q", "-m", "baseline")
    run(repo, "dvc", "exp", "run", "-q", "--name", "longer", "-S", "train.fusion.epochs=40")

    table = run(repo, "dvc", "exp", "show", "--only-changed", "--no-pager", env={"COLUMNS": "120"})
    lines = table.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 120 and "…" not in table, table
    header = next(line for line in lines if "Experiment" in line).split()
    assert header == ["Experiment", "Created", "top1", "top5", "mean_class_acc", "loss", "train.fusion.epochs"], table
    longer = json.loads(run(repo, "dvc", "exp", "show", "--json"))
    exps = [e for base in longer for x in base.get("experiments") or [] for e in x["revs"]]
    shown = next(e for e in exps if e["name"] == "longer")["data"]["metrics"][f"{ev}/metrics.json"]["data"]
    row = next(line for line in lines if "longer" in line).split()
    assert row[-1] == "40" and row[-2] == f"{shown['loss']:.5g}" and f"{shown['top1']:.5g}" in row, table


def _chromium_svg(page: Path, tmp: Path) -> str:
    """The DOM of DVC's plots page drawn with Vega's SVG renderer."""
    html, n = re.subn(r"vegaEmbed\('#([^']+)', spec\);", r"vegaEmbed('#\1', spec, {renderer: 'svg'});", page.read_text())
    assert n > 0
    svg_page = page.with_name("svg.html")
    svg_page.write_text(html, encoding="utf-8")
    cmd = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp / 'profile'}",
        "--virtual-time-budget=15000", "--dump-dom", svg_page.as_uri(),
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180).stdout


def _charts(dom: str) -> dict[str, str]:
    starts = {m.group(1): m.start() for m in re.finditer(r'<div id="([a-z0-9_]+)"', dom)}
    bounds = sorted(starts.values()) + [len(dom)]
    return {k: dom[v : bounds[bounds.index(v) + 1]] for k, v in starts.items()}


def _marks(svg: str, role: str) -> list[tuple[dict[str, str], str]]:
    """(encoded fields, colour) of every mark of ``role`` ('line mark', 'point', 'rect') in a chart."""
    out = []
    for label, rest in re.findall(rf'aria-label="([^"]*)" role="graphics-symbol" aria-roledescription="{role}[^"]*"([^>]*)', svg):
        colour = re.search(r'(?:stroke|fill)="(#[0-9a-f]+)"', rest)
        out.append((dict(part.split(": ", 1) for part in label.split("; ")), colour.group(1) if colour else ""))
    return out


def test_plots_one_epoch_distinct_stream_colours_every_class(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        if os.environ.get("EPAMNET_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"{CHROMIUM} not found but EPAMNET_REQUIRE_CHROMIUM=1; apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} not found (apt-get install -y chromium); set EPAMNET_REQUIRE_CHROMIUM=1 to require it")
    repo = tmp_path / "project"
    repo.mkdir()
    run(repo, "git", "init", "-q")
    run(repo, "dvc", "init", "-q")
    params = validate_params({"datasets": {"run": ["ntu60"], "ntu60": {"protocols": ["xsub"]}}})
    lay = Layout.from_params(params)
    labels = np.arange(20) % len(CLASSES)
    for j, s in enumerate(STREAMS):
        preds = np.where(labels == 3, 2, labels)  # 'sit' (class 3) is never predicted
        scores = np.eye(len(CLASSES), dtype=np.float32)[preds]
        write_evaluation(EvalResult(scores=scores, labels=labels, loss=0.5, num_classes=len(CLASSES)),
                         repo / lay.eval_dir("ntu60", "xsub", s), class_names=CLASSES, extra={"source": "synthetic"})  # fmt: skip
        cols = [c for c in CSV_COLUMNS if not c.startswith("val_")]
        row = {"epoch": 1, "lr": 0.01, "train_loss": 2.0 - 0.5 * j, "train_top1": 0.3 + 0.2 * j, "time": 1.0}
        write_csv(repo / lay.train_dir("ntu60", "xsub", s) / "metrics.csv", cols, [[row[c] for c in cols]])
    (repo / "dvc.yaml").write_text(json.dumps({"metrics": dvc_metrics(params), "plots": dvc_plots(params)}))
    shutil.copytree(ROOT / ".dvc" / "plots", repo / ".dvc" / "plots")  # the project's Vega-Lite templates
    (repo / "page.html").write_bytes((ROOT / "workflow" / "dvc" / "plots-template.html").read_bytes())
    run(repo, "dvc", "config", "plots.html_template", "../page.html")
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    run(repo, "dvc", "plots", "show")  # into DVC's default folder, which git must ignore
    run(repo, "git", "check-ignore", "-q", "dvc_plots/index.html")
    chart = _charts(_chromium_svg(repo / "dvc_plots" / "index.html", tmp_path))

    for name in ("loss_ntu60_xsub", "accuracy_ntu60_xsub"):
        points = _marks(chart[name], "point")
        # one epoch: no line to draw, but a point per stream, each stream in its own colour
        assert sorted(f["stream"] for f, _ in points) == sorted(STREAMS) and all(f["epoch"] == "1" for f, _ in points), name
        colours = {f["stream"]: c for f, c in points}
        assert len(set(colours.values())) == len(STREAMS), f"{name}: streams share a colour: {colours}"
        assert {f["stream"]: c for f, c in _marks(chart[name], "line mark")} == colours, name
    for s in STREAMS:
        svg = chart[f"confusion_ntu60_xsub_{s}"]
        values = ", ".join(CLASSES)
        assert f"Y-axis titled 'predicted' for a discrete scale with {len(CLASSES)} values: {values}" in svg, s
        assert f"X-axis titled 'actual' for a discrete scale with {len(CLASSES)} values: {values}" in svg, s
        cells = {(f["actual"], f["predicted"]): int(f["clips"]) for f, _ in _marks(svg, "rect")}
        assert len(cells) == len(CLASSES) ** 2 and cells[("sit", "wave")] == 4 and cells[("sit", "sit")] == 0, cells
