"""Report figures (matplotlib, PNG): accuracy vs GFLOPs, training curves, confusion matrices,
per-class accuracy and the comparison of attention variants.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot, so no
global figure state and no display backend) and saved atomically. The attention
figure lives in :mod:`epamnet.report.attention`.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Annotation, Text

from epamnet.config.train import selects_on_test
from epamnet.errors import file_error
from epamnet.io.atomic import atomic_path
from epamnet.io.tables import read_csv_table
from epamnet.report.paper import PAPER_EFFICIENCY, STREAM_LABEL, ReportedEfficiency

logger = logging.getLogger(__name__)

STREAM_COLOR = {"pose": "tab:green", "rgb": "tab:blue", "fusion": "tab:red"}
DPI = 110


def save_figure(fig: Figure, out: str | Path) -> Path:
    """Save ``fig`` as PNG at ``out`` atomically."""
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    logger.info("figure -> %s", out)
    return out


#: What a figure made from a run selected on the test split (train.*.selection: test) says.
TEST_SELECTED = "model selected on the test split (official protocol; optimistic)"


def test_selection_title(title: str, selections: Mapping[str, str | None]) -> str:
    """``title``, plus a line naming the streams whose ``selection`` was the test split."""
    streams = [STREAM_LABEL.get(s, s) for s, sel in selections.items() if selects_on_test(sel)]
    return f"{title}\n{TEST_SELECTED}: {', '.join(streams)}" if streams else title


# --------------------------------------------------------------------------------------
# Accuracy vs GFLOPs


@dataclass(frozen=True)
class AccuracyPoint:
    """One model on the accuracy / cost plane (accuracy in percent)."""

    label: str  # e.g. 'NTU-60 XSub'
    gflops: float
    accuracy: float
    stream: str  # 'pose' | 'rgb' | 'fusion'
    origin: str  # 'paper' | 'ours'
    synthetic: bool = False
    test_selected: bool = False  # train.*.selection: test: labelled and noted in the title


def spread(values: Sequence[float], gap: float) -> list[float]:
    """Positions near ``values`` (same order) at least ``gap`` apart: for label placement.

    Chains of labels that push each other apart stay centred on their values.
    """
    order = sorted(range(len(values)), key=lambda i: values[i])
    orig = [float(values[i]) for i in order]
    pos = list(orig)
    for _ in range(len(pos) + 1):
        for i in range(1, len(pos)):
            pos[i] = max(pos[i], pos[i - 1] + gap)
        start = 0
        for i in range(1, len(pos) + 1):  # re-centre each chain of touching labels
            if i == len(pos) or pos[i] - pos[i - 1] > gap + 1e-9:
                shift = sum(o - q for o, q in zip(orig[start:i], pos[start:i], strict=True)) / (i - start)
                pos[start:i] = [q + shift for q in pos[start:i]]
                start = i
        if all(pos[i] - pos[i - 1] >= gap - 1e-9 for i in range(1, len(pos))):
            break
    out = [0.0] * len(values)
    for rank, i in enumerate(order):
        out[i] = pos[rank]
    return out


def plot_accuracy_vs_gflops(
    points: Sequence[AccuracyPoint],
    out: str | Path,
    methods: Sequence[ReportedEfficiency] = PAPER_EFFICIENCY,
) -> Path:
    """Scatter of accuracy vs GFLOPs (log x): the paper's EPAM-Net, ours, and Table 1's methods.

    The other methods of Table 1 have GFLOPs but no accuracy in our sources, so they are
    drawn as labelled vertical lines at their cost rather than as invented points.
    """
    fig = Figure(figsize=(10, 6))
    ax = fig.add_subplot()
    others = [m for m in methods if not m.is_epamnet]
    xs = [m.gflops for m in methods] + [p.gflops for p in points]
    ys = [p.accuracy for p in points]
    ax.set_xscale("log")
    ax.set_xlim(min(xs, default=1.0) / 2.5, max(xs, default=100.0) * 3.0)
    lo_y, hi_y = (max(0.0, min(ys) - 8.0), min(100.0, max(ys) + 5.0) + 1.0) if ys else (0.0, 100.0)
    ax.set_ylim(lo_y, hi_y)

    label_x = spread([math.log10(m.gflops) for m in others], 0.12)
    for m, lx in zip(others, label_x, strict=True):
        ax.axvline(m.gflops, color="0.55", linestyle=":", linewidth=1.2, zorder=1)
        ax.annotate(
            f"{m.method} ({m.gflops:g})", xy=(m.gflops, 1.0), xycoords=ax.get_xaxis_transform(),
            xytext=(10**lx, 1.03), textcoords=ax.get_xaxis_transform(), rotation=60, fontsize=8, ha="left",
            va="bottom", color="0.25", arrowprops={"arrowstyle": "-", "color": "0.7", "lw": 0.6},
        )  # fmt: skip

    legend_done: set[str] = set()
    for p in points:
        if p.origin == "paper":
            key, marker, face, color = "EPAM-Net, paper (README)", "*", "gold", "black"
        else:
            key = f"ours: {STREAM_LABEL[p.stream]}" + (" (synthetic data)" if p.synthetic else "")
            marker = {"fusion": "o", "rgb": "s", "pose": "^"}[p.stream]
            color = STREAM_COLOR[p.stream]
            face = "none" if p.synthetic else color
        ax.scatter(
            [p.gflops], [p.accuracy], marker=marker, s=130 if marker == "*" else 55, facecolors=face,
            edgecolors=color, linewidths=1.4, zorder=3, label=None if key in legend_done else key,
        )  # fmt: skip
        legend_done.add(key)

    # Labels right of their points, then moved apart vertically where their boxes would overlap.
    connector = {"arrowstyle": "-", "color": "0.6", "lw": 0.5, "shrinkA": 0, "shrinkB": 3}
    labels = [
        ax.annotate(p.label + (" ‡" if p.test_selected else ""), xy=(p.gflops, p.accuracy), xytext=(p.gflops * 1.3, p.accuracy), fontsize=8, va="center",
                    color="0.15", arrowprops=connector)
        for p in points
    ]  # fmt: skip
    ax.plot([], [], color="0.55", linestyle=":", label="paper Table 1: GFLOPs only (accuracy not in our sources)")
    if not ys:
        ax.text(0.5, 0.5, "no accuracies yet", transform=ax.transAxes, ha="center", color="0.4")
    ax.set_xlabel("GFLOPs per clip (multiply-adds, log scale)")
    ax.set_ylabel("accuracy (%): top-1; Toyota: mean class acc.")
    title = "Accuracy vs computational cost (1 clip)"
    if any(p.test_selected for p in points):
        title += f"\n‡ {TEST_SELECTED}"
    ax.set_title(title, pad=70)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    separate_labels(fig, ax, labels)
    return save_figure(fig, out)


def text_box(text: Text, fig: Figure):
    """Display-space bounding box of ``text``'s own text (an annotation's arrow left out)."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    renderer = fig.canvas.get_renderer()
    if isinstance(text, Annotation):
        text.update_positions(renderer)  # places the text where its coordinates say (as drawing does)
    return Text.get_window_extent(text, renderer)


def separate_labels(fig: Figure, ax, labels: Sequence[Annotation], pad: float = 2.0) -> None:
    """Move annotation texts vertically so that no two boxes overlap (x and the points stay put).

    Labels whose boxes overlap horizontally form a column; each column's labels are
    spread apart by one label height (:func:`spread`, display pixels), then kept
    inside the axes. The figure has no automatic layout, so positions hold when saved.
    """
    if not labels:
        return
    boxes = [text_box(a, fig) for a in labels]
    order = sorted(range(len(labels)), key=lambda i: boxes[i].x0)
    columns: list[list[int]] = []
    right = -math.inf
    for i in order:
        if columns and boxes[i].x0 < right + pad:
            columns[-1].append(i)
            right = max(right, boxes[i].x1)
        else:
            columns.append([i])
            right = boxes[i].x1
    to_data = ax.transData.inverted()
    lo, hi = ax.bbox.y0, ax.bbox.y1
    for column in columns:
        height = max(boxes[i].height for i in column) + pad
        centres = spread([(boxes[i].y0 + boxes[i].y1) / 2 for i in column], height)
        shift = max(0.0, lo + height / 2 - min(centres)) - max(0.0, max(centres) - (hi - height / 2))
        for i, y in zip(column, centres, strict=True):
            a = labels[i]
            x_disp = ax.transData.transform(a.xyann)[0]
            a.xyann = (a.xyann[0], float(to_data.transform((x_disp, y + shift))[1]))


# --------------------------------------------------------------------------------------
# Training curves


def read_training_curves(path: str | Path) -> dict[str, np.ndarray]:
    """Columns of a training ``metrics.csv`` as float arrays (empty cells -> NaN).

    Needs ``epoch`` and ``train_loss``; raises EpamnetError naming the file otherwise.
    """
    path = Path(path)
    rerun = "rerun the train stage"
    frame = read_csv_table(path, absent="training curves not found", absent_fix="run the train stage first", fix=rerun)
    fields = list(frame.columns)
    for need in ("epoch", "train_loss"):
        if need not in fields:
            raise file_error(path, f"has no {need!r} column (columns: {fields})", rerun)
    if frame.empty:
        raise file_error(path, "has no epochs", rerun)
    cols: dict[str, list[float]] = {f: [] for f in fields}
    for i, row in enumerate(frame.itertuples(index=False, name=None), start=2):  # i: line in the file
        for f, text in zip(fields, row, strict=True):
            cell = text.strip()
            try:
                cols[f].append(float(cell) if cell else math.nan)
            except ValueError:
                raise file_error(path, f"line {i}: {f} is {cell!r}, not a number", rerun) from None
    return {f: np.asarray(v, dtype=float) for f, v in cols.items()}


#: Accuracy lines: (column, label, style). val top-1 is drawn above val mean class accuracy
#: with hollow markers, so that where the two are equal (balanced validation sets) both show.
ACCURACY_CURVES = (
    ("train_top1", "train top-1", {"color": "tab:blue", "linestyle": "-", "marker": "o", "markersize": 3, "zorder": 2}),
    ("val_top1", "val top-1", {"color": "tab:orange", "linestyle": "--", "linewidth": 1.6, "marker": "o", "markersize": 7,
                               "markerfacecolor": "none", "markeredgewidth": 1.4, "zorder": 4}),
    ("val_mean_class_acc", "val mean class acc.", {"color": "tab:green", "linestyle": ":", "linewidth": 2.2, "marker": "s",
                                                   "markersize": 3, "zorder": 3}),
)  # fmt: skip
COINCIDE_NOTE = "val top-1 = val mean class acc. at every epoch"


def plot_training_curves(
    curves: Mapping[str, Mapping[str, np.ndarray] | None],
    out: str | Path,
    title: str,
    selected_epochs: Mapping[str, int | None] | None = None,
) -> Path:
    """Loss (top row) and accuracies (bottom row) per epoch, one column per stream.

    ``curves[stream]`` is :func:`read_training_curves` output or None (drawn as
    'not run'); ``selected_epochs[stream]`` marks the epoch model.pt comes from.
    """
    streams = list(curves)
    fig = Figure(figsize=(4.2 * len(streams), 6.2), layout="constrained")
    axes = fig.subplots(2, len(streams), squeeze=False)
    for j, stream in enumerate(streams):
        top, bottom = axes[0, j], axes[1, j]
        top.set_title(STREAM_LABEL.get(stream, stream))
        c = curves[stream]
        if c is None:
            for ax in (top, bottom):
                ax.text(0.5, 0.5, "not run", transform=ax.transAxes, ha="center", va="center", color="0.4")
                ax.set_xticks([])
                ax.set_yticks([])
            continue
        epochs = c["epoch"]
        color = STREAM_COLOR.get(stream, "k")
        top.plot(epochs, c["train_loss"], marker="o", markersize=3, color=color, label="train loss")
        top.set_ylabel("loss")
        for key, label, style in ACCURACY_CURVES:
            if key in c and np.isfinite(c[key]).any():
                bottom.plot(epochs, 100 * c[key], label=label, **style)
        both = all(k in c for k in ("val_top1", "val_mean_class_acc")) and np.isfinite(c["val_top1"]).any()
        if both and np.allclose(c["val_top1"], c["val_mean_class_acc"], equal_nan=True):
            bottom.set_title(COINCIDE_NOTE, fontsize=9)  # said in words too: the two lines lie on each other
        bottom.set_ylabel("accuracy (%)")
        bottom.set_ylim(-2, 102)
        sel = (selected_epochs or {}).get(stream)
        for ax in (top, bottom):
            ax.set_xlabel("epoch")
            ax.grid(True, alpha=0.3)
            if sel is not None:
                ax.axvline(sel, color="0.5", linestyle="--", linewidth=1, label=f"selected epoch {sel}")
            ax.legend(fontsize=8, loc="best")
    fig.suptitle(title)
    return save_figure(fig, out)


# --------------------------------------------------------------------------------------
# Confusion matrices


def read_confusion(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """``confusion.csv`` (long format ``actual,predicted,count``) -> (C x C counts, class names).

    Class order is the order of first appearance (the evaluation writes class-index order).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise file_error(path, "confusion matrix not found", "run the evaluate stage first") from None
    reader = csv.DictReader(io.StringIO(text))
    if [f for f in ("actual", "predicted", "count") if f not in (reader.fieldnames or [])]:
        problem = f"columns are {reader.fieldnames}, expected actual,predicted,count"
        raise file_error(path, problem, "rerun the evaluate stage")
    names: list[str] = []
    index: dict[str, int] = {}
    triples: list[tuple[str, str, int]] = []
    for i, row in enumerate(reader, start=2):
        try:
            count = int(row["count"])
        except (TypeError, ValueError):
            problem = f"line {i}: count {row['count']!r} is not an integer"
            raise file_error(path, problem, "rerun the evaluate stage") from None
        if count < 0:
            raise file_error(path, f"line {i}: negative count {count}", "rerun the evaluate stage")
        for name in (row["actual"], row["predicted"]):
            if name not in index:
                index[name] = len(names)
                names.append(name)
        triples.append((row["actual"], row["predicted"], count))
    if not names:
        raise file_error(path, "is empty", "rerun the evaluate stage")
    matrix = np.zeros((len(names), len(names)), dtype=np.int64)
    for a, p, n in triples:
        matrix[index[a], index[p]] += n
    return matrix, names


def _short(name: str, width: int = 18) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def plot_confusions(
    matrices: Mapping[str, tuple[np.ndarray, Sequence[str]] | None],
    out: str | Path,
    title: str,
    captions: Mapping[str, str] | None = None,
) -> Path:
    """Row-normalised confusion matrices side by side, one per stream (None: 'not run').

    ``captions[stream]`` goes under the stream's name (default: top-1 from the matrix).
    Cells show the count where there are at most 15 classes; class names label the
    axes up to 40 classes (beyond that, indices).
    """
    streams = list(matrices)
    sizes = [len(m[1]) for m in matrices.values() if m is not None]
    side = 4.3 if max(sizes, default=0) <= 15 else 6.0
    fig = Figure(figsize=(side * len(streams) + 0.8, side + 1.2), layout="constrained")
    axes = fig.subplots(1, len(streams), squeeze=False)[0]
    image = None
    for ax, stream in zip(axes, streams, strict=True):
        item = matrices[stream]
        if item is None:
            ax.set_title(STREAM_LABEL.get(stream, stream))
            ax.text(0.5, 0.5, "not run", transform=ax.transAxes, ha="center", va="center", color="0.4")
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        counts, names = np.asarray(item[0]), list(item[1])
        rows = counts.sum(axis=1, keepdims=True)
        norm = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=float), where=rows > 0)
        image = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
        total = counts.sum()
        acc = 100.0 * np.trace(counts) / total if total else float("nan")
        caption = (captions or {}).get(stream) or f"top-1 {acc:.1f}% ({int(total)} clips)"
        ax.set_title(f"{STREAM_LABEL.get(stream, stream)}\n{caption}")
        k = len(names)
        ticks = np.arange(k)
        labels = [_short(n) for n in names] if k <= 40 else [str(i) for i in ticks]
        step = 1 if k <= 40 else max(1, k // 20)
        ax.set_xticks(ticks[::step], labels[::step], rotation=90, fontsize=7 if k > 15 else 9)
        ax.set_yticks(ticks[::step], labels[::step], fontsize=7 if k > 15 else 9)
        suffix = "" if k <= 40 else " (class index)"
        ax.set_xlabel("predicted" + suffix)
        ax.set_ylabel("actual" + suffix)
        if k <= 15:
            for a in range(k):
                for p in range(k):
                    if counts[a, p]:
                        ax.text(p, a, str(int(counts[a, p])), ha="center", va="center", fontsize=9,
                                color="white" if norm[a, p] > 0.6 else "black")  # fmt: skip
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.7, label="fraction of the actual class")
    fig.suptitle(title)
    return save_figure(fig, out)


# --------------------------------------------------------------------------------------
# Per-class accuracy


@dataclass(frozen=True)
class PerClass:
    """One evaluation's ``per_class.csv``: class names, test clips and accuracy (fraction) per class."""

    names: list[str]
    counts: np.ndarray
    accuracy: np.ndarray


def read_per_class(path: str | Path) -> PerClass:
    """``per_class.csv`` (``class,name,count,correct,accuracy``, one row per class, class order)."""
    path = Path(path)
    rerun = "rerun the evaluate stage"
    frame = read_csv_table(path, absent="per-class accuracy not found", absent_fix="run the evaluate stage first", fix=rerun)
    missing = [c for c in ("name", "count", "accuracy") if c not in frame.columns]
    if missing:
        raise file_error(path, f"lacks columns {missing} (columns: {list(frame.columns)})", rerun)
    if frame.empty:
        raise file_error(path, "has no classes", rerun)
    counts, accuracy = [], []
    for i, row in enumerate(frame.to_dict("records"), start=2):  # i: line in the file
        try:
            counts.append(int(row["count"]))
            accuracy.append(float(row["accuracy"]) if row["accuracy"].strip() else math.nan)
        except ValueError:
            problem = f"line {i}: count {row['count']!r} / accuracy {row['accuracy']!r} are not numbers"
            raise file_error(path, problem, rerun) from None
        if not (math.isnan(accuracy[-1]) or 0.0 <= accuracy[-1] <= 1.0):
            raise file_error(path, f"line {i}: accuracy {accuracy[-1]} is not a fraction in [0, 1]", rerun)
    return PerClass(list(frame["name"]), np.asarray(counts), np.asarray(accuracy, dtype=float))


def plot_per_class(per_stream: Mapping[str, PerClass | None], out: str | Path, title: str) -> Path:
    """Horizontal bars: test accuracy of every class (rows, class order), one bar per stream.

    ``per_stream[stream]`` is :func:`read_per_class` output or None (not run: no bars,
    named in the legend). The legend gives each stream's mean over the classes.
    """
    drawn = {s: pc for s, pc in per_stream.items() if pc is not None}
    names = next(iter(drawn.values())).names if drawn else []
    k, n = len(names), max(len(per_stream), 1)
    fig = Figure(figsize=(9.0, max(3.0, k * (0.16 * n + 0.12 if k <= 20 else 0.1 * n + 0.05) + 1.6)), layout="constrained")
    ax = fig.add_subplot()
    height = 0.8 / n
    for j, (stream, pc) in enumerate(per_stream.items()):
        label = STREAM_LABEL.get(stream, stream)
        if pc is None:
            ax.plot([], [], linestyle="none", label=f"{label}: not run")
            continue
        if pc.names != names:
            raise ValueError(f"{stream}: classes {pc.names} differ from {names}")
        ys = np.arange(k) + (j - (n - 1) / 2) * height
        mean = 100 * float(np.nanmean(pc.accuracy))
        bars = ax.barh(ys, 100 * pc.accuracy, height=height * 0.92, color=STREAM_COLOR.get(stream, "0.5"),
                       label=f"{label} (mean class acc. {mean:.1f}%)")  # fmt: skip
        if k <= 20:
            ax.bar_label(bars, fmt="%.0f", padding=2, fontsize=8, color="0.25")
    counts = next(iter(drawn.values())).counts if drawn else np.zeros(0)
    ax.set_yticks(np.arange(k), [f"{_short(name, 30)} ({int(c)})" for name, c in zip(names, counts, strict=True)],
                  fontsize=9 if k <= 60 else 7)  # fmt: skip
    ax.set_ylim(k - 0.5, -0.5)  # class 0 on top
    ax.set_xlim(0, 108)
    ax.set_xlabel("test accuracy of the class (%); (n): test clips of the class")
    ax.grid(True, axis="x", alpha=0.3)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=min(n, 3), fontsize=9)
    if not drawn:
        ax.text(0.5, 0.5, "not run", transform=ax.transAxes, ha="center", va="center", color="0.4")
    fig.suptitle(title)
    return save_figure(fig, out)


# --------------------------------------------------------------------------------------
# Attention variants


def plot_attention_variants(
    values: Mapping[str, Mapping[str, float]], out: str | Path, title: str, ylabel: str
) -> Path:
    """Grouped bars: the fused model's accuracy (%) per run (x), one bar per attention variant.

    ``values[variant][run label]``; a run a variant has no number for says 'not run' there.
    """
    variants = list(values)
    runs: list[str] = []
    for v in variants:
        runs += [r for r in values[v] if r not in runs]
    fig = Figure(figsize=(max(6.0, 1.3 * len(runs) * max(len(variants), 2) / 2 + 2.0), 4.8), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / max(len(variants), 1)
    colors = ["tab:red", "tab:purple", "tab:cyan", "tab:olive"]
    for j, v in enumerate(variants):
        xs = [i + (j - (len(variants) - 1) / 2) * width for i, r in enumerate(runs) if r in values[v]]
        ys = [values[v][r] for r in runs if r in values[v]]
        bars = ax.bar(xs, ys, width=width * 0.92, color=colors[j % len(colors)], label=v)
        ax.bar_label(bars, fmt="%.1f", padding=2, fontsize=9)
        for i, r in enumerate(runs):
            if r not in values[v]:
                x = i + (j - (len(variants) - 1) / 2) * width
                ax.text(x, 2, "not run", rotation=90, ha="center", va="bottom", fontsize=9, color="0.4")
    ax.set_xticks(np.arange(len(runs)), runs, rotation=20 if len(runs) > 4 else 0, ha="right" if len(runs) > 4 else "center",
                  fontsize=9)  # fmt: skip
    ax.set_ylim(0, 110)
    ax.set_ylabel(ylabel)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(title="model.attention", fontsize=9, title_fontsize=9, loc="upper right")
    fig.suptitle(title)
    return save_figure(fig, out)
