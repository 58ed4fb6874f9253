"""``evaluate``: a trained stream (or the fusion) on its protocol's test list, 1 clip per video."""

from __future__ import annotations

import json
import logging
from typing import Any

from epamnet.config import Params, param_values
from epamnet.config.train import TEST_SELECTION_NOTE, selects_on_test
from epamnet.datasets.registry import REPORTED_METRIC
from epamnet.engine.distributed import resolve_device
from epamnet.engine.evaluate import evaluate, write_evaluation
from epamnet.io.splitfile import read_split
from epamnet.layout import Layout
from epamnet.logs import set_context
from epamnet.models.convert import load_state_strict, read_checkpoint
from epamnet.models.epam import build_model
from epamnet.provenance import stage_provenance, write_provenance
from epamnet.runtime import set_torch_threads
from epamnet.stages.checks import dataset_arg, protocol_arg
from epamnet.stages.keys import train_params
from epamnet.stages.streams import (
    build_dataset,
    stream_inputs,
    task_for,
)

logger = logging.getLogger(__name__)


def run(params: Params, dataset: str, protocol: str, stream: str) -> dict[str, Any]:
    """Write the evaluation files and ``provenance.json``; return the summary metrics."""
    ds = dataset_arg(params, dataset)
    protocol = protocol_arg(params, ds, protocol)
    set_context(ds, protocol, stream)
    set_torch_threads(params.runtime.threads)
    lay = Layout.from_params(params)
    split = read_split(lay.split_file(ds, protocol))
    num_classes = split["num_classes"]
    cfg = params.train_config(stream)
    model = build_model(params.model_spec(), num_classes, stream)
    weights = lay.model_file(ds, protocol, stream)
    load_state_strict(model, read_checkpoint(weights), weights)
    test_set = build_dataset(params, ds, protocol, stream, "test", train_mode=False)
    device = resolve_device(cfg.device)
    result = evaluate(
        task_for(stream), model.to(device), test_set,
        batch_size=cfg.eval_batch_size or cfg.batch_size, device=device, num_classes=num_classes,
        num_workers=cfg.num_workers, desc="test",
    )
    trained = json.loads(lay.train_metrics(ds, protocol, stream).read_text(encoding="utf-8"))
    extra = {
        "dataset": ds,
        "protocol": protocol,
        "stream": stream,
        "source": split.get("source", "real"),
        "reported_metric": REPORTED_METRIC[ds],
        "test_clips": len(test_set),
        "num_classes": num_classes,
        "selection": trained.get("selection"),
        "selected_epoch": trained.get("selected_epoch"),
    }
    if selects_on_test(extra["selection"]):  # the official protocol (train.*.selection: test): said in words
        extra["selection_note"] = TEST_SELECTION_NOTE
    out = lay.eval_dir(ds, protocol, stream)
    write_evaluation(
        result, out, sample_ids=[name for name, _ in split["test"]], class_names=split["classes"], extra=extra
    )
    inputs = {**stream_inputs(params, ds, protocol, stream), "model": weights}
    prov = stage_provenance(
        params_values=param_values(params, train_params(stream)), inputs=inputs, device=str(device),
        outputs=(str(lay.results), "dvc.lock"),
    )
    write_provenance(out, prov)
    summary = result.summary()
    logger.info("evaluate %s %s %s: %s", ds, protocol, stream, {k: round(v, 4) for k, v in summary.items() if isinstance(v, float)})
    return summary
