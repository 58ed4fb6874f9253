"""The annotated video: attention heat map over the crop region, skeleton, top-1 label, attention strip.

The attention map ``A`` has one map per RGB clip frame; each video frame shows the map
of the nearest sampled RGB frame, upsampled over the crop region as a jet colour map,
with a strip of the per-frame mean of ``A`` at the bottom.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from epamnet.inference.prediction import Prediction
from epamnet.inference.recognizer import CroppedVideo, VideoSample
from epamnet.io.video import VideoWriter, iter_frames
from epamnet.models.attention_maps import upsample

logger = logging.getLogger(__name__)

#: COCO-17 limbs (joint index pairs) drawn on the output video.
COCO_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (1, 3), (2, 4),  # face
    (5, 6), (5, 11), (6, 12), (11, 12),  # torso
    (5, 7), (7, 9), (6, 8), (8, 10),  # arms
    (11, 13), (13, 15), (12, 14), (14, 16),  # legs
)  # fmt: skip
#: Joints on the person's left (drawn in one colour), right (another), centre (a third).
_LEFT_JOINTS = frozenset((1, 3, 5, 7, 9, 11, 13, 15))
_RIGHT_JOINTS = frozenset((2, 4, 6, 8, 10, 12, 14, 16))
_COLOURS = {"left": (255, 170, 0), "right": (0, 200, 255), "centre": (255, 255, 255)}  # RGB


@dataclass(frozen=True)
class OverlayFrames:
    """The frames to draw on, the skeleton in their pixels, and where the attention maps lie."""

    video: Path
    keypoint: np.ndarray  # M x T x 17 x 2
    keypoint_score: np.ndarray  # M x T x 17
    region: tuple[int, int, int, int]  # x0, y0, x1, y1: the crop box in these frames


def overlay_frames(pred: Prediction, sample: VideoSample, cropped: CroppedVideo, on: str) -> OverlayFrames:
    """The original video's frames (``on='original'``) or the cropped ones the model saw (``'crop'``)."""
    if on == "crop":
        ann = cropped.annotation
        h, w = (int(v) for v in ann["img_shape"])
        return OverlayFrames(cropped.path, ann["keypoint"], ann["keypoint_score"], (0, 0, w, h))
    ann = sample.skeleton.annotation
    keypoint = np.asarray(ann["keypoint"], np.float32) * np.array(sample.scale, np.float32)
    return OverlayFrames(sample.path, keypoint, ann["keypoint_score"], pred.crop_box)


def nearest_sampled(frame: int, sampled: np.ndarray) -> int:
    """Index ``k`` of the sampled frame nearest to video frame ``frame`` (ties: the earlier)."""
    return int(np.argmin(np.abs(np.asarray(sampled, dtype=np.int64) - frame)))


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")


def _side(j: int) -> str:
    return "left" if j in _LEFT_JOINTS else "right" if j in _RIGHT_JOINTS else "centre"


def draw_skeleton(frame: np.ndarray, keypoint: np.ndarray, score: np.ndarray, thr: float) -> None:
    """Draw the persons' COCO-17 skeletons (``M x 17 x 2`` pixels, scores ``M x 17``) on an RGB frame."""
    h, w = frame.shape[:2]
    thick = max(1, round(min(h, w) / 160))
    radius = max(2, round(min(h, w) / 120))
    for person_kp, person_sc in zip(np.asarray(keypoint), np.asarray(score)):
        ok = (person_sc > thr) & np.isfinite(person_kp).all(axis=1) & (person_kp != 0).any(axis=1)
        pts = np.round(np.nan_to_num(person_kp)).astype(np.int64)
        for a, b in COCO_EDGES:
            if ok[a] and ok[b]:
                colour = _COLOURS[_side(b)] if _side(a) == _side(b) else _COLOURS["centre"]
                cv2.line(frame, tuple(map(int, pts[a])), tuple(map(int, pts[b])), colour, thick, cv2.LINE_AA)
        for j in np.nonzero(ok)[0]:
            cv2.circle(frame, tuple(map(int, pts[j])), radius, _COLOURS[_side(int(j))], -1, cv2.LINE_AA)


def overlay_heat(frame: np.ndarray, heat: np.ndarray, region: tuple[int, int, int, int], alpha: float) -> None:
    """Blend ``heat`` (``h x w`` in [0, 1]) as a jet colour map over ``region`` of an RGB frame, in place."""
    x0, y0, x1, y1 = region
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(frame.shape[1], x1), min(frame.shape[0], y1)
    if x1 <= x0 or y1 <= y0:
        return
    up = np.clip(upsample(heat[None], (y1 - y0, x1 - x0))[0], 0.0, 1.0)
    colour = cv2.applyColorMap((up * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]  # BGR -> RGB
    patch = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip((1 - alpha) * patch + alpha * colour, 0, 255).astype(np.uint8)


def _label(frame: np.ndarray, text: str, org: tuple[int, int], scale: float) -> None:
    font, thick = cv2.FONT_HERSHEY_SIMPLEX, max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    x, y = org
    cv2.rectangle(frame, (x - 2, y - th - 3), (x + tw + 2, y + base + 1), (0, 0, 0), -1)
    cv2.putText(frame, text, (x, y), font, scale, (255, 255, 255), thick, cv2.LINE_AA)


def _strip(frame: np.ndarray, weights: np.ndarray, current: int) -> None:
    """The per-RGB-frame mean attention as a bar strip at the bottom; the shown map is highlighted."""
    h, w = frame.shape[:2]
    t = len(weights)
    strip_h = max(6, h // 12)
    hi = max(float(weights.max()), 1e-6)
    cell = w / t
    frame[h - strip_h - 2 :] = (frame[h - strip_h - 2 :].astype(np.float32) * 0.35).astype(np.uint8)
    for k, v in enumerate(weights):
        bar = max(1, round(strip_h * float(v) / hi))
        x0, x1 = round(k * cell) + 1, max(round(k * cell) + 2, round((k + 1) * cell) - 1)
        colour = (255, 80, 0) if k == current else (255, 200, 0)
        cv2.rectangle(frame, (x0, h - bar), (x1 - 1, h - 1), colour, -1)


def write_annotated_video(
    pred: Prediction, frames_in: OverlayFrames, out: Path, *, alpha: float = 0.45, kpt_thr: float = 0.3
) -> int:
    """Write ``frames_in`` with the attention heat, the skeleton and the top-1 label (atomically).

    The map shown on video frame ``i`` is the one of the nearest sampled RGB frame.
    One colour scale for the whole clip (its min..max), so temporal weighting shows.
    Keypoints below ``kpt_thr`` are not drawn. Returns the number of frames written.
    """
    att = np.asarray(pred.attention, dtype=np.float32)
    lo, hi = float(att.min()), float(att.max())
    norm = (att - lo) / (hi - lo) if hi - lo > 1e-6 else np.full_like(att, 0.5)
    weights = att.mean(axis=(1, 2))
    best = pred.top(1)[0]
    label = _ascii(f"{best['class']} {best['score']:.0%}")
    kp, sc = np.asarray(frames_in.keypoint, np.float32), np.asarray(frames_in.keypoint_score, np.float32)
    skeleton_frames = kp.shape[1]
    fps = pred.fps if pred.fps > 0 else 25.0
    frames = iter_frames(frames_in.video)
    try:
        with VideoWriter(out, fps=fps) as writer:
            for i, frame in enumerate(frames):
                frame = np.ascontiguousarray(frame)
                k = nearest_sampled(i, pred.rgb_indices)
                overlay_heat(frame, norm[k], frames_in.region, alpha)
                if i < skeleton_frames:
                    draw_skeleton(frame, kp[:, i], sc[:, i], kpt_thr)
                scale = max(0.4, frame.shape[1] / 640 * 0.7)
                _label(frame, label, (6, 6 + round(22 * scale)), scale)
                _strip(frame, weights, k)
                writer.write(frame)
    finally:
        frames.close()
    logger.info("predict: wrote %s (%d frames)", out, writer.frames_written)
    return writer.frames_written
