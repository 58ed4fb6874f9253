"""``evaluate-released``: the released EPAM-Net weights of one protocol on its test list.

The file ``datasets.<dataset>.released.<protocol>`` names (a bare file name: under
``paths.downloads``) is loaded strictly into EPAM-Net of ``model``'s sizes (the released
weights need ``model.preset: paper``) in either official format, evaluated like a trained
fusion (1 clip per video, :mod:`epamnet.stages.evaluate`), and written to the layout's
evaluation folder of the "released" stream, which the report shows as its own row.
"""

from __future__ import annotations

import logging
from typing import Any

from epamnet.config import Params, param_values
from epamnet.datasets.registry import REPORTED_METRIC
from epamnet.engine.distributed import resolve_device
from epamnet.engine.evaluate import evaluate, write_evaluation
from epamnet.errors import EpamnetError
from epamnet.io.splitfile import read_split
from epamnet.layout import RELEASED, Layout
from epamnet.logs import set_context
from epamnet.models.convert import load_official_checkpoint, require_released
from epamnet.models.epam import build_model
from epamnet.provenance import stage_provenance, write_provenance
from epamnet.runtime import set_torch_threads
from epamnet.stages.checks import dataset_arg, protocol_arg
from epamnet.stages.keys import train_params
from epamnet.stages.streams import build_dataset, stream_inputs, task_for

logger = logging.getLogger(__name__)

#: evaluation.json's ``selection`` of a released checkpoint (the report's "released weights").
SELECTION = "released_weights"


def run(params: Params, dataset: str, protocol: str) -> dict[str, Any]:
    """Write the evaluation files and ``provenance.json``; return the summary metrics."""
    ds = dataset_arg(params, dataset)
    protocol = protocol_arg(params, ds, protocol)
    set_context(ds, protocol, RELEASED)
    set_torch_threads(params.runtime.threads)
    lay = Layout.from_params(params)
    setting = f"datasets.{ds}.released.{protocol}"
    value = params.datasets.entry(ds).released.get(protocol)
    if value is None:
        raise EpamnetError(f"params.yaml: {setting} is not set; name the released checkpoint of {ds} {protocol} there")
    weights = require_released(lay.init_file(value), setting, lay.downloads)
    split = read_split(lay.split_file(ds, protocol))
    num_classes = split["num_classes"]
    model = build_model(params.model_spec(), num_classes, "fusion")
    fix = (
        f"check that {setting} is EPAM-Net's {ds} {protocol} checkpoint ({num_classes} classes) "
        "and that model.preset is paper (the released sizes)"
    )
    epoch = load_official_checkpoint(model, weights, fix=fix)
    cfg = params.train_config("fusion")
    test_set = build_dataset(params, ds, protocol, "fusion", "test", train_mode=False)
    device = resolve_device(cfg.device)
    result = evaluate(
        task_for("fusion"), model.to(device), test_set,
        batch_size=cfg.eval_batch_size or cfg.batch_size, device=device, num_classes=num_classes,
        num_workers=cfg.num_workers, desc="test",
    )
    extra = {
        "dataset": ds,
        "protocol": protocol,
        "stream": RELEASED,
        "source": split.get("source", "real"),
        "reported_metric": REPORTED_METRIC[ds],
        "test_clips": len(test_set),
        "num_classes": num_classes,
        "selection": SELECTION,
        "selected_epoch": epoch,
        "checkpoint": str(weights),
    }
    out = lay.released_eval_dir(ds, protocol)
    write_evaluation(
        result, out, sample_ids=[name for name, _ in split["test"]], class_names=split["classes"], extra=extra
    )
    inputs = {
        **{k: v for k, v in stream_inputs(params, ds, protocol, "fusion").items() if not k.startswith("init/")},
        "model": weights,
    }
    prov = stage_provenance(
        params_values=param_values(params, (*train_params("fusion"), f"datasets.{ds}.released")),
        inputs=inputs, device=str(device), outputs=(str(lay.results), "dvc.lock"),
    )
    write_provenance(out, prov)
    summary = result.summary()
    logger.info("evaluate released %s %s: %s", ds, protocol, {k: round(v, 4) for k, v in summary.items() if isinstance(v, float)})
    return summary
