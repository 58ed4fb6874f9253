"""Tasks: how one collated batch becomes (loss, class scores, labels) for a model.

The trainer and the evaluator are generic; a task is the only place that knows what
the model takes and returns. Batches may be dicts (``{"imgs", "heatmaps", "label"}``
from the epamnet datasets) or tuples (``TensorDataset``); a key is then a position.

- :class:`SingleStreamTask`: ``logits = model(batch[input_key])``; loss = CE; scores = logits.
- :class:`FusionTask`: ``rgb, pose = model(imgs, heatmaps)``; loss = CE(rgb) + CE(pose)
  (weights 1:1, as the official code); scores = rgb + pose (raw logits, no softmax).

RGB clips arrive as uint8 (the loader hands out frames, not floats) and are normalised
here, on the device, a batch at a time (:func:`epamnet.loader.rgb.model_input`); float
inputs are passed on unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from epamnet.loader.rgb import model_input

Key = str | int


@dataclass(frozen=True)
class StepOutput:
    """Result of one batch: mean loss (with grad in training), ``B x C`` scores, ``B`` labels."""

    loss: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor


class Task(Protocol):
    """Turns a batch into a :class:`StepOutput` by running ``model`` on ``device``."""

    def step(self, model: nn.Module, batch: Any, device: torch.device) -> StepOutput: ...


def pick(batch: Any, key: Key) -> Any:
    """``batch[key]`` with a clear error when a dict key or tuple position is missing."""
    if isinstance(batch, Mapping):
        if key not in batch:
            raise KeyError(f"batch has no key {key!r} (keys: {sorted(map(str, batch))})")
        return batch[key]
    if isinstance(batch, Sequence) and isinstance(key, int):
        return batch[key]
    raise KeyError(f"cannot take {key!r} from a batch of type {type(batch).__name__}")


def _to(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    return x.to(device, non_blocking=True)


@dataclass(frozen=True)
class SingleStreamTask:
    """One input tensor -> logits (the X-ShiftNet RGB or pose classifier)."""

    input_key: Key = "imgs"
    label_key: Key = "label"

    def step(self, model: nn.Module, batch: Any, device: torch.device) -> StepOutput:
        x = model_input(_to(pick(batch, self.input_key), device))
        y = _to(pick(batch, self.label_key), device).long()
        logits = model(x)
        return StepOutput(F.cross_entropy(logits.float(), y), logits.detach().float(), y)


@dataclass(frozen=True)
class FusionTask:
    """RGB + heatmaps -> (rgb_logits, pose_logits) (EPAM-Net)."""

    rgb_key: Key = "imgs"
    pose_key: Key = "heatmaps"
    label_key: Key = "label"

    def step(self, model: nn.Module, batch: Any, device: torch.device) -> StepOutput:
        imgs = model_input(_to(pick(batch, self.rgb_key), device))
        heatmaps = _to(pick(batch, self.pose_key), device)
        y = _to(pick(batch, self.label_key), device).long()
        rgb_logits, pose_logits = model(imgs, heatmaps)
        loss = F.cross_entropy(rgb_logits.float(), y) + F.cross_entropy(pose_logits.float(), y)
        scores = (rgb_logits.detach().float() + pose_logits.detach().float())
        return StepOutput(loss, scores, y)
