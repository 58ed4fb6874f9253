"""Person boxes for top-down pose estimation: where in each frame to look for people.

A box source is called once per decoded frame and returns that frame's person boxes
(x0, y0, x1, y1 in the frame's pixels), optionally with a track id per box (which
person of a known set the box belongs to). Three sources:

- ``skeleton``: boxes around an existing annotation's keypoints (the dataset's own
  skeletons or a previous extraction pass), one per person present in the frame,
  padded and clipped to the frame; track id = the person's index in the annotation.
- ``full_frame``: the whole frame as one box (single-person videos framed tightly).
- ``detector``: an mmdet detector from a user-supplied config and checkpoint (person
  class only, above a score threshold). It needs mmcv's compiled ops, which the
  default compile-free install (mmcv-lite) does not have: building it then raises
  one line saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from epamnet.errors import EpamnetError, file_error

logger = logging.getLogger(__name__)

#: The names accepted for ``pose.box_source``.
BOX_SOURCES: tuple[str, ...] = ("skeleton", "full_frame", "detector")


@dataclass(frozen=True)
class FrameBoxes:
    """The person boxes of one frame: ``boxes`` N x 4 float32 (x0, y0, x1, y1), ``tracks`` N ints or None."""

    boxes: np.ndarray
    tracks: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.boxes.shape[0])


def _frame_boxes(boxes: Any, tracks: Any = None) -> FrameBoxes:
    arr = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    ids = None if tracks is None else np.asarray(tracks, dtype=np.int64).reshape(-1)
    return FrameBoxes(arr, ids)


class BoxSource(Protocol):
    """Called once per frame, in order: ``(frame_dir, frame index, BGR frame) -> FrameBoxes``."""

    def __call__(self, frame_dir: str, index: int, frame: np.ndarray) -> FrameBoxes: ...


class FullFrameBoxes:
    """The whole frame as the only person box."""

    def __call__(self, frame_dir: str, index: int, frame: np.ndarray) -> FrameBoxes:
        h, w = frame.shape[:2]
        return _frame_boxes([[0.0, 0.0, float(w), float(h)]], [0])


def keypoint_box(
    keypoints: np.ndarray, scores: np.ndarray, frame_hw: tuple[int, int], padding: float, min_score: float = 0.0
) -> np.ndarray | None:
    """The padded box around one person's joints (17 x 2, scores 17), clipped to the frame.

    Joints with a score <= ``min_score`` or non-finite coordinates are ignored; each
    side grows by ``padding`` times the box's width (x) or height (y). Returns None
    when fewer than two joints are usable or the clipped box is under two pixels.
    """
    ok = (scores > min_score) & np.isfinite(keypoints).all(axis=1)
    if int(ok.sum()) < 2:
        return None
    pts = keypoints[ok]
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    pad_x, pad_y = padding * (x1 - x0), padding * (y1 - y0)
    h, w = frame_hw
    box = np.array(
        [max(0.0, x0 - pad_x), max(0.0, y0 - pad_y), min(float(w), x1 + pad_x), min(float(h), y1 + pad_y)],
        dtype=np.float32,
    )
    if box[2] - box[0] < 2 or box[3] - box[1] < 2:
        return None
    return box


class SkeletonBoxes:
    """Boxes around the persons of existing skeleton annotations (provided or a previous pass).

    Keypoints are in the annotation's ``img_shape`` pixels and are rescaled to the
    decoded frame's size when the two differ. Frames beyond the annotation's length get
    no boxes.
    """

    def __init__(
        self,
        annotations: Sequence[Mapping[str, Any]],
        *,
        padding: float = 0.1,
        min_score: float = 0.0,
        source: str | Path = "skeleton annotations",
    ) -> None:
        if padding < 0:
            raise EpamnetError(f"pose.box_padding: {padding} is negative; use a fraction >= 0 such as 0.1")
        self.padding = float(padding)
        self.min_score = float(min_score)
        self.source = str(source)
        self._by_name: dict[str, Mapping[str, Any]] = {str(a["frame_dir"]): a for a in annotations}

    @classmethod
    def from_file(cls, path: str | Path, *, padding: float = 0.1, min_score: float = 0.0) -> SkeletonBoxes:
        """Read the annotations of ``path`` (mmaction2 skeleton pickle, read safely)."""
        from epamnet.io.skeleton import load_annotations

        return cls(load_annotations(path), padding=padding, min_score=min_score, source=path)

    def __contains__(self, frame_dir: str) -> bool:
        return frame_dir in self._by_name

    def __call__(self, frame_dir: str, index: int, frame: np.ndarray) -> FrameBoxes:
        ann = self._by_name.get(frame_dir)
        if ann is None:
            raise file_error(
                self.source, f"has no skeleton for video {frame_dir}, needed for its person boxes",
                "use pose.box_source full_frame or detector for videos without skeletons",
            )
        kp, score = ann["keypoint"], ann["keypoint_score"]
        if index >= kp.shape[1]:
            return _frame_boxes(np.zeros((0, 4)))
        h, w = frame.shape[:2]
        ann_h, ann_w = (int(v) for v in ann["img_shape"])
        scale = np.array([w / ann_w, h / ann_h], dtype=np.float32)
        boxes, tracks = [], []
        for person in range(kp.shape[0]):
            box = keypoint_box(
                np.asarray(kp[person, index], np.float32) * scale, np.asarray(score[person, index], np.float32),
                (h, w), self.padding, self.min_score,
            )
            if box is not None:
                boxes.append(box)
                tracks.append(person)
        return _frame_boxes(np.array(boxes).reshape(-1, 4), tracks)


class DetectorBoxes:
    """Person boxes from an mmdet detector (user-supplied config and checkpoint).

    The checkpoint is read with the same safe loader as the pose weights, and every
    pretrained ``init_cfg`` of the config is removed, so nothing downloads. Only the
    ``person_class`` label (COCO: 0) at or above ``score_threshold`` is kept.
    """

    def __init__(
        self,
        config: str | Path | None,
        checkpoint: str | Path | None,
        *,
        score_threshold: float = 0.5,
        person_class: int = 0,
        device: str = "cpu",
    ) -> None:
        from epamnet.pose.compat import ensure_mmcv_ext, mmcv_ops_available

        for setting, path in (("pose.det_config", config), ("pose.det_checkpoint", checkpoint)):
            if path is None:
                raise EpamnetError(f"{setting}: not set but pose.box_source is detector; set it to your mmdet file")
            if not Path(path).is_file():
                raise file_error(path, f"{setting} file not found", f"set {setting} to an existing mmdet file")
        ensure_mmcv_ext()
        if not mmcv_ops_available():
            raise EpamnetError(
                "pose.box_source: detector needs mmcv's compiled ops (mmcv-full), but only mmcv-lite is installed; "
                "install mmcv 2.1.0 with ops, or use box_source skeleton or full_frame"
            )
        from mmdet.apis import inference_detector, init_detector
        from mmengine.config import Config

        from epamnet.pose.estimator import load_weights, strip_pretrained

        cfg = Config.fromfile(str(config))
        strip_pretrained(cfg._cfg_dict)
        self.model = init_detector(cfg, checkpoint=None, device="cpu", cfg_options={})
        load_weights(self.model, checkpoint)  # type: ignore[arg-type]
        self.model.to(device).eval()
        self._infer = inference_detector
        self.score_threshold = float(score_threshold)
        self.person_class = int(person_class)

    def __call__(self, frame_dir: str, index: int, frame: np.ndarray) -> FrameBoxes:
        result = self._infer(self.model, frame)
        inst = result.pred_instances
        keep = (inst.labels == self.person_class) & (inst.scores >= self.score_threshold)
        return _frame_boxes(inst.bboxes[keep].cpu().numpy())


def make_box_source(
    kind: str,
    *,
    skeletons: str | Path | Sequence[Mapping[str, Any]] | None = None,
    padding: float = 0.1,
    det_config: str | Path | None = None,
    det_checkpoint: str | Path | None = None,
    det_score_threshold: float = 0.5,
    device: str = "cpu",
) -> BoxSource:
    """Build the box source named ``kind`` (see :data:`BOX_SOURCES`).

    ``skeletons`` (a file or the annotations themselves) is required for ``skeleton``;
    the ``det_*`` arguments for ``detector``.
    """
    if kind == "full_frame":
        return FullFrameBoxes()
    if kind == "skeleton":
        if skeletons is None:
            raise EpamnetError("pose.box_source: skeleton needs skeleton annotations to derive boxes from; "
                               "give the provided skeletons or a previous pass")
        if isinstance(skeletons, (str, Path)):
            return SkeletonBoxes.from_file(skeletons, padding=padding)
        return SkeletonBoxes(skeletons, padding=padding)
    if kind == "detector":
        return DetectorBoxes(det_config, det_checkpoint, score_threshold=det_score_threshold, device=device)
    raise EpamnetError(f"pose.box_source: unknown source {kind!r}; use one of {', '.join(BOX_SOURCES)}")


__all__ = [
    "BOX_SOURCES",
    "BoxSource",
    "DetectorBoxes",
    "FrameBoxes",
    "FullFrameBoxes",
    "SkeletonBoxes",
    "keypoint_box",
    "make_box_source",
]
