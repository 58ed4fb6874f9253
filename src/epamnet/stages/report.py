"""``report``: the paper's tables and figures from the finished runs; evaluation outputs -> results/tables and results/figures.

Reads what exists among the expected files of the runs in ``params.datasets.run``
(evaluation metrics and confusion matrices, training curves, the fused models and
their test clips, ``epamnet profile``'s efficiency.csv) and writes:

- ``results/tables/results.{md,csv,tex}``: ours beside the paper's, per stream;
- ``results/tables/efficiency_comparison.{md,csv,tex}``: params, GFLOPs, clips/s and
  the paper's Table 1 (``efficiency.{md,csv}`` are ``profile``'s own outputs);
- ``results/figures/``: ``accuracy_vs_gflops.png``, per dataset/protocol
  ``curves_<d>_<p>.png``, ``confusion_<d>_<p>.png``, ``per_class_<d>_<p>.png``,
  ``attention_<d>_<p>.png``, and ``attention_variants.png`` when the fused runs of more
  than one ``model.attention`` are found (this run's, and copies of earlier runs'
  ``results/metrics`` under ``results/variants/<attention>/metrics``; the layout keys
  runs by dataset, protocol and stream only, so two variants cannot both be live).

Figures of synthetic datasets say so in their titles (the data is generated, the class
and dataset names are the real ones). Runs selected on the test split
(``train.*.selection: test``, the official protocol) say so too: in the figure titles, a ‡
beside their accuracy-vs-GFLOPs points, and a ‡ row mark with a footnote in the tables.

Each evaluation's ``provenance.json`` (commit, settings and input hashes, libraries,
machine) says below the results table which machine its numbers came from; a run
without one (an older run) is reported as "provenance not recorded".

A run whose files are missing becomes a 'not run' row or a 'not run' panel, never a
crash; a file that exists but is corrupt is an error naming it. The figures folder is
replaced as a whole (atomically), so figures of runs no longer configured disappear.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from epamnet.config import STREAMS, Params
from epamnet.config.model import ATTENTION_KINDS, ModelSpec, paper_spec
from epamnet.config.train import selects_on_test
from epamnet.errors import EpamnetError
from epamnet.io.atomic import atomic_dir
from epamnet.io.jsonfile import read_json_mapping
from epamnet.io.splitfile import read_split
from epamnet.layout import RELEASED, Layout
from epamnet.logs import set_context
from epamnet.provenance import PROVENANCE_FILE
from epamnet.report import figures as fig
from epamnet.report.attention import attention_figure
from epamnet.report.paper import (
    DATASET_LABEL,
    METRIC_LABEL,
    PAPER_ACCURACY,
    PAPER_EFFICIENCY,
    PROTOCOL_LABEL,
    REPORTED_METRIC,
)
from epamnet.report.tables import (
    EfficiencyRow,
    load_eval_metrics,
    load_eval_provenance,
    paper_efficiency_rows,
    read_profile_csv,
    results_rows,
    table_runs,
    write_efficiency_comparison,
    write_results_table,
)

logger = logging.getLogger(__name__)

def configured_runs(params: Params) -> list[tuple[str, str]]:
    """(dataset, protocol) pairs the pipeline runs, in ``datasets.run`` order."""
    return [(d, p) for d in params.datasets.run for p in params.datasets.entry(d).protocols]


def model_cost(spec: ModelSpec, num_classes: int) -> dict[str, tuple[int, float, float]]:
    """Per stream and fused: (params, GFLOPs as multiply-adds, mmcv-style GFLOPs), counted on 'meta'."""
    from epamnet.models.profile import COMPONENTS, count_model

    parts = count_model(spec, num_classes)
    out = {}
    for stream, comp in (("pose", "pose_stream"), ("rgb", "rgb_stream"), ("fusion", "epam_net")):
        names = COMPONENTS[comp]
        macs = sum(parts[n]["macs"] for n in names)
        extra = sum(parts[n]["elementwise_ops"] for n in names)
        out[stream] = (sum(parts[n]["params"] for n in names), macs / 1e9, (macs + extra) / 1e9)
    return out


def _fusion_attention(
    params: Params, dataset: str, protocol: str, num_classes: int, clips: int, out: Path
) -> Path | None:
    """Attention figure of the trained fused model on ``clips`` test clips spread over the list."""
    from epamnet.models.convert import load_state_strict, read_checkpoint
    from epamnet.models.epam import build_model
    from epamnet.stages.streams import build_dataset

    lay = Layout.from_params(params)
    weights = lay.model_file(dataset, protocol, "fusion")
    if not weights.is_file():
        return None
    model = build_model(params.model_spec(), num_classes, "fusion")
    load_state_strict(model, read_checkpoint(weights), weights)
    split = read_split(lay.split_file(dataset, protocol))
    test = build_dataset(params, dataset, protocol, "fusion", "test", train_mode=False)
    if len(test) == 0:
        return None
    picks = sorted({int(i) for i in np.linspace(0, len(test) - 1, min(clips, len(test))).round()})
    items = [test[i] for i in picks]
    return attention_figure(
        model,
        torch.stack([it["imgs"] for it in items]),
        torch.stack([it["heatmaps"] for it in items]),
        out,
        labels=[int(it["label"]) for it in items],
        class_names=split.get("classes"),
        suptitle=f"EPAM-Net pose-driven attention: {run_title(params, dataset, protocol)}, test clips",
        synthetic=synthetic(params, dataset),
    )


def synthetic(params: Params, dataset: str) -> bool:
    """Whether ``dataset`` runs on the generated data (``datasets.<name>.source``)."""
    return params.datasets.entry(dataset).source == "synthetic"


def run_title(params: Params, dataset: str, protocol: str) -> str:
    """'NTU-60 XSub', with ' (synthetic data)' where the data is generated."""
    return f"{DATASET_LABEL[dataset]} {PROTOCOL_LABEL[protocol]}" + (" (synthetic data)" if synthetic(params, dataset) else "")


def _caption(dataset: str, metrics: dict[str, Any] | None) -> str:
    """'<metric> <value>% (<n> clips)' in the dataset's reported metric; '' without metrics."""
    if metrics is None or metrics.get(REPORTED_METRIC[dataset]) is None:
        return ""
    metric = REPORTED_METRIC[dataset]
    clips = metrics.get("test_clips", metrics.get("num_samples"))
    return f"{METRIC_LABEL[metric]} {100 * float(metrics[metric]):.1f}%" + (f" ({clips} clips)" if clips else "")


def _efficiency_rows(
    lay: Layout, spec: ModelSpec, num_classes: int | None, costs: dict[str, tuple]
) -> list[EfficiencyRow]:
    rows: list[EfficiencyRow] = []
    _, profile_csv = lay.efficiency_tables()
    if profile_csv.is_file():
        rows += read_profile_csv(profile_csv)
    else:
        logger.warning("%s not found: no measured efficiency rows (run `epamnet profile`)", profile_csv)
    if spec != paper_spec() and costs:
        label = {"fusion": "EPAM-Net", "rgb": "RGB X-ShiftNet", "pose": "Pose X-ShiftNet"}
        for stream in ("fusion", "rgb", "pose"):
            n_params, gflops, mmcv = costs[stream]
            rows.append(
                EfficiencyRow(
                    method=label[stream], config=f"{spec.name} configuration (trained), {num_classes} classes",
                    origin="counted", params=n_params, gflops=gflops, gflops_mmcv=mmcv, clips_per_s=None,
                    note="counted on the meta device; speed not measured", source="params.yaml model",
                )  # fmt: skip
            )
    return rows + paper_efficiency_rows()


@dataclass
class RunFiles:
    """What exists of one (dataset, protocol)'s outputs, read and checked, per stream."""

    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # evaluation metrics.json
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)  # its provenance.json, where recorded
    curves: dict[str, dict[str, np.ndarray] | None] = field(default_factory=dict)
    selected: dict[str, int | None] = field(default_factory=dict)
    selection: dict[str, str | None] = field(default_factory=dict)  # training metrics.json's (test: the figures say so)
    confusions: dict[str, tuple[np.ndarray, list[str]] | None] = field(default_factory=dict)
    per_class: dict[str, fig.PerClass | None] = field(default_factory=dict)


def read_run(lay: Layout, dataset: str, protocol: str) -> RunFiles:
    """Read every existing output of one run; missing files stay absent (None)."""
    run = RunFiles()
    for s in STREAMS:
        ev, tr = lay.eval_dir(dataset, protocol, s), lay.train_dir(dataset, protocol, s)
        if (ev / "metrics.json").is_file():
            run.metrics[s] = load_eval_metrics(ev / "metrics.json")
            prov = load_eval_provenance(ev / "metrics.json")
            if prov is not None:
                run.provenance[s] = prov
            else:
                logger.warning("%s not found: %s %s %s says 'provenance not recorded'", ev / PROVENANCE_FILE,
                               dataset, protocol, s)  # fmt: skip
        else:
            logger.warning("%s not found: %s %s %s is reported as 'not run'", ev / "metrics.json", dataset, protocol, s)
        run.curves[s] = fig.read_training_curves(tr / "metrics.csv") if (tr / "metrics.csv").is_file() else None
        summary = read_json_mapping(tr / "metrics.json")
        run.selected[s] = summary.get("selected_epoch") if summary else None
        run.selection[s] = summary.get("selection") if summary else run.metrics.get(s, {}).get("selection")
        run.confusions[s] = fig.read_confusion(ev / "confusion.csv") if (ev / "confusion.csv").is_file() else None
        run.per_class[s] = fig.read_per_class(ev / "per_class.csv") if (ev / "per_class.csv").is_file() else None
    return run


def read_released(lay: Layout, dataset: str, protocol: str) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """The evaluation of a protocol's released EPAM-Net weights (metrics, provenance); None when not evaluated."""
    path = lay.released_eval_dir(dataset, protocol) / "metrics.json"
    if not path.is_file():
        return None
    return load_eval_metrics(path), load_eval_provenance(path)


def _run_figures(
    params: Params, dataset: str, protocol: str, run: RunFiles, folder: Path, attention_clips: int
) -> list[str]:
    """Curves, confusion, per-class and attention figures of one run into ``folder``; their names."""
    lay = Layout.from_params(params)
    title = run_title(params, dataset, protocol)

    def titled(kind: str) -> str:  # a run selected on the test split says so under the title
        return fig.test_selection_title(f"{kind}: {title}", run.selection)

    def path(kind: str) -> Path:
        return folder / lay.run_figure(kind, dataset, protocol).name

    names = []
    if any(c is not None for c in run.curves.values()):
        names.append(fig.plot_training_curves(run.curves, path("curves"), titled("Training curves"), run.selected).name)
    if any(c is not None for c in run.confusions.values()):
        captions = {s: _caption(dataset, run.metrics.get(s)) for s in STREAMS}
        names.append(fig.plot_confusions(run.confusions, path("confusion"), titled("Confusion matrices (test)"), captions).name)
    if any(c is not None for c in run.per_class.values()):
        names.append(fig.plot_per_class(run.per_class, path("per_class"), titled("Per-class test accuracy")).name)
    fused = run.metrics.get("fusion")
    if attention_clips > 0 and fused is not None and isinstance(fused.get("num_classes"), int):
        out = path("attention")
        try:
            made = _fusion_attention(params, dataset, protocol, int(fused["num_classes"]), attention_clips, out)
        except EpamnetError as exc:
            logger.warning("attention figure of %s %s skipped: %s", dataset, protocol, exc)
            made = None
        if made is not None:
            names.append(made.name)
    return names


def all_run_figures(
    params: Params,
    runs: dict[tuple[str, str], RunFiles],
    folder: Path,
    attention_clips: int,
    meanwhile: Callable[[], list[str]] = list,
) -> list[str]:
    """The names ``meanwhile`` returns, then :func:`_run_figures` of every run in ``runs`` order.

    The runs' figures are independent, so they are drawn in parallel processes, one per
    CPU this process may use (forked: each inherits the thread setting, and a figure's
    bytes do not depend on which process drew it), while this process runs ``meanwhile``
    (the report's other figures); one CPU, or a platform without ``fork``, draws them
    all in turn.
    """
    workers = min(len(runs), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        first = meanwhile()
        return first + [n for (d, p), run in runs.items() for n in _run_figures(params, d, p, run, folder, attention_clips)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        jobs = [pool.submit(_run_figures, params, d, p, run, folder, attention_clips) for (d, p), run in runs.items()]
        first = meanwhile()
        return first + [n for job in jobs for n in job.result()]


def attention_variants(params: Params, runs: dict[tuple[str, str], RunFiles]) -> dict[str, dict[str, float]]:
    """Fused accuracy (%, the dataset's reported metric) per attention variant and run label.

    This run's fused evaluations count for ``model.attention``; an earlier run's are
    read from :meth:`Layout.attention_variant_eval_dir` for every other variant that has them.
    """
    lay = Layout.from_params(params)
    current = params.model_spec().attention

    def value(d: str, m: dict[str, Any] | None) -> float | None:
        v = None if m is None else m.get(REPORTED_METRIC[d])
        return None if v is None else 100.0 * float(v)

    found: dict[str, dict[str, float]] = {current: {}}
    for (d, p), run in runs.items():
        if (v := value(d, run.metrics.get("fusion"))) is not None:
            found[current][f"{DATASET_LABEL[d]} {PROTOCOL_LABEL[p]}"] = v
    for kind in ATTENTION_KINDS:
        if kind == current:
            continue
        for d, p in runs:
            path = lay.attention_variant_eval_dir(kind, d, p, "fusion") / "metrics.json"
            if path.is_file() and (v := value(d, load_eval_metrics(path))) is not None:
                found.setdefault(kind, {})[f"{DATASET_LABEL[d]} {PROTOCOL_LABEL[p]}"] = v
    return {k: v for k, v in found.items() if v}


def run(params: Params, *, attention_clips: int = 3) -> list[Path]:
    """Write the figures and the results and efficiency tables; return the paths written.

    Every input is read and checked before anything is written. ``attention_clips``:
    test clips per (dataset, protocol) in the attention figure (0: none).
    """
    set_context("report")
    lay = Layout.from_params(params)
    configured = configured_runs(params)
    runs = {(d, p): read_run(lay, d, p) for d, p in configured}
    metrics = {(d, p, s): m for (d, p), run in runs.items() for s, m in run.metrics.items()}
    provenance = {(d, p, s): v for (d, p), run in runs.items() for s, v in run.provenance.items()}
    released = {(d, p): read_released(lay, d, p) for d, p in configured}
    released_metrics = {(d, p, RELEASED): r[0] for (d, p), r in released.items() if r is not None}
    released_prov = {(d, p, RELEASED): r[1] for (d, p), r in released.items() if r is not None and r[1] is not None}

    spec = params.model_spec()
    cost_cache: dict[int, dict[str, tuple[int, float, float]]] = {}

    def costs(num_classes: int) -> dict[str, tuple[int, float, float]]:
        if num_classes not in cost_cache:
            cost_cache[num_classes] = model_cost(spec, num_classes)
        return cost_cache[num_classes]

    def accuracy_points() -> list[fig.AccuracyPoint]:
        paper_gflops = next(e.gflops for e in PAPER_EFFICIENCY if e.is_epamnet)
        points = [
            fig.AccuracyPoint(f"{DATASET_LABEL[r.dataset]} {PROTOCOL_LABEL[r.protocol]}", paper_gflops, r.value,
                              "fusion", "paper")  # fmt: skip
            for r in PAPER_ACCURACY
        ]
        for (d, p, s), m in metrics.items():
            value = m.get(REPORTED_METRIC[d])
            if value is None or not isinstance(m.get("num_classes"), int):
                continue
            points.append(
                fig.AccuracyPoint(
                    f"{DATASET_LABEL[d]} {PROTOCOL_LABEL[p]} ({'fused' if s == 'fusion' else s})",
                    costs(int(m["num_classes"]))[s][1], 100.0 * float(value), s, "ours", m.get("source") == "synthetic",
                    selects_on_test(m.get("selection")),
                )  # fmt: skip
            )
        return points

    variants = attention_variants(params, runs)
    out = lay.figures
    with atomic_dir(out) as tmp:
        # Counting the models' costs for the accuracy figure runs while the run figures are drawn.
        names = all_run_figures(
            params, runs, tmp, attention_clips,
            meanwhile=lambda: [fig.plot_accuracy_vs_gflops(accuracy_points(), tmp / lay.accuracy_figure().name).name],
        )
        if len(variants) > 1:
            title = "Attention variants: EPAM-Net (fused) test accuracy per run"
            ylabel = "accuracy (%): top-1; Toyota: mean class acc."
            made = fig.plot_attention_variants(variants, tmp / lay.attention_variants_figure().name, title, ylabel)
            names.append(made.name)

    rows = results_rows(table_runs(configured), {**metrics, **released_metrics}, {**provenance, **released_prov})
    written = write_results_table(rows, lay.tables)
    classes = next((int(m["num_classes"]) for m in metrics.values() if isinstance(m.get("num_classes"), int)), None)
    eff_rows = _efficiency_rows(lay, spec, classes, costs(classes) if classes else {})
    written += write_efficiency_comparison(eff_rows, lay.tables)
    written += [out / n for n in names]
    logger.info("report: %d tables, %d figures -> %s, %s", 6, len(names), lay.tables, out)
    return written
