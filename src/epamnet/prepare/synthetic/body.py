"""3D stick bodies and class motions of the synthetic datasets.

A body is a COCO-17 skeleton built by forward kinematics from a handful of joint
angles per frame (shoulder flexion/abduction, elbow, hip, knee, torso lean) on
subject-specific segment lengths. Coordinates are metres in the subject's frame:
``x`` to the subject's left, ``y`` up, ``z`` forward (towards a camera at yaw 0),
origin on the floor between the feet.

A class motion is the group's coarse angle trajectory (an envelope: rise, hold,
fall, with random timing and amplitude) plus the fine variant: the whole body bounces
round a small circle, slowly or fast, at turn rates that alias onto each other at the
RGB clip's sampling rate. The random draws never depend on
the held object, and the two variants consume the same draws, so classes that differ
only by object have exactly the same motion distribution.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from epamnet.prepare.synthetic.design import GROUPS

#: COCO-17 joint names, in order.
COCO_JOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
R_ELBOW, R_WRIST = 8, 10

#: Angle tracks of a pose sequence (radians; lean forward, flexion forward/up, abduction sideways).
ANGLES: tuple[str, ...] = (
    "lean", "side_lean", "l_flex", "l_abd", "l_elbow", "r_flex", "r_abd", "r_elbow",
    "l_hip", "l_knee", "r_hip", "r_knee",
)  # fmt: skip

_SKIN_TONES = ((255, 219, 172), (241, 194, 125), (234, 192, 160), (224, 172, 105), (250, 210, 190))


@dataclass(frozen=True)
class Body:
    """Segment lengths (metres) and colours (RGB) of one person."""

    hip_half: float
    shoulder_half: float
    torso: float
    neck: float
    head_r: float
    upper_arm: float
    forearm: float
    thigh: float
    shin: float
    shirt: tuple[int, int, int]
    trousers: tuple[int, int, int]
    skin: tuple[int, int, int]

    @property
    def height(self) -> float:
        """Standing height (ankle height 0.08 m included)."""
        return 0.08 + self.shin + self.thigh + self.torso + self.neck + 2 * self.head_r


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (round(r * 255), round(g * 255), round(b * 255))


def random_body(rng: np.random.Generator) -> Body:
    """A person with random proportions (overall scale 0.9..1.1) and clothing colours.

    Clothing is bright (value >= 0.65) and the backgrounds are dark and muted, so the
    figure always stands out; saturation stays moderate so the held objects (fully
    saturated colours) remain the most colourful thing in the hand.
    """
    scale = rng.uniform(0.9, 1.1)
    jitter = rng.uniform(0.93, 1.07, size=9)
    base = np.array([0.11, 0.19, 0.52, 0.08, 0.11, 0.30, 0.27, 0.44, 0.43])
    lengths = base * scale * jitter
    shirt = _hsv(rng.uniform(), rng.uniform(0.15, 0.45), rng.uniform(0.85, 1.0))
    trousers = _hsv(rng.uniform(), rng.uniform(0.3, 0.6), rng.uniform(0.65, 0.85))
    skin = _SKIN_TONES[int(rng.integers(len(_SKIN_TONES)))]
    return Body(*map(float, lengths), shirt=shirt, trousers=trousers, skin=skin)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def rest_angles(num_frames: int) -> dict[str, np.ndarray]:
    """Standing pose: arms hanging slightly away from the body, elbows a little bent."""
    zeros = np.zeros(num_frames)
    angles = {name: zeros.copy() for name in ANGLES}
    angles["l_abd"] += np.radians(8)
    angles["r_abd"] += np.radians(8)
    angles["l_elbow"] += np.radians(10)
    angles["r_elbow"] += np.radians(10)
    return angles


def idle_motion(num_frames: int, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Standing still with a slow sway: angle tracks and a root offset (T x 3)."""
    p = np.linspace(0.0, 1.0, num_frames)
    angles = rest_angles(num_frames)
    cycles = rng.uniform(0.5, 1.5) * max(num_frames / 60.0, 0.5)
    phase = rng.uniform(0, 2 * np.pi)
    sway = np.sin(2 * np.pi * cycles * p + phase)
    angles["side_lean"] += np.radians(2.0) * sway
    angles["lean"] += np.radians(rng.uniform(-2, 4))
    root = np.zeros((num_frames, 3))
    root[:, 0] = 0.012 * sway
    return angles, root


def class_motion(
    group: int,
    variant: int,
    num_frames: int,
    rng: np.random.Generator,
    fine_cycles: float,
    fine_radius: float,
    fine_alias: float,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Angle tracks and root offset (T x 3, metres) of one take.

    ``group`` picks the coarse motion. ``variant`` the bounce: the whole body moves
    round a circle of ``fine_radius`` in the frontal plane, slowly for variant 0 (``s``
    turns per clip, ``s`` uniform in +-``fine_cycles``, the sign being the direction) or
    fast for variant 1 (``fine_alias - s`` turns). Sampled ``fine_alias`` times per clip
    the fast path is the slow one mirrored, so the two variants look alike at that rate
    and differ plainly at three times it. The draws from ``rng`` are the same for every
    group and variant, in the same order.
    """
    angles, root = idle_motion(num_frames, rng)
    p = np.linspace(0.0, 1.0, num_frames)
    start = rng.uniform(0.05, 0.18)
    rise = rng.uniform(0.15, 0.25)
    end = rng.uniform(0.82, 0.95)
    fall = rng.uniform(0.12, 0.2)
    amp = rng.uniform(0.85, 1.1)
    bounce_phase = rng.uniform(0, 2 * np.pi)
    slow = fine_cycles * rng.uniform(-1.0, 1.0)
    env = amp * _smoothstep((p - start) / rise) * _smoothstep((end - p) / fall)
    d = np.radians
    name = GROUPS[group]
    if name == "hand_to_mouth":
        angles["r_flex"] += d(95) * env
        angles["r_elbow"] += d(115) * env
        angles["r_abd"] += d(-22) * env
    elif name == "reach_forward":
        angles["r_flex"] += d(85) * env
        angles["r_elbow"] += d(5) * env
        angles["lean"] += d(12) * env
    elif name == "arms_overhead":
        angles["r_flex"] += d(160) * env
        angles["l_flex"] += d(160) * env
        angles["r_abd"] += d(8) * env
        angles["l_abd"] += d(8) * env
    elif name == "bend_down":
        angles["lean"] += d(55) * env
        angles["r_hip"] += d(20) * env
        angles["l_hip"] += d(20) * env
        angles["r_knee"] += d(35) * env
        angles["l_knee"] += d(35) * env
        angles["r_flex"] += d(40) * env
    elif name == "side_raise":
        angles["r_abd"] += d(90) * env
        angles["l_abd"] += d(25) * env
        angles["r_elbow"] += d(10) * env
    elif name == "squat":
        angles["r_hip"] += d(80) * env
        angles["l_hip"] += d(80) * env
        angles["r_knee"] += d(110) * env
        angles["l_knee"] += d(110) * env
        angles["r_flex"] += d(75) * env
        angles["l_flex"] += d(75) * env
        angles["lean"] += d(25) * env
    else:  # pragma: no cover - GROUPS and this table change together
        raise ValueError(f"no motion for group {name}")
    # The fine variant: x to the subject's left, y up; positive turns go from +x to +y.
    cycles = slow if variant == 0 else fine_alias - slow
    theta = 2 * np.pi * cycles * p + bounce_phase
    fade = _smoothstep(p / 0.08) * _smoothstep((1 - p) / 0.08)
    root[:, 0] += fine_radius * fade * np.cos(theta)
    root[:, 1] += fine_radius * fade * np.sin(theta)
    return angles, root


def forward_kinematics(body: Body, angles: dict[str, np.ndarray], root: np.ndarray) -> np.ndarray:
    """Joint positions (T x 17 x 3, metres) from angle tracks, feet kept on the floor."""
    num_frames = len(angles["lean"])
    joints = np.zeros((num_frames, 17, 3))
    lean, side = angles["lean"], angles["side_lean"]
    up_t = np.stack([np.sin(side), np.cos(side) * np.cos(lean), np.cos(side) * np.sin(lean)], axis=-1)
    fwd_t = np.stack([np.zeros_like(lean), -np.sin(lean), np.cos(lean)], axis=-1)
    lat = np.array([1.0, 0.0, 0.0])
    pelvis = np.zeros((num_frames, 3))

    def limb(flex: np.ndarray, abd: np.ndarray, sign: float) -> np.ndarray:
        return np.stack([sign * np.sin(abd), -np.cos(abd) * np.cos(flex), np.cos(abd) * np.sin(flex)], axis=-1)

    # Legs (relative to the pelvis).
    legs = {}
    for sign, hip_i, knee_i, ankle_i, pre in ((1.0, 11, 13, 15, "l"), (-1.0, 12, 14, 16, "r")):
        hip = pelvis + sign * body.hip_half * lat
        h, k = angles[f"{pre}_hip"], angles[f"{pre}_knee"]
        thigh = np.stack([np.full_like(h, sign * 0.03), -np.cos(h), np.sin(h)], axis=-1)
        shin = np.stack([np.full_like(h, sign * 0.02), -np.cos(h - k), np.sin(h - k)], axis=-1)
        knee = hip + body.thigh * thigh
        ankle = knee + body.shin * shin
        joints[:, hip_i], joints[:, knee_i], joints[:, ankle_i] = hip, knee, ankle
        legs[pre] = ankle
    shoulder_c = pelvis + body.torso * up_t
    joints[:, 5] = shoulder_c + body.shoulder_half * lat
    joints[:, 6] = shoulder_c - body.shoulder_half * lat
    for sign, sh_i, el_i, wr_i, pre in ((1.0, 5, 7, 9, "l"), (-1.0, 6, 8, 10, "r")):
        flex, abd, elbow = angles[f"{pre}_flex"], angles[f"{pre}_abd"], angles[f"{pre}_elbow"]
        joints[:, el_i] = joints[:, sh_i] + body.upper_arm * limb(flex, abd, sign)
        joints[:, wr_i] = joints[:, el_i] + body.forearm * limb(flex + elbow, abd, sign)
    r = body.head_r
    head = shoulder_c + (body.neck + r) * up_t
    joints[:, 0] = head + 0.9 * r * fwd_t - 0.15 * r * up_t
    joints[:, 1] = head + 0.75 * r * fwd_t + 0.3 * r * up_t + 0.35 * r * lat
    joints[:, 2] = head + 0.75 * r * fwd_t + 0.3 * r * up_t - 0.35 * r * lat
    joints[:, 3] = head + 0.92 * r * lat - 0.1 * r * fwd_t
    joints[:, 4] = head - 0.92 * r * lat - 0.1 * r * fwd_t
    # Feet on the floor: the lower ankle sits at 0.08 m; the feet stay under the body.
    lowest = np.minimum(legs["l"][:, 1], legs["r"][:, 1])
    feet_z = 0.5 * (legs["l"][:, 2] + legs["r"][:, 2])
    shift = np.stack([np.zeros(num_frames), 0.08 - lowest, -feet_z], axis=-1)
    return joints + shift[:, None, :] + root[:, None, :]


def yaw_matrix(yaw: float) -> np.ndarray:
    """Rotation about the vertical axis by ``yaw`` radians (positive turns +z towards +x)."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def take_joints(
    body: Body,
    angles: dict[str, np.ndarray],
    root: np.ndarray,
    yaw: float,
    position: tuple[float, float],
) -> np.ndarray:
    """World joints (T x 17 x 3) of a take: kinematics, body turn, placement."""
    joints = forward_kinematics(body, angles, root)
    joints = joints @ yaw_matrix(yaw).T
    joints[..., 0] += position[0]
    joints[..., 2] += position[1]
    return joints
