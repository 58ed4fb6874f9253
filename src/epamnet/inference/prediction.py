"""What a recognizer found for one video: scores, top-k, the readable table and the JSON record."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Prediction:
    """One video's scores, the attention map, and the facts of the run."""

    video: Path
    checkpoint: Path
    class_names: list[str]
    classes_from: str | None  # the file the names came from (None: generic names)
    keypoints_from: str  # 'mmpose ...' or the skeleton file
    logits: np.ndarray  # C, rgb + pose (the inference score)
    rgb_logits: np.ndarray
    pose_logits: np.ndarray
    attention: np.ndarray  # T_rgb x h x w, values in (0, 1)
    pose_indices: np.ndarray  # video frames of the pose clip
    rgb_indices: np.ndarray  # video frames of the RGB clip (attention frame k <-> video frame rgb_indices[k])
    frames: int
    fps: float
    size: tuple[int, int]  # video (h, w)
    crop_box: tuple[int, int, int, int]  # x0, y0, x1, y1 in video pixels
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def probs(self) -> np.ndarray:
        z = self.logits.astype(np.float64) - float(np.max(self.logits))
        e = np.exp(z)
        return e / e.sum()

    def top(self, k: int = 5) -> list[dict[str, Any]]:
        """The ``k`` best classes: rank, index, class name, score (probability), logit."""
        probs = self.probs
        order = np.argsort(-probs, kind="stable")[: max(1, min(k, len(probs)))]
        return [
            {"rank": r + 1, "index": int(i), "class": self.class_names[i], "score": float(probs[i]),
             "logit": float(self.logits[i])}
            for r, i in enumerate(order)
        ]


def format_table(pred: Prediction, k: int = 5) -> str:
    """The readable top-k table (what ``epamnet predict`` prints)."""
    rows = pred.top(k)
    width = max([len("class")] + [len(r["class"]) for r in rows])
    h, w = pred.size
    lines = [
        f"video:      {pred.video} ({pred.frames} frames, {w}x{h}, {pred.fps:g} fps)",
        f"model:      {pred.checkpoint} ({len(pred.class_names)} classes"
        + (f", names from {pred.classes_from})" if pred.classes_from else ", no class names given)"),
        f"skeletons:  {pred.keypoints_from}",
        "",
        f"rank  {'class'.ljust(width)}   score",
    ]
    for r in rows:
        lines.append(f"{r['rank']:>4}  {r['class'].ljust(width)}  {r['score']:6.3f}")
    lines.append("(score: softmax of the summed RGB + pose logits)")
    return "\n".join(lines)


def prediction_json(pred: Prediction, k: int = 5) -> dict[str, Any]:
    """The top-k and the facts of the run, as plain JSON values."""
    h, w = pred.size
    return {
        "video": str(pred.video),
        "checkpoint": str(pred.checkpoint),
        "num_classes": len(pred.class_names),
        "classes_from": pred.classes_from,
        "keypoints_from": pred.keypoints_from,
        "frames": pred.frames,
        "fps": pred.fps,
        "width": w,
        "height": h,
        "crop_box": list(pred.crop_box),
        "pose_frames": [int(i) for i in pred.pose_indices],
        "rgb_frames": [int(i) for i in pred.rgb_indices],
        "attention_mean_per_rgb_frame": [round(float(a), 6) for a in pred.attention.mean(axis=(1, 2))],
        "score": "softmax of rgb_logits + pose_logits",
        "top": pred.top(k),
        **pred.extra,
    }
