"""Extraction settings from params.yaml's ``pose`` section (the ``pose-extract`` stage and ``predict``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from epamnet.pose.extract import PoseSettings

if TYPE_CHECKING:
    from epamnet.config import Pose


def pose_settings(pose: Pose, **changes: Any) -> PoseSettings:
    """The :class:`PoseSettings` of ``params.pose``; ``changes`` (PoseSettings fields) replace its values."""
    settings = PoseSettings(
        checkpoint=Path(pose.checkpoint),
        config=pose.config,
        random_init=pose.random_init,
        flip_test=pose.flip_test,
        batch_size=pose.batch_size,
        max_persons=pose.max_persons,
        box_source=pose.box_source,
        box_padding=pose.box_padding,
        det_config=Path(pose.det_config) if pose.det_config else None,
        det_checkpoint=Path(pose.det_checkpoint) if pose.det_checkpoint else None,
        det_score_threshold=pose.det_score_threshold,
        device=pose.device,
    )
    return dataclasses.replace(settings, **changes) if changes else settings
