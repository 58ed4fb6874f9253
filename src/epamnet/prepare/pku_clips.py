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
from typing import Any, Literal

from tqdm import tqdm

from epamnet.datasets.pku import (
    LABEL_FOLDER,
    VIDEO_FOLDER,
    VIDEO_SUFFIX,
    BadRow,
    LabelRow,
    format_clip_name,
    label_rows,
    parse_video_id,
)
from epamnet.errors import EpamnetError, file_error
from epamnet.io.atomic import atomic_dir
from epamnet.io.skeleton import load_annotations, save_annotations
from epamnet.io.video import VideoWriter, iter_frames, video_info

logger = logging.getLogger(__name__)

OnError = Literal["fail", "skip"]


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
    skipped: tuple[BadRow, ...] = ()  # rows left out (on_error='skip')


def _row_text(row: LabelRow) -> str:
    return f"{row.label},{row.start},{row.end},{row.confidence}"


SKIP_FIX = "set prepare.on_sample_error: skip to leave the row out"


def _bad_row(bad: BadRow, on_error: OnError) -> None:
    """Refuse a bad row (``fail``), or report it once and go on without it (``skip``)."""
    known = f"; {bad.known}" if bad.known else ""
    if on_error == "fail":
        raise file_error(bad.where, f"bad row {bad.text!r}: {bad.problem}{known}", f"{bad.fix}, or {SKIP_FIX}")
    logger.warning("clips: %s: skipped row %r: %s%s (prepare.on_sample_error: skip)",
                   bad.where, bad.text, bad.problem, known)


def plan_video(raw_dir: Path, video_id: str, skeletons_path: Path, *, on_error: OnError = "fail") -> VideoPlan:
    """Check one video's files and label rows (against the header frame count); name its clips.

    A row that cannot become a clip (:class:`~epamnet.datasets.pku.BadRow`, or one that ends
    after the video's last frame) fails with ``on_error='fail'``; with ``'skip'`` it is left
    out, reported once in a warning and listed in the plan's ``skipped``.
    """
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
    numbered, bad = label_rows(labels)
    info = video_info(video)
    if info.fps <= 0:
        raise file_error(video, "the video reports no frame rate", "re-download or re-encode it")
    kept: list[tuple[int, LabelRow]] = []
    for lineno, row in numbered:
        if row.end >= info.frames:
            bad.append(BadRow(labels, lineno, _row_text(row),
                              f"it ends at frame {row.end} but {video.name} has {info.frames} frames "
                              f"(0..{info.frames - 1})", "fix the row or replace the video"))
        else:
            kept.append((lineno, row))
    for row in sorted(bad, key=lambda b: b.lineno):
        _bad_row(row, on_error)
    order = sorted(range(len(kept)), key=lambda i: (kept[i][1].start, i))  # stable for equal starts
    clips = []
    for k, i in enumerate(order, start=1):
        lineno, row = kept[i]
        try:
            name = format_clip_name(video_id, row.label, k)
        except EpamnetError as exc:
            raise file_error(f"{labels}:{lineno}", str(exc), "PKU-MMD label files hold at most 99 rows") from None
        clips.append(ClipPlan(name, row, lineno))
    return VideoPlan(video_id, video, labels, info.fps, tuple(clips), tuple(sorted(bad, key=lambda b: b.lineno)))


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
    on_error: OnError = "fail",
) -> list[dict[str, Any]]:
    """Cut every untrimmed PKU-MMD video and its skeleton into action clips; return the clip annotations.

    Videos are those of ``skeletons_path`` (one annotation per untrimmed video). Every
    video's files and label rows are checked before any decoding, so bad input fails
    fast; a skeleton whose frame count differs from the decoded video is an error too.
    A label row that cannot become a clip (``prepare.on_sample_error``: ``on_error``)
    stops the stage with ``'fail'``; with ``'skip'`` it is reported once and left out.
    Writes ``out_dir/videos/<clip>.mp4`` (codec: mp4v unless ``codec``) and
    ``out_dir/skeletons.pkl``; ``out_dir`` appears only when everything succeeded.
    """
    if on_error not in ("fail", "skip"):
        raise EpamnetError(f"clips: on_error must be 'fail' or 'skip', got {on_error!r}")
    raw_dir, skeletons_path, out_dir = Path(raw_dir), Path(skeletons_path), Path(out_dir)
    skeletons = sorted(load_annotations(skeletons_path), key=lambda a: str(a["frame_dir"]))
    plans = [plan_video(raw_dir, str(a["frame_dir"]), skeletons_path, on_error=on_error) for a in skeletons]
    skipped = [bad for plan in plans for bad in plan.skipped]
    if skipped:
        logger.warning("clips: %d label row(s) of %d file(s) left out, each reported above (prepare.on_sample_error: "
                       "skip)", len(skipped), len({bad.path for bad in skipped}))
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
