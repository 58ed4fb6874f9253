"""Evaluation: one clip per sample, each sample counted exactly once, also under DDP.

Under ``torchrun`` each rank scores the indices ``rank, rank + W, ...`` of the dataset
(no ``DistributedSampler`` padding), then every rank gathers all ``(index, scores,
label)`` triples and puts them back in dataset order. The result is therefore the
same as a single-process evaluation of the same weights.

:func:`write_evaluation` writes a folder that DVC reads:

- ``metrics.json``: only the numbers compared across runs, ``top1``, ``top5``,
  ``mean_class_acc``, ``loss`` and ``num_samples``, so that ``dvc metrics show`` and
  ``dvc exp show`` stay narrow;
- ``evaluation.json``: what the numbers are about, ``mean_class_acc_definition``,
  ``num_classes`` and the caller's facts (dataset, protocol, stream, source, ...);
- ``confusion.csv``: long format ``actual,predicted,count`` over all class pairs;
- ``predictions.csv``: ``sample,actual,predicted`` one row per sample, the input of
  ``dvc plots`` with the ``confusion`` template (x=actual, y=predicted), which counts rows;
- ``per_class.csv``: ``class,name,count,correct,accuracy`` (accuracy empty without samples);
- ``scores.npz``: ``ids`` (str), ``labels`` (int64), ``scores`` (float32 N x C); loads
  with ``allow_pickle=False``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from epamnet.engine import metrics as M
from epamnet.engine.distributed import DistContext, all_gather_objects, current_context, shard_indices
from epamnet.engine.tasks import Task
from epamnet.io.atomic import atomic_path, write_text
from epamnet.logs import progress

logger = logging.getLogger(__name__)

#: The numbers DVC compares, and the facts beside them (see the module docstring).
METRICS_FILE = "metrics.json"
EVALUATION_FILE = "evaluation.json"


@dataclass
class EvalResult:
    """Scores and metrics of one evaluation, samples in dataset order."""

    scores: np.ndarray  # N x C float32
    labels: np.ndarray  # N int64
    loss: float  # mean per-sample loss
    num_classes: int
    mean_class_definition: M.MeanClassDefinition = "official"
    preds: np.ndarray = field(init=False)
    top1: float = field(init=False)
    top5: float = field(init=False)
    mean_class_acc: float = field(init=False)
    confusion: np.ndarray = field(init=False)
    per_class: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.preds = M.predictions(self.scores)
        self.top1 = M.topk_accuracy(self.scores, self.labels, 1)
        self.top5 = M.topk_accuracy(self.scores, self.labels, 5)
        self.confusion = M.confusion_matrix(self.labels, self.preds, self.num_classes)
        self.per_class = M.per_class_accuracy(self.confusion)
        self.mean_class_acc = M.mean_class_accuracy(
            self.labels, self.preds, self.num_classes, self.mean_class_definition
        )

    @property
    def num_samples(self) -> int:
        return int(self.labels.shape[0])

    def summary(self) -> dict[str, float | int]:
        """The numbers of metrics.json (compared across runs and experiments)."""
        return {
            "top1": self.top1,
            "top5": self.top5,
            "mean_class_acc": self.mean_class_acc,
            "loss": self.loss,
            "num_samples": self.num_samples,
        }

    def details(self) -> dict[str, int | str]:
        """What the numbers mean, for evaluation.json (not compared, so kept out of metrics.json)."""
        return {"mean_class_acc_definition": self.mean_class_definition, "num_classes": self.num_classes}


def _worker_init(worker_id: int) -> None:
    # Evaluation is deterministic by design; seed anyway so random transforms (if a
    # dataset has any in test mode) repeat across runs.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    import random

    random.seed(seed)


@torch.no_grad()
def evaluate(
    task: Task,
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int,
    device: str | torch.device,
    num_classes: int | None = None,
    num_workers: int = 0,
    ctx: DistContext | None = None,
    mean_class_definition: M.MeanClassDefinition = "official",
    amp: bool = False,
    desc: str = "eval",
) -> EvalResult:
    """Score every sample of ``dataset`` once with ``model`` in eval mode.

    ``num_classes`` defaults to the width of the score matrix. Under an initialised
    process group every rank must call this; all ranks get the full result.
    """
    device = torch.device(device)
    ctx = ctx or current_context(device)
    if isinstance(model, nn.parallel.DistributedDataParallel):
        model = model.module  # each rank scores its own shard; no gradient sync needed
    n = len(dataset)  # type: ignore[arg-type]
    if n == 0:
        raise ValueError("the evaluation dataset is empty")
    mine = shard_indices(n, ctx.rank, ctx.world_size)
    loader = DataLoader(
        Subset(dataset, mine),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        worker_init_fn=_worker_init if num_workers else None,
        generator=torch.Generator().manual_seed(0),
    )
    was_training = model.training
    model.eval()
    scores: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    loss_sum = 0.0
    try:
        for batch in progress(loader, desc, enabled=ctx.is_main, unit="batch"):
            with torch.autocast(device.type, enabled=amp and device.type == "cuda"):
                out = task.step(model, batch, device)
            scores.append(out.scores.float().cpu().numpy())
            labels.append(out.labels.cpu().numpy().astype(np.int64))
            loss_sum += float(out.loss) * len(out.labels)
    finally:
        model.train(was_training)
    width = scores[0].shape[1] if scores else 0
    local = (
        np.asarray(mine, dtype=np.int64),
        np.concatenate(scores) if scores else np.zeros((0, width), np.float32),
        np.concatenate(labels) if labels else np.zeros(0, np.int64),
        loss_sum,
    )
    parts = all_gather_objects(ctx, local)
    idx = np.concatenate([p[0] for p in parts])
    width = max(p[1].shape[1] for p in parts)
    all_scores = np.concatenate([p[1].reshape(-1, width) for p in parts]).astype(np.float32)
    all_labels = np.concatenate([p[2] for p in parts])
    if sorted(idx.tolist()) != list(range(n)):
        raise RuntimeError(f"evaluation gathered indices {sorted(idx.tolist())[:10]}... instead of 0..{n - 1}")
    order = np.argsort(idx, kind="stable")
    total_loss = sum(p[3] for p in parts)
    classes = num_classes if num_classes is not None else width
    if width != classes:
        raise ValueError(f"model gives {width} scores per sample but num_classes is {classes}")
    return EvalResult(
        scores=all_scores[order],
        labels=all_labels[order],
        loss=total_loss / n if n else math.nan,
        num_classes=classes,
        mean_class_definition=mean_class_definition,
    )


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def write_json(path: str | Path, values: dict[str, Any]) -> None:
    """Flat JSON (NaN -> null), atomically."""
    write_text(path, json.dumps({k: _json_value(v) for k, v in values.items()}, indent=2) + "\n")


def write_csv(path: str | Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A small CSV file, atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def write_evaluation(
    result: EvalResult,
    out_dir: str | Path,
    *,
    sample_ids: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write metrics.json, evaluation.json, confusion.csv, predictions.csv, per_class.csv and scores.npz.

    ``sample_ids`` (e.g. frame_dir names) default to the dataset indices; ``extra``
    adds keys to evaluation.json (dataset, protocol, checkpoint, ...), never to
    metrics.json, which holds only :meth:`EvalResult.summary`'s numbers.
    """
    out = Path(out_dir)
    n, c = result.num_samples, result.num_classes
    ids = [str(i) for i in (sample_ids if sample_ids is not None else range(n))]
    if len(ids) != n:
        raise ValueError(f"{len(ids)} sample ids for {n} samples")
    names = list(class_names) if class_names is not None else [str(i) for i in range(c)]
    if len(names) != c:
        raise ValueError(f"{len(names)} class names for {c} classes")

    write_json(out / METRICS_FILE, result.summary())
    write_json(out / EVALUATION_FILE, {**result.details(), **(extra or {})})
    write_csv(
        out / "confusion.csv",
        ["actual", "predicted", "count"],
        [[names[a], names[p], int(result.confusion[a, p])] for a in range(c) for p in range(c)],
    )
    write_csv(
        out / "predictions.csv",
        ["sample", "actual", "predicted"],
        [[ids[i], names[result.labels[i]], names[result.preds[i]]] for i in range(n)],
    )
    counts = result.confusion.sum(axis=1)
    write_csv(
        out / "per_class.csv",
        ["class", "name", "count", "correct", "accuracy"],
        [
            [k, names[k], int(counts[k]), int(result.confusion[k, k]), "" if counts[k] == 0 else f"{result.per_class[k]:.6f}"]
            for k in range(c)
        ],
    )
    with atomic_path(out / "scores.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, ids=np.asarray(ids, dtype=str), labels=result.labels, scores=result.scores)
    logger.info(
        "evaluation: %d samples, top-1 %.4f, top-5 %.4f, mean class acc %.4f -> %s",
        n, result.top1, result.top5, result.mean_class_acc, out,
    )
