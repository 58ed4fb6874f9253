"""The ``pose`` stage: 2D skeletons of every raw video.

With ``datasets.<name>.skeletons: provided`` the stage takes the skeletons the
dataset ships (the pre-extracted mmaction2 pickles for NTU, the generator's pickle
for the synthetic datasets, or a file that mmaction2's or pyskl's tools wrote),
checks every entry against the annotation format and its name against the dataset's
naming (entries named after the video file, ``<name>_rgb``, get the sample name) and
writes them as one annotation list in original-pixel coordinates, the input of
``clips`` and ``crop``.

With ``skeletons: mmpose`` the sharded ``pose-extract`` stage runs HRNet-W32 over the
raw videos (:mod:`epamnet.pose.extract`; settings under ``pose`` in params.yaml) and
``pose`` merges its shards into the same file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from epamnet.datasets.registry import get_dataset
from epamnet.errors import EpamnetError, file_error
from epamnet.io.skeleton import load_annotation_file, save_annotations

if TYPE_CHECKING:
    from epamnet.config import Pose

logger = logging.getLogger(__name__)


def provided_skeletons(dataset: str, raw_dir: Path, out_path: Path) -> int:
    """Copy the dataset's own skeletons into ``out_path``, validated; return the count."""
    src = Path(raw_dir) / get_dataset(dataset).skeletons_file
    if not src.exists():
        raise EpamnetError(
            f"{src}: provided skeletons not found; put the dataset's 2D skeleton pickle there "
            f"(or run `epamnet acquire --dataset {dataset}`)"
        )
    annotations, _split = load_annotation_file(src)  # validates every entry, rejects repeats
    if not annotations:
        raise EpamnetError(f"{src}: holds no annotations; re-download or regenerate it")
    annotations = sorted(sample_names(dataset, annotations, src), key=lambda a: a["frame_dir"])
    save_annotations(out_path, annotations)
    logger.info("pose: %d skeleton sequences from %s -> %s", len(annotations), src, out_path)
    return len(annotations)


def sample_names(dataset: str, annotations: list[dict[str, Any]], src: Path) -> list[dict[str, Any]]:
    """The entries with checked sample names: a bad name fails here, naming the file and the entry.

    Names written after the video file (mmaction2's ``ntu_pose_extraction.py``:
    ``S001C001P001R001A001_rgb``) become the sample name (``S001C001P001R001A001``), reported
    once. A dataset whose videos are untrimmed (PKU-MMD) needs one entry per untrimmed video.
    """
    info = get_dataset(dataset)
    out: list[dict[str, Any]] = []
    renamed: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for i, ann in enumerate(annotations):
        given = str(ann["frame_dir"])
        name = info.sample_name(given)
        where = f"{src}[{i}] (frame_dir {given!r})"
        try:
            info.video_id(name)
        except EpamnetError as exc:
            raise file_error(
                where, str(exc),
                f"name the entry after its video in {info.video_folder}/ (<name>{info.video_suffix}), "
                f"or pass the {info.display_name} skeletons",
            ) from None
        if info.needs_clips and not info.is_untrimmed(name):
            raise file_error(
                where, f"{name!r} is an action clip, not an untrimmed {info.display_name} video",
                f"pass one skeleton per untrimmed video of {info.video_folder}/ (the clips stage cuts them)",
            )
        if name in seen:
            raise file_error(
                where, f"names the same sample as entry {seen[name]} ({name!r})", "keep one entry per video"
            )
        seen[name] = i
        if name != given:
            renamed.append((given, name))
            ann = {**ann, "frame_dir": name}
        out.append(ann)
    if renamed:
        logger.warning(
            "pose: %s: %d of %d entries are named after the video file (e.g. %r); using the sample names "
            "(e.g. %r)", src, len(renamed), len(annotations), *renamed[0],
        )
    return out


def raw_videos(dataset: str, raw_dir: Path) -> list[tuple[str, Path]]:
    """(frame_dir, path) of every raw video of ``dataset``, sorted by frame_dir."""
    info = get_dataset(dataset)
    suffix = info.video_suffix
    where = Path(raw_dir) / info.video_folder
    if not where.is_dir():
        raise EpamnetError(f"{where}: raw video folder not found; run `epamnet acquire --dataset {dataset}` first")
    videos = sorted((p.name[: -len(suffix)], p) for p in where.iterdir() if p.name.endswith(suffix))
    if not videos:
        raise EpamnetError(f"{where}: no *{suffix} videos; run `epamnet acquire --dataset {dataset}` or check the folder")
    return videos


def video_labels(dataset: str, names: list[str]) -> dict[str, int]:
    """Labels the names carry (NTU: A###, Toyota: the activity); PKU's untrimmed videos have none (-1)."""
    info = get_dataset(dataset)
    if info.needs_clips:
        return {}
    labels = {}
    for name in names:
        label = info.name_label(name)
        if label is not None:
            labels[name] = label
    return labels


def extract_skeletons(dataset: str, raw_dir: Path, pose: Pose, shard: int, out_pkl: Path) -> int:
    """Shard ``shard`` of ``pose.shards`` of the raw videos through HRNet into ``out_pkl``."""
    # Lazy: epamnet.pose imports torch, which the provided-skeletons path of ``pose`` never needs.
    from epamnet.pose.extract import extract_shard
    from epamnet.pose.settings import pose_settings

    videos = raw_videos(dataset, raw_dir)
    settings = pose_settings(pose)
    skeletons = None
    if settings.box_source == "skeleton":
        skeletons = Path(raw_dir) / get_dataset(dataset).skeletons_file
        if not skeletons.is_file():
            raise EpamnetError(
                f"{skeletons}: pose.box_source is 'skeleton' but {dataset} provides no skeletons to take boxes from; "
                "set pose.box_source to full_frame or detector"
            )
    labels = video_labels(dataset, [name for name, _ in videos])
    return extract_shard(videos, shard, pose.shards, out_pkl, settings, labels=labels, skeletons=skeletons)


def merge_extracted(shard_pkls: list[Path], out_path: Path) -> int:
    """Join the ``pose-extract`` shards into the skeletons file."""
    from epamnet.pose.extract import merge_shards

    merged = merge_shards(shard_pkls, out_path)
    if not merged:
        raise EpamnetError(f"{out_path.parent}: the pose shards hold no annotations; check the raw videos")
    return len(merged)
