"""The results table and the efficiency table, as Markdown, CSV and LaTeX.

Results: one row per dataset x protocol x stream (pose, RGB, fused EPAM-Net), our
accuracy in the metric the paper reports for that dataset (top-1; mean class accuracy
for Toyota Smarthome), the paper's number beside the fused rows and the difference.
Where the released EPAM-Net weights of a protocol were evaluated (``evaluate-released``),
they get a row of their own, labelled "released weights", with the paper's number beside.
Rows whose run did not happen say ``not run`` and carry no numbers. Rows computed on
the synthetic datasets are marked ``synthetic``: they test the code and are not
comparable to the paper, so they get no difference either. Below the table, the
machine, libraries and commit behind the numbers, from each evaluation's
``provenance.json`` (rows of older runs have none and say so).

Efficiency: our measured rows (params, GFLOPs as multiply-adds, clips/s) from
``epamnet profile``'s ``efficiency.csv``, the counted cost of the configuration we
trained, and the paper's Table 1 rows (GFLOPs only: the source gives no more).

Each table is a pandas DataFrame of display strings, written through
:mod:`epamnet.io.tables` (the writer ``epamnet profile`` uses for ``efficiency.*`` too).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from epamnet.config.train import selects_on_test
from epamnet.datasets import PROTOCOLS
from epamnet.engine.evaluate import EVALUATION_FILE
from epamnet.errors import file_error
from epamnet.io.tables import (
    csv_text,
    latex_tabular,
    markdown_table,
    read_csv_table,
    write_table,
)
from epamnet.layout import RELEASED
from epamnet.provenance import PROVENANCE_FILE, machine_label, read_provenance
from epamnet.report import paper

logger = logging.getLogger(__name__)

STREAMS = ("pose", "rgb", "fusion")
#: Stream column of the tables.
ROW_LABEL = {**paper.STREAM_LABEL, RELEASED: "EPAM-Net, released weights"}
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


def _read_mapping(path: Path, missing: str) -> dict[str, Any]:
    rerun = "rerun the evaluate stage"
    if not path.is_file():
        raise file_error(path, missing, "run the evaluate stage first")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise file_error(path, f"not valid JSON ({exc})", rerun) from None
    if not isinstance(data, dict):
        raise file_error(path, f"top level is {type(data).__name__}, expected a mapping", rerun)
    return data


def load_eval_metrics(path: str | Path) -> dict[str, Any]:
    """Read one evaluation ``metrics.json`` and the ``evaluation.json`` beside it; check
    the keys the report uses.

    Returns both files' keys in one dict (the numbers, then dataset, source, selection,
    num_classes, ...); accuracies stay fractions. Raises EpamnetError naming the file
    when either is absent, not JSON or not a mapping, when ``metrics.json`` lacks or
    garbles ``top1``, or when ``evaluation.json`` lacks or garbles ``source``.
    """
    path = Path(path)
    rerun = "rerun the evaluate stage"
    data = _read_mapping(path, "evaluation metrics not found")
    if "top1" not in data:
        raise file_error(path, "has no 'top1'", rerun)
    for key in ("top1", "top5", "mean_class_acc"):
        _fraction(path, data, key)
    facts_path = path.with_name(EVALUATION_FILE)
    facts = _read_mapping(facts_path, f"not found beside {path.name} (an evaluation written before it existed?)")
    if facts.get("source") not in ("synthetic", "real"):
        raise file_error(facts_path, f"source is {facts.get('source')!r}, expected 'synthetic' or 'real'", rerun)
    return {**data, **{k: v for k, v in facts.items() if k not in data}}


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
    selected_on_test: bool = False  # train.*.selection: test, the official protocol (optimistic)

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

    @property
    def label(self) -> str:
        """'<dataset> <protocol> <stream>' in the tables' words."""
        dataset, protocol = paper.DATASET_LABEL[self.dataset], paper.PROTOCOL_LABEL[self.protocol]
        return f"{dataset} {protocol} {ROW_LABEL[self.stream]}"


def table_runs(configured: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The paper's (dataset, protocol) rows plus any configured extra, in registry order."""
    wanted = set(paper.paper_runs()) | set(configured)
    order = [(d, p) for d, protos in PROTOCOLS.items() for p in protos]
    return [run for run in order if run in wanted]


def _percent(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return 100.0 * float(value)


#: The selection cell of a row selected on the test split.
TEST_SPLIT_LABEL = "test split (official protocol; optimistic)"
#: The tables' footnote when a row was selected on the test split.
TEST_SELECTION_FOOTNOTE = (
    "‡ Selected on the test split (train.*.selection: test in params.yaml; the official protocol): "
    "the epoch was chosen by its own test accuracy, so these test numbers are optimistic and not "
    "comparable to a validation-selected run."
)


def selection_label(selection: str | None, epoch: int | None) -> str:
    """How model.pt was chosen, in words: validation metric or last epoch, and the epoch."""
    at = "" if epoch is None else f" (epoch {epoch})"
    if selection == "last_epoch":
        return f"last epoch{at}"
    if selection in ("val_top1", "val_mean_class_acc"):
        return f"val {paper.METRIC_LABEL[selection[4:]]}{at}"
    if selection == "released_weights":
        return f"released weights{at}"
    if selects_on_test(selection) and str(selection)[5:] in paper.METRIC_LABEL:
        return f"{TEST_SPLIT_LABEL}, test {paper.METRIC_LABEL[str(selection)[5:]]}{at}"
    return f"{selection or 'unknown'}{at}"


def _reported(dataset: str, protocol: str, stream: str) -> paper.ReportedAccuracy | None:
    """The paper's number for a row: the paper reports the fused model only (ours and the released one)."""
    return paper.reported_accuracy(dataset, protocol) if stream in ("fusion", RELEASED) else None


def result_row(
    dataset: str,
    protocol: str,
    stream: str,
    metrics: Mapping[str, Any] | None,
    provenance: Mapping[str, Any] | None = None,
) -> ResultRow:
    """The table row of one run from its evaluation metrics (None: not run) and provenance."""
    metric = paper.REPORTED_METRIC[dataset]
    reported = _reported(dataset, protocol, stream)
    theirs = reported.value if reported is not None else None
    if metrics is None:
        return ResultRow(
            dataset, protocol, stream, metric, ours=None, paper=theirs, difference=None, data=NOT_RUN, selection="",
            selected_epoch=None, top1=None, top5=None, mean_class_acc=None, test_clips=None,
        )  # fmt: skip
    ours = _percent(metrics.get(metric))
    data = str(metrics["source"])
    diff = None
    if data == "real" and ours is not None and theirs is not None:
        diff = ours - theirs
    epoch = metrics.get("selected_epoch")
    clips = metrics.get("test_clips", metrics.get("num_samples"))
    return ResultRow(
        dataset=dataset,
        protocol=protocol,
        stream=stream,
        metric=metric,
        ours=ours,
        paper=theirs,
        difference=diff,
        data=data,
        selection=selection_label(metrics.get("selection"), epoch),
        selected_epoch=None if epoch is None else int(epoch),
        top1=_percent(metrics.get("top1")),
        top5=_percent(metrics.get("top5")),
        mean_class_acc=_percent(metrics.get("mean_class_acc")),
        test_clips=None if clips is None else int(clips),
        provenance=provenance,
        selected_on_test=selects_on_test(metrics.get("selection")),
    )


def results_rows(
    runs: Sequence[tuple[str, str]],
    metrics: Mapping[tuple[str, str, str], Mapping[str, Any] | None],
    provenance: Mapping[tuple[str, str, str], Mapping[str, Any] | None] | None = None,
) -> list[ResultRow]:
    """Rows for every (dataset, protocol) of ``runs`` x stream; absent metrics -> 'not run'.
    A run whose released weights were evaluated (key stream :data:`RELEASED`) gets that row too.

    ``provenance``: each evaluation's provenance record, by the same keys (absent: none).
    """
    prov = provenance or {}
    return [
        result_row(d, p, s, metrics.get((d, p, s)), prov.get((d, p, s)))
        for d, p in runs
        for s in (*STREAMS, RELEASED)
        if s != RELEASED or metrics.get((d, p, s)) is not None
    ]


def _num(value: float | None, digits: int = 1, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _int(value: int | None) -> str:
    return "" if value is None else str(value)


RESULTS_CSV_COLUMNS = (
    "dataset", "protocol", "stream", "metric", "ours", "paper", "difference", "data", "synthetic",
    "selection", "selected_epoch", "top1", "top5", "mean_class_acc", "test_clips", "status", "paper_source",
    "machine",
)  # fmt: skip


def _paper_source(r: ResultRow) -> str:
    """Where the row's paper number comes from; '' where the paper reports none."""
    reported = _reported(r.dataset, r.protocol, r.stream)
    return reported.source if reported is not None else ""


def results_csv(rows: Sequence[ResultRow]) -> str:
    """CSV text: percentages with 2 decimals (paper: 1), empty cells where nothing exists."""
    cells = [
        [
            r.dataset, r.protocol, r.stream, r.metric, _num(r.ours, 2), _num(r.paper, 1), _num(r.difference, 2),
            r.data, "" if r.data == NOT_RUN else str(r.synthetic).lower(), r.selection, _int(r.selected_epoch),
            _num(r.top1, 2), _num(r.top5, 2), _num(r.mean_class_acc, 2), _int(r.test_clips), r.status,
            _paper_source(r), r.machine,
        ]
        for r in rows
    ]  # fmt: skip
    return csv_text(pd.DataFrame(cells, columns=RESULTS_CSV_COLUMNS))


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
        return f"{'; '.join(r.label for r in self.unrecorded)}: {NOT_RECORDED}."


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
    cells = [
        [
            paper.DATASET_LABEL[r.dataset], paper.PROTOCOL_LABEL[r.protocol], ROW_LABEL[r.stream],
            paper.METRIC_LABEL[r.metric], _ours_cell(r, " †", _md_mark(m, r)), _num(r.paper),
            _num(r.difference, 2, True), "**synthetic** †" if r.synthetic else r.data,
            f"{r.selection} ‡" if r.selected_on_test else r.selection,
        ]
        for r in rows
    ]  # fmt: skip
    columns = ["Dataset", "Protocol", "Stream", "Metric", "Ours", "Paper", "Difference", "Data", "Model selection"]
    lines = [
        "# EPAM-Net results: ours beside the paper's",
        "",
        "Accuracy in % on the test list, 1 clip per video: top-1, and mean class accuracy for Toyota",
        "Smarthome (as the paper reports it). Paper numbers exist for the fused model only.",
        "",
        markdown_table(pd.DataFrame(cells, columns=columns), "llllrrrll"),
        "",
        f"† {SYNTHETIC_NOTE}",
        "",
        "`not run`: the dataset or protocol is not in `datasets.run` of params.yaml, or its evaluation",
        "has not been produced; nothing is filled in for it. Difference = ours - paper (real data only).",
        "Model selection: the epoch whose weights were evaluated, chosen on the protocol's validation",
        "list where it has one (Toyota), else the last epoch; never on the test list unless marked ‡.",
        "\"Released weights\": the authors' released EPAM-Net checkpoint evaluated here on the same test",
        "list, not trained here.",
        "",
        *([TEST_SELECTION_FOOTNOTE, ""] if any(r.selected_on_test for r in rows) else []),
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


def _latex_table(tabular: str, caption: str, label: str, notes: Sequence[str] = ()) -> str:
    """A booktabs ``tabular`` in a ``table`` float, with ``notes`` (lines) under it."""
    lines = [
        "% Generated by `epamnet report`; needs \\usepackage{booktabs}.",
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{caption}}}",
        f"\\label{{{label}}}",
        tabular.rstrip("\n"),
        *notes,
        "\\end{table}",
    ]
    return "\n".join(lines) + "\n"


RESULTS_CAPTION = (
    "EPAM-Net accuracy (\\%, 1 clip): ours beside the paper's. Top-1; mean class accuracy "
    "for Toyota Smarthome. $^\\dagger$Synthetic data: not comparable to the paper."
)


def results_latex(rows: Sequence[ResultRow]) -> str:
    """The results table as a booktabs ``table`` environment, a rule between (dataset, protocol) groups."""
    m = machines(rows)
    cells = []
    for r in rows:
        n = m.number(r)
        mark = "" if n is None else f"\\textsuperscript{{[{n}]}}"
        ours = _ours_cell(r, "$^\\dagger$", mark) if r.data != NOT_RUN else "\\multicolumn{1}{r}{not run}"
        ours += "$^\\ddagger$" if r.selected_on_test else ""
        cells.append([
            latex_escape(paper.DATASET_LABEL[r.dataset]), latex_escape(paper.PROTOCOL_LABEL[r.protocol]),
            latex_escape(ROW_LABEL[r.stream]), ours, _num(r.paper), _num(r.difference, 2, True),
            "synthetic$^\\dagger$" if r.synthetic else latex_escape(r.data),
        ])  # fmt: skip
    runs = [(r.dataset, r.protocol) for r in rows]
    groups = [i for i in range(1, len(runs)) if runs[i] != runs[i - 1]]
    frame = pd.DataFrame(cells, columns=["Dataset", "Protocol", "Stream", "Ours", "Paper", "Diff.", "Data"])
    tabular = latex_tabular(frame, "lllrrrl", midrule_before=groups)
    notes = _provenance_latex(m)
    if any(r.selected_on_test for r in rows):
        note = latex_escape(TEST_SELECTION_FOOTNOTE[2:])
        notes = ["", "\\smallskip", f"{{\\footnotesize\\raggedright $^\\ddagger${note}\\par}}", *notes]
    return _latex_table(tabular, RESULTS_CAPTION, "tab:epamnet-results", notes)


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
    texts = {"md": results_markdown(rows), "csv": results_csv(rows), "tex": results_latex(rows)}
    paths = write_table(Path(out_dir) / "results", texts)
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


#: The columns of ``epamnet profile``'s efficiency.csv that the comparison reads.
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
    rerun = "rerun `epamnet profile`"
    frame = read_csv_table(
        path, absent="efficiency table not found", absent_fix="run `epamnet profile` first", fix=rerun
    )
    missing = [c for c in PROFILE_COLUMNS if c not in frame.columns]
    if missing:
        raise file_error(path, f"lacks columns {missing}", rerun)
    counts: dict[str, dict[str, Any]] = {}
    speeds: list[tuple[int, float, str]] = []
    for row in frame.to_dict("records"):
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
        raise file_error(path, "has no 'epam_net' row", rerun)
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
        )
        for e in paper.PAPER_EFFICIENCY
    ]


def efficiency_csv(rows: Sequence[EfficiencyRow]) -> str:
    """CSV text: every field of :class:`EfficiencyRow`; GFLOPs with 4 decimals, clips/s with 3."""
    records = [
        asdict(r) | {
            "params": _int(r.params), "gflops": _num(r.gflops, 4), "gflops_mmcv": _num(r.gflops_mmcv, 4),
            "clips_per_s": _num(r.clips_per_s, 3),
        }
        for r in rows
    ]  # fmt: skip
    return csv_text(pd.DataFrame(records, columns=list(EfficiencyRow.__dataclass_fields__)))


def _gflops(value: float | None) -> str:
    """GFLOPs with 3 significant digits at least (0.0614, 7.62, 107.9)."""
    if value is None:
        return ""
    return f"{value:.1f}" if value >= 100 else f"{value:.3g}" if value < 1 else f"{value:.2f}"


def _params_m(n: int | None) -> str:
    return "" if n is None else f"{n / 1e6:.3f}"


def _ratio_line(rows: Sequence[EfficiencyRow]) -> list[str]:
    """How many times our measured EPAM-Net GFLOPs the costliest paper method takes; [] without both."""
    ours = next((r for r in rows if r.origin == "measured" and r.method == "EPAM-Net"), None)
    published = [r for r in rows if r.origin == "paper" and r.gflops]
    worst = max(published, key=lambda r: r.gflops or 0.0, default=None)
    own = next((r for r in published if r.method == "EPAM-Net"), None)
    if ours is None or not ours.gflops or worst is None or own is None or not worst.gflops or not own.gflops:
        return []
    ratio_ours, ratio_paper = worst.gflops / ours.gflops, worst.gflops / own.gflops
    return [
        "",
        (
            f"{worst.method} / EPAM-Net: {ratio_ours:.1f}x the GFLOPs with our measured {ours.gflops:.2f} "
            f"({ratio_paper:.1f}x with the paper's {own.gflops})."
        ),
    ]


def efficiency_markdown(rows: Sequence[EfficiencyRow]) -> str:
    cells = [
        [r.method, r.config, r.origin, _params_m(r.params), _gflops(r.gflops), _gflops(r.gflops_mmcv),
         _num(r.clips_per_s, 2), r.note]
        for r in rows
    ]  # fmt: skip
    columns = ["Method", "Configuration", "Origin", "Params (M)", "GFLOPs", "GFLOPs mmcv-style", "Clips/s", "Note"]
    lines = [
        "# Efficiency: parameters, GFLOPs and speed",
        "",
        "GFLOPs per clip as multiply-adds of convolutions and linear layers / 1e9 (the convention of",
        "the paper's Table 1); 'mmcv-style' adds BatchNorm, ReLU and pooling as mmcv counts them.",
        "measured: `epamnet profile` (results/tables/efficiency.csv); counted: the configuration",
        "this pipeline trained (params.yaml `model`); paper: Table 1 of the paper (GFLOPs only).",
        "Clips/s: the median of timed forwards on the machine that ran `epamnet profile`;",
        "results/tables/efficiency.md states its threads, repeats and how busy the machine was.",
        "",
        markdown_table(pd.DataFrame(cells, columns=columns), "lllrrrrl"),
        *_ratio_line(rows),
        "",
        "Empty cells: not reported in the paper's material, or not measured; nothing is estimated.",
    ]
    return "\n".join(lines) + "\n"


def efficiency_latex(rows: Sequence[EfficiencyRow]) -> str:
    cells = [
        [latex_escape(r.method), latex_escape(r.config), r.origin, _params_m(r.params), _gflops(r.gflops),
         _num(r.clips_per_s, 2)]
        for r in rows
    ]  # fmt: skip
    frame = pd.DataFrame(cells, columns=["Method", "Configuration", "Origin", "Params (M)", "GFLOPs", "Clips/s"])
    caption = "Parameters, GFLOPs (multiply-adds, 1 clip) and speed. Paper rows: Table 1 of the paper."
    return _latex_table(latex_tabular(frame, "lllrrr"), caption, "tab:epamnet-efficiency")


def write_efficiency_comparison(rows: Sequence[EfficiencyRow], out_dir: str | Path) -> list[Path]:
    """Write ``efficiency_comparison.{md,csv,tex}`` (``efficiency.*`` belong to ``profile``)."""
    texts = {"md": efficiency_markdown(rows), "csv": efficiency_csv(rows), "tex": efficiency_latex(rows)}
    return write_table(Path(out_dir) / "efficiency_comparison", texts)
