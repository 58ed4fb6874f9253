"""Cameras, backgrounds and drawing of the synthetic videos.

A camera turns the world about the vertical axis (``yaw``: where it stands around the
subject), looks down by ``pitch``, and projects with a mild perspective onto the
image; ``scale`` (pixels per metre) and the ground point ``(u0, v0)`` place the
subject. The background of a scene (setup and camera) is a deterministic function of
the seed, so tests can rebuild it; frames add a little noise on top of it.

Figures are drawn back to front (by camera depth): torso as a filled polygon, limbs
as thick lines, the head as a filled disc, joints as light dots, and the held object
(video only) at the right hand.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import math
from dataclasses import dataclass

import cv2
import numpy as np

from epamnet.prepare.synthetic.body import R_ELBOW, R_WRIST, Body
from epamnet.prepare.synthetic.design import OBJECTS

#: Limbs drawn as lines: (joint a, joint b, colour part).
_LIMBS: tuple[tuple[int, int, str], ...] = (
    (5, 7, "shirt"), (7, 9, "skin"), (6, 8, "shirt"), (8, 10, "skin"),
    (11, 13, "trousers"), (13, 15, "trousers"), (12, 14, "trousers"), (14, 16, "trousers"),
)  # fmt: skip
_LIMB_A, _LIMB_B = np.array([a for a, _, _ in _LIMBS]), np.array([b for _, b, _ in _LIMBS])
_BODY_JOINTS = (5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)


def rng_for(seed: int, *key: object) -> np.random.Generator:
    """An independent generator for ``key`` (strings and ints), stable across runs and orders."""
    digest = hashlib.sha256(repr((int(seed),) + tuple(key)).encode()).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    return np.random.default_rng(np.random.SeedSequence(words))


@dataclass(frozen=True)
class Camera:
    """Viewpoint and placement of one camera."""

    yaw: float  # radians, where the camera stands around the subject (0: in front)
    pitch: float  # radians, looking down
    scale: float  # pixels per metre at the subject
    u0: float  # image position of the world origin (floor under the subject)
    v0: float
    distance: float = 4.0  # metres, for the mild perspective
    eye_height: float = 1.2  # metres: the optical centre's height (perspective is about it)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (..., 2) and depth towards the camera (...) of world points (..., 3)."""
        x, y, z = points[..., 0], points[..., 1], points[..., 2]
        cy, sy = math.cos(self.yaw), math.sin(self.yaw)
        xc = x * cy - z * sy
        zc = x * sy + z * cy
        cp, sp = math.cos(self.pitch), math.sin(self.pitch)
        yc = y * cp - zc * sp
        depth = zc * cp + y * sp
        persp = self.distance / np.maximum(self.distance - depth, 0.5)
        u = self.u0 + self.scale * xc * persp
        v = self.v0 - self.scale * (self.eye_height + (yc - self.eye_height) * persp)
        return np.stack([u, v], axis=-1), depth


def make_camera(
    yaw_deg: float, pitch_deg: float, zoom: float, shift: float, height: int, width: int
) -> Camera:
    """A camera that shows a 1.75 m person at ``zoom`` x 62 % of the frame height.

    ``shift`` moves the subject sideways, as a fraction of the frame width.
    """
    scale = zoom * 0.62 * height / 1.75
    return Camera(
        yaw=math.radians(yaw_deg),
        pitch=math.radians(pitch_deg),
        scale=scale,
        u0=width * (0.5 + shift),
        v0=height * 0.9,
    )


@functools.lru_cache(maxsize=16)
def background(seed: int, scene: str, height: int, width: int) -> np.ndarray:
    """The static background (H x W x 3 uint8 RGB) of ``scene``: muted colour, pattern, texture.

    Dark and muted (value <= ~0.55) so the bright figure stands out. Deterministic in
    ``(seed, scene, height, width)``, so it is made once per scene (every take of a
    scene shares it) and returned read-only.
    """
    rng = rng_for(seed, "background", scene)
    hue = rng.uniform()
    wall = np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.15, 0.35), rng.uniform(0.28, 0.42))) * 255
    floor = np.array(colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.15, 0.35), rng.uniform(0.2, 0.32))) * 255
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    kind = int(rng.integers(3))
    period = rng.uniform(0.08, 0.2) * width
    angle = rng.uniform(0, np.pi)
    if kind == 0:  # stripes
        pattern = np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)
    elif kind == 1:  # checker
        pattern = np.sign(np.sin(2 * np.pi * xx / period) * np.sin(2 * np.pi * yy / period))
    else:  # soft gradient with rings
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        pattern = np.cos(2 * np.pi * np.hypot(xx - cx, yy - cy) / period)
    horizon = int(height * rng.uniform(0.55, 0.7))
    img = np.empty((height, width, 3), np.float32)
    img[:horizon] = wall
    img[horizon:] = floor
    img += 14.0 * pattern[..., None] * np.array([1.0, 0.9, 0.8], np.float32)
    coarse = rng.normal(0.0, 10.0, size=(max(height // 8, 2), max(width // 8, 2), 3)).astype(np.float32)
    img += cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0.0, 3.0, size=img.shape).astype(np.float32)
    out = np.clip(img, 0, 255).astype(np.uint8)
    out.setflags(write=False)
    return out


def noise_bank(rng: np.random.Generator, height: int, width: int, size: int = 4) -> np.ndarray:
    """A few small per-frame noise images (int16, +-3) that frames pick from at random."""
    return rng.integers(-3, 4, size=(size, height, width, 3), dtype=np.int16)


def _lighter(colour: tuple[int, int, int], amount: float = 0.5) -> tuple[int, int, int]:
    return tuple(int(c + (255 - c) * amount) for c in colour)  # type: ignore[return-value]


def draw_person(img: np.ndarray, pts: np.ndarray, depth: np.ndarray, body: Body, scale: float) -> None:
    """Draw one figure (17 x 2 pixel points, 17 depths) onto ``img`` in place."""
    thick = max(2, int(round(0.075 * scale)))
    joint_r = max(1, int(round(0.03 * scale)))
    colours = {"shirt": body.shirt, "skin": body.skin, "trousers": body.trousers}
    shift = 4  # sub-pixel precision for cv2 drawing
    fp = np.round(pts * (1 << shift)).astype(np.int32)
    lighter = {part: _lighter(colour) for part, colour in colours.items()}
    items: list[tuple[float, int, tuple]] = []
    torso = fp[[5, 6, 12, 11]]
    items.append((float(depth[[5, 6, 11, 12]].mean()) - 0.05, 0, ("poly", torso, body.shirt)))
    # A limb's depth is the mean of its two joints' depths: np.mean of two values is their sum halved.
    limb_depth = ((depth[_LIMB_A] + depth[_LIMB_B]) / 2).tolist()
    for (a, b, part), d in zip(_LIMBS, limb_depth):
        items.append((d, 1, ("line", fp[a], fp[b], colours[part])))
    neck = ((fp[5] + fp[6]) // 2, fp[0])
    items.append((float(depth[[5, 6, 0]].mean()), 1, ("line", neck[0], neck[1], body.skin)))
    head_centre = (fp[3] + fp[4]) // 2  # between the ears; nose, eyes and ears lie on the disc
    head_radius = max(2, int(round(1.1 * body.head_r * scale)))
    items.append((float(depth[[0, 3, 4]].mean()), 2, ("disc", head_centre, head_radius, body.skin)))
    for j, d in zip(_BODY_JOINTS, depth[list(_BODY_JOINTS)].tolist()):
        items.append((d + 0.01, 3, ("disc", fp[j], joint_r, lighter[_joint_part(j)])))
    for _, _, item in sorted(items, key=lambda it: (it[0], it[1])):
        kind = item[0]
        if kind == "poly":
            cv2.fillPoly(img, [item[1].reshape(-1, 1, 2)], item[2], cv2.LINE_AA, shift)
        elif kind == "line":
            cv2.line(img, tuple(item[1]), tuple(item[2]), item[3], thick, cv2.LINE_AA, shift)
        else:
            cv2.circle(img, tuple(item[1]), item[2] << shift, item[3], -1, cv2.LINE_AA, shift)
    # Eyes as small dark dots, only where the head is large enough for them not to hide the nose.
    if head_radius >= 6:
        for j in (1, 2):
            cv2.circle(img, tuple(fp[j]), max(1, head_radius // 6) << shift, (40, 40, 40), -1, cv2.LINE_AA, shift)


def _joint_part(j: int) -> str:
    if j in (9, 10, 7, 8):
        return "skin" if j in (9, 10) else "shirt"
    if j in (5, 6):
        return "shirt"
    return "trousers"


def draw_object(img: np.ndarray, pts: np.ndarray, name: str, scale: float, size_m: float = 0.13) -> None:
    """Draw the held object ``name``, ``size_m`` metres across, at the right hand (after the forearm)."""
    shape, colour = OBJECTS[name]
    wrist, elbow = pts[R_WRIST], pts[R_ELBOW]
    axis = wrist - elbow
    norm = float(np.hypot(*axis))
    axis = axis / norm if norm > 1e-6 else np.array([0.0, 1.0])
    perp = np.array([-axis[1], axis[0]])
    size = max(3.0, size_m * scale)
    centre = wrist + axis * size * 0.45
    shift = 4
    mul = float(1 << shift)

    def poly(points: list[np.ndarray]) -> None:
        arr = np.round(np.array(points) * mul).astype(np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(img, [arr], colour, cv2.LINE_AA, shift)

    h = size / 2
    if shape == "box":
        poly([centre + h * (axis + perp), centre + h * (axis - perp), centre - h * (axis + perp), centre - h * (axis - perp)])
    elif shape == "disc":
        c = np.round(centre * mul).astype(np.int32)
        cv2.circle(img, (int(c[0]), int(c[1])), int(round(h * 1.1 * mul)), colour, -1, cv2.LINE_AA, shift)
    elif shape == "triangle":
        poly([centre + 1.3 * h * axis, centre - h * axis + 1.1 * h * perp, centre - h * axis - 1.1 * h * perp])
    elif shape == "bar":
        poly([centre + 0.45 * h * axis + 1.6 * h * perp, centre + 0.45 * h * axis - 1.6 * h * perp,
              centre - 0.45 * h * axis - 1.6 * h * perp, centre - 0.45 * h * axis + 1.6 * h * perp])
    else:  # pragma: no cover - OBJECTS and this table change together
        raise ValueError(f"unknown object shape {shape}")


def render_frame(
    bg: np.ndarray,
    noise: np.ndarray,
    people: list[tuple[np.ndarray, np.ndarray, Body]],
    obj: str | None,
    scale: float,
    object_size: float = 0.13,
) -> np.ndarray:
    """One frame: background + noise, people back to front, the object in person 0's hand.

    ``people`` holds (17 x 2 pixel points, 17 depths, body) per person; person 0 is the
    actor.
    """
    return draw_scene(noisy_background(bg, noise), people, obj, scale, object_size)


def noisy_background(bg: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """``bg`` plus one noise image of :func:`noise_bank`, clipped to uint8 (a new array)."""
    return np.clip(bg.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def draw_scene(
    img: np.ndarray,
    people: list[tuple[np.ndarray, np.ndarray, Body]],
    obj: str | None,
    scale: float,
    object_size: float = 0.13,
) -> np.ndarray:
    """Draw ``people`` back to front onto ``img`` (in place), the object in person 0's hand; ``img``."""
    order = sorted(range(len(people)), key=lambda i: float(people[i][1].mean()))
    for i in order:
        pts, depth, body = people[i]
        draw_person(img, pts, depth, body, scale)
        if i == 0 and obj is not None:
            draw_object(img, pts, obj, scale, object_size)
    return img
