"""Where every artifact lives, and the stage graph built from it.

One place computes the paths of docs/pipeline.md from ``params.yaml``. The CLI uses
it to find a stage's inputs and outputs, the Snakefile uses it in its input
functions, and :func:`stages` lists every stage of the pipeline (command, inputs,
outputs, parameter keys) for ``dvc.yaml`` (written by ``epamnet dvc-yaml``). The
Snakefile's rules are written by hand; a test checks that Snakemake's graph and DVC's
graph agree stage by stage, so the two orchestrators cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from epamnet.config import Params

#: Source modules a stage's command runs. They are inputs of the stage in both
#: orchestrators, so editing a stage's code re-runs it (Snakemake's code trigger does
#: not see imported modules).
STAGE_CODE: dict[str, tuple[str, ...]] = {
    "acquire": ("src/epamnet/prepare/acquire.py", "src/epamnet/prepare/synthetic"),
    "pose": ("src/epamnet/prepare/pose.py",),
    "pose_extract": ("src/epamnet/prepare/pose.py", "src/epamnet/pose"),
    "clips": ("src/epamnet/prepare/pku_clips.py",),
    "crop": ("src/epamnet/prepare/crop.py",),
    "crop_merge": ("src/epamnet/prepare/crop.py",),
    "splits": ("src/epamnet/prepare/splits.py",),
    "profile": ("src/epamnet/models",),
    "report": ("src/epamnet/report",),
    "train": ("src/epamnet/engine", "src/epamnet/models", "src/epamnet/data"),
    "evaluate": ("src/epamnet/engine", "src/epamnet/models", "src/epamnet/data"),
}

#: Files a training stage publishes, and those an evaluation writes.
TRAIN_FILES = ("model.pt", "metrics.json", "metrics.csv")
EVAL_FILES = ("metrics.json", "confusion.csv", "predictions.csv", "per_class.csv", "scores.npz")


@dataclass(frozen=True)
class Layout:
    """Paths of one pipeline instance (rooted at ``params.paths``)."""

    data: Path
    downloads: Path
    models: Path
    results: Path

    @classmethod
    def from_params(cls, params: Params) -> "Layout":
        p = params.paths
        return cls(Path(p.data), Path(p.downloads), Path(p.models), Path(p.results))

    # raw ------------------------------------------------------------------
    @property
    def tables(self) -> Path:
        return self.results / "tables"

    def raw(self, dataset: str) -> Path:
        return self.data / "raw" / dataset

    # interim --------------------------------------------------------------
    def interim(self, dataset: str) -> Path:
        return self.data / "interim" / dataset

    def skeletons(self, dataset: str) -> Path:
        """Skeletons of the raw videos (output of ``pose``)."""
        return self.interim(dataset) / "skeletons.pkl"

    def pose_shard(self, dataset: str, shard: int) -> Path:
        """One shard of mmpose extraction (output of ``pose-extract``)."""
        return self.interim(dataset) / "pose" / f"shard-{shard:03d}.pkl"

    def clips(self, dataset: str) -> Path:
        """PKU-MMD action clips: ``videos/`` and ``skeletons.pkl`` (output of ``clips``)."""
        return self.interim(dataset) / "clips"

    def crop_source(self, dataset: str) -> tuple[Path, Path]:
        """(skeletons, folder holding the videos) that ``crop`` reads."""
        if dataset == "pku":
            return self.clips(dataset) / "skeletons.pkl", self.clips(dataset)
        return self.skeletons(dataset), self.raw(dataset)

    def crop_inputs(self, dataset: str) -> tuple[Path, ...]:
        """What ``crop`` depends on: the clips folder (PKU), else skeletons and raw videos."""
        if dataset == "pku":
            return (self.clips(dataset),)
        return self.skeletons(dataset), self.raw(dataset)

    def crop_shard(self, dataset: str, shard: int) -> Path:
        return self.interim(dataset) / "crop" / f"shard-{shard:03d}.pkl"

    def crop_failures(self, dataset: str, shard: int) -> Path:
        """Samples a crop shard skipped (``prepare.on_sample_error: skip``); ``[]`` when none."""
        return self.interim(dataset) / "crop" / f"shard-{shard:03d}.failures.json"

    # prepared -------------------------------------------------------------
    def prepared(self, dataset: str) -> Path:
        return self.data / "prepared" / dataset

    def crop_videos(self, dataset: str, shard: int) -> Path:
        return self.prepared(dataset) / "videos" / f"shard-{shard:03d}"

    def annotations(self, dataset: str) -> Path:
        return self.prepared(dataset) / "annotations.pkl"

    def splits(self, dataset: str) -> Path:
        return self.prepared(dataset) / "splits"

    def prepared_videos(self, dataset: str, shards: int) -> tuple[Path, ...]:
        return tuple(self.crop_videos(dataset, i) for i in range(shards))

    # models and results ---------------------------------------------------------------
    def train_dir(self, dataset: str, protocol: str, stream: str) -> Path:
        """Published training outputs: model.pt, metrics.json, metrics.csv."""
        return self.models / dataset / protocol / stream

    def train_work(self, dataset: str, protocol: str, stream: str) -> Path:
        """Checkpoints of a run in progress (not a stage output, so a re-run resumes)."""
        return self.models / ".work" / dataset / protocol / stream

    def model_file(self, dataset: str, protocol: str, stream: str) -> Path:
        return self.train_dir(dataset, protocol, stream) / "model.pt"

    def train_metrics(self, dataset: str, protocol: str, stream: str) -> Path:
        return self.train_dir(dataset, protocol, stream) / "metrics.json"

    def eval_dir(self, dataset: str, protocol: str, stream: str) -> Path:
        """metrics.json, confusion.csv, predictions.csv, per_class.csv, scores.npz."""
        return self.results / "metrics" / dataset / protocol / stream


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


def command(rule: str, key: str, args: str) -> str:
    """The command line of one job: ``epamnet --log logs/<rule>/<key>.log <args>``."""
    return f"epamnet --log logs/{rule}/{key}.log {args}"


def dataset_params(params: Params, dataset: str) -> tuple[str, ...]:
    """Parameter keys that decide what ``acquire`` produces for ``dataset``."""
    keys = [f"datasets.{dataset}.source"]
    keys.append("synthetic" if params.datasets.entry(dataset).source == "synthetic" else "acquire")
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


def splits_params(params: Params, dataset: str) -> tuple[str, ...]:
    """Parameter keys that decide the split lists of ``dataset``."""
    keys = [f"datasets.{dataset}.protocols", f"datasets.{dataset}.source"]
    if params.datasets.entry(dataset).source == "synthetic":
        keys.append("synthetic.num_classes")
    return tuple(keys)


def train_params(stream: str) -> tuple[str, ...]:
    """Parameter keys a training (and evaluation) of ``stream`` reads."""
    return ("model", "data", "train.common", f"train.{stream}")


def stages(params: Params) -> list[Stage]:
    """Every stage of the pipeline for the datasets in ``params.datasets.run``."""
    lay = Layout.from_params(params)
    out: list[Stage] = []
    shards = range(params.prepare.shards)
    for ds in params.datasets.run:
        out.append(
            Stage(
                "acquire", ds, command("acquire", ds, f"acquire --dataset {ds}"),
                deps=STAGE_CODE["acquire"],
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
                        deps=STAGE_CODE["pose_extract"] + pose_extract_inputs(params, ds),
                        outs=(str(lay.pose_shard(ds, i)),),
                        params=("pose",),
                        vars={"dataset": ds, "shard": f"{i:03d}"},
                    )
                )
        out.append(
            Stage(
                "pose", ds, command("pose", ds, f"pose --dataset {ds}"),
                deps=STAGE_CODE["pose"] + pose_inputs(params, ds),
                outs=(str(lay.skeletons(ds)),),
                params=pose_params(params, ds),
                vars={"dataset": ds},
            )
        )
        if ds == "pku":
            out.append(
                Stage(
                    "clips", ds, command("clips", ds, f"clips --dataset {ds}"),
                    deps=STAGE_CODE["clips"] + (str(lay.raw(ds)), str(lay.skeletons(ds))),
                    outs=(str(lay.clips(ds)),),
                    params=(),
                    vars={"dataset": ds},
                )
            )
        crop_inputs = tuple(str(p) for p in lay.crop_inputs(ds))
        crop_params = ("prepare.crop", "prepare.on_sample_error", "prepare.shards")
        for i in shards:
            out.append(
                Stage(
                    "crop", f"{ds}-{i:03d}", command("crop", f"{ds}-{i:03d}", f"crop --dataset {ds} --shard {i:03d}"),
                    deps=STAGE_CODE["crop"] + crop_inputs,
                    outs=(str(lay.crop_shard(ds, i)), str(lay.crop_videos(ds, i)), str(lay.crop_failures(ds, i))),
                    params=crop_params,
                    vars={"dataset": ds, "shard": f"{i:03d}"},
                )
            )
        out.append(
            Stage(
                "crop_merge", ds, command("crop_merge", ds, f"crop-merge --dataset {ds}"),
                deps=STAGE_CODE["crop_merge"]
                + tuple(str(lay.crop_shard(ds, i)) for i in shards)
                + tuple(str(lay.crop_videos(ds, i)) for i in shards)
                + tuple(str(lay.crop_failures(ds, i)) for i in shards),
                outs=(str(lay.annotations(ds)),),
                params=("prepare.shards",),
                vars={"dataset": ds},
            )
        )
        split_deps = STAGE_CODE["splits"] + (str(lay.annotations(ds)),)
        if ds == "pku":
            split_deps += (str(lay.raw(ds)),)
        out.append(
            Stage(
                "splits", ds, command("splits", ds, f"splits --dataset {ds}"),
                deps=split_deps,
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
                inputs = prepared + (() if stream == "pose" else videos)
                if stream == "fusion":
                    inputs += tuple(str(lay.model_file(ds, protocol, s)) for s in ("pose", "rgb"))
                train_dir = lay.train_dir(ds, protocol, stream)
                args = f"--dataset {ds} --protocol {protocol} --stream {stream}"
                out.append(
                    Stage(
                        "train_fusion" if stream == "fusion" else "train_unimodal", key,
                        command("train_fusion" if stream == "fusion" else "train_unimodal", key, f"train {args}"),
                        deps=STAGE_CODE["train"] + inputs,
                        outs=(str(train_dir / "model.pt"),),
                        uncached=tuple(str(train_dir / f) for f in TRAIN_FILES[1:]),
                        params=train_params(stream),
                        vars={"dataset": ds, "protocol": protocol, "stream": stream},
                    )
                )
                out.append(
                    Stage(
                        "evaluate", key, command("evaluate", key, f"evaluate {args}"),
                        deps=STAGE_CODE["evaluate"] + inputs + (str(train_dir / "model.pt"), str(train_dir / "metrics.json")),
                        outs=(),
                        uncached=tuple(str(lay.eval_dir(ds, protocol, stream) / f) for f in EVAL_FILES),
                        params=train_params(stream),
                        vars={"dataset": ds, "protocol": protocol, "stream": stream},
                    )
                )
    out.append(
        Stage(
            "profile", "paper", command("profile", "paper", "profile"),
            deps=STAGE_CODE["profile"],
            outs=(),
            uncached=(str(lay.tables / "efficiency.md"), str(lay.tables / "efficiency.csv")),
            params=("profile",),
        )
    )
    from epamnet.report.stage import report_inputs, report_outputs

    out.append(
        Stage(
            "report", "all", command("report", "all", "report"),
            deps=STAGE_CODE["report"] + tuple(str(p) for p in report_inputs(params)),
            outs=(),
            uncached=tuple(str(p) for p in report_outputs(params)),
            params=("datasets", "model", "data"),
        )
    )
    return out
