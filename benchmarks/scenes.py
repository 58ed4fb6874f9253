"""Generated prepared crop videos and their annotations, for the loader benchmarks.

A prepared crop video (224 x 224, 30 fps, written as the crop stage writes them) shows one
or two stick persons in a textured, lit room with sensor noise; its annotation holds the
COCO-17 keypoints of those persons (limb chains swinging arms and legs, the body swaying
and drifting; detector jitter, scores 0.4-1, about 3 % missed joints) in cropped-frame
pixels. :func:`render_sample` returns the frames before encoding (the source a format's
quality is measured against); :func:`write_inputs` writes videos, ``annotations.pkl`` and
a split JSON whose ``train`` part lists every sample.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from epamnet.io.skeleton import save_annotations
from epamnet.io.video import write_video
from epamnet.prepare.crop import PREPARED_VIDEO_SUFFIX

IMG = 224  # prepared (cropped) video side: prepare.crop.size in the paper setting
FPS = 30
NUM_CLASSES = 60

# ---------------------------------------------------------------- inputs

# A standing person facing the camera, in body heights around the pelvis (x right, y down);
# the person's left side is on the image's right. Limb lengths in body heights.
_HEAD = {0: (0.0, -0.40), 1: (0.022, -0.42), 2: (-0.022, -0.42), 3: (0.05, -0.41), 4: (-0.05, -0.41)}
_SHOULDER, _HIP = (0.11, -0.29), (0.07, 0.0)
_UPPER_ARM, _FOREARM, _THIGH, _SHIN = 0.17, 0.15, 0.24, 0.23
_LIMBS = ((5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14), (14, 16), (5, 6), (11, 12))


def _motion(rng: np.random.Generator) -> dict[str, np.ndarray | float]:
    """Random amplitudes, rates and phases of one person's action."""
    return {
        "arm_base": rng.uniform(0.1, 0.6, 2), "arm_amp": rng.uniform(0.2, 1.3, 2), "elbow": rng.uniform(0.1, 1.2, 2),
        "leg_amp": rng.uniform(0.0, 0.35), "knee": rng.uniform(0.0, 0.5), "rate": rng.uniform(0.08, 0.25),
        "phase": rng.uniform(0, 2 * np.pi, 4), "sway": rng.uniform(0.0, 0.08), "drift": rng.uniform(-0.06, 0.06),
    }


def _skeleton(m: dict, t: int, centre: tuple[float, float], height: float, frames: int) -> np.ndarray:
    """17 x 2 true joint positions (pixels) of a person at frame ``t``."""
    w, ph = m["rate"] * t, m["phase"]
    lean = m["sway"] * np.sin(0.5 * w + ph[3])
    cx = centre[0] + height * (m["drift"] * (t / frames - 0.5) + 0.3 * m["sway"] * np.sin(0.3 * w))
    cy = centre[1] + height * 0.01 * np.sin(2 * w)
    rot = np.array([[np.cos(lean), -np.sin(lean)], [np.sin(lean), np.cos(lean)]])
    kp = np.zeros((17, 2))

    def place(offset: tuple[float, float]) -> np.ndarray:
        return np.array([cx, cy]) + height * rot @ np.asarray(offset)

    for j, off in _HEAD.items():
        kp[j] = place(off)
    chains = ((1, (5, 7, 9), (11, 13, 15)), (-1, (6, 8, 10), (12, 14, 16)))  # left, right: arm and leg joints
    for side, (s, (sh, el, wr), (hp, kn, an)) in enumerate(chains):
        kp[sh] = place((s * _SHOULDER[0], _SHOULDER[1]))
        kp[hp] = place((s * _HIP[0], _HIP[1]))
        arm = m["arm_base"][side] + m["arm_amp"][side] * (0.5 + 0.5 * np.sin(w + ph[side]))  # outward from down
        elbow = arm + m["elbow"][side] * (0.5 + 0.5 * np.sin(w + ph[side] + 1.0))
        kp[el] = kp[sh] + height * _UPPER_ARM * np.array([s * np.sin(arm), np.cos(arm)])
        kp[wr] = kp[el] + height * _FOREARM * np.array([s * np.sin(elbow), np.cos(elbow)])
        leg = m["leg_amp"] * np.sin(w + ph[2] + side * np.pi)
        knee = leg - m["knee"] * (0.5 + 0.5 * np.sin(w + ph[2] + side * np.pi))
        kp[kn] = kp[hp] + height * _THIGH * np.array([np.sin(leg), np.cos(leg)])
        kp[an] = kp[kn] + height * _SHIN * np.array([np.sin(knee), np.cos(knee)])
    return kp


def _background(rng: np.random.Generator) -> np.ndarray:
    """A room: a lit gradient, a floor, smooth texture."""
    yy, xx = np.mgrid[0:IMG, 0:IMG].astype(np.float32) / IMG
    base = np.stack([150 + 60 * xx, 140 + 40 * yy, 120 + 30 * (1 - xx)], axis=-1) * rng.uniform(0.7, 1.1, 3)
    base[yy > 0.8] *= 0.6
    texture = cv2.GaussianBlur(rng.normal(0, 25, (IMG, IMG, 3)).astype(np.float32), (0, 0), 3)
    return base.astype(np.float32) + texture


def render_sample(frames: int, persons: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """Frames (T x 224 x 224 x 3 uint8 RGB) of one clip and its annotation (no name, no filename)."""
    motions = [_motion(rng) for _ in range(persons)]
    colours = [tuple(int(c) for c in rng.integers(20, 235, 3)) for _ in range(persons)]
    if persons == 1:
        places = [((IMG / 2, IMG * 0.56), IMG * 0.78)]
    else:
        places = [((IMG * (0.28 + 0.44 * p), IMG * 0.56), IMG * 0.62) for p in range(persons)]
    true = np.stack([[_skeleton(m, t, c, h, frames) for t in range(frames)] for m, (c, h) in zip(motions, places)])
    room = _background(rng)
    video = np.empty((frames, IMG, IMG, 3), np.uint8)
    for t in range(frames):
        canvas = room.copy()
        for p in range(persons):
            kp, height, colour = true[p, t], places[p][1], colours[p]
            thick = max(2, int(0.05 * height))
            torso = kp[[5, 6, 12, 11]].round().astype(np.int32)
            cv2.fillConvexPoly(canvas, torso, colour, cv2.LINE_AA)
            for a, b in _LIMBS:
                cv2.line(canvas, tuple(kp[a].round().astype(int)), tuple(kp[b].round().astype(int)),
                         colour, thick, cv2.LINE_AA)
            cv2.circle(canvas, tuple(kp[0].round().astype(int)), int(0.065 * height), (225, 190, 160), -1, cv2.LINE_AA)
        canvas += rng.normal(0, 3, canvas.shape).astype(np.float32)  # sensor noise
        video[t] = np.clip(canvas, 0, 255).astype(np.uint8)

    kp = true + rng.normal(0, 1.2, true.shape)  # detector jitter
    score = rng.uniform(0.4, 1.0, true.shape[:3])
    score[..., [9, 10, 15, 16]] *= 0.8  # wrists and ankles: less sure
    missed = rng.random(true.shape[:3]) < 0.03
    kp = np.clip(kp, 0, IMG - 1)
    kp[missed] = 0
    score[missed] = 0
    return video, {"label": int(rng.integers(NUM_CLASSES)), "img_shape": (IMG, IMG),
                   "original_shape": (1080, 1920), "total_frames": frames, "keypoint": kp.astype(np.float32),
                   "keypoint_score": score.astype(np.float32)}


def write_sample(root: Path, name: str, frames: int, persons: int, rng: np.random.Generator) -> dict[str, Any]:
    """One prepared crop video under ``root/videos`` (the crop stage's format) and its annotation."""
    video, ann = render_sample(frames, persons, rng)
    filename = f"videos/{name}{PREPARED_VIDEO_SUFFIX}"
    write_video(root / filename, video, fps=FPS)  # the crop stage's writer and codec
    return {"frame_dir": name, **ann, "filename": filename}


def write_inputs(root: Path, videos: int, min_frames: int, max_frames: int) -> tuple[Path, Path, list[dict]]:
    """Videos, ``annotations.pkl`` and ``split.json`` under ``root``; returns (split, annotations, entries)."""
    rng = np.random.default_rng(0)
    (root / "videos").mkdir(parents=True)
    lengths = np.linspace(min_frames, max_frames, videos).round().astype(int)
    anns = [write_sample(root, f"S{v + 1:03d}C001P001R001A{v + 1:03d}", int(n), 2 if v % 3 == 2 else 1, rng)
            for v, n in enumerate(lengths)]
    ann_path, split_path = root / "annotations.pkl", root / "split.json"
    save_annotations(ann_path, anns)
    rows = [[a["frame_dir"], a["label"]] for a in anns]
    split_path.write_text(json.dumps({"train": rows, "val": [], "test": []}), encoding="utf-8")
    return split_path, ann_path, anns


