"""RGB clips leave the loader as uint8 and are normalised on the device, a batch at a time.

The guarantee: the float32 values the model sees are bit for bit those of the per-clip
CPU normalisation (:func:`normalize_frames`, what the loader did before), flipped or not,
whether the tasks normalise a batch or one clip.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from epamnet.engine.tasks import FusionTask, SingleStreamTask
from epamnet.loader.rgb import flip_frames, format_clip, normalize_clips, normalize_frames


def _frames(seed: int, t: int = 5, h: int = 12, w: int = 9) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("flip", [False, True])
def test_device_normalisation_equals_the_per_clip_cpu_normalisation_bit_for_bit(flip: bool) -> None:
    clips = [_frames(seed) for seed in range(4)]
    batch = torch.stack([torch.from_numpy(format_clip(f, flip=flip)) for f in clips])
    assert batch.dtype == torch.uint8 and batch.shape == (4, 3, 5, 12, 9)
    got = normalize_clips(batch)
    for i, frames in enumerate(clips):
        reference = normalize_frames(flip_frames(frames) if flip else frames)
        assert got[i].dtype == torch.float32 and got[i].is_contiguous()
        np.testing.assert_array_equal(got[i].numpy().view(np.uint32), reference.view(np.uint32))
    # One clip (3 x T x H x W) normalises as in a batch.
    assert torch.equal(normalize_clips(batch[2]), got[2])


def test_every_value_of_every_channel_normalises_as_on_the_cpu() -> None:
    """All 256 levels in each channel: no rounding shortcut (x * 1/std) slips through."""
    levels = np.arange(256, dtype=np.uint8)
    frames = np.stack([levels, levels[::-1], np.roll(levels, 7)], axis=-1).reshape(1, 16, 16, 3)
    got = normalize_clips(torch.from_numpy(format_clip(frames))).numpy()
    np.testing.assert_array_equal(got.view(np.uint32), normalize_frames(frames).view(np.uint32))


def test_format_clip_refuses_non_uint8_and_normalize_refuses_floats() -> None:
    with pytest.raises(ValueError, match="uint8"):
        format_clip(_frames(0).astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        normalize_clips(torch.zeros(3, 2, 4, 4))


class _Recorder(nn.Module):
    """Returns fixed logits and keeps what it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []
        self.bias = nn.Parameter(torch.zeros(3))

    def forward(self, *inputs: torch.Tensor):
        self.seen = list(inputs)
        logits = self.bias.expand(inputs[0].shape[0], 3)
        return (logits, logits) if len(inputs) == 2 else logits


def test_tasks_normalise_uint8_clips_and_pass_floats_unchanged() -> None:
    frames = [_frames(seed) for seed in range(2)]
    imgs = torch.stack([torch.from_numpy(format_clip(f)) for f in frames])
    heatmaps = torch.rand(2, 17, 5, 6, 6)
    labels = torch.tensor([0, 2])
    expected = torch.stack([torch.from_numpy(normalize_frames(f)) for f in frames])

    model = _Recorder()
    SingleStreamTask(input_key="imgs").step(model, {"imgs": imgs, "label": labels}, torch.device("cpu"))
    assert torch.equal(model.seen[0], expected)
    FusionTask().step(model, {"imgs": imgs, "heatmaps": heatmaps, "label": labels}, torch.device("cpu"))
    assert torch.equal(model.seen[0], expected) and model.seen[1] is heatmaps  # heatmaps untouched
    SingleStreamTask(input_key="heatmaps").step(model, {"heatmaps": heatmaps, "label": labels}, torch.device("cpu"))
    assert model.seen[0] is heatmaps
