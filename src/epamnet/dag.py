"""The stage graph: every job of the pipeline as both orchestrators must see it.

:func:`stages` lists each job's command, inputs (its code, computed from the imports by
:mod:`epamnet.codedeps`, and its data), outputs and parameter keys. ``dvc.yaml`` is
rendered from it (``epamnet dvc-yaml``); the Snakefile's rules are written by hand with
the same helpers, and a test checks that Snakemake's graph and DVC's graph agree stage
by stage, so the two orchestrators cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from epamnet.codedeps import stage_code
from epamnet.config import STREAMS, Params
from epamnet.datasets.registry import get_dataset
from epamnet.layout import EVAL_FILES, RELEASED, TRAIN_FILES, Layout
from epamnet.provenance import PROVENANCE_FILE
from epamnet.stages.keys import train_params


@dataclass(frozen=True)
class Stage:
    """One job of the pipeline, as both orchestrators must see it."""

    rule: str
    key: str  # the wildcard values joined by '-': DVC's foreach key
    cmd: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]
    params: tuple[str, ...]
    vars: dict[str, str] = field(default_factory=dict)
    uncached: tuple[str, ...] = ()  # further outputs kept in git, not in the DVC cache


#: Parameter keys of the stages whose keys do not depend on the dataset. ``runtime.portable_cpu``
#: decides the floating-point code paths of every stage that computes numbers;
#: ``runtime.threads`` matters where torch runs.
POSE_EXTRACT_PARAMS = ("pose", "runtime")
CROP_PARAMS = ("prepare.crop", "prepare.on_sample_error", "prepare.shards", "runtime.portable_cpu")
CLIPS_PARAMS = ("prepare.on_sample_error",)  # bad label rows: fail or skip
CROP_MERGE_PARAMS = ("prepare.shards",)
PROFILE_PARAMS = ("profile", "runtime")
REPORT_PARAMS = ("recipe", "datasets", "model", "data")  # recipe: the model preset


def report_outputs(params: Params) -> list[Path]:
    """What ``report`` writes: the six table files and the figures folder (every figure of
    :meth:`Layout.accuracy_figure`, :meth:`Layout.run_figure` and
    :meth:`Layout.attention_variants_figure` lies in it, and the folder is replaced as a whole)."""
    lay = Layout.from_params(params)
    return [*lay.report_tables(), lay.figures]


def runs(params: Params) -> list[tuple[str, str]]:
    """(dataset, protocol) pairs the pipeline trains and evaluates, in ``datasets.run`` order."""
    return [(d, p) for d in params.datasets.run for p in params.datasets.entry(d).protocols]


def train_inputs(params: Params, dataset: str, protocol: str, stream: str) -> tuple[str, ...]:
    """The checkpoints a training starts from: ``train.<stream>.init`` when set, else (fusion)
    the two trained streams; a changed file re-runs the training."""
    lay = Layout.from_params(params)
    init = params.train_config(stream).init
    if init is not None:
        return (str(lay.init_file(init)),)
    if stream == "fusion":
        return tuple(str(lay.model_file(dataset, protocol, s)) for s in ("pose", "rgb"))
    return ()


def released_runs(params: Params) -> list[tuple[str, str]]:
    """(dataset, protocol) pairs with released EPAM-Net weights to evaluate (``datasets.<d>.released``)."""
    return [(d, p) for d, p in runs(params) if p in params.datasets.entry(d).released]


def released_file(params: Params, dataset: str, protocol: str) -> str:
    """The released checkpoint of one protocol (a bare file name: under the downloads folder)."""
    return str(Layout.from_params(params).init_file(params.datasets.entry(dataset).released[protocol]))


def released_params(dataset: str) -> tuple[str, ...]:
    """Parameter keys of ``evaluate-released``: the fused model's, and the released files."""
    return (*train_params("fusion"), f"datasets.{dataset}.released")


def report_inputs(params: Params) -> list[Path]:
    """The files ``report`` reads (its code comes from its imports: :mod:`epamnet.codedeps`)."""
    lay = Layout.from_params(params)
    deps: list[Path] = [lay.efficiency_tables()[1]]
    for d, p in runs(params):
        for s in STREAMS:
            deps += [lay.train_dir(d, p, s) / "metrics.csv", lay.train_dir(d, p, s) / "metrics.json"]
            ev = lay.eval_dir(d, p, s)
            deps += [ev / "metrics.json", ev / PROVENANCE_FILE, ev / "evaluation.json"]
            deps += [ev / "confusion.csv", ev / "per_class.csv"]
        deps.append(lay.model_file(d, p, "fusion"))
    for d, p in released_runs(params):
        ev = lay.released_eval_dir(d, p)
        deps += [ev / "metrics.json", ev / PROVENANCE_FILE, ev / "evaluation.json"]
    for d in params.datasets.run:  # test clips of the attention figure
        deps += [lay.annotations(d), lay.splits(d), *lay.prepared_videos(d, params.prepare.shards)]
    return deps


def command(rule: str, key: str, args: str) -> str:
    """The command line of one job: ``epamnet --log logs/<rule>/<key>.log <args>``."""
    return f"epamnet --log logs/{rule}/{key}.log {args}"


def dataset_params(params: Params, dataset: str) -> tuple[str, ...]:
    """Parameter keys that decide what ``acquire`` produces for ``dataset``."""
    keys = [f"datasets.{dataset}.source"]
    if params.datasets.entry(dataset).source == "synthetic":
        keys += ["synthetic", "runtime.portable_cpu"]  # the generator's numpy math
    else:
        keys.append("acquire")
    return tuple(keys)


def pose_inputs(params: Params, dataset: str) -> tuple[str, ...]:
    """What ``pose`` reads: the raw folder, and with ``skeletons: mmpose`` the extraction shards."""
    lay = Layout.from_params(params)
    deps = [str(lay.raw(dataset))]
    if params.datasets.entry(dataset).skeletons == "mmpose":
        deps += [str(lay.pose_shard(dataset, i)) for i in range(params.pose.shards)]
    return tuple(deps)


def pose_params(params: Params, dataset: str) -> tuple[str, ...]:
    """Parameter keys of ``pose``: the skeleton source (and the shard count it merges)."""
    keys = [f"datasets.{dataset}.skeletons"]
    if params.datasets.entry(dataset).skeletons == "mmpose":
        keys.append("pose.shards")
    return tuple(keys)


def pose_extract_inputs(params: Params, dataset: str) -> tuple[str, ...]:
    """What ``pose-extract`` reads: the raw folder and the HRNet checkpoint (unless random_init)."""
    deps = [str(Layout.from_params(params).raw(dataset))]
    if not params.pose.random_init:
        deps.append(params.pose.checkpoint)
    return tuple(deps)


def splits_inputs(params: Params, dataset: str) -> tuple[str, ...]:
    """What ``splits`` reads besides the annotations: the raw folder, where its protocol files are (PKU-MMD)."""
    lay = Layout.from_params(params)
    return () if lay.protocol_files(dataset) is None else (str(lay.raw(dataset)),)


def splits_params(params: Params, dataset: str) -> tuple[str, ...]:
    """Parameter keys that decide the split lists of ``dataset``."""
    keys = [f"datasets.{dataset}.protocols", f"datasets.{dataset}.source"]
    if params.datasets.entry(dataset).source == "synthetic":
        keys.append("synthetic.num_classes")
    return tuple(keys)


def stages(params: Params) -> list[Stage]:
    """Every stage of the pipeline for the datasets in ``params.datasets.run``."""
    lay = Layout.from_params(params)
    out: list[Stage] = []
    shards = range(params.prepare.shards)
    for ds in params.datasets.run:
        out.append(
            Stage(
                "acquire", ds, command("acquire", ds, f"acquire --dataset {ds}"),
                deps=stage_code("acquire"),
                outs=(str(lay.raw(ds)),),
                params=dataset_params(params, ds),
                vars={"dataset": ds},
            )
        )
        if params.datasets.entry(ds).skeletons == "mmpose":
            for i in range(params.pose.shards):
                out.append(
                    Stage(
                        "pose_extract", f"{ds}-{i:03d}",
                        command("pose_extract", f"{ds}-{i:03d}", f"pose-extract --dataset {ds} --shard {i:03d}"),
                        deps=stage_code("pose_extract") + pose_extract_inputs(params, ds),
                        outs=(str(lay.pose_shard(ds, i)),),
                        params=POSE_EXTRACT_PARAMS,
                        vars={"dataset": ds, "shard": f"{i:03d}"},
                    )
                )
        out.append(
            Stage(
                "pose", ds, command("pose", ds, f"pose --dataset {ds}"),
                deps=stage_code("pose") + pose_inputs(params, ds),
                outs=(str(lay.skeletons(ds)),),
                params=pose_params(params, ds),
                vars={"dataset": ds},
            )
        )
        if get_dataset(ds).needs_clips:
            out.append(
                Stage(
                    "clips", ds, command("clips", ds, f"clips --dataset {ds}"),
                    deps=stage_code("clips") + (str(lay.raw(ds)), str(lay.skeletons(ds))),
                    outs=(str(lay.clips(ds)),),
                    params=CLIPS_PARAMS,
                    vars={"dataset": ds},
                )
            )
        crop_inputs = tuple(str(p) for p in lay.crop_inputs(ds))
        for i in shards:
            out.append(
                Stage(
                    "crop", f"{ds}-{i:03d}", command("crop", f"{ds}-{i:03d}", f"crop --dataset {ds} --shard {i:03d}"),
                    deps=stage_code("crop") + crop_inputs,
                    outs=(str(lay.crop_shard(ds, i)), str(lay.crop_videos(ds, i)), str(lay.crop_failures(ds, i))),
                    params=CROP_PARAMS,
                    vars={"dataset": ds, "shard": f"{i:03d}"},
                )
            )
        out.append(
            Stage(
                "crop_merge", ds, command("crop_merge", ds, f"crop-merge --dataset {ds}"),
                deps=stage_code("crop_merge")
                + tuple(str(lay.crop_shard(ds, i)) for i in shards)
                + tuple(str(lay.crop_videos(ds, i)) for i in shards)
                + tuple(str(lay.crop_failures(ds, i)) for i in shards),
                outs=(str(lay.annotations(ds)),),
                params=CROP_MERGE_PARAMS,
                vars={"dataset": ds},
            )
        )
        out.append(
            Stage(
                "splits", ds, command("splits", ds, f"splits --dataset {ds}"),
                deps=stage_code("splits") + (str(lay.annotations(ds)),) + splits_inputs(params, ds),
                outs=(str(lay.splits(ds)),),
                params=splits_params(params, ds),
                vars={"dataset": ds},
            )
        )
        prepared = (str(lay.annotations(ds)), str(lay.splits(ds)))
        videos = tuple(str(p) for p in lay.prepared_videos(ds, params.prepare.shards))
        for protocol in params.datasets.entry(ds).protocols:
            for stream in ("pose", "rgb", "fusion"):
                key = f"{ds}-{protocol}-{stream}"
                inputs = prepared + (() if stream == "pose" else videos) + train_inputs(params, ds, protocol, stream)
                train_dir = lay.train_dir(ds, protocol, stream)
                args = f"--dataset {ds} --protocol {protocol} --stream {stream}"
                rule = "train_fusion" if stream == "fusion" else "train_unimodal"
                out.append(
                    Stage(
                        rule, key, command(rule, key, f"train {args}"),
                        deps=stage_code(rule) + inputs,
                        outs=(str(train_dir / "model.pt"),),
                        uncached=tuple(str(train_dir / f) for f in TRAIN_FILES[1:]),
                        params=train_params(stream),
                        vars={"dataset": ds, "protocol": protocol, "stream": stream},
                    )
                )
                out.append(
                    Stage(
                        "evaluate", key, command("evaluate", key, f"evaluate {args}"),
                        deps=stage_code("evaluate") + inputs + (str(train_dir / "model.pt"), str(train_dir / "metrics.json")),
                        outs=(),
                        uncached=tuple(str(lay.eval_dir(ds, protocol, stream) / f) for f in EVAL_FILES),
                        params=train_params(stream),
                        vars={"dataset": ds, "protocol": protocol, "stream": stream},
                    )
                )
    for ds, protocol in released_runs(params):
        key = f"{ds}-{protocol}"
        videos = tuple(str(p) for p in lay.prepared_videos(ds, params.prepare.shards))
        out.append(
            Stage(
                "evaluate_released", key,
                command("evaluate_released", key, f"evaluate-released --dataset {ds} --protocol {protocol}"),
                deps=stage_code("evaluate_released") + (str(lay.annotations(ds)), str(lay.splits(ds))) + videos
                + (released_file(params, ds, protocol),),
                outs=(),
                uncached=tuple(str(lay.released_eval_dir(ds, protocol) / f) for f in EVAL_FILES),
                params=released_params(ds),
                vars={"dataset": ds, "protocol": protocol, "stream": RELEASED},
            )
        )
    out.append(
        Stage(
            "profile", "paper", command("profile", "paper", "profile"),
            deps=stage_code("profile"),
            outs=(),
            uncached=tuple(str(p) for p in lay.efficiency_tables()),
            params=PROFILE_PARAMS,
        )
    )
    out.append(
        Stage(
            "report", "all", command("report", "all", "report"),
            deps=stage_code("report") + tuple(str(p) for p in report_inputs(params)),
            outs=(),
            uncached=tuple(str(p) for p in report_outputs(params)),
            params=REPORT_PARAMS,
        )
    )
    return out
