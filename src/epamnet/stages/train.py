"""``train``: one stream (``pose``, ``rgb``) or the fusion of one dataset and protocol.

- ``pose`` and ``rgb``: the X-ShiftNet classifiers, trained from scratch.
- ``fusion``: EPAM-Net initialised from both trained streams (strict loading, nothing
  frozen; the attention starts from its own initialisation), trained end to end with
  CE(rgb) + CE(pose).

Model selection uses the protocol's validation list where it has one (the metric the
paper reports for that dataset), otherwise the last epoch; never the test list, unless
``train.<stream>.selection: test`` opts into the official protocol (best test epoch;
optimistic, and every output says so).
Training works in ``models/.work/...`` (checkpoints survive an interrupted run, so a
re-run resumes; a re-run after the settings or the inputs changed starts over instead,
see :func:`~epamnet.stages.streams.run_info`) and publishes ``metrics.csv``,
``metrics.json``, ``provenance.json`` and then ``model.pt`` atomically when done.
With ``train.<stream>.nproc_per_node`` > 1 the command re-runs itself under torchrun.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from epamnet.config import Params, param_values
from epamnet.datasets.registry import REPORTED_METRIC
from epamnet.engine.checkpoint import latest_checkpoint
from epamnet.engine.distributed import distributed, resolve_device, world_size_from_env
from epamnet.engine.launch import maybe_relaunch
from epamnet.engine.trainer import seed_everything, stale_checkpoint, train
from epamnet.errors import EpamnetError, file_error
from epamnet.io.atomic import atomic_path
from epamnet.io.splitfile import read_split
from epamnet.layout import Layout
from epamnet.logs import set_context
from epamnet.models.convert import (
    load_official_checkpoint,
    read_checkpoint,
    require_released,
)
from epamnet.models.epam import build_model, load_stream_weights
from epamnet.provenance import stage_provenance, write_provenance
from epamnet.runtime import set_torch_threads
from epamnet.stages.checks import dataset_arg, protocol_arg
from epamnet.stages.keys import train_params
from epamnet.stages.streams import (
    build_dataset,
    run_info,
    stream_inputs,
    task_for,
)

logger = logging.getLogger(__name__)


def _publish(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _train_command(dataset: str, protocol: str, stream: str) -> str:
    return f"epamnet train --dataset {dataset} --protocol {protocol} --stream {stream}"


def _check_streams_trained(lay: Layout, dataset: str, protocol: str) -> None:
    """Fusion starts from both trained streams: a missing one is an error saying how to train it."""
    missing = [s for s in ("pose", "rgb") if not lay.model_file(dataset, protocol, s).is_file()]
    if not missing:
        return
    targets = " ".join(str(lay.model_file(dataset, protocol, s)) for s in missing)
    commands = " then ".join(f"`{_train_command(dataset, protocol, s)}`" for s in missing)
    raise file_error(
        lay.model_file(dataset, protocol, missing[0]),
        f"not found: fusion starts from the trained pose and rgb streams, and {' and '.join(missing)} "
        f"{'is' if len(missing) == 1 else 'are'} not trained yet",
        f"train {'it' if len(missing) == 1 else 'them'} first: `snakemake --cores all {targets}` (or {commands})",
    )


def _init_file(lay: Layout, stream: str, value: str) -> Path:
    """The checkpoint ``train.<stream>.init`` names (a bare file name: under the downloads folder)."""
    return require_released(lay.init_file(value), f"train.{stream}.init", lay.downloads)


def _load_init(model: Any, weights: Path, stream: str, num_classes: int) -> None:
    """Start from ``weights`` (ours, or a released checkpoint in either official format), strictly."""
    fix = (
        f"set train.{stream}.init to a {stream} checkpoint of the same model sizes (model.preset) "
        f"and class count ({num_classes}), or to null to train from scratch"
    )
    epoch = load_official_checkpoint(model, weights, fix=fix)
    logger.info("%s: starting from %s (its epoch %s)", stream, weights, epoch)


def _inputs(params: Params, ds: str, protocol: str, stream: str, init: dict[str, Path]) -> dict[str, Path]:
    """What the run read (provenance): with ``init`` set, that file instead of the fusion's streams."""
    files = stream_inputs(params, ds, protocol, stream)
    if "init" in init:
        files = {k: v for k, v in files.items() if not k.startswith("init/")} | {"init": init["init"]}
    return files


def run(
    params: Params, dataset: str, protocol: str, stream: str, *, resume: bool = True, argv: Sequence[str] | None = None
) -> dict[str, Any] | None:
    """Train and publish; return metrics.json's values (``None`` in a torchrun launcher).

    ``argv``: this command line, for re-running it under torchrun when
    ``train.<stream>.nproc_per_node`` > 1.
    """
    ds = dataset_arg(params, dataset)
    protocol = protocol_arg(params, ds, protocol)
    set_context(ds, protocol, stream)  # every log line of the stage (and of its torchrun workers)
    cfg = params.train_config(stream)
    if cfg.init is not None:  # before any torchrun launch: one line, not one per process
        _init_file(Layout.from_params(params), stream, cfg.init)
    elif stream == "fusion":
        _check_streams_trained(Layout.from_params(params), ds, protocol)
    if argv is not None and (rc := maybe_relaunch(argv, cfg.nproc_per_node)) is not None:
        if rc != 0:
            raise EpamnetError(f"train: the torchrun processes failed (exit status {rc}); see the log above")
        return None
    set_torch_threads(params.runtime.threads)
    lay = Layout.from_params(params)
    split = read_split(lay.split_file(ds, protocol))
    num_classes = split["num_classes"]
    has_val = bool(split.get("val"))
    metric = REPORTED_METRIC[ds]
    on_test = cfg.selection.startswith("test")  # params.yaml's "test" (test_top1 here): the official protocol
    cfg = cfg.replace(selection=f"{'test' if on_test else 'val'}_{metric}")

    seed_everything(cfg.seed)
    model = build_model(params.model_spec(), num_classes, stream)
    init: dict[str, Path] = {}
    if cfg.init is not None:  # loaded below, unless the run resumes from its own checkpoint
        init["init"] = _init_file(lay, stream, cfg.init)
    elif stream == "fusion":
        for part in ("pose", "rgb"):
            weights = init[part] = lay.model_file(ds, protocol, part)
            fix = f"delete it and train the {part} stream again: `{_train_command(ds, protocol, part)}`"
            load_stream_weights(model, read_checkpoint(weights, fix), part, weights)
            logger.info("fusion: %s stream initialised from %s", part, weights)

    train_set = build_dataset(params, ds, protocol, stream, "train", train_mode=True)
    val_set = build_dataset(params, ds, protocol, stream, "val", train_mode=False) if has_val else None
    test_set = build_dataset(params, ds, protocol, stream, "test", train_mode=False) if on_test else None
    logger.info(
        "train %s %s %s: %d train / %s val clips, %d classes, %d epochs; selection: %s",
        ds, protocol, stream, len(train_set), len(val_set) if val_set is not None else "no", num_classes,
        cfg.epochs, cfg.selection if has_val or on_test else "last epoch",
    )
    work = lay.train_work(ds, protocol, stream)
    info = run_info(params, split, num_classes, lay.annotations(ds), init)
    if resume:
        # Snakemake and DVC re-run this stage because a setting or an input changed: the
        # checkpoints of the earlier run are then another run's, and training starts over.
        why = stale_checkpoint(work, cfg, world_size_from_env(), info)
        if why is not None:
            logger.warning("not resuming: %s; starting over", why)
            resume = False
    if "init" in init and (not resume or latest_checkpoint(work / "checkpoints") is None):
        _load_init(model, init["init"], stream, num_classes)
    # Hold the torchrun process group (if any) across train(), which then leaves it up,
    # so that the rank is still known here: rank 0 alone publishes the outputs.
    with distributed(cfg.device) as ctx:
        result = train(
            task_for(stream), model, train_set, val_set, cfg, work, resume=resume, num_classes=num_classes,
            run_info=info, test_set=test_set,
        )
        if not ctx.is_main:
            return result.metrics
        out = lay.train_dir(ds, protocol, stream)
        prov = stage_provenance(
            params_values=param_values(params, train_params(stream)),
            inputs=_inputs(params, ds, protocol, stream, init),
            device=str(resolve_device(cfg.device)),
            outputs=(str(lay.results), "dvc.lock"),
        )
        write_provenance(work, prov)
        # model.pt last: the file later stages read never appears without its metrics.
        for name in ("metrics.csv", "metrics.json", "provenance.json", "model.pt"):
            _publish(work / name, out / name)
        logger.info("published %s %s %s: %s (%d process(es))", ds, protocol, stream, out, ctx.world_size)
    return result.metrics
