"""Frame sampling rules and the torch datasets built on them (tiny generated data)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from epamnet.loader.dataset import (
    ClipDataset,
    PoseClipConfig,
    PoseDataset,
    RGBClipConfig,
    RGBDataset,
    RGBPoseDataset,
    pose_clip,
    pose_pipeline_config,
)
from epamnet.loader.sampling import rgb_indices, rgb_stride, sample_frame_indices
from epamnet.errors import EpamnetError
from epamnet.io.skeleton import load_annotations, save_annotations
from epamnet.io.splitfile import load_split
from epamnet.io.video import write_video

# ---------------------------------------------------------------- sampling rules


def reference_test_clip(n: int, clip_len: int) -> np.ndarray:
    """mmaction2's test-mode rule written literally, reseeding the *global* RNG with 255."""
    state = np.random.get_state()
    try:
        np.random.seed(255)
        if n < clip_len:
            inds = np.arange(clip_len)
        elif n < 2 * clip_len:
            chosen = np.random.choice(clip_len + 1, n - clip_len, replace=False)
            offset = np.zeros(clip_len + 1, dtype=np.int64)
            offset[chosen] = 1
            inds = np.arange(clip_len) + np.cumsum(offset)[:-1]
        else:
            bids = np.array([i * n // clip_len for i in range(clip_len + 1)])
            inds = bids[:clip_len] + np.random.randint(np.diff(bids))
        return np.mod(inds, n)
    finally:
        np.random.set_state(state)


@pytest.mark.parametrize("clip_len", [1, 4, 16, 48])
def test_test_mode_matches_global_reseed_reference_and_leaves_global_rng_alone(clip_len: int) -> None:
    for n in list(range(1, 3 * clip_len + 2)) + [500, 2001]:
        before = np.random.get_state()
        ours = sample_frame_indices(n, clip_len, test_mode=True)
        after = np.random.get_state()
        assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
        np.testing.assert_array_equal(ours, reference_test_clip(n, clip_len), err_msg=f"n={n}")
        np.testing.assert_array_equal(ours, sample_frame_indices(n, clip_len, test_mode=True))


def test_short_video_loops_consecutive_frames() -> None:
    np.testing.assert_array_equal(sample_frame_indices(5, 12, test_mode=True), np.arange(12) % 5)
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(50):
        inds = sample_frame_indices(5, 12, test_mode=False, rng=rng)
        assert inds.shape == (12,) and inds.dtype == np.int64
        np.testing.assert_array_equal(inds, (inds[0] + np.arange(12)) % 5)
        starts.add(int(inds[0]))
    assert starts == {0, 1, 2, 3, 4}


@pytest.mark.parametrize("rng", [np.random.default_rng(1), np.random.RandomState(1)], ids=["Generator", "RandomState"])
def test_medium_video_inserts_offsets_without_repeats(rng: np.random.Generator | np.random.RandomState) -> None:
    for n in range(16, 32):
        inds = sample_frame_indices(n, 16, test_mode=False, rng=rng)
        assert np.all(np.diff(inds) >= 1) and np.all(np.diff(inds) <= 2)
        assert inds[0] in (0, 1) and inds[-1] in (n - 2, n - 1)
        assert np.sum(np.diff(inds) == 2) + inds[0] + (n - 1 - inds[-1]) == n - 16  # every skipped frame counted


def test_long_video_one_frame_per_equal_segment() -> None:
    rng = np.random.default_rng(2)
    n, clip_len = 103, 16
    bounds = np.arange(clip_len + 1) * n // clip_len
    seen = np.zeros(n, dtype=bool)
    for _ in range(200):
        inds = sample_frame_indices(n, clip_len, test_mode=False, rng=rng)
        assert np.all(bounds[:-1] <= inds) and np.all(inds < bounds[1:])
        seen[inds] = True
    assert seen.all()  # every frame of every segment can be drawn


def test_sampling_bad_arguments() -> None:
    with pytest.raises(ValueError, match="total_frames"):
        sample_frame_indices(0, 8, test_mode=True)
    with pytest.raises(ValueError, match="clip_len"):
        sample_frame_indices(10, 0, test_mode=True)
    with pytest.raises(ValueError, match="rng"):
        sample_frame_indices(10, 4, test_mode=False)


def test_rgb_indices_are_a_strided_subset_of_pose_indices() -> None:
    pose = sample_frame_indices(300, 48, test_mode=True)
    np.testing.assert_array_equal(rgb_indices(pose, 16), pose[0::3])
    np.testing.assert_array_equal(rgb_indices(pose, 48), pose)
    odd = np.arange(50)
    assert rgb_stride(50, 16) == 3
    np.testing.assert_array_equal(rgb_indices(odd, 16), np.arange(0, 48, 3))
    with pytest.raises(ValueError, match="RGB clip"):
        rgb_indices(np.arange(8), 16)


# ---------------------------------------------------------------- datasets

FRAMES = {"a": 20, "b": 40, "c": 90}
LABELS = {"a": 0, "b": 2, "c": 1}
VIDEO_SIZE = 32


def frame_value(i: int) -> int:
    """Grey level that encodes frame ``i`` (robust to lossy MJPG)."""
    return 10 + 2 * i


@pytest.fixture
def prepared(tmp_path: Path) -> Path:
    """A prepared dataset: 32x32 MJPG videos whose grey level encodes the frame index."""
    rng = np.random.default_rng(0)
    anns = []
    for name, total in FRAMES.items():
        frames = np.empty((total, VIDEO_SIZE, VIDEO_SIZE, 3), dtype=np.uint8)
        for i in range(total):
            frames[i] = frame_value(i)
        frames[:, :, : VIDEO_SIZE // 2, 0] = 0  # left half without red: shows a flip
        rel = f"videos/shard-000/{name}.avi"
        write_video(tmp_path / rel, frames, fps=10)
        kp = rng.uniform(40, 180, size=(2, total, 17, 2)).astype(np.float32)
        score = rng.uniform(0.2, 1.0, size=(2, total, 17)).astype(np.float32)
        anns.append(
            {
                "frame_dir": name,
                "label": LABELS[name],
                "img_shape": (224, 224),
                "original_shape": (480, 640),
                "total_frames": total,
                "keypoint": kp,
                "keypoint_score": score,
                "filename": rel,
            }
        )
    save_annotations(tmp_path / "annotations.pkl", anns)
    split = {
        "dataset": "synthetic",
        "protocol": "xsub",
        "train": [[n, LABELS[n]] for n in FRAMES],
        "val": [],
        "test": [["c", 1], ["a", 0]],
    }
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "xsub.json").write_text(json.dumps(split))
    return tmp_path


POSE = PoseClipConfig(clip_len=12, heatmap_size=(14, 14))
RGB = RGBClipConfig(clip_len=4, size=16)


def make(prepared: Path, part: str = "train", **kwargs: object) -> RGBPoseDataset:
    return RGBPoseDataset(
        prepared / "splits" / "xsub.json",
        part,
        prepared / "annotations.pkl",
        prepared,
        pose=POSE,
        rgb=RGB,
        **kwargs,  # type: ignore[arg-type]
    )


def decoded_frame_numbers(imgs: torch.Tensor) -> np.ndarray:
    """Read the frame numbers back from the green channel of a uint8 clip."""
    green = imgs[1].numpy().astype(np.float64)
    return np.round((green.mean(axis=(1, 2)) - 10) / 2).astype(int)


def test_test_mode_items_shapes_labels_and_frames(prepared: Path) -> None:
    ds = make(prepared, "test")
    assert len(ds) == 2
    item = ds[0]
    assert item["heatmaps"].shape == (17, 12, 14, 14) and item["heatmaps"].dtype == torch.float32
    assert item["imgs"].shape == (3, 4, 16, 16) and item["imgs"].dtype == torch.uint8
    assert int(item["label"]) == 1 and item["index"] == 0
    pose_inds, rgb_inds, flip = ds.frame_indices(0)
    assert not flip
    np.testing.assert_array_equal(pose_inds, sample_frame_indices(90, 12, test_mode=True))
    np.testing.assert_array_equal(rgb_inds, pose_inds[::3])
    np.testing.assert_array_equal(decoded_frame_numbers(item["imgs"]), rgb_inds)
    ann = ds.annotations[0]
    expected = pose_clip(ann["keypoint"], ann["keypoint_score"], (224, 224), pose_inds, POSE)
    np.testing.assert_array_equal(item["heatmaps"].numpy(), expected)
    again = make(prepared, "test", seed=99)[0]  # test mode ignores the training seed
    assert torch.equal(again["heatmaps"], item["heatmaps"]) and torch.equal(again["imgs"], item["imgs"])


def test_train_mode_is_a_function_of_seed_epoch_index(prepared: Path) -> None:
    ds1, ds2 = make(prepared, train=True, seed=3), make(prepared, train=True, seed=3)
    forward = [ds1[i] for i in range(3)]
    backward = [ds2[i] for i in reversed(range(3))][::-1]
    for a, b in zip(forward, backward, strict=True):
        assert torch.equal(a["heatmaps"], b["heatmaps"]) and torch.equal(a["imgs"], b["imgs"])
    draws = {}
    for epoch in range(4):
        ds1.set_epoch(epoch)
        draws[epoch] = [ds1.frame_indices(i)[0].tolist() for i in range(3)]
    assert len({json.dumps(v) for v in draws.values()}) == 4  # each epoch draws anew
    other = make(prepared, train=True, seed=4)
    assert any(other.frame_indices(i)[0].tolist() != draws[0][i] for i in range(3))


def test_train_loading_is_independent_of_worker_count(prepared: Path) -> None:
    ds = make(prepared, train=True, seed=5)
    ds.set_epoch(2)
    batches = {}
    for workers in (0, 2):
        loader = DataLoader(ds, batch_size=2, shuffle=False, num_workers=workers)
        batches[workers] = list(loader)
    for a, b in zip(batches[0], batches[2], strict=True):
        assert torch.equal(a["heatmaps"], b["heatmaps"]) and torch.equal(a["imgs"], b["imgs"])
        assert torch.equal(a["label"], b["label"])


def test_flip_applies_to_both_streams_together(prepared: Path) -> None:
    ds = make(prepared, train=True, seed=0, flip_ratio=0.5)
    flips = {}
    for epoch in range(8):
        ds.set_epoch(epoch)
        flips[epoch] = ds.frame_indices(2)[2]
    assert set(flips.values()) == {True, False}
    for epoch, flip in flips.items():
        ds.set_epoch(epoch)
        item = ds[2]
        red = item["imgs"][0].numpy().astype(np.float64)  # T x H x W
        left, right = red[:, :, :6].mean(), red[:, :, -6:].mean()
        side = "left" if left > right else "right"
        assert (left > right) == flip, f"epoch {epoch}: flip={flip} but the red half is on the {side}"
        pose_inds, _, _ = ds.frame_indices(2)
        ann = ds.annotations[2]
        expected = pose_clip(ann["keypoint"], ann["keypoint_score"], (224, 224), pose_inds, POSE, flip=flip)
        np.testing.assert_array_equal(item["heatmaps"].numpy(), expected)
    never = make(prepared, train=True, flip_ratio=0.0)
    assert not any(never.frame_indices(i)[2] for i in range(3))


def test_single_stream_datasets(prepared: Path) -> None:
    pose = PoseDataset(prepared / "splits" / "xsub.json", "test", prepared / "annotations.pkl", pose=POSE)
    item = pose[1]
    assert set(item) == {"heatmaps", "label", "index"} and int(item["label"]) == 0
    rgb = RGBDataset(prepared / "splits" / "xsub.json", "test", prepared / "annotations.pkl", prepared, rgb=RGB)
    item = rgb[1]
    assert set(item) == {"imgs", "label", "index"} and item["imgs"].shape == (3, 4, 16, 16)
    # RGB alone samples its own clip_len directly (the official RGB-only pipeline)
    np.testing.assert_array_equal(decoded_frame_numbers(item["imgs"]), sample_frame_indices(20, 4, test_mode=True))


def test_bad_inputs_raise_one_line_errors(prepared: Path, tmp_path: Path) -> None:
    split = prepared / "splits" / "xsub.json"
    with pytest.raises(EpamnetError, match="split file not found"):
        load_split(tmp_path / "nope.json", "train")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(EpamnetError, match="not valid JSON"):
        load_split(bad, "train")
    bad.write_text(json.dumps({"train": [["a", "zero"]]}))
    with pytest.raises(EpamnetError, match=r"train\[0\]"):
        load_split(bad, "train")
    bad.write_text(json.dumps({"train": [["zz", 0]], "test": []}))
    with pytest.raises(EpamnetError, match="no annotation"):
        PoseDataset(bad, "train", prepared / "annotations.pkl")
    with pytest.raises(EpamnetError, match="has no list 'val'"):
        load_split(tmp_path / "bad.json", "val")
    with pytest.raises(ValueError, match="part"):
        load_split(split, "training")
    with pytest.raises(ValueError, match="pose config, an RGB config"):
        ClipDataset(split, "train", prepared / "annotations.pkl")
    (prepared / "videos" / "shard-000" / "a.avi").unlink()
    ds = make(prepared, "test")
    with pytest.raises(EpamnetError, match="not found"):
        ds[1]
    anns = load_annotations(prepared / "annotations.pkl")
    del anns[0]["filename"]
    with pytest.raises(EpamnetError, match="no 'filename'"):
        RGBDataset(split, "train", anns, prepared)


OFFICIAL_POSE = pose_pipeline_config(POSE, "official_pose")


def test_pose_pipeline_configs() -> None:
    assert pose_pipeline_config(POSE, "fusion") is POSE  # the default run's transforms unchanged
    assert POSE.crop_area is None and not POSE.allow_imgpad
    assert OFFICIAL_POSE.allow_imgpad and OFFICIAL_POSE.crop_area == (0.56, 1.0)
    assert OFFICIAL_POSE.crop_aspect == (3 / 4, 4 / 3) and OFFICIAL_POSE.crop_short_side == 64
    assert (OFFICIAL_POSE.clip_len, OFFICIAL_POSE.heatmap_size) == (POSE.clip_len, POSE.heatmap_size)
    with pytest.raises(ValueError, match="fusion, official_pose"):
        pose_pipeline_config(POSE, "pose_only")


def test_official_pose_pipeline_crops_in_training_only(prepared: Path) -> None:
    split, anns = prepared / "splits" / "xsub.json", prepared / "annotations.pkl"
    ds = PoseDataset(split, "train", anns, pose=OFFICIAL_POSE, train=True, seed=3)
    plain = PoseDataset(split, "train", anns, pose=replace(OFFICIAL_POSE, crop_area=None), train=True, seed=3)
    crops = set()
    for epoch in range(3):
        ds.set_epoch(epoch)
        plain.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            assert item["heatmaps"].shape == (17, 12, 14, 14)
            # the draws: frames, flip, then the crop, all from the sample's own generator
            ann, rng = ds.annotations[i], ds.sample_rng(i)
            inds = sample_frame_indices(int(ann["total_frames"]), 12, test_mode=False, rng=rng)
            flip = bool(rng.random() < 0.5)
            np.testing.assert_array_equal(inds, ds.frame_indices(i)[0])
            expected = pose_clip(ann["keypoint"], ann["keypoint_score"], (224, 224), inds, OFFICIAL_POSE,
                                 flip=flip, rng=rng)
            np.testing.assert_array_equal(item["heatmaps"].numpy(), expected)
            crops.add(item["heatmaps"].numpy().tobytes())
            assert not torch.equal(item["heatmaps"], plain[i]["heatmaps"])  # the crop changed the clip
    assert len(crops) == 3 * len(ds)
    # test mode: no crop, the compacted frame straight to the heatmap size (official test pipeline)
    test = PoseDataset(split, "test", anns, pose=OFFICIAL_POSE)
    ann = test.annotations[0]
    inds = sample_frame_indices(int(ann["total_frames"]), 12, test_mode=True)
    no_crop = replace(OFFICIAL_POSE, crop_area=None)
    expected = pose_clip(ann["keypoint"], ann["keypoint_score"], (224, 224), inds, no_crop)
    np.testing.assert_array_equal(test[0]["heatmaps"].numpy(), expected)


def test_the_crop_is_refused_with_rgb(prepared: Path) -> None:
    with pytest.raises(ValueError, match="crop the heatmaps but not the RGB frames"):
        RGBPoseDataset(prepared / "splits" / "xsub.json", "train", prepared / "annotations.pkl", prepared,
                       pose=OFFICIAL_POSE, rgb=RGB)


def test_pose_pipeline_setting_reaches_the_pose_stream_only() -> None:
    from epamnet.config import validate_params
    from epamnet.stages.streams import clip_configs

    default = validate_params({})
    assert default.train_config("pose").pose_pipeline == "fusion"
    assert clip_configs(default, "pose")[0].crop_area is None and not clip_configs(default, "pose")[0].allow_imgpad
    params = validate_params({"train": {"pose": {"pose_pipeline": "official_pose"}}})
    pose, _ = clip_configs(params, "pose")
    assert pose.allow_imgpad and pose.crop_area == (0.56, 1.0)
    for stream in ("fusion", "rgb"):
        assert clip_configs(params, stream)[0] == clip_configs(default, stream)[0]
    for where in ("common", "fusion"):
        with pytest.raises(EpamnetError) as info:
            validate_params({"train": {where: {"pose_pipeline": "official_pose"}}})
        assert str(info.value) == (
            f"params.yaml: train.{where}.pose_pipeline: the fusion stream cannot use 'official_pose' (its crop "
            "moves the heatmaps, not the RGB frames); set it under train.pose only and keep "
            "train.fusion.pose_pipeline: fusion"
        )
    # set for all streams, kept by the fusion stream: valid
    both = validate_params(
        {"train": {"common": {"pose_pipeline": "official_pose"}, "fusion": {"pose_pipeline": "fusion"}}}
    )
    assert clip_configs(both, "pose")[0].crop_area == (0.56, 1.0) and clip_configs(both, "fusion")[0].crop_area is None


class DrawLog(RGBPoseDataset):
    """The real dataset, logging which frames each item of each epoch drew (and whether it flipped)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.draws: dict[int, dict[int, tuple]] = {}
        self.crash_after: int | None = None  # reads before a simulated kill

    def __getitem__(self, index: int):
        if self.crash_after is not None:
            self.crash_after -= 1
            if self.crash_after < 0:
                raise RuntimeError("simulated kill")
        pose_inds, rgb_inds, flip = self.frame_indices(index)
        self.draws.setdefault(self.epoch, {})[index] = (tuple(pose_inds.ravel()), tuple(rgb_inds.ravel()), flip)
        return super().__getitem__(index)


#: The synthetic preset's feature sizes: 64 px RGB and 32 px heatmaps both give 2x2 features.
TRAIN_POSE = PoseClipConfig(clip_len=12, heatmap_size=(32, 32))
TRAIN_RGB = RGBClipConfig(clip_len=4, size=64)


def _fusion_model() -> torch.nn.Module:
    from epamnet.models.epam import build_model
    from epamnet.config.model import spec_from_dict, synthetic_spec

    spec = spec_from_dict(
        {
            "rgb": {"base_channels": 8, "clip_len": TRAIN_RGB.clip_len, "input_size": TRAIN_RGB.size},
            "pose": {"base_channels": 8, "clip_len": TRAIN_POSE.clip_len, "input_size": TRAIN_POSE.heatmap_size[0]},
        },
        base=synthetic_spec(),
    )
    torch.manual_seed(0)
    return build_model(spec, max(LABELS.values()) + 1, "fusion")


def test_training_draws_new_frames_every_epoch_and_resumes_exactly(prepared: Path, tmp_path: Path) -> None:
    """The trainer hands each epoch to the dataset: frames and flips change per epoch, resume stays exact."""
    from epamnet.engine.tasks import FusionTask
    from epamnet.config.train import TrainConfig
    from epamnet.engine.trainer import train

    cfg = TrainConfig(epochs=3, batch_size=2, base_lr=0.01, reference_batch=2, seed=7)
    data = DrawLog(prepared / "splits" / "xsub.json", "train", prepared / "annotations.pkl", prepared,
                   pose=TRAIN_POSE, rgb=TRAIN_RGB, train=True, flip_ratio=0.5, seed=7)
    straight = train(FusionTask(), _fusion_model(), data, None, cfg, tmp_path / "a")
    assert sorted(data.draws) == [1, 2, 3]  # the trainer set the epoch before each one
    for epoch in (1, 2, 3):
        assert sorted(data.draws[epoch]) == list(range(len(data)))
    assert data.draws[1] != data.draws[2] != data.draws[3]
    # Each draw is the dataset's own for that (seed, epoch, index): any worker count sees the same.
    data.set_epoch(2)
    assert all(data.frame_indices(i)[2] == data.draws[2][i][2] for i in range(len(data)))

    data.crash_after = 2 * len(data) + 1  # killed in epoch 3
    with pytest.raises(RuntimeError, match="simulated kill"):
        train(FusionTask(), _fusion_model(), data, None, cfg, tmp_path / "b")
    data.crash_after = None
    resumed = train(FusionTask(), _fusion_model(), data, None, cfg, tmp_path / "b")
    assert resumed.resumed_from == 2
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
