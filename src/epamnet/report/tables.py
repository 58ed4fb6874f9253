"""The results table and the efficiency table, as Markdown, CSV and LaTeX.

Results: one row per dataset x protocol x stream (pose, RGB, fused EPAM-Net), our
accuracy in the metric the paper reports for that dataset (top-1; mean class accuracy
for Toyota Smarthome), the paper's number beside the fused rows and the difference.
Rows whose run did not happen say ``not run`` and carry no numbers. Rows computed on
the synthetic datasets are marked ``synthetic``: they test the code and are not
comparable to the paper, so they get no difference either. Below the table, the
machine, libraries and commit behind the numbers, from each evaluation's
``provenance.json`` (rows of older runs have none and say so).

Efficiency: our measured rows (params, GFLOPs as multiply-adds, clips/s) from
``epamnet profile``'s ``efficiency.csv``, the counted cost of the configuration we
trained, and the paper's Table 1 rows (GFLOPs only: the source gives no more).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from epamnet.datasets import PROTOCOLS
from epamnet.errors import file_error
from epamnet.io.atomic import write_text
from epamnet.provenance import PROVENANCE_FILE, machine_label, read_provenance
from epamnet.report.paper import (
    DATASET_LABEL,
    METRIC_LABEL,
    PAPER_EFFICIENCY,
    PROTOCOL_LABEL,
    REPORTED_METRIC,
    STREAM_LABEL,
    paper_runs,
    reported_accuracy,
)

logger = logging.getLogger(__name__)

STREAMS = ("pose", "rgb", "fusion")
NOT_RUN = "not run"

SYNTHETIC_NOTE = (
    "synthetic: computed on the synthetic datasets this pipeline generates (default params.yaml); "
    "these numbers test the code and are not comparable to the paper's, so no difference is given."
)


# --------------------------------------------------------------------------------------
# Reading the evaluation outputs


def _fraction(path: Path, data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 <= value <= 1.0):
        raise file_error(path, f"{key} is {value!r}, expected a fraction in [0, 1] or null", "rerun the evaluate stage")
    return float(value)


def load_eval_metrics(path: str | Path) -> dict[str, Any]:
    """Read one evaluation ``metrics.json`` and check the keys the report uses.

    Returns the file's dict; accuracies stay fractions. Raises EpamnetError naming the
    file when it is not JSON, not a mapping, or lacks/garbles ``top1`` or ``source``.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise file_error(path, "evaluation metrics not found", "run the evaluate stage first") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise file_error(path, f"not valid JSON ({exc})", "rerun the evaluate stage") from None
    if not isinstance(data, dict):
        raise file_error(path, f"top level is {type(data).__name__}, expected a mapping", "rerun the evaluate stage")
    if "top1" not in data:
        raise file_error(path, "has no 'top1'", "rerun the evaluate stage")
    for key in ("top1", "top5", "mean_class_acc"):
        _fraction(path, data, key)
    if data.get("source") not in ("synthetic", "real"):
        raise file_error(
            path, f"source is {data.get('source')!r}, expected 'synthetic' or 'real'", "rerun the evaluate stage"
        )
    return data


def load_eval_provenance(metrics_path: str | Path) -> dict[str, Any] | None:
    """The ``provenance.json`` beside an evaluation's ``metrics.json``; None when absent."""
    return read_provenance(Path(metrics_path).parent / PROVENANCE_FILE)


# --------------------------------------------------------------------------------------
# Results table


@dataclass(frozen=True)
class ResultRow:
    """One line of the results table; accuracies in percent, None where there is none."""

    dataset: str
    protocol: str
    stream: str
    metric: str  # 'top1' | 'mean_class_acc'
    ours: float | None
    paper: float | None
    difference: float | None  # ours - paper, real data only
    data: str  # 'synthetic' | 'real' | 'not run'
    selection: str  # e.g. 'val mean class acc. (epoch 7)', 'last epoch (10)'; '' when not run
    selected_epoch: int | None
    top1: float | None
    top5: float | None
    mean_class_acc: float | None
    test_clips: int | None
    # The evaluation's provenance.json; None when not run or not recorded (older runs).
    provenance: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def machine(self) -> str:
        """The one-line machine label of the provenance; '' without one."""
        return machine_label(self.provenance) if self.provenance is not None else ""

    @property
    def status(self) -> str:
        return NOT_RUN if self.data == NOT_RUN else "ok"

    @property
    def synthetic(self) -> bool:
        return self.data == "synthetic"


def table_runs(configured: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The paper's (dataset, protocol) rows plus any configured extra, in registry order."""
    wanted = set(paper_runs()) | set(configured)
    order = [(d, p) for d, protos in PROTOCOLS.items() for p in protos]
    return [run for run in order if run in wanted]


def _percent(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return 100.0 * float(value)


def selection_label(selection: str | None, epoch: int | None) -> str:
    """How model.pt was chosen, in words: validation metric or last epoch, and the epoch."""
    at = "" if epoch is None else f" (epoch {epoch})"
    if selection == "last_epoch":
        return f"last epoch{at}"
    if selection in ("val_top1", "val_mean_class_acc"):
        return f"val {METRIC_LABEL[selection[4:]]}{at}"
    return f"{selection or 'unknown'}{at}"


def result_row(
    dataset: str,
    protocol: str,
    stream: str,
    metrics: Mapping[str, Any] | None,
    provenance: Mapping[str, Any] | None = None,
) -> ResultRow:
    """The table row of one run from its evaluation metrics (None: not run) and provenance."""
    metric = REPORTED_METRIC[dataset]
    reported = reported_accuracy(dataset, protocol) if stream == "fusion" else None
    paper = reported.value if reported is not None else None
    if metrics is None:
        return ResultRow(
            dataset, protocol, stream, metric, ours=None, paper=paper, difference=None, data=NOT_RUN, selection="",
            selected_epoch=None, top1=None, top5=None, mean_class_acc=None, test_clips=None,
        )  # fmt: skip
    ours = _percent(metrics.get(metric))
    data = str(metrics["source"])
    diff = None
    if data == "real" and ours is not None and paper is not None:
        diff = ours - paper
    epoch = metrics.get("selected_epoch")
    clips = metrics.get("test_clips", metrics.get("num_samples"))
    return ResultRow(
        dataset=dataset,
        protocol=protocol,
        stream=stream,
        metric=metric,
        ours=ours,
        paper=paper,
        difference=diff,
        data=data,
        selection=selection_label(metrics.get("selection"), epoch),
        selected_epoch=None if epoch is None else int(epoch),
        top1=_percent(metrics.get("top1")),
        top5=_percent(metrics.get("top5")),
        mean_class_acc=_percent(metrics.get("mean_class_acc")),
        test_clips=None if clips is None else int(clips),
        provenance=provenance,
    )


def results_rows(
    runs: Sequence[tuple[str, str]],
    metrics: Mapping[tuple[str, str, str], Mapping[str, Any] | None],
    provenance: Mapping[tuple[str, str, str], Mapping[str, Any] | None] | None = None,
) -> list[ResultRow]:
    """Rows for every (dataset, protocol) of ``runs`` x stream; absent metrics -> 'not run'.

    ``provenance``: each evaluation's provenance record, by the same keys (absent: none).
    """
    prov = provenance or {}
    return [result_row(d, p, s, metrics.get((d, p, s)), prov.get((d, p, s))) for d, p in runs for s in STREAMS]


def _num(value: float | None, digits: int = 1, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


RESULTS_CSV_COLUMNS = (
    "dataset", "protocol", "stream", "metric", "ours", "paper", "difference", "data", "synthetic",
    "selection", "selected_epoch", "top1", "top5", "mean_class_acc", "test_clips", "status", "paper_source",
    "machine",
)  # fmt: skip


def results_csv(rows: Sequence[ResultRow]) -> str:
    """CSV text: percentages with 2 decimals (paper: 1), empty cells where nothing exists."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(RESULTS_CSV_COLUMNS)
    for r in rows:
        rep = reported_accuracy(r.dataset, r.protocol) if r.stream == "fusion" else None
        writer.writerow(
            [
                r.dataset, r.protocol, r.stream, r.metric, _num(r.ours, 2), _num(r.paper, 1),
                _num(r.difference, 2), r.data, "" if r.data == NOT_RUN else str(r.synthetic).lower(),
                r.selection, "" if r.selected_epoch is None else r.selected_epoch, _num(r.top1, 2),
                _num(r.top5, 2), _num(r.mean_class_acc, 2), "" if r.test_clips is None else r.test_clips,
                r.status, rep.source if rep is not None else "", r.machine,
            ]
        )  # fmt: skip
    return buf.getvalue()


def _ours_cell(r: ResultRow, mark: str, machine_mark: str = "") -> str:
    if r.data == NOT_RUN:
        return NOT_RUN
    if r.ours is None:
        return "n/a" + machine_mark
    return f"{r.ours:.2f}{mark if r.synthetic else ''}{machine_mark}"


# Split around the setting so each format can set it as code.
PORTABILITY_NOTE = (
    (
        "On another CPU the numbers can differ: PyTorch (MKL, oneDNN, ATen kernels) and NumPy "
        "choose SIMD code paths by CPU at run time, and these round differently; "
    ),
    "runtime.portable_cpu: true",
    " in params.yaml pins those paths.",
)
NOT_RECORDED = "provenance not recorded (no provenance.json beside the evaluation's metrics.json, e.g. an older run)"


@dataclass(frozen=True)
class Machines:
    """The distinct machine labels of the run rows, and which run rows have none."""

    labels: tuple[str, ...]  # in order of first appearance
    unrecorded: tuple[ResultRow, ...]  # run rows without provenance

    def number(self, r: ResultRow) -> int | None:
        """1-based number of the row's machine when there are several; else None."""
        if len(self.labels) < 2 or r.status != "ok" or not r.machine:
            return None
        return self.labels.index(r.machine) + 1

    def summary(self) -> str:
        """The sentence naming the one machine, or leading the numbered list of several."""
        if len(self.labels) == 1:
            return f"All numbers in the Ours column were computed on: {self.labels[0]}."
        if len(self.labels) > 1:
            return "The numbers in the Ours column come from several machines; each cell is marked [n]:"
        return "" if self.unrecorded else "No evaluation has been run yet."

    def unrecorded_line(self) -> str | None:
        """Which run rows lack provenance; None when every run row has it."""
        if not self.unrecorded:
            return None
        if not self.labels:
            return f"All rows: {NOT_RECORDED}."
        names = "; ".join(
            f"{DATASET_LABEL[r.dataset]} {PROTOCOL_LABEL[r.protocol]} {STREAM_LABEL[r.stream]}" for r in self.unrecorded
        )
        return f"{names}: {NOT_RECORDED}."


def machines(rows: Sequence[ResultRow]) -> Machines:
    """The machines behind the run rows of a table."""
    labels: list[str] = []
    for r in rows:
        if r.status == "ok" and r.machine and r.machine not in labels:
            labels.append(r.machine)
    unrecorded = tuple(r for r in rows if r.status == "ok" and not r.machine)
    return Machines(tuple(labels), unrecorded)


def _provenance_markdown(m: Machines) -> list[str]:
    lines = ["## Where these numbers come from", ""] + ([m.summary(), ""] if m.summary() else [])
    if len(m.labels) > 1:
        lines += [f"- [{i}] {label}" for i, label in enumerate(m.labels, 1)] + [""]
    if m.unrecorded_line():
        lines += [m.unrecorded_line() or "", ""]
    before, setting, after = PORTABILITY_NOTE
    return lines + [f"{before}`{setting}`{after}"]


def _md_mark(m: Machines, r: ResultRow) -> str:
    n = m.number(r)
    return "" if n is None else f" [{n}]"


def results_markdown(rows: Sequence[ResultRow]) -> str:
    """The results table in Markdown, with the notes that say how to read it."""
    m = machines(rows)
    lines = [
        "# EPAM-Net results: ours beside the paper's",
        "",
        "Accuracy in % on the test list, 1 clip per video: top-1, and mean class accuracy for Toyota",
        "Smarthome (as the paper reports it). Paper numbers exist for the fused model only.",
        "",
        "| Dataset | Protocol | Stream | Metric | Ours | Paper | Difference | Data | Model selection |",
        "|---|---|---|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {DATASET_LABEL[r.dataset]} | {PROTOCOL_LABEL[r.protocol]} | {STREAM_LABEL[r.stream]} "
            f"| {METRIC_LABEL[r.metric]} | {_ours_cell(r, ' †', _md_mark(m, r))} | {_num(r.paper)} "
            f"| {_num(r.difference, 2, True)} "
            f"| {'**synthetic** †' if r.synthetic else r.data} | {r.selection} |"
        )
    lines += [
        "",
        f"† {SYNTHETIC_NOTE}",
        "",
        "`not run`: the dataset or protocol is not in `datasets.run` of params.yaml, or its evaluation",
        "has not been produced; nothing is filled in for it. Difference = ours - paper (real data only).",
        "Model selection: the epoch whose weights were evaluated, chosen on the protocol's validation",
        "list where it has one (Toyota), else the last epoch; never on the test list.",
        "",
        "Paper numbers: the official EPAM-Net README results table.",
        "",
        *_provenance_markdown(m),
    ]
    return "\n".join(lines) + "\n"


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters in plain text."""
    out = []
    for ch in text:
        if ch in "&%$#_{}":
            out.append("\\" + ch)
        elif ch == "~":
            out.append(r"\textasciitilde{}")
        elif ch == "^":
            out.append(r"\textasciicircum{}")
        elif ch == "\\":
            out.append(r"\textbackslash{}")
        else:
            out.append(ch)
    return "".join(out)


def results_latex(rows: Sequence[ResultRow]) -> str:
    """The results table as a booktabs ``table`` environment."""
    lines = [
        "% Generated by `epamnet report`; needs \\usepackage{booktabs}.",
        "\\begin{table}[t]",
        "\\centering",
        "\\caption{EPAM-Net accuracy (\\%, 1 clip): ours beside the paper's. Top-1; mean class accuracy "
        "for Toyota Smarthome. $^\\dagger$Synthetic data: not comparable to the paper.}",
        "\\label{tab:epamnet-results}",
        "\\begin{tabular}{lllrrrl}",
        "\\toprule",
        "Dataset & Protocol & Stream & Ours & Paper & Diff. & Data \\\\",
        "\\midrule",
    ]
    m = machines(rows)
    previous = None
    for r in rows:
        if previous is not None and (r.dataset, r.protocol) != previous:
            lines.append("\\midrule")
        previous = (r.dataset, r.protocol)
        n = m.number(r)
        mark = "" if n is None else f"\\textsuperscript{{[{n}]}}"
        ours = _ours_cell(r, "$^\\dagger$", mark) if r.data != NOT_RUN else "\\multicolumn{1}{r}{not run}"
        cells = [
            latex_escape(DATASET_LABEL[r.dataset]), latex_escape(PROTOCOL_LABEL[r.protocol]),
            latex_escape(STREAM_LABEL[r.stream]), ours, _num(r.paper), _num(r.difference, 2, True),
            "synthetic$^\\dagger$" if r.synthetic else latex_escape(r.data),
        ]  # fmt: skip
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", *_provenance_latex(m), "\\end{table}"]
    return "\n".join(lines) + "\n"


def _provenance_latex(m: Machines) -> list[str]:
    """The 'where these numbers come from' paragraph under the tabular, one sentence a line."""
    parts = [latex_escape(m.summary())] if m.summary() else []
    if len(m.labels) > 1:  # braces keep "[n]" from being read as an optional argument of \\
        parts += [f"{{[{i}]}}~{latex_escape(label)}" for i, label in enumerate(m.labels, 1)]
    if m.unrecorded_line():
        parts.append(latex_escape(m.unrecorded_line() or ""))
    before, setting, after = PORTABILITY_NOTE
    parts.append(f"{latex_escape(before)}\\texttt{{{latex_escape(setting)}}}{latex_escape(after)}")
    body = " \\\\\n".join(parts)
    return ["", "\\smallskip", "{\\footnotesize\\raggedright \\textbf{Where these numbers come from.}", body + "\\par}"]


def write_results_table(rows: Sequence[ResultRow], out_dir: str | Path) -> list[Path]:
    """Write ``results.md``, ``results.csv`` and ``results.tex`` into ``out_dir`` atomically."""
    out_dir = Path(out_dir)
    paths = [out_dir / "results.md", out_dir / "results.csv", out_dir / "results.tex"]
    for path, text in zip(paths, (results_markdown(rows), results_csv(rows), results_latex(rows)), strict=True):
        write_text(path, text)
    logger.info("results table: %d rows (%d run) -> %s", len(rows), sum(r.status == "ok" for r in rows), out_dir)
    return paths


# --------------------------------------------------------------------------------------
# Efficiency table


@dataclass(frozen=True)
class EfficiencyRow:
    """One method / model of the efficiency table (None: not reported or not measured)."""

    method: str
    config: str  # what was counted, e.g. 'paper configuration, 60 classes'
    origin: str  # 'measured' | 'counted' | 'paper'
    params: int | None
    gflops: float | None  # multiply-adds / 1e9, the convention the paper's GFLOPs use
    gflops_mmcv: float | None  # + BatchNorm/ReLU/pooling as mmcv counts them
    clips_per_s: float | None
    note: str = ""
    source: str = ""


PROFILE_COLUMNS = (
    "component", "params", "gmacs", "gflops_mmcv_style", "reported_gflops", "batch_size", "clips_per_s", "device",
)  # fmt: skip
PROFILE_METHODS = {"epam_net": "EPAM-Net", "rgb_stream": "RGB X-ShiftNet", "pose_stream": "Pose X-ShiftNet"}


def _cell_number(path: Path, row: Mapping[str, str], key: str, kind: type) -> Any:
    text = (row.get(key) or "").strip()
    if not text:
        return None
    try:
        return kind(float(text)) if kind is int else kind(text)
    except ValueError:
        problem = f"{key} is {text!r} in row {dict(row)}, expected a number"
        raise file_error(path, problem, "rerun `epamnet profile`") from None


def read_profile_csv(path: str | Path) -> list[EfficiencyRow]:
    """Our measured rows from ``epamnet profile``'s ``efficiency.csv``.

    One row each for the fused model and the two streams; clips/s of the fused model at
    batch size 1 (else the smallest measured), with the device named in ``note``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise file_error(path, "efficiency table not found", "run `epamnet profile` first") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in PROFILE_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise file_error(path, f"lacks columns {missing}", "rerun `epamnet profile`")
    counts: dict[str, dict[str, Any]] = {}
    speeds: list[tuple[int, float, str]] = []
    for row in reader:
        comp = row["component"]
        batch = _cell_number(path, row, "batch_size", int)
        if batch is not None:
            speed = _cell_number(path, row, "clips_per_s", float)
            if speed is not None and comp == "epam_net":
                speeds.append((batch, speed, row.get("device") or ""))
            continue
        if comp in PROFILE_METHODS:
            counts[comp] = {
                "params": _cell_number(path, row, "params", int),
                "gflops": _cell_number(path, row, "gmacs", float),
                "gflops_mmcv": _cell_number(path, row, "gflops_mmcv_style", float),
                "paper_config": _cell_number(path, row, "reported_gflops", float) is not None,
            }
    if "epam_net" not in counts:
        raise file_error(path, "has no 'epam_net' row", "rerun `epamnet profile`")
    config = "paper configuration" if counts["epam_net"]["paper_config"] else "profiled configuration"
    speed = min(speeds) if speeds else None
    rows = []
    for comp, method in PROFILE_METHODS.items():
        if comp not in counts:
            continue
        c = counts[comp]
        fused = comp == "epam_net"
        rows.append(
            EfficiencyRow(
                method=method,
                config=config,
                origin="measured",
                params=c["params"],
                gflops=c["gflops"],
                gflops_mmcv=c["gflops_mmcv"],
                clips_per_s=speed[1] if fused and speed else None,
                note=f"clips/s at batch {speed[0]} on {speed[2] or 'unknown device'}" if fused and speed else "",
                source=str(path),
            )
        )
    return rows


def paper_efficiency_rows() -> list[EfficiencyRow]:
    """The paper's Table 1 rows: GFLOPs only (params and speed are not given there)."""
    return [
        EfficiencyRow(
            method=e.method, config="as published", origin="paper", params=None, gflops=e.gflops,
            gflops_mmcv=None, clips_per_s=None, source=e.source,
        )  # fmt: skip
        for e in PAPER_EFFICIENCY
    ]


def efficiency_csv(rows: Sequence[EfficiencyRow]) -> str:
    buf = io.StringIO()
    fields = [f for f in asdict(rows[0])] if rows else list(EfficiencyRow.__dataclass_fields__)
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        d = asdict(r)
        for key in ("gflops", "gflops_mmcv"):
            d[key] = "" if d[key] is None else f"{d[key]:.4f}"
        d["clips_per_s"] = "" if r.clips_per_s is None else f"{r.clips_per_s:.3f}"
        d["params"] = "" if r.params is None else r.params
        writer.writerow(d)
    return buf.getvalue()


def _gflops(value: float | None) -> str:
    """GFLOPs with 3 significant digits at least (0.0614, 7.62, 107.9)."""
    if value is None:
        return ""
    return f"{value:.1f}" if value >= 100 else f"{value:.3g}" if value < 1 else f"{value:.2f}"


def _params_m(n: int | None) -> str:
    return "" if n is None else f"{n / 1e6:.3f}"


def efficiency_markdown(rows: Sequence[EfficiencyRow]) -> str:
    lines = [
        "# Efficiency: parameters, GFLOPs and speed",
        "",
        "GFLOPs per clip as multiply-adds of convolutions and linear layers / 1e9 (the convention of",
        "the paper's Table 1); 'mmcv-style' adds BatchNorm, ReLU and pooling as mmcv counts them.",
        "measured: `epamnet profile` (results/tables/efficiency.csv); counted: the configuration",
        "this pipeline trained (params.yaml `model`); paper: Table 1 of the paper (GFLOPs only).",
        "",
        "| Method | Configuration | Origin | Params (M) | GFLOPs | GFLOPs mmcv-style | Clips/s | Note |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.method} | {r.config} | {r.origin} | {_params_m(r.params)} | {_gflops(r.gflops)} "
            f"| {_gflops(r.gflops_mmcv)} | {_num(r.clips_per_s, 2)} | {r.note} |"
        )
    ours = next((r for r in rows if r.origin == "measured" and r.method == "EPAM-Net"), None)
    if ours is not None and ours.gflops:
        paper = [r for r in rows if r.origin == "paper" and r.gflops]
        worst = max(paper, key=lambda r: r.gflops or 0.0, default=None)
        own = next((r for r in paper if r.method == "EPAM-Net"), None)
        if worst is not None and own is not None:
            lines += ["", f"{worst.method} / EPAM-Net: {worst.gflops / ours.gflops:.1f}x the GFLOPs with our measured "
                      f"{ours.gflops:.2f} ({worst.gflops / own.gflops:.1f}x with the paper's {own.gflops})."]  # fmt: skip
    lines += ["", "Empty cells: not reported in the paper's material, or not measured; nothing is estimated."]
    return "\n".join(lines) + "\n"


def efficiency_latex(rows: Sequence[EfficiencyRow]) -> str:
    lines = [
        "% Generated by `epamnet report`; needs \\usepackage{booktabs}.",
        "\\begin{table}[t]",
        "\\centering",
        "\\caption{Parameters, GFLOPs (multiply-adds, 1 clip) and speed. Paper rows: Table 1 of the paper.}",
        "\\label{tab:epamnet-efficiency}",
        "\\begin{tabular}{lllrrr}",
        "\\toprule",
        "Method & Configuration & Origin & Params (M) & GFLOPs & Clips/s \\\\",
        "\\midrule",
    ]
    for r in rows:
        cells = [
            latex_escape(r.method), latex_escape(r.config), r.origin, _params_m(r.params), _gflops(r.gflops),
            _num(r.clips_per_s, 2),
        ]  # fmt: skip
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def write_efficiency_comparison(rows: Sequence[EfficiencyRow], out_dir: str | Path) -> list[Path]:
    """Write ``efficiency_comparison.{md,csv,tex}`` (``efficiency.*`` belong to ``profile``)."""
    out_dir = Path(out_dir)
    paths = [out_dir / f"efficiency_comparison.{ext}" for ext in ("md", "csv", "tex")]
    for path, text in zip(paths, (efficiency_markdown(rows), efficiency_csv(rows), efficiency_latex(rows)), strict=True):
        write_text(path, text)
    return paths
