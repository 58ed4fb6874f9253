"""DVC sees the pipeline's metrics and plots, and the plots render offline in Chromium.

A tmp git + DVC repository gets a ``dvc.yaml`` with the ``metrics:`` and ``plots:``
sections of :mod:`epamnet.report.dvc_plots`, the evaluation and training files of two
runs (written with the engine's own writers), the committed offline plots page
template and the project's Vega-Lite templates (``.dvc/plots/``). Then:

- ``dvc metrics show --json`` lists every dataset x protocol x stream, numbers only,
  and ``dvc metrics show`` fits in 120 columns;
- ``dvc plots show --json`` gives every plot with its data;
- ``dvc plots show`` writes a page that headless Chromium (no network) draws: a
  screenshot has coloured chart pixels, and the SVG rendering of the same page holds a
  line per curve, in one colour per stream, and confusion cells whose counts are the
  evaluation's confusion matrix.

The Chromium test is skipped when /usr/bin/chromium is missing, unless
``EPAMNET_REQUIRE_CHROMIUM=1`` (CI), where that is a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

pytest.importorskip("dvc", reason="dvc is not installed (pip install -e '.[workflow]')")
pytest.importorskip("dvc_render", reason="dvc-render is not installed (it comes with dvc)")

from epamnet.config import STREAMS, validate_params  # noqa: E402
from epamnet.engine.evaluate import EvalResult, write_csv, write_evaluation  # noqa: E402
from epamnet.engine.trainer import CSV_COLUMNS  # noqa: E402
from epamnet.layout import Layout  # noqa: E402
from epamnet.report.dvc_plots import VALIDATION_DATASETS, dvc_metrics, dvc_plots  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "workflow" / "dvc" / "plots-template.html"
VEGA_TEMPLATES = ROOT / ".dvc" / "plots"  # epamnet_curves.json, epamnet_confusion.json
TEMPLATE_CONFIG = "../workflow/dvc/plots-template.html"  # .dvc/config: relative to .dvc/
CHROMIUM = Path("/usr/bin/chromium")
RUNS = {"ntu60": ["xsub"], "toyota": ["cs"]}
CLASSES = ["drink", "eat", "wave", "sit"]
SAMPLES = 20


def dvc(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def fake_eval(correct: int, seed: int) -> EvalResult:
    rng = np.random.default_rng(seed)
    labels = np.arange(SAMPLES) % len(CLASSES)
    preds = labels.copy()
    wrong = rng.permutation(SAMPLES)[: SAMPLES - correct]
    preds[wrong] = (labels[wrong] + 1 + rng.integers(0, 2, len(wrong))) % len(CLASSES)
    scores = np.zeros((SAMPLES, len(CLASSES)), np.float32)
    scores[np.arange(SAMPLES), preds] = 1.0
    return EvalResult(scores=scores, labels=labels, loss=0.4, num_classes=len(CLASSES))


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory):
    """(repo root, params, {(d, p, s): EvalResult}) of a tmp git + DVC project."""
    root = tmp_path_factory.mktemp("dvcrepo")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    dvc(root, "init", "-q")
    params = validate_params({"datasets": {"run": list(RUNS), **{d: {"protocols": p} for d, p in RUNS.items()}}})
    lay = Layout.from_params(params)
    results = {}
    for k, (d, protos) in enumerate(RUNS.items()):
        for p in protos:
            for j, s in enumerate(STREAMS):
                res = fake_eval(correct=10 + 4 * j, seed=10 * k + j)
                results[(d, p, s)] = res
                extra = {"dataset": d, "protocol": p, "stream": s, "source": "synthetic"}
                write_evaluation(res, root / lay.eval_dir(d, p, s), sample_ids=[f"v{i}" for i in range(SAMPLES)],
                                 class_names=CLASSES, extra=extra)  # fmt: skip
                cols = [c for c in CSV_COLUMNS if d in VALIDATION_DATASETS or not c.startswith("val_")]
                rows = [[{"epoch": e, "lr": 0.01, "train_loss": (3 - j) / e, "train_top1": 0.2 * e, "val_top1": 0.15 * e,
                          "val_mean_class_acc": 0.1 * e, "time": 1.0}[c] for c in cols] for e in range(1, 5)]  # fmt: skip
                write_csv(root / lay.train_dir(d, p, s) / "metrics.csv", cols, rows)
    doc = {"metrics": dvc_metrics(params), "plots": dvc_plots(params)}
    (root / "dvc.yaml").write_text(json.dumps(doc, indent=1))  # JSON is YAML
    (root / "workflow" / "dvc").mkdir(parents=True)
    (root / "workflow" / "dvc" / "plots-template.html").write_bytes(TEMPLATE.read_bytes())
    (root / ".dvc" / "plots").mkdir()
    for tpl in VEGA_TEMPLATES.glob("*.json"):
        (root / ".dvc" / "plots" / tpl.name).write_bytes(tpl.read_bytes())
    dvc(root, "config", "plots.html_template", TEMPLATE_CONFIG)
    return root, params, results


def test_metrics_show_lists_every_run(repo) -> None:
    root, params, results = repo
    data = json.loads(dvc(root, "metrics", "show", "--json"))[""]["data"]
    lay = Layout.from_params(params)
    expected = {str(lay.eval_dir(*key) / "metrics.json"): res for key, res in results.items()}
    assert set(data) == set(expected) and len(data) == 6
    for path, res in expected.items():
        shown = data[path]["data"]
        assert shown["top1"] == pytest.approx(res.top1)
        assert shown["mean_class_acc"] == pytest.approx(res.mean_class_acc)
        assert shown == {**res.summary(), "loss": pytest.approx(res.loss)}  # numbers only: no 'source'
    table = dvc(root, "metrics", "show", env={"COLUMNS": "120"})
    widths = [len(line.rstrip()) for line in table.splitlines()]
    assert len(widths) == 7 and max(widths) <= 120 and "…" not in table, table


def test_plots_show_json_has_every_plot_with_data(repo) -> None:
    root, params, results = repo
    data = json.loads(dvc(root, "plots", "show", "--json"))["data"]
    ids = [next(iter(entry)) for entry in dvc_plots(params)]
    assert sorted(data) == sorted(ids) and len(ids) == 10
    loss = data["loss_ntu60_xsub"][0]["content"]["data"]["values"]
    assert len(loss) == 3 * 4 and {v["filename"] for v in loss} == {f"{s}/metrics.csv" for s in STREAMS}
    acc = data["accuracy_toyota_cs"][0]["content"]["data"]["values"]
    assert {(v["filename"], v["field"]) for v in acc} == {
        (f"{s}/metrics.csv", f) for s in STREAMS for f in ("train_top1", "val_top1", "val_mean_class_acc")
    }
    assert len(acc) == 3 * 3 * 4
    conf = data["confusion_toyota_cs_rgb"][0]["content"]["data"]["values"]
    res = results[("toyota", "cs", "rgb")]
    assert {(v["actual"], v["predicted"]): int(v["count"]) for v in conf} == {
        (CLASSES[a], CLASSES[p]): int(res.confusion[a, p]) for a in range(len(CLASSES)) for p in range(len(CLASSES))
    }
    assert sum(int(v["count"]) for v in conf) == SAMPLES


def test_committed_template_is_offline_and_matches_dvc() -> None:
    from dvc_render.vega import VegaRenderer

    html = TEMPLATE.read_text(encoding="utf-8")
    assert "{plot_divs}" in html and "{scripts}" not in html
    assert "<script src" not in html and "cdn.jsdelivr" not in html
    # The inlined builds are the versions DVC's renderer would load from its CDN.
    for name, version in re.findall(r"npm/(vega(?:-lite|-embed)?)@([0-9.]+)", VegaRenderer.SCRIPTS):
        assert f"/* {name}@{version} */" in html, f"template lacks {name}@{version}: rerun scripts/make_plots_template.py"


def test_template_generator_escapes_and_refuses_placeholders(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_plots_template", ROOT / "scripts" / "make_plots_template.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    versions = {"vega": "1.0.0", "vega-lite": "2.0.0", "vega-embed": "3.0.0"}

    def pack(code: dict[str, str]) -> list[Path]:
        out = []
        for name, version in versions.items():
            src = tmp_path / name / "package" / "build" / mod.BUILDS[name]
            src.parent.mkdir(parents=True, exist_ok=True)
            src.write_text(code[name])
            tgz = tmp_path / f"{name}-{version}.tgz"
            with tarfile.open(tgz, "w:gz") as tar:
                tar.add(tmp_path / name / "package", arcname="package")
            out.append(tgz)
        return out

    page = mod.render(versions, pack({n: f'var {n.replace("-", "_")} = "</script>";\n//# sourceMappingURL=x.map' for n in versions}))
    assert page.count("</script>") == 3 and page.count("<\\/script>") == 3  # only the real closing tags
    assert "sourceMappingURL" not in page and "{plot_divs}" in page and "{scripts}" not in page
    with pytest.raises(SystemExit, match="placeholder"):
        mod.render(versions, pack({n: "x = '{plot_divs}'" for n in versions}))


def _chromium(tmp: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        f"--user-data-dir={tmp / 'chromium-profile'}", "--virtual-time-budget=15000", *args, url,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


LINE = re.compile(r'aria-label="([^"]*)" role="graphics-symbol" aria-roledescription="line mark" d="([^"]*)" stroke="([^"]*)"')


def _fields(label: str) -> dict[str, str]:
    return dict(part.split(": ", 1) for part in label.split("; "))


def line_series(svg: str) -> dict[tuple[str, str], int]:
    """{(stream, metric): points in its line} of the Vega line marks in an SVG chart."""
    out: dict[tuple[str, str], int] = {}
    for label, path, _ in LINE.findall(svg):
        f = _fields(label)
        series = (f["stream"], f["metric"])
        out[series] = max(out.get(series, 0), path.count("L") + 1)
    return out


def stream_colours(svg: str) -> dict[str, set[str]]:
    """{stream: the stroke colours of its line marks} in an SVG chart."""
    out: dict[str, set[str]] = {}
    for label, _, colour in LINE.findall(svg):
        out.setdefault(_fields(label)["stream"], set()).add(colour)
    return out


def test_plots_render_offline_in_headless_chromium(repo, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        if os.environ.get("EPAMNET_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"{CHROMIUM} not found but EPAMNET_REQUIRE_CHROMIUM=1; apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} not found (apt-get install -y chromium); set EPAMNET_REQUIRE_CHROMIUM=1 to require it")
    root, params, results = repo
    dvc(root, "plots", "show", "-o", str(tmp_path / "plots"))
    page = tmp_path / "plots" / "index.html"
    html = page.read_text(encoding="utf-8")
    assert "cdn.jsdelivr" not in html and "<script src" not in html  # the offline template was used
    ids = [next(iter(entry)) for entry in dvc_plots(params)]

    # 1. The page as DVC wrote it (canvas renderer): the charts put coloured pixels on screen.
    shot = tmp_path / "shot.png"
    proc = _chromium(tmp_path, page.as_uri(), "--window-size=1400,2400", f"--screenshot={shot}")
    assert shot.is_file(), proc.stderr[-2000:]
    img = imread(shot)[..., :3].astype(float)
    coloured = (img.max(axis=2) - img.min(axis=2)) > 0.25
    assert coloured.mean() > 0.05, f"screenshot nearly blank: {coloured.mean():.4f} coloured"

    # 2. The same page with Vega's SVG renderer: every chart's marks are in the DOM.
    svg_page = tmp_path / "plots" / "svg.html"
    svg_html, n = re.subn(r"vegaEmbed\('#([^']+)', spec\);", r"vegaEmbed('#\1', spec, {renderer: 'svg'});", html)
    assert n == len(ids)
    svg_page.write_text(svg_html, encoding="utf-8")
    dom = _chromium(tmp_path, svg_page.as_uri(), "--dump-dom").stdout
    starts = {m.group(1): m.start() for m in re.finditer(r'<div id="([a-z0-9_]+)"', dom)}
    assert set(ids) <= set(starts), f"charts missing from the DOM: {set(ids) - set(starts)}"
    bounds = sorted(starts.values()) + [len(dom)]
    chart = {k: dom[v : bounds[bounds.index(v) + 1]] for k, v in starts.items()}
    for d, protos in RUNS.items():
        fields = ["train_top1", "val_top1", "val_mean_class_acc"] if d in VALIDATION_DATASETS else ["train_top1"]
        for p in protos:
            loss = line_series(chart[f"loss_{d}_{p}"])
            assert loss == {(s, "train_loss"): 4 for s in STREAMS}, f"loss_{d}_{p}: drew {loss}"
            acc = line_series(chart[f"accuracy_{d}_{p}"])
            want = {(s, f): 4 for s in STREAMS for f in fields}
            assert acc == want, f"accuracy_{d}_{p}: drew {acc}"
            for name in (f"loss_{d}_{p}", f"accuracy_{d}_{p}"):  # one colour per stream, a different one each
                colours = stream_colours(chart[name])
                assert set(colours) == set(STREAMS) and all(len(c) == 1 for c in colours.values()), (name, colours)
                assert len(set.union(*colours.values())) == len(STREAMS), f"{name}: streams share a colour: {colours}"
            for s in STREAMS:
                cells = re.findall(r'aria-label="actual: (\w+); predicted: (\w+); clips: (\d+)"', chart[f"confusion_{d}_{p}_{s}"])
                drawn = {(a, pr): int(c) for a, pr, c in cells}  # every cell, the empty ones too
                cm = results[(d, p, s)].confusion
                want = {(CLASSES[a], CLASSES[b]): int(cm[a, b]) for a in range(len(CLASSES)) for b in range(len(CLASSES))}
                assert drawn == want, f"confusion_{d}_{p}_{s}: drawn cells differ from the confusion matrix"
