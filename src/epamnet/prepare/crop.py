"""The ``crop`` and ``crop-merge`` stages: one global box per video, cropped to size x size.

For every sample, the box around all persons in all frames (:mod:`epamnet.prepare.global_box`,
the official ``MMCompact`` rule: padding 0.25, threshold 10, square, clipped) is cut out
of every frame, resized to ``size`` x ``size`` (``cv2.INTER_LINEAR``; the aspect may
change, as in the official crop script) and written at the source fps. The keypoints are
re-expressed in the cropped frame, so pose and RGB stay aligned (spec 9.6).

The box is computed in the skeleton's pixel frame (the annotation's ``img_shape``) and
mapped onto the video frames by ``video size / img_shape``, whatever the ratio (the
official PKU script hard-coded 1920x1080 keypoints on 960x540 frames).

The prepared videos are MJPEG AVI files (every frame an independent JPEG, quality
:data:`PREPARED_QUALITY`, libjpeg-turbo in an AVI container, :mod:`epamnet.io.mjpeg_avi`): the loader decodes only
the frames a training clip samples (:func:`epamnet.io.video.read_frames`), and the same
frames give the same bytes. ``benchmarks/bench_prepared_video.py`` measured the
choice against MPEG-4 Part 2 (decode time, disk size, fidelity to the cropped frames).

Scale: NTU-120 has 114k videos. Samples are sharded (sorted by ``frame_dir``, shard
``i`` of ``n`` takes positions ``i, i+n, ...``), each shard streams its videos one frame
at a time (decode, crop, resize, encode), so memory per sample is a few frames whatever
the video length. ``crop-merge`` joins the shard pickles into ``annotations.pkl``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2

from epamnet.errors import EpamnetError, file_error
from epamnet.io.atomic import atomic_dir, atomic_write, is_disk_full
from epamnet.io.shards import (
    failures_path,
    merge_annotation_shards,
    shard_members,
)
from epamnet.io.skeleton import load_annotations, save_annotations
from epamnet.io.video import VideoWriter, iter_frames, video_info
from epamnet.logs import progress
from epamnet.prepare.global_box import (
    global_box,
    keypoints_to_crop,
    scale_box,
    valid_keypoints,
)

logger = logging.getLogger(__name__)

#: Container and codec of the prepared crop videos (see the module doc).
PREPARED_VIDEO_SUFFIX = ".avi"
PREPARED_CODEC = "MJPG"
#: JPEG quality of the prepared crop videos.
PREPARED_QUALITY = 90

#: Relative difference between the horizontal and vertical video/skeleton scales above
#: which the two are probably not the same camera frame (logged as a warning).
ASPECT_TOLERANCE = 0.02


@dataclass(frozen=True)
class ShardResult:
    """What one ``crop`` shard did: samples written and samples skipped (``on_error='skip'``)."""

    written: int
    failed: list[dict[str, str]] = field(default_factory=list)


def crop_sample(
    annotation: Mapping[str, Any],
    video_path: str | Path,
    out_video: str | Path,
    *,
    size: int = 224,
    padding: float = 0.25,
    threshold: float = 10,
    hw_ratio: float | None = 1.0,
    codec: str | None = PREPARED_CODEC,
    quality: int | None = PREPARED_QUALITY,
    filename: str | None = None,
) -> dict[str, Any]:
    """Crop one video to its global box, resize it to ``size`` x ``size``; return the new annotation.

    Frames are streamed (decoded, cropped, resized and encoded one at a time) and the
    output is written atomically at the source fps. Only the first ``total_frames``
    frames are written (the frames the skeleton describes); a video with fewer frames
    than the skeleton is an error, and so is a skeleton without any valid keypoint (no
    person: nothing to crop to, nothing for the pose stream to see). The new annotation
    has ``img_shape`` (size, size), ``original_shape`` = the skeleton's ``img_shape``,
    ``crop_box`` (x0, y0, x1, y1 in the skeleton's pixels, as actually cut), keypoints in
    cropped-frame pixels, and ``filename`` (default: ``out_video``'s name). ``codec`` and
    ``quality`` default to the prepared format (an MJPEG AVI: give ``out_video`` the suffix
    :data:`PREPARED_VIDEO_SUFFIX`).
    """
    video_path, out_video = Path(video_path), Path(out_video)
    name = str(annotation["frame_dir"])
    total = int(annotation["total_frames"])
    img_h, img_w = (int(v) for v in annotation["img_shape"])
    if not valid_keypoints(annotation["keypoint"], annotation["keypoint_score"]).any():
        persons = annotation["keypoint"].shape[0]
        found = "no person" if persons == 0 else f"{persons} person(s) but no scored, finite keypoint in any frame"
        raise file_error(
            video_path,
            f"the skeleton of {name} has {found}, so there is nothing to crop to",
            "re-extract its skeleton, or set prepare.on_sample_error: skip to leave the sample out",
        )
    info = video_info(video_path)
    if info.fps <= 0:
        raise file_error(video_path, "the video reports no frame rate", "re-encode it with a valid fps")
    sx, sy = info.width / img_w, info.height / img_h
    if abs(sx - sy) > ASPECT_TOLERANCE * max(sx, sy):
        logger.warning(
            "%s: video %dx%d and skeleton img_shape %dx%d differ in aspect; scaling x by %.3f and y by %.3f",
            video_path, info.width, info.height, img_w, img_h, sx, sy,
        )
    box = global_box(annotation, padding=padding, threshold=threshold, hw_ratio=hw_ratio)
    vx0, vy0, vx1, vy1 = scale_box(box, sx, sy, info.width, info.height)
    crop_box = (vx0 / sx, vy0 / sy, vx1 / sx, vy1 / sy)  # the region actually cut, in skeleton pixels

    written = 0
    frames = iter_frames(video_path)
    try:
        with VideoWriter(out_video, fps=info.fps, codec=codec, quality=quality) as writer:
            for frame in frames:
                if written == total:
                    break
                if frame.shape[:2] != (info.height, info.width):
                    raise file_error(
                        video_path,
                        f"frame {written} is {frame.shape[1]}x{frame.shape[0]}, the header says "
                        f"{info.width}x{info.height}",
                        "re-encode the video",
                    )
                crop = frame[vy0:vy1, vx0:vx1]
                writer.write(cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR))
                written += 1
            if written < total:
                raise file_error(
                    video_path,
                    f"the video has {written} frames but the skeleton of {name} has {total} (total_frames)",
                    "re-extract the skeleton from this video, or replace the video",
                )
    finally:
        frames.close()  # releases the decoder when we stop before the end

    keypoint, score = keypoints_to_crop(annotation["keypoint"], annotation["keypoint_score"], crop_box, (size, size))
    new = dict(annotation)
    new.update(
        img_shape=(size, size),
        original_shape=(img_h, img_w),
        crop_box=tuple(float(v) for v in crop_box),
        keypoint=keypoint,
        keypoint_score=score,
        total_frames=written,
        filename=filename if filename is not None else out_video.name,
    )
    return new


def _failure(frame_dir: str, path: Path | str, exc: BaseException) -> dict[str, str]:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if not isinstance(exc, EpamnetError):
        reason = f"{type(exc).__name__}: {reason}"
    return {"frame_dir": frame_dir, "file": str(path), "reason": reason}


def crop_shard(
    skeletons_path: str | Path,
    video_for: Callable[[str], Path],
    shard: int,
    num_shards: int,
    out_pkl: str | Path,
    out_video_dir: str | Path,
    *,
    size: int = 224,
    padding: float = 0.25,
    threshold: float = 10,
    hw_ratio: float | None = 1.0,
    on_error: Literal["fail", "skip"] = "fail",
    root: str | Path | None = None,
) -> ShardResult:
    """Crop shard ``shard`` of ``num_shards`` of the samples in ``skeletons_path``.

    Writes ``out_video_dir/<frame_dir>.avi`` (the prepared format, see the module doc; the
    folder appears atomically, as a whole)
    and ``out_pkl`` (the cropped annotations, ``filename`` = the video's path relative to
    ``root``, the prepared dataset folder; default: two levels above ``out_video_dir``), and always
    ``<out_pkl stem>.failures.json`` (a list of ``{frame_dir, file, reason}``, empty
    unless ``on_error='skip'`` skipped something). With ``on_error='fail'`` the first
    bad sample raises and nothing is written. A full disk always stops the shard.
    """
    if on_error not in ("fail", "skip"):
        raise EpamnetError(f"crop: on_error must be 'fail' or 'skip', got {on_error!r}")
    out_pkl, out_video_dir = Path(out_pkl), Path(out_video_dir)
    rel_dir = out_video_dir.relative_to(Path(root) if root is not None else out_video_dir.parent.parent)
    annotations = load_annotations(skeletons_path)
    names = [str(a["frame_dir"]) for a in annotations]
    members = set(shard_members(names, shard, num_shards, stage="crop", key="prepare.shards"))
    mine = sorted((a for a in annotations if a["frame_dir"] in members), key=lambda a: a["frame_dir"])
    del annotations  # keep only this shard's entries in memory
    logger.info("crop shard %d/%d: %d of the samples in %s", shard, num_shards, len(mine), skeletons_path)

    results: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    with atomic_dir(out_video_dir) as tmp_dir:
        for ann in progress(mine, f"crop shard {shard}/{num_shards}", unit="video"):
            name = str(ann["frame_dir"])
            src: Path | None = None  # None: the sample's video could not even be named
            try:
                src = Path(video_for(name))
                results.append(
                    crop_sample(
                        ann, src, tmp_dir / f"{name}{PREPARED_VIDEO_SUFFIX}",
                        size=size, padding=padding, threshold=threshold, hw_ratio=hw_ratio,
                        filename=(rel_dir / f"{name}{PREPARED_VIDEO_SUFFIX}").as_posix(),
                    )
                )
            except MemoryError:
                raise
            except Exception as exc:  # every failure of one sample obeys on_error (a full disk aside)
                if is_disk_full(exc):
                    raise  # not this sample's fault: stop whatever on_error says (atomic_dir names the output)
                where = src if src is not None else f"{skeletons_path} (frame_dir {name!r})"
                if on_error == "fail":
                    if isinstance(exc, EpamnetError) and src is not None:
                        raise
                    what = "cropping" if src is not None else "finding the video of"
                    raise file_error(where, f"{what} {name} failed ({_failure(name, where, exc)['reason']})",
                                     "fix the sample, or set prepare.on_sample_error: skip to leave it out") from exc
                failed.append(_failure(name, where, exc))
                logger.warning("crop: skipped %s: %s", name, failed[-1]["reason"])
        with atomic_write(failures_path(out_pkl), "w") as fh:
            json.dump(failed, fh, indent=1)
            fh.write("\n")
        save_annotations(out_pkl, results)
    if failed:
        logger.warning("crop shard %d: %d of %d samples skipped, listed in %s",
                       shard, len(failed), len(mine), failures_path(out_pkl))
    logger.info("crop shard %d: wrote %d videos to %s", shard, len(results), out_video_dir)
    return ShardResult(written=len(results), failed=failed)


def merge_shards(
    shard_pkls: Sequence[str | Path], out_pkl: str | Path, *, root: str | Path | None = None
) -> list[dict[str, Any]]:
    """Concatenate shard pickles into ``out_pkl`` (sorted by ``frame_dir``), atomically.

    Checks that no ``frame_dir`` appears twice and that every annotation's ``filename``
    exists under ``root`` (default: ``out_pkl``'s folder, the prepared dataset folder).
    Samples the shards skipped (their failures files) are counted in a warning.
    """
    out_pkl = Path(out_pkl)
    root = Path(root) if root is not None else out_pkl.parent

    def video_exists(shard_pkl: Path, ann: dict[str, Any]) -> None:
        rel = ann.get("filename")
        if not isinstance(rel, str) or not (root / rel).is_file():
            raise file_error(
                shard_pkl, f"the video of {ann['frame_dir']} ({root / str(rel)}) does not exist", "re-run this crop shard"
            )

    merged = merge_annotation_shards(
        shard_pkls, out_pkl, stage="crop-merge", check=video_exists,
        rerun="re-run the crop shards with the same prepare.shards",
    )
    skipped = {str(failures_path(p)): _count_failures(failures_path(p)) for p in shard_pkls}
    if any(skipped.values()):
        logger.warning(
            "crop-merge: %d samples were skipped by the crop shards (prepare.on_sample_error: skip) and are "
            "not in %s; the reasons are in %s",
            sum(skipped.values()), out_pkl, ", ".join(f for f, n in skipped.items() if n),
        )
    return merged


def _count_failures(path: Path) -> int:
    """Entries of a shard's failures file (0 when it is missing or unreadable: it only informs)."""
    try:
        return len(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return 0


__all__ = [
    "PREPARED_CODEC",
    "PREPARED_QUALITY",
    "PREPARED_VIDEO_SUFFIX",
    "ShardResult",
    "crop_sample",
    "crop_shard",
    "failures_path",
    "global_box",
    "merge_shards",
    "shard_members",
]
