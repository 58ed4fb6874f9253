"""The training loop: one process or ``torchrun`` DDP, resumable, deterministic on CPU.

``train(task, model, train_set, val_set, cfg, out_dir, test_set=None)`` runs ``cfg.epochs`` epochs of
SGD with a per-iteration cosine schedule and writes, from rank 0 only:

- ``out_dir/checkpoints/epoch_{k:03d}.pt`` and ``last.pt`` after every epoch (see
  :mod:`epamnet.engine.checkpoint`); the newest ``cfg.keep_checkpoints`` plus the
  selected epoch are kept;
- ``out_dir/metrics.csv``: one row per epoch (``epoch, lr, train_loss, train_top1,
  val_top1, val_mean_class_acc, test_top1, test_mean_class_acc, time``; the two ``val_``
  columns only with a validation set, the two ``test_`` ones only with ``test_set``; ``lr`` is the rate at the epoch's first iteration, ``time`` its wall seconds);
  for ``dvc plots`` with ``x: epoch``;
- ``out_dir/metrics.json``: flat values of the selected epoch plus ``selected_epoch``,
  ``selection`` (plus ``selection_note``, a sentence, when it is the test split) and run facts, for ``dvc metrics show`` / ``dvc exp show``;
- ``out_dir/model.pt``: the selected weights (a plain state dict, no ``module.``).

Model selection: best validation top-1 (or mean class accuracy, ``cfg.selection``) when
``val_set`` is given, the earliest epoch on ties; otherwise the last epoch. Never pass
a test split as ``val_set``. The official protocol (how the released "best" checkpoints
were chosen) is an explicit opt-in: ``cfg.selection`` ``test_top1``/``test_mean_class_acc``
with ``test_set``, evaluated after every epoch; a warning says so once per training, and
metrics.json carries :data:`~epamnet.config.train.TEST_SELECTION_NOTE`.

Determinism: every epoch reseeds torch/NumPy/Python from ``(seed, epoch, rank)``, the
sampler shuffles with ``seed + epoch``, and DataLoader workers are seeded from the same
derivation, so a run resumed after epoch k ends with the same weights and metrics as
one that never stopped (on CPU, bit for bit; the checkpoint also holds the RNG states).
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from epamnet.config.train import (
    RESUME_FREE_KEYS,
    RESUME_WARN_KEYS,
    TEST_SELECTION_NOTE,
    TrainConfig,
    selects_on_test,
)
from epamnet.engine import checkpoint as ckpt
from epamnet.engine.distributed import (
    DistContext,
    all_gather_objects,
    all_reduce_sum,
    barrier,
    broadcast_buffers,
    init_distributed,
    shutdown_distributed,
)
from epamnet.engine.evaluate import evaluate, write_csv, write_json
from epamnet.engine.metrics import MeanClassDefinition
from epamnet.engine.schedule import build_optimizer, build_scheduler
from epamnet.engine.tasks import Task
from epamnet.errors import EpamnetError, file_error
from epamnet.io.atomic import atomic_write
from epamnet.logs import eta_text, progress
from epamnet.models.convert import check_state_dict

logger = logging.getLogger(__name__)

CSV_COLUMNS = ("epoch", "lr", "train_loss", "train_top1", "val_top1", "val_mean_class_acc", "time")
# Written (before "time") only by a run with selection test_*, the official protocol.
TEST_COLUMNS = ("test_top1", "test_mean_class_acc")


@dataclass
class TrainResult:
    """What :func:`train` leaves behind (the files are the durable record)."""

    model: nn.Module  # the trained module (last-epoch weights), unwrapped
    history: list[dict[str, float]]  # one row per epoch, as in metrics.csv
    metrics: dict[str, Any]  # the content of metrics.json
    selected_epoch: int
    selection: str  # 'val_top1' | 'val_mean_class_acc' | 'last_epoch' | 'test_top1' | 'test_mean_class_acc'
    out_dir: Path
    resumed_from: int = 0  # epochs already done when this call started
    world_size: int = 1
    lr: float = field(default=0.0)  # the (world-size scaled) peak learning rate


# --- seeding -------------------------------------------------------------------------


def derive_seed(*parts: int) -> int:
    """A 32-bit seed from integers (seed, epoch, rank, ...), well mixed by NumPy's SeedSequence."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), NumPy's global RNG and Python's ``random``.

    Call it before building a model so that its initial weights are reproducible.
    """
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _worker_init(worker_id: int) -> None:
    """Seed NumPy and ``random`` in a DataLoader worker from its torch seed.

    The torch seed is ``base_seed + worker_id`` where ``base_seed`` comes from the
    loader's generator, itself seeded from (seed, epoch, rank): reproducible augmentations.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


@contextlib.contextmanager
def _deterministic(enabled: bool, device: torch.device) -> Iterator[None]:
    """Deterministic kernels for the duration of training; previous settings restored after.

    On the CPU, torch's deterministic mode also fills every new tensor with NaN
    (``torch.utils.deterministic.fill_uninitialized_memory``), a guard against kernels
    that read memory they never wrote. It changes no number of a kernel that writes its
    output before reading it, which every kernel of these models does (the default run
    gives the same weights with the fill and without), and it costs a write over every
    new tensor of every step, so it is off here; the deterministic kernel choice stays on.
    """
    prev_alg = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    prev_fill = torch.utils.deterministic.fill_uninitialized_memory
    prev_cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    try:
        if enabled:
            if device.type == "cpu":
                torch.use_deterministic_algorithms(True)
                torch.utils.deterministic.fill_uninitialized_memory = False
            else:
                # Full determinism on GPU also needs CUBLAS_WORKSPACE_CONFIG; the official
                # run used cudnn.deterministic only, so do the same.
                torch.backends.cudnn.deterministic = True
                torch.backends.cudnn.benchmark = False
        yield
    finally:
        torch.use_deterministic_algorithms(prev_alg, warn_only=prev_warn)
        torch.utils.deterministic.fill_uninitialized_memory = prev_fill
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = prev_cudnn


# --- bookkeeping ---------------------------------------------------------------------


def _select(history: list[dict[str, float]], selection: str) -> int:
    """Index into ``history`` of the selected epoch (best value, earliest on ties; or last)."""
    if selection == "last_epoch":
        return len(history) - 1
    best, best_i = -math.inf, len(history) - 1
    for i, row in enumerate(history):
        value = row[selection]
        if value > best:  # NaN never wins
            best, best_i = value, i
    return best_i


def _summary(history: list[dict[str, float]], selection: str, cfg: TrainConfig, world_size: int) -> dict[str, Any]:
    sel = history[_select(history, selection)]
    out: dict[str, Any] = {
        "selection": selection,
        "selected_epoch": int(sel["epoch"]),
        "epochs_done": int(history[-1]["epoch"]),
        "epochs": cfg.epochs,
    }
    if selects_on_test(selection):
        out["selection_note"] = TEST_SELECTION_NOTE
    out.update({k: v for k, v in sel.items() if k not in ("epoch", "time", "lr")})
    out.update(
        {
            "lr_peak": cfg.lr(world_size),
            "world_size": world_size,
            "global_batch_size": cfg.batch_size * world_size,
        }
    )
    return out


def _fmt(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def _write_metrics(out_dir: Path, history: list[dict[str, float]], summary: dict[str, Any]) -> None:
    columns = [c for c in (*CSV_COLUMNS[:-1], *TEST_COLUMNS, CSV_COLUMNS[-1]) if c in history[0]]
    write_csv(out_dir / "metrics.csv", columns, [[_fmt(row[c]) for c in columns] for row in history])
    write_json(out_dir / "metrics.json", summary)


def _plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _save_model(path: Path, state: dict[str, torch.Tensor]) -> None:
    with atomic_write(path) as fh:  # a file object: a full disk is an OSError (see checkpoint.py)
        torch.save(state, fh)


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _resume_mismatch(
    state: dict[str, Any], cfg: TrainConfig, world_size: int, run_info: dict[str, Any] | None, ckpt_dir: Path
) -> tuple[str, str] | None:
    """(problem, fix) when the checkpoint ``state`` is not from this run, else None.

    Compared: ``cfg`` (minus the resume-free keys; the warn keys only log), the process
    count, and the caller's ``run_info`` (model and data settings, input hashes), without
    which a re-run after such a change would resume (or, finished, just republish) the
    old run. Checkpoints written without ``run_info`` are not checked for it.
    """
    old, new = state["config"], cfg.as_dict()
    for key in sorted(new):
        if key in RESUME_FREE_KEYS or old.get(key) == new[key]:
            continue
        if key in RESUME_WARN_KEYS:
            logger.warning("resuming with train.%s=%r (checkpoint had %r); results may differ slightly", key, new[key], old.get(key))
            continue
        return (
            f"written with train.{key}={old.get(key)!r} but the config now says {new[key]!r}",
            f"restore that setting, or delete {ckpt_dir} to start over",
        )
    if int(state["world_size"]) != world_size:
        return (
            f"written by {state['world_size']} processes but {world_size} are running (the lr and batches would change)",
            f"resume with {state['world_size']} processes, or delete {ckpt_dir} to start over",
        )
    if state.get("run") is not None and run_info is not None:
        before, now = _flatten(state["run"]), _flatten(run_info)
        for key in sorted(set(before) | set(now)):
            if before.get(key) != now.get(key):
                return (
                    f"written with {key}={before.get(key)!r} but it is now {now.get(key)!r}",
                    f"restore it, or delete {ckpt_dir} to start over",
                )
    return None


def stale_checkpoint(
    out_dir: str | Path, cfg: TrainConfig, world_size: int, run_info: dict[str, Any] | None = None
) -> str | None:
    """Why the newest checkpoint in ``out_dir`` cannot be resumed by this run, or None.

    A pipeline stage re-runs *because* a setting or an input changed; its old
    checkpoints then belong to another run and the stage starts over (after saying so)
    instead of refusing, which is what :func:`train` itself does.
    """
    ckpt_dir = Path(out_dir) / "checkpoints"
    latest = ckpt.latest_checkpoint(ckpt_dir)
    if latest is None:
        return None
    mismatch = _resume_mismatch(ckpt.load_checkpoint(latest), cfg, world_size, run_info, ckpt_dir)
    return None if mismatch is None else mismatch[0]


def _clear_run(out_dir: Path) -> None:
    """Remove a previous run's checkpoints and metrics (``resume=False``)."""
    ckpt_dir = out_dir / "checkpoints"
    for _, p in ckpt.epoch_checkpoints(ckpt_dir):
        p.unlink(missing_ok=True)
    for p in (ckpt.last_path(ckpt_dir), out_dir / "metrics.csv", out_dir / "metrics.json", out_dir / "model.pt"):
        p.unlink(missing_ok=True)


# --- the loop ------------------------------------------------------------------------


def train(
    task: Task,
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset | None,
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = True,
    num_classes: int | None = None,
    mean_class_definition: MeanClassDefinition = "official",
    run_info: dict[str, Any] | None = None,
    test_set: Dataset | None = None,
) -> TrainResult:
    """Train ``model`` on ``train_set``; select on ``val_set`` (never the test split), or,
    with ``cfg.selection`` ``test_*`` only, on ``test_set`` (the official protocol).

    Runs as one process, or as one rank of a ``torchrun`` job when RANK/WORLD_SIZE are
    set (the process group is created and destroyed here unless the caller made one).
    With ``resume`` the newest checkpoint in ``out_dir/checkpoints`` is continued;
    without it, earlier checkpoints and metrics in ``out_dir`` are deleted first.
    ``run_info``: plain values (nested dicts allowed) that, besides ``cfg``, define the run
    (model and data settings, input hashes); stored in every checkpoint, and a resume
    with different values is refused like one with a different ``cfg``.
    """
    out_dir = Path(out_dir)
    ctx = init_distributed(cfg.device)
    try:
        with _deterministic(cfg.deterministic, ctx.device):
            return _train(
                task, model, train_set, val_set, cfg, out_dir, ctx, resume, num_classes, mean_class_definition, run_info,
                test_set,
            )
    finally:
        shutdown_distributed(ctx)


def _train(
    task: Task,
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset | None,
    cfg: TrainConfig,
    out_dir: Path,
    ctx: DistContext,
    resume: bool,
    num_classes: int | None,
    mean_class_definition: MeanClassDefinition,
    run_info: dict[str, Any] | None = None,
    test_set: Dataset | None = None,
) -> TrainResult:
    device = ctx.device
    ckpt_dir = out_dir / "checkpoints"
    n_train = len(train_set)  # type: ignore[arg-type]
    if n_train == 0:
        raise EpamnetError(f"{out_dir}: the training set is empty; check the split lists")
    if val_set is not None and len(val_set) == 0:  # type: ignore[arg-type]
        raise EpamnetError(f"{out_dir}: the validation set is empty; pass none to select the last epoch")
    on_test = selects_on_test(cfg.selection)
    if on_test and (test_set is None or len(test_set) == 0):  # type: ignore[arg-type]
        raise EpamnetError(f"{out_dir}: selection {cfg.selection} needs the test set; pass test_set or select on validation")
    if not on_test:
        test_set = None  # never evaluated, let alone selected on, unless asked for
    selection = cfg.selection if on_test or val_set is not None else "last_epoch"
    if on_test and ctx.is_main:
        logger.warning(
            "train.selection is test: the epoch is selected on the TEST split (%s, the official protocol); "
            "its test numbers are optimistic and not comparable to a validation-selected run",
            cfg.selection,
        )
    use_amp = cfg.amp and device.type == "cuda"
    if cfg.amp and not use_amp:
        logger.info("amp requested but training runs on %s: mixed precision is ignored", device)
    sync_bn = cfg.sync_bn if cfg.sync_bn is not None else (ctx.distributed and device.type == "cuda")
    if sync_bn and ctx.distributed and device.type != "cuda":
        raise EpamnetError("train.sync_bn: SyncBatchNorm needs GPUs; set it to false (or null) for CPU DDP")

    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            _clear_run(out_dir)
    barrier(ctx)

    # Model, optimiser, schedule.
    model = model.to(device)
    if sync_bn and ctx.distributed:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    sampler = DistributedSampler(
        train_set, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=cfg.seed, drop_last=False
    )
    loader_gen = torch.Generator()
    loader = DataLoader(
        train_set,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.num_workers,
        pin_memory=device.type == "cuda",
        worker_init_fn=_worker_init if cfg.num_workers else None,
        generator=loader_gen,
        drop_last=False,
    )
    iters = len(loader)
    lr = cfg.lr(ctx.world_size)
    optimizer = build_optimizer(model, lr, cfg.momentum, cfg.weight_decay)
    scheduler = build_scheduler(optimizer, iters * cfg.epochs, round(cfg.warmup_epochs * iters))
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    # Resume.
    history: list[dict[str, float]] = []
    start = 0
    latest = ckpt.latest_checkpoint(ckpt_dir) if resume else None
    if latest is not None:
        state = ckpt.load_checkpoint(latest)
        mismatch = _resume_mismatch(state, cfg, ctx.world_size, run_info, ckpt_dir)
        if mismatch is not None:
            raise file_error(latest, *mismatch)
        # Weights of another model (model settings or class count changed since): one line, no traceback.
        check_state_dict(
            model.state_dict(), state["model"], latest,
            f"the model settings or the class count changed since it was written: restore them, or delete {ckpt_dir} to start over",
        )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if use_amp and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        history = list(state["history"])
        start = int(state["epoch"])
        rngs = state.get("rng") or []
        if len(rngs) == ctx.world_size:
            ckpt.set_rng_state(rngs[ctx.rank])
        logger.info("resuming %s after epoch %d of %d", latest, start, cfg.epochs)
    else:
        seed_everything(derive_seed(cfg.seed, 0, ctx.rank))
    resumed_from = start

    net: nn.Module = model
    if ctx.distributed:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if ctx.is_main:
        logger.info(
            "training %d epochs x %d iterations on %s, %d process(es), batch %d per process, lr %.6g%s",
            cfg.epochs, iters, device, ctx.world_size, cfg.batch_size, lr, ", mixed precision" if use_amp else "",
        )

    params = [p for p in model.parameters() if p.requires_grad]
    run_start = time.perf_counter()  # elapsed and ETA count this call's epochs only (not those resumed)
    for epoch in range(start + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        seed_everything(derive_seed(cfg.seed, epoch, ctx.rank))
        loader_gen.manual_seed(derive_seed(cfg.seed, epoch, ctx.rank, 1))
        sampler.set_epoch(epoch)
        if hasattr(train_set, "set_epoch"):  # frame sampling and flips differ from epoch to epoch
            train_set.set_epoch(epoch)
        net.train()
        epoch_lr = optimizer.param_groups[0]["lr"]
        stats = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, count
        bar = progress(loader, f"epoch {epoch}/{cfg.epochs}", enabled=ctx.is_main, unit="batch")
        for batch in bar:
            with torch.autocast(device.type, enabled=use_amp):
                out = task.step(net, batch, device)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(out.loss).backward()
            if cfg.grad_clip is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            b = out.labels.shape[0]
            stats += torch.stack(
                [
                    out.loss.detach().double() * b,
                    (out.scores.argmax(dim=1) == out.labels).sum().double(),
                    torch.tensor(float(b), dtype=torch.float64, device=device),
                ]
            )
            if not bar.disable:
                bar.set_postfix(loss=f"{out.loss.item():.4f}")
        loss_sum, correct, count = all_reduce_sum(ctx, stats).tolist()
        row: dict[str, float] = {"epoch": epoch, "lr": epoch_lr, "train_loss": loss_sum / count, "train_top1": correct / count}
        if not math.isfinite(row["train_loss"]):
            raise EpamnetError(
                f"{out_dir}: training diverged in epoch {epoch} (loss {row['train_loss']}); lower train.base_lr or set train.grad_clip"
            )
        broadcast_buffers(ctx, model)  # every rank evaluates (and ends) with rank 0's BN statistics
        for split, eval_set in (("val", val_set), ("test", test_set)):
            if eval_set is None:
                continue
            res = evaluate(
                task, model, eval_set,
                batch_size=cfg.eval_batch_size or cfg.batch_size, device=device, num_classes=num_classes,
                num_workers=cfg.num_workers, ctx=ctx, mean_class_definition=mean_class_definition,
                amp=use_amp, desc=f"{split} {epoch}",
            )
            row[f"{split}_top1"] = res.top1
            row[f"{split}_mean_class_acc"] = res.mean_class_acc
        row["time"] = round(time.perf_counter() - t0, 3)
        history.append(row)
        selected = history[_select(history, selection)]["epoch"]
        rngs = all_gather_objects(ctx, ckpt.rng_state())
        if ctx.is_main:
            weights = _plain_state_dict(model)
            ckpt.save_checkpoint(
                {
                    "epoch": epoch,
                    "model": weights,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if use_amp else None,
                    "sampler_epoch": epoch,
                    "rng": rngs,
                    "history": history,
                    "best": {"epoch": int(selected), "selection": selection},
                    "config": cfg.as_dict(),
                    "world_size": ctx.world_size,
                    "run": run_info,
                },
                ckpt_dir,
            )
            if selected == epoch:
                _save_model(out_dir / "model.pt", weights)
            ckpt.prune_checkpoints(ckpt_dir, cfg.keep_checkpoints, keep=[int(selected)])
            _write_metrics(out_dir, history, _summary(history, selection, cfg, ctx.world_size))
            msg = f"epoch {epoch}/{cfg.epochs}: lr {epoch_lr:.4g}, train loss {row['train_loss']:.4f}, top-1 {row['train_top1']:.4f}"
            if val_set is not None:
                msg += f", val top-1 {row['val_top1']:.4f}, val mean class acc {row['val_mean_class_acc']:.4f}"
            if test_set is not None:
                msg += f", test top-1 {row['test_top1']:.4f}, test mean class acc {row['test_mean_class_acc']:.4f}"
            eta = eta_text(epoch - start, cfg.epochs - start, time.perf_counter() - run_start)
            logger.info("%s, %.1fs, %s (selected epoch %d)", msg, row["time"], eta, selected)
        barrier(ctx)

    summary = _summary(history, selection, cfg, ctx.world_size)
    if ctx.is_main and not (out_dir / "model.pt").is_file():
        # Finished run whose model.pt went missing: rebuild it from the kept checkpoint.
        sel_state = ckpt.load_checkpoint(ckpt.epoch_path(ckpt_dir, summary["selected_epoch"]))
        _save_model(out_dir / "model.pt", sel_state["model"])
    return TrainResult(
        model=model,
        history=history,
        metrics=summary,
        selected_epoch=summary["selected_epoch"],
        selection=selection,
        out_dir=out_dir,
        resumed_from=resumed_from,
        world_size=ctx.world_size,
        lr=lr,
    )
