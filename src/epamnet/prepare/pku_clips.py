"""The ``clips`` stage (PKU-MMD): cut untrimmed videos and their skeletons into action clips.

Each untrimmed video ``raw_dir/RGB_VIDEO/<id>.avi`` has a label file
``raw_dir/Train_Label_PKU_final/<id>.txt`` with one row ``label,start,end,confidence``
per action (1-based label, 0-based inclusive frames). After sorting the rows by start
frame, row ``k`` (1-based) becomes the clip ``<id>-A{label:02d}-N{k:02d}``, written at
the source video's fps (the official script hard-coded 20 fps: spec 9.10).

Actions may overlap. The official script read frames sequentially per clip and could
lose the frames two intervals share; here each video is decoded once, in order, and
every frame goes to every open clip writer whose interval contains it. The skeleton of
the untrimmed video (one annotation per video in ``skeletons_path``, ``frame_dir`` = the
video id) is cut the same way.

Outputs (docs/pipeline.md), the whole ``out_dir`` written atomically:
``out_dir/videos/<clip>.mp4`` and ``out_dir/skeletons.pkl`` (one annotation per clip,
``label`` = row label - 1, plus ``source_video`` and ``source_frames`` = (start, end)).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from epamnet.datasets.pku import (
    LABEL_FOLDER,
    VIDEO_FOLDER,
    VIDEO_SUFFIX,
    LabelRow,
    format_clip_name,
    parse_video_id,
    read_label_file,
)
from epamnet.datasets.textfiles import numbered_lines
from epamnet.errors import EpamnetError, file_error
from epamnet.io.atomic import atomic_dir
from epamnet.io.skeleton import load_annotations, save_annotations
from epamnet.io.video import VideoWriter, iter_frames, video_info

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipPlan:
    """One clip to cut: its name, label row and where that row is in the label file."""

    name: str
    row: LabelRow
    lineno: int


@dataclass(frozen=True)
class VideoPlan:
    """One untrimmed video, checked before anything is decoded."""

    video_id: str
    video: Path
    labels: Path
    fps: float
    clips: tuple[ClipPlan, ...]


def _row_text(row: LabelRow) -> str:
    return f"{row.label},{row.start},{row.end},{row.confidence}"


def _row_lines(path: Path) -> list[int]:
    """Line numbers of the rows :func:`read_label_file` returns (the lines that are not blank)."""
    return [lineno for lineno, _ in numbered_lines(path, "the label file", "check the PKU-MMD download")]


def plan_video(raw_dir: Path, video_id: str, skeletons_path: Path) -> VideoPlan:
    """Check one video's files and label rows (against the header frame count); name its clips."""
    try:
        parse_video_id(video_id)
    except EpamnetError:
        raise file_error(
            skeletons_path, f"frame_dir {video_id!r} is not a PKU-MMD video id (dddd-L/M/R)",
            f"the clips stage needs the skeletons of the untrimmed videos (one per {VIDEO_FOLDER}/<id>{VIDEO_SUFFIX})",
        ) from None
    video = raw_dir / VIDEO_FOLDER / f"{video_id}{VIDEO_SUFFIX}"
    labels = raw_dir / LABEL_FOLDER / f"{video_id}.txt"
    if not video.is_file():
        raise file_error(video, f"video of {video_id} not found", f"put the PKU-MMD {VIDEO_FOLDER}/ folder in place")
    if not labels.is_file():
        raise file_error(
            labels, f"label file of {video_id} not found", f"put the PKU-MMD {LABEL_FOLDER}/ folder in place"
        )
    rows = read_label_file(labels)
    lines = _row_lines(labels)
    assert len(lines) == len(rows), "read_label_file and _row_lines disagree on which lines are rows"
    info = video_info(video)
    if info.fps <= 0:
        raise file_error(video, "the video reports no frame rate", "re-download or re-encode it")
    for row, lineno in zip(rows, lines):
        if row.end >= info.frames:
            raise file_error(
                f"{labels}:{lineno}",
                f"row '{_row_text(row)}' ends at frame {row.end} but {video.name} has {info.frames} frames "
                f"(0..{info.frames - 1})",
                "fix the row or replace the video",
            )
    order = sorted(range(len(rows)), key=lambda i: (rows[i].start, i))  # stable for equal starts
    clips = []
    for k, i in enumerate(order, start=1):
        try:
            name = format_clip_name(video_id, rows[i].label, k)
        except EpamnetError as exc:
            raise file_error(f"{labels}:{lines[i]}", str(exc), "PKU-MMD label files hold at most 99 rows") from None
        clips.append(ClipPlan(name, rows[i], lines[i]))
    return VideoPlan(video_id, video, labels, info.fps, tuple(clips))


def cut_skeleton(annotation: Mapping[str, Any], clip: ClipPlan, video_id: str) -> dict[str, Any]:
    """The clip's annotation: frames ``start..end`` of the untrimmed video's skeleton."""
    start, end = clip.row.start, clip.row.end
    return {
        "frame_dir": clip.name,
        "label": clip.row.label - 1,
        "img_shape": tuple(int(v) for v in annotation["img_shape"]),
        "original_shape": tuple(int(v) for v in annotation["original_shape"]),
        "total_frames": end - start + 1,
        "keypoint": annotation["keypoint"][:, start : end + 1].copy(),
        "keypoint_score": annotation["keypoint_score"][:, start : end + 1].copy(),
        "source_video": video_id,
        "source_frames": (start, end),
    }


def _close_all(writers: dict[int, VideoWriter], exc: BaseException) -> None:
    """Discard the clips still being written (their temporary files are removed)."""
    for writer in writers.values():
        writer.__exit__(type(exc), exc, exc.__traceback__)
    writers.clear()


def cut_video(plan: VideoPlan, videos_dir: Path, *, codec: str | None = None) -> int:
    """Decode ``plan.video`` once and write every clip of it; return the decoded frame count.

    Each frame goes to every clip whose inclusive interval contains it, so overlapping
    actions all get their frames. At most as many writers are open as actions overlap.
    """
    opening: dict[int, list[int]] = defaultdict(list)
    closing: dict[int, list[int]] = defaultdict(list)
    for i, clip in enumerate(plan.clips):
        opening[clip.row.start].append(i)
        closing[clip.row.end].append(i)
    open_writers: dict[int, VideoWriter] = {}
    decoded = 0
    frames = iter_frames(plan.video)
    try:
        for index, frame in enumerate(frames):
            for i in opening.get(index, ()):
                writer = VideoWriter(videos_dir / f"{plan.clips[i].name}.mp4", fps=plan.fps, codec=codec)
                open_writers[i] = writer.__enter__()
            for writer in open_writers.values():
                writer.write(frame)
            for i in closing.get(index, ()):
                open_writers.pop(i).__exit__(None, None, None)
            decoded = index + 1
        if open_writers:
            clip = plan.clips[min(open_writers)]
            raise file_error(
                f"{plan.labels}:{clip.lineno}",
                f"row '{_row_text(clip.row)}' ends at frame {clip.row.end} but {plan.video.name} decodes only "
                f"{decoded} frames (its header says more)",
                "fix the row or replace the video",
            )
    except BaseException as exc:
        _close_all(open_writers, exc)
        raise
    finally:
        frames.close()
    return decoded


def make_clips(
    raw_dir: str | Path,
    skeletons_path: str | Path,
    out_dir: str | Path,
    *,
    codec: str | None = None,
) -> list[dict[str, Any]]:
    """Cut every untrimmed PKU-MMD video and its skeleton into action clips; return the clip annotations.

    Videos are those of ``skeletons_path`` (one annotation per untrimmed video). Every
    video's files and label rows are checked before any decoding, so bad input fails
    fast; a skeleton whose frame count differs from the decoded video is an error too.
    Writes ``out_dir/videos/<clip>.mp4`` (codec: mp4v unless ``codec``) and
    ``out_dir/skeletons.pkl``; ``out_dir`` appears only when everything succeeded.
    """
    raw_dir, skeletons_path, out_dir = Path(raw_dir), Path(skeletons_path), Path(out_dir)
    skeletons = sorted(load_annotations(skeletons_path), key=lambda a: str(a["frame_dir"]))
    plans = [plan_video(raw_dir, str(a["frame_dir"]), skeletons_path) for a in skeletons]
    known = {p.video_id for p in plans}
    unused = sorted(p.stem for p in (raw_dir / LABEL_FOLDER).glob("*.txt") if p.stem not in known)
    if unused:
        logger.warning("clips: %d label file(s) have no skeleton in %s and are skipped, e.g. %s",
                       len(unused), skeletons_path, unused[0])
    logger.info("clips: %d videos, %d clips", len(plans), sum(len(p.clips) for p in plans))

    clips: list[dict[str, Any]] = []
    with atomic_dir(out_dir) as tmp:
        videos_dir = tmp / "videos"
        videos_dir.mkdir()
        for plan, skeleton in zip(tqdm(plans, desc="clips", unit="video", disable=None), skeletons):
            if not plan.clips:
                logger.warning("clips: %s has no label rows; no clip from %s", plan.labels, plan.video.name)
            decoded = cut_video(plan, videos_dir, codec=codec)
            total = int(skeleton["total_frames"])
            if decoded != total:
                raise file_error(
                    skeletons_path,
                    f"the skeleton of {plan.video_id} has {total} frames but {plan.video} decodes {decoded}",
                    "re-run the pose stage on this video (or use the skeletons that belong to these videos)",
                )
            clips.extend(cut_skeleton(skeleton, clip, plan.video_id) for clip in plan.clips)
        save_annotations(tmp / "skeletons.pkl", clips)
    logger.info("clips: wrote %d clips to %s", len(clips), out_dir)
    return clips


__all__ = ["ClipPlan", "VideoPlan", "cut_skeleton", "cut_video", "make_clips", "plan_video"]
