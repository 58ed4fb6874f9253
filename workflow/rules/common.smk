# Shared definitions: the typed view of params.yaml and the path layout.
# validate_params() is the typed validation every `epamnet` command runs at start-up; a bad
# params.yaml stops Snakemake with its one line (not a traceback or a page of schema).

import sys

from epamnet.codedeps import stage_code
from epamnet.config import param_values as values_of, validate_params
from epamnet.datasets.registry import get_dataset
from epamnet.errors import EpamnetError
from epamnet.dag import (
    CLIPS_PARAMS,
    CROP_MERGE_PARAMS,
    CROP_PARAMS,
    POSE_EXTRACT_PARAMS,
    PROFILE_PARAMS,
    REPORT_PARAMS,
    dataset_params,
    pose_extract_inputs,
    pose_inputs,
    pose_params,
    released_file,
    released_params,
    released_runs,
    report_inputs,
    report_outputs,
    runs,
    splits_inputs,
    splits_params,
    train_inputs,
    train_params,
)
from epamnet.layout import EVAL_FILES, TRAIN_FILES, Layout

try:
    PARAMS = validate_params(config, "params.yaml")
except EpamnetError as exc:
    sys.exit(f"error: {exc}")
LAYOUT = Layout.from_params(PARAMS)
DATASETS = list(PARAMS.datasets.run)
#: Datasets of long recordings that `clips` cuts into action clips first (PKU-MMD).
CLIP_DATASETS = [ds for ds in DATASETS if get_dataset(ds).needs_clips]
SHARDS = [f"{i:03d}" for i in range(PARAMS.prepare.shards)]
POSE_SHARDS = [f"{i:03d}" for i in range(PARAMS.pose.shards)]
STREAMS = ["pose", "rgb", "fusion"]
#: CPU threads of the jobs that run torch (set in code by each job: epamnet.runtime).
THREADS = PARAMS.runtime.threads
#: (dataset, protocol) pairs the pipeline trains and evaluates.
RUNS = runs(PARAMS)
#: Which ready job a free core takes first (Snakemake's `priority`; order only, never outputs).
#: Data preparation first, so that every dataset's trainings are ready early and the
#: scheduler can choose among them; then the longest jobs, the fused trainings, then the
#: stream trainings; the model profile and the short evaluations last, where they fill
#: the cores beside the last trainings instead of leaving one idle.
PRIORITY = {"data": 40, "train_fusion": 30, "train_unimodal": 20, "profile": 10, "evaluate": 0}
#: (dataset, protocol) pairs whose released EPAM-Net weights are evaluated (datasets.<d>.released).
RELEASED_RUNS = released_runs(PARAMS)


wildcard_constraints:
    dataset="|".join(DATASETS),
    shard=r"\d{3}",
    protocol="|".join(sorted({p for _, p in RUNS})),
    stream="|".join(STREAMS),


def param_values(keys):
    """Rule params: {dotted key: value}, so a changed value re-runs the rule.

    `keys` is a list of keys, or a function of the wildcards returning one; the keys
    are the ones the matching dvc.yaml stage lists under `params`.
    """

    def values(wildcards):
        names = keys(wildcards) if callable(keys) else keys
        return values_of(PARAMS, [k.format(**wildcards) for k in names])

    return values


def prepared_inputs(dataset, stream):
    """Prepared data a stream reads: annotations and splits; RGB also the cropped videos."""
    files = [LAYOUT.annotations(dataset), LAYOUT.splits(dataset)]
    if stream != "pose":
        files += LAYOUT.prepared_videos(dataset, PARAMS.prepare.shards)
    return [str(f) for f in files]


def start_inputs(dataset, protocol, stream):
    """The checkpoints a training starts from (train.<stream>.init, or the fusion's two streams);
    the evaluation of that training depends on them too."""
    return list(train_inputs(PARAMS, dataset, protocol, stream))
