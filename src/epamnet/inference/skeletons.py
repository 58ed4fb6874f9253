"""Where a video's skeleton comes from: an entry of an annotation file, or mmpose run on its frames.

Either way the result is one mmaction2-format annotation (``keypoint`` M x T x 17 x 2 in
the pixels of its ``img_shape``, ``keypoint_score`` M x T x 17) with a description of
its source for the report.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from epamnet.datasets import DATASETS
from epamnet.datasets.registry import get_dataset
from epamnet.errors import EpamnetError, file_error
from epamnet.io.skeleton import load_annotations
from epamnet.pose.estimator import CHECKPOINT_URL
from epamnet.pose.extract import PoseSettings, extract_video, load_estimator
from epamnet.pose.person_boxes import make_box_source
from epamnet.prepare.global_box import valid_keypoints

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Skeleton:
    """One video's skeleton annotation and where it came from."""

    annotation: dict[str, Any]
    source: str  # 'mmpose HRNet-W32 (...)' or 'FILE (entry NAME)'


#: ``--force-skeletons``: how the refusal of an entry named after another video says to override it.
FORCE_HINT = "or pass --force-skeletons to use it anyway"


def _name_forms(name: str) -> set[str]:
    """``name`` and its sample name: a video file's stem may carry a suffix its entry lacks, or the
    other way round (NTU's ``<name>_rgb.avi``; mmaction2's ``ntu_pose_extraction.py`` keeps it)."""
    return {name} | {get_dataset(d).sample_name(name) for d in DATASETS}


def names_match(frame_dir: str, video: Path) -> bool:
    """Whether the entry ``frame_dir`` is named like ``video`` (its file stem), suffixes aside."""
    return bool(_name_forms(str(frame_dir)) & _name_forms(video.stem))


def read_skeleton(path: Path, video: Path, skeleton_id: str | None = None, *, force: bool = False) -> Skeleton:
    """The entry of ``video`` in an mmaction2-format file: ``skeleton_id``, the one named like it, or the only one.

    The entry must be named like the video (its file stem; NTU's ``_rgb`` suffix aside):
    keypoints of another video give a confident but meaningless answer. ``force`` uses a
    differently named entry anyway (with a warning).
    """
    anns = load_annotations(path)
    if not anns:
        raise file_error(path, "holds no skeleton annotations", "pass a file with the video's skeletons")
    by_name = {str(a["frame_dir"]): a for a in anns}
    if skeleton_id is not None:
        if skeleton_id not in by_name:
            first = ", ".join(sorted(by_name)[:3])
            raise file_error(path, f"has no entry {skeleton_id!r} (it has {len(anns)}, e.g. {first})",
                             "pass one of its frame_dir names to --skeleton-id")
        ann = by_name[skeleton_id]
        chosen = f"entry {skeleton_id!r} (--skeleton-id)"
    else:
        found = sorted((name != video.stem, name) for name in by_name if names_match(name, video))  # exact first
        if found:
            ann = by_name[found[0][1]]
            chosen = ""
        elif len(anns) == 1:
            ann = anns[0]
            chosen = f"its only entry, {str(ann['frame_dir'])!r},"
        else:
            raise file_error(
                path, f"holds {len(anns)} annotations and none is named {video.stem!r}",
                "pick the video's entry with --skeleton-id FRAME_DIR",
            )
    name = str(ann["frame_dir"])
    if not names_match(name, video):
        if not force:
            raise file_error(
                path,
                f"{chosen} is the skeleton of another video than {video.name} (names differ), and keypoints of "
                "another video give a confident but meaningless answer",
                f"pass the skeletons of {video.name} (an entry named {video.stem!r}), {FORCE_HINT}",
            )
        logger.warning("predict: --force-skeletons: using entry %r of %s for %s, which is named differently",
                       name, path, video.name)
    return Skeleton(dict(ann), f"{path} (entry {name})")


def check_pose_inputs(opts: PoseSettings) -> None:
    """Fail before any slow work when mmpose has nothing to run with."""
    get = f"HRNet-W32 COCO weights from the mmpose model zoo: {CHECKPOINT_URL}"
    if not opts.random_init:
        if opts.checkpoint is None:
            raise EpamnetError(
                f"predict: no pose model to find the skeletons; pass --pose-checkpoint FILE ({get}), "
                "or --skeletons FILE.pkl with the video's keypoints"
            )
        if not opts.checkpoint.is_file():
            raise file_error(
                opts.checkpoint, "HRNet-W32 checkpoint not found",
                f"pass --pose-checkpoint FILE (or set pose.checkpoint in params.yaml; {get}), "
                "or --skeletons FILE.pkl with the video's keypoints",
            )
    if (opts.det_config is None) != (opts.det_checkpoint is None):
        raise EpamnetError("predict: a detector needs both --det-config and --det-checkpoint; pass both or neither")
    if opts.batch_size < 1 or opts.max_persons < 1:
        raise EpamnetError("predict: --pose-batch-size and --max-persons must be at least 1")


def extract_skeleton(video: Path, opts: PoseSettings, device: str) -> Skeleton:
    """Run HRNet on every frame of ``video`` (person boxes: ``opts.box_source``)."""
    settings = dataclasses.replace(opts, device=device)
    boxes = make_box_source(
        settings.box_source, det_config=opts.det_config, det_checkpoint=opts.det_checkpoint,
        det_score_threshold=opts.det_score_threshold, device=device,
    )
    estimator = load_estimator(settings)  # mmpose is imported here, when a model is built
    if opts.random_init:
        logger.warning("predict: --pose-random-init: the HRNet has RANDOM weights, keypoints are meaningless (tests only)")
    ann = extract_video(estimator, video.stem, video, boxes, batch_size=opts.batch_size, max_persons=opts.max_persons)
    weights = "random weights (testing only)" if opts.random_init else str(opts.checkpoint)
    return Skeleton(ann, f"mmpose HRNet-W32 ({weights}), boxes: {settings.box_source.replace('_', ' ')}")


def check_skeleton(skeleton: Skeleton, video: Path, frames: int) -> None:
    """Refuse a skeleton without any person; warn when it covers fewer than the video's ``frames``."""
    ann = skeleton.annotation
    if not valid_keypoints(ann["keypoint"], ann["keypoint_score"]).any():
        raise file_error(
            video, f"no person found in any frame ({skeleton.source})",
            "check that the video shows a person, pass --det-config/--det-checkpoint for person boxes, "
            "or --skeletons with its keypoints",
        )
    if int(ann["total_frames"]) < frames:
        logger.warning("predict: the skeletons cover %d of the video's %d frames; using those",
                       int(ann["total_frames"]), frames)
