"""Writers of the synthetic datasets in the real raw layouts (docs/pipeline.md).

* ``ntu60`` / ``ntu120``: ``nturgb+d_rgb/SsssCcccPpppRrrrAaaa_rgb.avi`` and
  ``ntu60_2d.pkl`` / ``ntu120_2d.pkl`` in the ``{split, annotations}`` form, with the
  real split rules (xsub by subject, xview by camera, xset by setup parity).
* ``pku``: untrimmed ``RGB_VIDEO/<dddd>-<L|M|R>.avi``, label files
  ``Train_Label_PKU_final/<dddd>-<V>.txt`` (``label,start,end,confidence``),
  ``Split/cross-subject.txt`` and ``Split/cross-view.txt`` in the PKU-MMD format, and
  ``pku_2d.pkl`` (one entry per untrimmed video, label -1).
* ``toyota``: ``mp4/<Activity>_pSS_rRR_vVV_cCC.mp4`` and ``toyota_2d.pkl`` (label =
  index of the activity in the 31-class CS list).

Every take (one performance) is one random draw; every camera that films it renders
the same 3D motion from its own viewpoint. Generators are keyed by the take's ids
(``rng_for``), so the output does not depend on generation order.

The real datasets' facts (folders, file names, split rules, views) come from
:mod:`epamnet.datasets`; what is here is how the synthetic data is drawn and rendered.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from epamnet.config.synthetic import SyntheticSpec
from epamnet.datasets import PROTOCOLS, ntu, pku, toyota
from epamnet.datasets.registry import get_dataset
from epamnet.errors import EpamnetError
from epamnet.io.atomic import atomic_dir, atomic_write
from epamnet.io.digest import sha256_file
from epamnet.io.skeleton import save_annotations
from epamnet.io.video import VideoWriter
from epamnet.prepare.synthetic.body import (
    Body,
    class_motion,
    idle_motion,
    random_body,
    take_joints,
)
from epamnet.prepare.synthetic.design import ClassSpec, class_design
from epamnet.prepare.synthetic.render import (
    Camera,
    background,
    draw_scene,
    make_camera,
    noise_bank,
    noisy_background,
    rng_for,
)

logger = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("ntu60", "ntu120", "pku", "toyota")
GENERATOR_VERSION = 1

#: Codecs of the synthetic videos: MPEG-4 Part 2 in both containers (XVID in AVI, mp4v
#: in MP4), about four times smaller than MJPEG (io.video's .avi default) at this quality.
SYNTHETIC_CODECS: dict[str, str] = {".avi": "XVID", ".mp4": "mp4v"}

_NTU_CAMERA_YAW = {1: -45.0, 2: 0.0, 3: 45.0}
_PKU_VIEW_YAW = {"L": -40.0, "M": 0.0, "R": 40.0}


@dataclass
class Take:
    """One performance: the actor (joints, body, object per frame) and maybe a bystander."""

    people: list[tuple[np.ndarray, Body]]  # (T x 17 x 3 world joints, body), actor first
    objects: list[str | None]  # held object per frame (None: nothing in hand)

    @property
    def num_frames(self) -> int:
        return self.people[0][0].shape[0]


# ----------------------------------------------------------------------------- takes


def _bystander(rng: np.random.Generator, num_frames: int) -> tuple[np.ndarray, Body]:
    """A second person standing idle beside the actor (1.1 m to one side, 0.3 m behind).

    Far enough to the side that cameras within +-60 degrees of the front show the two
    people apart.
    """
    body = random_body(rng)
    angles, root = idle_motion(num_frames, rng)
    side = 1.0 if rng.uniform() < 0.5 else -1.0
    joints = take_joints(body, angles, root, math.radians(rng.uniform(-20, 20)), (side * 1.1, -0.3))
    return joints, body


def clip_take(cls: ClassSpec, actor: Body, rng: np.random.Generator, spec: SyntheticSpec) -> Take:
    """A trimmed take of class ``cls``: length, motion, body turn, and maybe a bystander.

    The held object never influences a draw: two classes that differ only by object
    give identical joints for the same ``rng``.
    """
    num_frames = int(rng.integers(spec.frames[0], spec.frames[1] + 1))
    angles, root = class_motion(
        cls.group, cls.variant, num_frames, rng, spec.fine_cycles, spec.fine_radius, spec.fine_alias
    )
    yaw = math.radians(rng.uniform(-10, 10))
    position = (rng.uniform(-0.08, 0.08), rng.uniform(-0.08, 0.08))
    people = [(take_joints(actor, angles, root, yaw, position), actor)]
    if rng.uniform() < spec.second_person_prob:
        people.append(_bystander(rng, num_frames))
    return Take(people=people, objects=[cls.object] * num_frames)


def _ramp_weights(length: int, ramp: int) -> np.ndarray:
    """Trapezoid weights over an action: ramps of ``ramp`` frames at both ends, 1 inside."""
    idx = np.arange(length, dtype=np.float64)
    up = (idx + 1) / (ramp + 1)
    down = (length - idx) / (ramp + 1)
    return np.clip(np.minimum(up, down), 0.0, 1.0)


def untrimmed_take(
    classes: list[ClassSpec], actor: Body, rng: np.random.Generator, spec: SyntheticSpec
) -> tuple[Take, list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """A PKU-like sequence: actions one after another with idle gaps or short overlaps.

    Returns the take, the label rows ``(label 1-based, start, end)`` (0-based,
    inclusive) and the intended overlaps ``(row i, row i+1, frames)``.
    """
    lo, hi = spec.frames
    lead = int(rng.integers(spec.pku_gap[0], spec.pku_gap[1] + 1))
    rows: list[tuple[int, int, int]] = []
    overlaps: list[tuple[int, int, int]] = []
    pos = lead
    for k, cls in enumerate(classes):
        length = int(rng.integers(lo, hi + 1))
        if k > 0:
            if rng.uniform() < spec.pku_overlap_prob:
                frames = int(rng.integers(spec.pku_overlap[0], spec.pku_overlap[1] + 1))
                pos -= frames
                overlaps.append((k - 1, k, frames))
            else:
                pos += int(rng.integers(spec.pku_gap[0], spec.pku_gap[1] + 1))
        rows.append((cls.label + 1, pos, pos + length - 1))
        pos += length
    total = pos + int(rng.integers(spec.pku_gap[0], spec.pku_gap[1] + 1))
    yaw = math.radians(rng.uniform(-10, 10))
    position = (rng.uniform(-0.08, 0.08), rng.uniform(-0.08, 0.08))
    idle_angles, idle_root = idle_motion(total, rng)
    idle = take_joints(actor, idle_angles, idle_root, yaw, position)
    acc = np.zeros_like(idle)
    weight = np.zeros(total)
    best = np.zeros(total)
    objects: list[str | None] = [None] * total
    for cls, (_, start, end) in zip(classes, rows):
        length = end - start + 1
        angles, root = class_motion(
            cls.group, cls.variant, length, rng, spec.fine_cycles, spec.fine_radius, spec.fine_alias
        )
        joints = take_joints(actor, angles, root, yaw, position)
        w = _ramp_weights(length, ramp=min(4, length // 4))
        acc[start : end + 1] += w[:, None, None] * joints
        weight[start : end + 1] += w
        for i, t in enumerate(range(start, end + 1)):
            if w[i] > best[t]:
                best[t] = w[i]
                objects[t] = cls.object
    rest = np.clip(1.0 - weight, 0.0, 1.0)
    joints = (acc + rest[:, None, None] * idle) / np.maximum(weight, 1.0)[:, None, None]
    people = [(joints, actor)]
    if rng.uniform() < spec.second_person_prob:
        people.append(_bystander(rng, total))
    return Take(people=people, objects=objects), rows, overlaps


# ----------------------------------------------------------------------------- rendering


def codec_for(path: Path) -> str:
    """The codec of a synthetic video, from its suffix."""
    return SYNTHETIC_CODECS[path.suffix.lower()]


def render_take(
    path: Path,
    take: Take,
    camera: Camera,
    bg: np.ndarray,
    rng: np.random.Generator,
    fps: float,
    keypoint_noise: float,
    object_size: float = 0.13,
) -> tuple[np.ndarray, np.ndarray]:
    """Render ``take`` through ``camera`` into the video ``path``; return its 2D skeletons.

    Returns ``keypoint`` (M x T x 17 x 2 float32, pixels, inside the frame) and
    ``keypoint_score`` (M x T x 17 float32 in 0.5..1.0): the projected joints plus
    Gaussian noise of ``keypoint_noise`` pixels per 240 rows of frame height, scores
    a little lower for joints on the far side of the body, like an HRNet output.
    """
    height, width = bg.shape[:2]
    projected = [camera.project(joints) for joints, _ in take.people]
    bank = noise_bank(rng, height, width)
    picks = rng.integers(len(bank), size=take.num_frames)
    noisy = [noisy_background(bg, noise) for noise in bank]  # render_frame's start, once per noise image
    with VideoWriter(path, fps=fps, codec=codec_for(path)) as writer:
        for t in range(take.num_frames):
            people = [(pts[t], depth[t], body) for (pts, depth), (_, body) in zip(projected, take.people)]
            writer.write(draw_scene(noisy[picks[t]].copy(), people, take.objects[t], camera.scale, object_size))
    sigma = keypoint_noise * height / 240.0
    keypoints, scores = [], []
    for pts, depth in projected:
        noisy = pts + rng.normal(0.0, sigma, size=pts.shape)
        noisy[..., 0] = np.clip(noisy[..., 0], 0, width - 1)
        noisy[..., 1] = np.clip(noisy[..., 1], 0, height - 1)
        keypoints.append(noisy)
        far = depth < depth.mean(axis=1, keepdims=True) - 0.05
        score = rng.uniform(0.7, 1.0, size=depth.shape) - 0.2 * far
        scores.append(np.clip(score, 0.5, 1.0))
    return np.stack(keypoints).astype(np.float32), np.stack(scores).astype(np.float32)


def _annotation(frame_dir: str, label: int, shape: tuple[int, int], kp: np.ndarray, sc: np.ndarray) -> dict[str, Any]:
    return {
        "frame_dir": frame_dir,
        "label": int(label),
        "img_shape": shape,
        "original_shape": shape,
        "total_frames": int(kp.shape[1]),
        "keypoint": kp,
        "keypoint_score": sc,
    }


# ----------------------------------------------------------------------------- formats


def _progress(total: int, desc: str) -> tqdm:
    return tqdm(total=total, desc=desc, unit="video", disable=None, leave=False)


def _skeletons_file(root: Path, fmt: str) -> Path:
    """Where the generated skeletons go: the file the raw folder of ``fmt`` provides."""
    return root / get_dataset(fmt).skeletons_file


def _write_ntu(root: Path, fmt: str, spec: SyntheticSpec, seed: int, classes: list[ClassSpec]) -> dict[str, Any]:
    h, w = spec.height, spec.width
    video_dir = root / ntu.VIDEO_FOLDER
    video_dir.mkdir(parents=True)
    annotations = []
    total = len(spec.ntu_subjects) * len(spec.ntu_replications) * len(classes) * len(spec.ntu_cameras)
    with _progress(total, f"synthetic {fmt}") as bar:
        for i, subject in enumerate(spec.ntu_subjects):
            setup = spec.ntu_setups[i % len(spec.ntu_setups)]
            actor = random_body(rng_for(seed, "ntu", "subject", subject))
            setup_rng = rng_for(seed, "ntu", "setup", setup)
            zoom, pitch = setup_rng.uniform(0.8, 1.0), setup_rng.uniform(3, 12)
            for rep in spec.ntu_replications:
                for cls in classes:
                    take = clip_take(cls, actor, rng_for(seed, "ntu", "take", subject, setup, rep, cls.label), spec)
                    for cam in spec.ntu_cameras:
                        cam_rng = rng_for(seed, "ntu", "camera", setup, cam)
                        yaw = _NTU_CAMERA_YAW.get(cam, cam_rng.uniform(-60, 60)) + cam_rng.uniform(-5, 5)
                        camera = make_camera(yaw, pitch, zoom, cam_rng.uniform(-0.04, 0.04), h, w)
                        bg = background(seed, f"ntu/S{setup:03d}/C{cam:03d}", h, w)
                        name = ntu.format_name(setup, cam, subject, rep, cls.label + 1)
                        rng = rng_for(seed, "ntu", "render", name)
                        kp, sc = render_take(video_dir / ntu.video_name(name), take, camera, bg, rng, spec.ntu_fps,
                                             spec.keypoint_noise, spec.object_size)
                        annotations.append(_annotation(name, cls.label, (h, w), kp, sc))
                        bar.update()
    annotations.sort(key=lambda a: a["frame_dir"])
    samples = [(a["frame_dir"], ntu.parse_name(a["frame_dir"])) for a in annotations]
    split = {}
    for protocol in PROTOCOLS[fmt]:  # every sample is in train or val, whatever its ids
        split[f"{protocol}_train"] = [n for n, s in samples if ntu.is_train(s, fmt, protocol)]
        split[f"{protocol}_val"] = [n for n, s in samples if not ntu.is_train(s, fmt, protocol)]
    save_annotations(_skeletons_file(root, fmt), annotations, split)
    return {"videos": len(annotations), "frames": int(sum(a["total_frames"] for a in annotations)),
            "split_sizes": {k: len(v) for k, v in split.items()}}


def _pku_classes(spec: SyntheticSpec, seed: int, classes: list[ClassSpec]) -> dict[str, list[ClassSpec]]:
    """Classes of every sequence: each subject cycles through shuffled copies of all classes."""
    by_subject: dict[int, list[str]] = {s: [] for s in spec.pku_subjects}
    seq_ids = [f"{i + 2:04d}" for i in range(spec.pku_sequences)]
    for i, sid in enumerate(seq_ids):
        by_subject[spec.pku_subjects[i % len(spec.pku_subjects)]].append(sid)
    out: dict[str, list[ClassSpec]] = {}
    for subject, sids in by_subject.items():
        rng = rng_for(seed, "pku", "subject-classes", subject)
        needed = len(sids) * spec.pku_actions_per_video
        pool: list[ClassSpec] = []
        while len(pool) < needed:
            pool.extend(classes[j] for j in rng.permutation(len(classes)))
        for k, sid in enumerate(sids):
            out[sid] = pool[k * spec.pku_actions_per_video : (k + 1) * spec.pku_actions_per_video]
    return dict(sorted(out.items()))


def _write_pku(root: Path, spec: SyntheticSpec, seed: int, classes: list[ClassSpec]) -> dict[str, Any]:
    h, w = spec.height, spec.width
    for sub in (pku.VIDEO_FOLDER, pku.LABEL_FOLDER, pku.SPLIT_FOLDER):
        (root / sub).mkdir(parents=True)
    plan = _pku_classes(spec, seed, classes)
    seq_subject = {f"{i + 2:04d}": spec.pku_subjects[i % len(spec.pku_subjects)] for i in range(spec.pku_sequences)}
    annotations, all_overlaps, rows_total = [], [], 0
    with _progress(len(plan) * len(pku.VIEWS), "synthetic pku") as bar:
        for i, (sid, seq_classes) in enumerate(plan.items()):
            subject = seq_subject[sid]
            actor = random_body(rng_for(seed, "pku", "subject", subject))
            take, rows, overlaps = untrimmed_take(seq_classes, actor, rng_for(seed, "pku", "sequence", sid), spec)
            room = i % 2
            room_rng = rng_for(seed, "pku", "room", room)
            zoom, pitch = room_rng.uniform(0.8, 1.0), room_rng.uniform(3, 12)
            text = "".join(f"{label},{start},{end},1\n" for label, start, end in rows)
            rows_total += len(rows)
            for view in pku.VIEWS:
                vid = f"{sid}-{view}"
                cam_rng = rng_for(seed, "pku", "camera", room, view)
                camera = make_camera(_PKU_VIEW_YAW[view] + cam_rng.uniform(-5, 5), pitch, zoom,
                                     cam_rng.uniform(-0.04, 0.04), h, w)
                bg = background(seed, f"pku/room{room}/{view}", h, w)
                kp, sc = render_take(root / pku.VIDEO_FOLDER / f"{vid}{pku.VIDEO_SUFFIX}", take, camera, bg,
                                     rng_for(seed, "pku", "render", vid), spec.pku_fps, spec.keypoint_noise,
                                     spec.object_size)
                annotations.append(_annotation(vid, -1, (h, w), kp, sc))
                with atomic_write(root / pku.LABEL_FOLDER / f"{vid}.txt", "w") as fh:
                    fh.write(text)
                all_overlaps.extend({"video": vid, "rows": [a, b], "frames": f} for a, b, f in overlaps)
                bar.update()
    annotations.sort(key=lambda a: a["frame_dir"])
    videos = [a["frame_dir"] for a in annotations]
    val_subjects = set(spec.pku_val_subjects)
    xsub_train = [v for v in videos if seq_subject[v[:4]] not in val_subjects]
    xsub_val = [v for v in videos if seq_subject[v[:4]] in val_subjects]
    xview_train = [v for v in videos if pku.parse_video_id(v)[1] in pku.XVIEW_TRAIN_VIEWS]
    xview_val = [v for v in videos if pku.parse_video_id(v)[1] not in pku.XVIEW_TRAIN_VIEWS]
    for protocol, (train, val) in {"xsub": (xsub_train, xsub_val), "xview": (xview_train, xview_val)}.items():
        with atomic_write(root / pku.SPLIT_FOLDER / pku.SPLIT_FILES[protocol], "w") as fh:
            fh.write(pku.format_split_file(train, val))
    save_annotations(_skeletons_file(root, "pku"), annotations, None)
    return {"videos": len(videos), "frames": int(sum(a["total_frames"] for a in annotations)),
            "label_rows": rows_total * len(pku.VIEWS), "overlaps": all_overlaps,
            "sequence_subjects": seq_subject,
            "split_sizes": {"xsub_train": len(xsub_train), "xsub_val": len(xsub_val),
                            "xview_train": len(xview_train), "xview_val": len(xview_val)}}


def _write_toyota(root: Path, spec: SyntheticSpec, seed: int, classes: list[ClassSpec]) -> dict[str, Any]:
    h, w = spec.height, spec.width
    (root / toyota.VIDEO_FOLDER).mkdir(parents=True)
    annotations = []
    total = len(spec.toyota_subjects) * len(spec.toyota_replications) * len(classes) * len(spec.toyota_cameras)
    with _progress(total, "synthetic toyota") as bar:
        for subject in spec.toyota_subjects:
            actor = random_body(rng_for(seed, "toyota", "subject", subject))
            for take_no, rep in enumerate(spec.toyota_replications, start=1):
                for cls in classes:
                    take = clip_take(cls, actor, rng_for(seed, "toyota", "take", subject, rep, cls.label), spec)
                    for cam in spec.toyota_cameras:
                        cam_rng = rng_for(seed, "toyota", "camera", cam)
                        camera = make_camera(cam_rng.uniform(-55, 55), cam_rng.uniform(12, 28),
                                             cam_rng.uniform(0.7, 0.95), cam_rng.uniform(-0.06, 0.06), h, w)
                        bg = background(seed, f"toyota/c{cam:02d}", h, w)
                        name = toyota.format_name(cls.toyota_name, subject, rep, take_no, cam)
                        kp, sc = render_take(root / toyota.VIDEO_FOLDER / f"{name}{toyota.VIDEO_SUFFIX}", take, camera, bg,
                                             rng_for(seed, "toyota", "render", name), spec.toyota_fps,
                                             spec.keypoint_noise, spec.object_size)
                        annotations.append(_annotation(name, cls.toyota_cs_label, (h, w), kp, sc))
                        bar.update()
    annotations.sort(key=lambda a: a["frame_dir"])
    save_annotations(_skeletons_file(root, "toyota"), annotations, None)
    return {"videos": len(annotations), "frames": int(sum(a["total_frames"] for a in annotations))}


_WRITERS: dict[str, Callable[[Path, SyntheticSpec, int, list[ClassSpec]], dict[str, Any]]] = {
    "ntu60": lambda root, spec, seed, classes: _write_ntu(root, "ntu60", spec, seed, classes),
    "ntu120": lambda root, spec, seed, classes: _write_ntu(root, "ntu120", spec, seed, classes),
    "pku": _write_pku,
    "toyota": _write_toyota,
}


# ----------------------------------------------------------------------------- entry point


def generate(dataset_format: str, out_dir: str | Path, spec: SyntheticSpec | None = None, seed: int = 0) -> Path:
    """Generate a synthetic dataset in the raw layout of ``dataset_format`` into ``out_dir``.

    ``dataset_format`` is ``ntu60``, ``ntu120``, ``pku`` or ``toyota``. The folder is
    written atomically (it replaces ``out_dir`` only when complete) and ends with
    ``MANIFEST.json``: every file with size and SHA-256, the spec, the seed, the class
    design and the counts. The same spec and seed give byte-identical files.
    """
    if dataset_format not in FORMATS:
        raise EpamnetError(f"synthetic: unknown dataset format {dataset_format!r}; use one of {', '.join(FORMATS)}")
    spec = spec or SyntheticSpec()
    classes = class_design(spec.num_classes)
    out_dir = Path(out_dir)
    logger.info("synthetic %s: %d classes, %dx%d frames, seed %d -> %s",
                dataset_format, len(classes), spec.height, spec.width, seed, out_dir)
    with atomic_dir(out_dir) as tmp:
        summary = _WRITERS[dataset_format](tmp, spec, seed, classes)
        files = []
        for path in sorted(p for p in tmp.rglob("*") if p.is_file()):
            files.append({"path": path.relative_to(tmp).as_posix(), "size": path.stat().st_size,
                          "sha256": sha256_file(path)})
        manifest = {
            "generator": "epamnet.prepare.synthetic",
            "version": GENERATOR_VERSION,
            "dataset_format": dataset_format,
            "seed": int(seed),
            "spec": spec.as_dict(),
            "classes": [c.as_dict() for c in classes],
            "summary": summary,
            "files": files,
        }
        with atomic_write(tmp / "MANIFEST.json", "w") as fh:
            json.dump(manifest, fh, indent=1, sort_keys=True)
            fh.write("\n")
    logger.info("synthetic %s: %d files, %d videos written to %s", dataset_format, len(files), summary["videos"], out_dir)
    return out_dir
