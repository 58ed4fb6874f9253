"""Where every artifact lives: the paths of docs/pipeline.md, computed from ``params.yaml``.

The stages use it to find their inputs and outputs, and :mod:`epamnet.dag` and the
Snakefile's rules to declare them. A path method called with a wildcard such as
``"{dataset}"`` or ``"{shard}"`` returns the pattern the rules match, so no rule spells a path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from epamnet.config import Params
from epamnet.datasets.registry import get_dataset
from epamnet.io.shards import failures_path, shard_name

#: Files a training stage publishes, and those an evaluation writes.
TRAIN_FILES = ("model.pt", "metrics.json", "metrics.csv", "provenance.json")
#: The per-run figures of the report: ``<kind>_<dataset>_<protocol>.png``.
RUN_FIGURES = ("curves", "confusion", "per_class", "attention")
#: The "stream" name of a released EPAM-Net checkpoint's evaluation (``datasets.<d>.released``).
RELEASED = "released"
EVAL_FILES = ("metrics.json", "evaluation.json", "confusion.csv", "predictions.csv", "per_class.csv", "scores.npz", "provenance.json")


@dataclass(frozen=True)
class Layout:
    """Paths of one pipeline instance (rooted at ``params.paths``)."""

    data: Path
    downloads: Path
    models: Path
    results: Path

    @classmethod
    def from_params(cls, params: Params) -> Layout:
        p = params.paths
        return cls(Path(p.data), Path(p.downloads), Path(p.models), Path(p.results))

    # results ----------------------------------------------------------------
    @property
    def tables(self) -> Path:
        return self.results / "tables"

    @property
    def figures(self) -> Path:
        """The report's figures (the folder is replaced as a whole)."""
        return self.results / "figures"

    def accuracy_figure(self) -> Path:
        """Accuracy against GFLOPs: the paper's points and ours per stream."""
        return self.figures / "accuracy_vs_gflops.png"

    def run_figure(self, kind: str, dataset: str, protocol: str) -> Path:
        """One run's figure; ``kind``: one of :data:`RUN_FIGURES`."""
        if kind not in RUN_FIGURES:
            raise ValueError(f"figure kind {kind!r} is not one of {RUN_FIGURES}")
        return self.figures / f"{kind}_{dataset}_{protocol}.png"

    def attention_variants_figure(self) -> Path:
        """The fused accuracy per ``model.attention`` variant (only with more than one variant)."""
        return self.figures / "attention_variants.png"

    def attention_variant_eval_dir(self, attention: str, dataset: str, protocol: str, stream: str) -> Path:
        """An earlier run's evaluation kept for the attention comparison: a copy of its
        ``results/metrics`` tree placed under ``results/variants/<attention>/metrics``."""
        return self.results / "variants" / attention / "metrics" / dataset / protocol / stream

    def efficiency_tables(self) -> tuple[Path, Path]:
        """``profile``'s tables: Markdown and CSV."""
        return self.tables / "efficiency.md", self.tables / "efficiency.csv"

    def report_tables(self) -> tuple[Path, ...]:
        """The report's tables: results and efficiency comparison, each as Markdown, CSV and LaTeX."""
        return tuple(self.tables / f"{stem}.{ext}" for stem in ("results", "efficiency_comparison")
                     for ext in ("md", "csv", "tex"))

    # raw ------------------------------------------------------------------

    def raw(self, dataset: str) -> Path:
        return self.data / "raw" / dataset

    def protocol_files(self, dataset: str) -> Path | None:
        """The dataset's own protocol files that ``splits`` reads (PKU-MMD's ``Split/``), if any."""
        folder = get_dataset(dataset).split_folder
        return None if folder is None else self.raw(dataset) / folder

    # interim --------------------------------------------------------------
    def interim(self, dataset: str) -> Path:
        return self.data / "interim" / dataset

    def skeletons(self, dataset: str) -> Path:
        """Skeletons of the raw videos (output of ``pose``)."""
        return self.interim(dataset) / "skeletons.pkl"

    def pose_shard(self, dataset: str, shard: int | str) -> Path:
        """One shard of mmpose extraction (output of ``pose-extract``)."""
        return self.interim(dataset) / "pose" / f"{shard_name(shard)}.pkl"

    def clips(self, dataset: str) -> Path:
        """Action clips of untrimmed videos (PKU-MMD): ``videos/``, ``skeletons.pkl`` (output of ``clips``)."""
        return self.interim(dataset) / "clips"

    def clip_video(self, dataset: str, clip: str) -> Path:
        """One action clip's video (written by ``clips``)."""
        return self.clips(dataset) / "videos" / f"{clip}.mp4"

    def crop_source(self, dataset: str) -> tuple[Path, Path]:
        """(skeletons, folder holding the videos) that ``crop`` reads: the clips (PKU-MMD), else raw."""
        if get_dataset(dataset).needs_clips:
            return self.clips(dataset) / "skeletons.pkl", self.clips(dataset)
        return self.skeletons(dataset), self.raw(dataset)

    def crop_inputs(self, dataset: str) -> tuple[Path, ...]:
        """What ``crop`` depends on: the clips folder (PKU-MMD), else skeletons and raw videos."""
        if get_dataset(dataset).needs_clips:
            return (self.clips(dataset),)
        return self.skeletons(dataset), self.raw(dataset)

    def crop_shard(self, dataset: str, shard: int | str) -> Path:
        return self.interim(dataset) / "crop" / f"{shard_name(shard)}.pkl"

    def crop_failures(self, dataset: str, shard: int | str) -> Path:
        """Samples a crop shard skipped (``prepare.on_sample_error: skip``); ``[]`` when none."""
        return failures_path(self.crop_shard(dataset, shard))

    # prepared -------------------------------------------------------------
    def prepared(self, dataset: str) -> Path:
        return self.data / "prepared" / dataset

    def crop_videos(self, dataset: str, shard: int | str) -> Path:
        return self.prepared(dataset) / "videos" / shard_name(shard)

    def annotations(self, dataset: str) -> Path:
        return self.prepared(dataset) / "annotations.pkl"

    def splits(self, dataset: str) -> Path:
        return self.prepared(dataset) / "splits"

    def split_file(self, dataset: str, protocol: str) -> Path:
        """One protocol's split (``classes`` and the train/val/test sample names)."""
        return self.splits(dataset) / f"{protocol}.json"

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

    def init_file(self, value: str) -> Path:
        """A checkpoint named in ``params.yaml`` (``train.<stream>.init``, ``datasets.<d>.released``):
        a bare file name lies in the downloads folder, like the licence-gated archives; any
        other path is taken as written (a relative one from the repository root)."""
        path = Path(value)
        return self.downloads / path if len(path.parts) == 1 else path

    def eval_dir(self, dataset: str, protocol: str, stream: str) -> Path:
        """metrics.json (numbers only), evaluation.json (what they are about), confusion.csv,
        predictions.csv, per_class.csv, scores.npz."""
        return self.results / "metrics" / dataset / protocol / stream

    def released_eval_dir(self, dataset: str, protocol: str) -> Path:
        """The evaluation of the released EPAM-Net weights of a protocol (same files as :meth:`eval_dir`)."""
        return self.eval_dir(dataset, protocol, RELEASED)
