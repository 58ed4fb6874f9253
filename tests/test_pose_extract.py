"""Pose extraction with mmpose (HRNet-W32, random weights) on tiny generated videos.

The tests that run mmpose build the real HRNet-W32 from the config shipped with
mmpose, with random weights (no checkpoint can be downloaded here, and none is
needed to check shapes, coordinates and the file format). Without the pose stack
they skip, or fail when ``EPAMNET_REQUIRE_POSE=1`` (``make test``). Every test in this
file runs with outgoing network connections made to fail and recorded: nothing on
the pose path may try to download.
"""

from __future__ import annotations

import importlib
import os
import pickle
import socket
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from epamnet.errors import EpamnetError
from epamnet.io.skeleton import load_annotations
from epamnet.io.video import iter_frames, video_info
from epamnet.pose import compat
from epamnet.pose.person_boxes import (
    FullFrameBoxes,
    SkeletonBoxes,
    keypoint_box,
    make_box_source,
)
from epamnet.pose.estimator import PoseEstimator, build_estimator, load_state_dict
from epamnet.pose.extract import (
    PoseSettings,
    extract_shard,
    extract_video,
    merge_shards,
    shard_videos,
)
from epamnet.config.synthetic import SyntheticSpec
from epamnet.prepare.synthetic.formats import generate

#: Two NTU-like videos, 8 frames of 96 x 128, two persons each.
SPEC = SyntheticSpec(
    num_classes=2, height=96, width=128, frames=(8, 8), ntu_subjects=(1,), ntu_cameras=(1,),
    ntu_setups=(1,), ntu_replications=(1,), second_person_prob=1.0, pku_overlap=(2, 3),
)


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def no_network() -> Iterator[list[tuple]]:
    """Make every outgoing socket connection fail, and record each attempt."""
    attempts: list[tuple] = []

    def refuse(self: socket.socket, address: object, *args: object) -> None:
        attempts.append((self.family, address))
        raise OSError(f"network disabled in tests (tried {address!r})")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket.socket, "connect_ex", refuse)
        yield attempts
    assert not attempts, f"pose code tried to open network connections: {attempts}"


@pytest.fixture(autouse=True)
def _guarded(no_network: list[tuple]) -> Iterator[None]:
    before = len(no_network)
    yield
    assert len(no_network) == before, f"network connection attempted: {no_network[before:]}"


@pytest.fixture(scope="module")
def mmpose(no_network: list[tuple], pose_stack: types.ModuleType) -> types.ModuleType:
    """mmpose.apis (imported with the network refused)."""
    return pose_stack


@pytest.fixture(scope="module")
def estimator(mmpose: types.ModuleType) -> PoseEstimator:
    return build_estimator(None, random_init=True, flip_test=False, seed=0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, Path]]]:
    raw = generate("ntu60", tmp_path_factory.mktemp("pose") / "ntu60", SPEC, seed=3)
    videos = [(p.name.removesuffix("_rgb.avi"), p) for p in sorted((raw / "nturgb+d_rgb").glob("*.avi"))]
    assert len(videos) == 2
    return raw, videos


def crop_region(box: np.ndarray, padding: float = 1.25, aspect: float = 192 / 256) -> tuple[np.ndarray, np.ndarray]:
    """The image region mmpose's test pipeline crops for ``box``: centre and half-size."""
    w, h = (box[2:] - box[:2]) * padding
    w, h = (w, w / aspect) if w > h * aspect else (h * aspect, h)
    return (box[:2] + box[2:]) / 2, np.array([w, h]) / 2


# ----------------------------------------------------------------------------- mmpose


@pytest.mark.pose
def test_sharded_extraction_writes_annotations_in_the_mmaction2_format(tmp_path, estimator, dataset):
    raw, videos = dataset
    settings = PoseSettings(random_init=True, flip_test=False, batch_size=5, max_persons=2, box_source="skeleton")
    labels = {name: i + 3 for i, (name, _) in enumerate(videos)}
    shards = [tmp_path / f"shard-{i:03d}.pkl" for i in range(2)]
    for i, out in enumerate(shards):
        assert extract_shard(videos, i, 2, out, settings, labels=labels, skeletons=raw / "ntu60_2d.pkl",
                             estimator=estimator) == 1
    assert [a["frame_dir"] for a in load_annotations(shards[0])] == [videos[0][0]]
    assert [a["frame_dir"] for a in load_annotations(shards[1])] == [videos[1][0]]
    merged = merge_shards(shards, tmp_path / "skeletons.pkl")
    got = load_annotations(tmp_path / "skeletons.pkl")  # validated against the format on reading
    assert [a["frame_dir"] for a in got] == [a["frame_dir"] for a in merged] == sorted(n for n, _ in videos)
    provided = {a["frame_dir"]: a for a in load_annotations(raw / "ntu60_2d.pkl")}
    boxes = SkeletonBoxes(list(provided.values()), padding=settings.box_padding)
    for ann, (name, path) in zip(got, videos):
        info = video_info(path, count_frames=True)
        assert ann["label"] == labels[name]
        assert tuple(ann["img_shape"]) == tuple(ann["original_shape"]) == (info.height, info.width) == (96, 128)
        assert ann["total_frames"] == info.frames == 8
        assert ann["keypoint"].shape == (2, 8, 17, 2) and ann["keypoint"].dtype == np.float32
        assert ann["keypoint_score"].shape == (2, 8, 17) and ann["keypoint_score"].dtype == np.float32
        assert np.isfinite(ann["keypoint"]).all() and np.isfinite(ann["keypoint_score"]).all()
        # both persons are boxed in every frame, so slot m is person m: its keypoints lie
        # inside the region cropped around person m's box, in image pixels
        frame = np.zeros((96, 128, 3), np.uint8)
        for t in range(8):
            fb = boxes(name, t, frame)
            assert fb.tracks.tolist() == [0, 1]
            for m in range(2):
                centre, half = crop_region(fb.boxes[m])
                # + 1.5 heatmap pixels: a joint not found (score <= 0) is decoded at heatmap (-1, -1)
                margin = 1.5 * 2 * half / np.array([48, 64])
                assert (np.abs(ann["keypoint"][m, t] - centre) <= half + margin).all()
    with pytest.raises(EpamnetError, match=r"shard-001\.pkl: video .* is also in .*shard-001\.pkl"):
        merge_shards([shards[1], shards[1]], tmp_path / "again.pkl")
    assert not (tmp_path / "again.pkl").exists()


@pytest.mark.pose
def test_max_persons_keeps_the_best_scored_person_and_full_frame_gives_one(estimator, dataset):
    raw, videos = dataset
    name, path = videos[0]
    boxes = SkeletonBoxes.from_file(raw / "ntu60_2d.pkl")
    both = extract_video(estimator, name, path, boxes, batch_size=16, max_persons=2)
    one = extract_video(estimator, name, path, boxes, batch_size=3, max_persons=1)
    assert one["keypoint"].shape == (1, 8, 17, 2) and one["keypoint_score"].shape == (1, 8, 17)
    best = both["keypoint_score"].mean(axis=2).argmax(axis=0)  # per frame
    np.testing.assert_allclose(one["keypoint"][0], both["keypoint"][best, np.arange(8)], atol=1e-3)
    np.testing.assert_allclose(one["keypoint_score"][0], both["keypoint_score"][best, np.arange(8)], atol=1e-4)

    full = extract_video(estimator, name, path, FullFrameBoxes(), batch_size=8, max_persons=2)
    assert full["keypoint"].shape == (1, 8, 17, 2) and full["total_frames"] == 8
    centre, half = crop_region(np.array([0, 0, 128, 96], np.float32))
    assert (np.abs(full["keypoint"][0] - centre) <= half * 1.05).all()
    # a whole-frame crop sees a different image than a person crop: different keypoints
    assert np.abs(full["keypoint"][0] - both["keypoint"][0]).max() > 1.0


@pytest.mark.pose
def test_batched_crops_match_one_crop_per_call_and_flip_test_changes_the_result(estimator, dataset):
    _, videos = dataset
    frame = np.ascontiguousarray(next(iter_frames(videos[0][1]))[..., ::-1])
    crops = [(frame, np.array(b, np.float32)) for b in ([10, 5, 70, 90], [40, 0, 128, 96], [0, 0, 64, 48], [30, 30, 60, 80])]
    kp, score = estimator.predict(crops)
    assert kp.shape == (4, 17, 2) and score.shape == (4, 17)
    for i, crop in enumerate(crops):
        k1, s1 = estimator.predict([crop])
        np.testing.assert_allclose(k1[0], kp[i], atol=1e-3)
        np.testing.assert_allclose(s1[0], score[i], atol=1e-4)
    try:
        estimator.set_flip_test(True)
        kf, sf = estimator.predict(crops[:1])
    finally:
        estimator.set_flip_test(False)
    assert kf.shape == (1, 17, 2) and not np.allclose(sf[0], score[0])


@pytest.mark.pose
def test_a_saved_checkpoint_with_numpy_metadata_loads_into_a_fresh_model(tmp_path, estimator, dataset):
    ckpt = tmp_path / "hrnet.pth"
    meta = {"dataset_meta": {"sigmas": np.linspace(0.02, 0.1, 17), "num_keypoints": np.int64(17)},
            "epoch": 210, "lr": np.float64(5e-4)}
    torch.save({"meta": meta, "state_dict": estimator.model.state_dict()}, ckpt)
    with pytest.raises(pickle.UnpicklingError):  # why the numpy allow-list exists
        torch.load(ckpt, weights_only=True)
    other = build_estimator(ckpt, flip_test=False)
    for (name, a), b in zip(estimator.model.state_dict().items(), other.model.state_dict().values()):
        assert torch.equal(a, b), name
    crop = [(np.full((96, 128, 3), 90, np.uint8), np.array([20, 10, 90, 95], np.float32))]
    np.testing.assert_array_equal(estimator.predict(crop)[0], other.predict(crop)[0])


@pytest.mark.pose
def test_a_checkpoint_of_another_model_is_refused_with_the_keys(tmp_path, mmpose):
    ckpt = tmp_path / "other.pth"
    torch.save({"state_dict": {"backbone.conv1.weight": torch.zeros(64, 3, 3, 3), "head.extra": torch.zeros(1)}}, ckpt)
    with pytest.raises(EpamnetError, match=r"other\.pth: does not fit the model: keys \d+ missing .*1 unexpected \(e\.g\. head\.extra\)"):
        build_estimator(ckpt, flip_test=False)


@pytest.mark.pose
def test_compat_covers_only_the_two_gaps(mmpose):
    stub = sys.modules["mmcv._ext"]
    assert getattr(stub, compat.STUB_MARKER) and stub.__spec__.loader is None
    assert not compat.mmcv_ops_available()
    with pytest.raises(RuntimeError, match="mmcv's compiled ops are not installed"):
        stub.nms(None)
    assert "torchvision" not in sys.modules  # the placeholder lived only during the import
    with pytest.raises(RuntimeError, match="torchvision is not installed"):
        importlib.import_module("mmpose.visualization.simcc_vis").ToPILImage()


@pytest.mark.pose
def test_detector_boxes_need_mmcv_ops(tmp_path, mmpose):
    cfg, ckpt = tmp_path / "det.py", tmp_path / "det.pth"
    cfg.write_text("model = dict(type='FasterRCNN')\n")
    torch.save({"state_dict": {}}, ckpt)
    with pytest.raises(EpamnetError, match=r"detector needs mmcv's compiled ops .*box_source skeleton or full_frame"):
        make_box_source("detector", det_config=cfg, det_checkpoint=ckpt)
    with pytest.raises(EpamnetError, match=r"missing\.pth: pose\.det_checkpoint file not found"):
        make_box_source("detector", det_config=cfg, det_checkpoint=tmp_path / "missing.pth")


# ----------------------------------------------------------------------------- no mmpose needed


def test_a_missing_checkpoint_is_one_line_naming_the_path_and_the_fix(tmp_path, dataset):
    missing = tmp_path / "models" / "hrnet_w32.pth"
    settings = PoseSettings(checkpoint=missing, box_source="full_frame")
    with pytest.raises(EpamnetError) as err:
        extract_shard(dataset[1], 0, 1, tmp_path / "out.pkl", settings)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{missing}: HRNet-W32 checkpoint not found; download ")
    assert "pose.checkpoint" in message and "dvc add" in message
    assert not (tmp_path / "out.pkl").exists()
    with pytest.raises(EpamnetError, match=r"^pose\.checkpoint: no HRNet-W32 checkpoint is configured; download"):
        build_estimator(None)


class Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_checkpoint_with_a_pickled_object_is_refused_and_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "meta": {"hook": Payload()}}, ckpt)
    with pytest.raises(EpamnetError, match=r"evil\.pth: refuses to load: .*GLOBAL posix\.system") as err:
        load_state_dict(ckpt)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "pwned").exists()


def test_bad_checkpoint_contents_are_refused(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(EpamnetError, match=r"junk\.pth: is not a readable torch checkpoint"):
        load_state_dict(tmp_path / "junk.pth")
    torch.save({"meta": {"epoch": 3}}, tmp_path / "meta_only.pth")
    with pytest.raises(EpamnetError, match=r"meta_only\.pth: holds no state dict"):
        load_state_dict(tmp_path / "meta_only.pth")
    torch.save({"module.a": torch.ones(2)}, tmp_path / "bare.pth")
    assert list(load_state_dict(tmp_path / "bare.pth")) == ["a"]


def test_shards_partition_the_videos_sorted_by_frame_dir():
    videos = [(f"S001C001P001R001A{i:03d}", Path(f"v{i}.avi")) for i in (5, 1, 4, 2, 3, 7, 6)]
    names = sorted(n for n, _ in videos)
    for n in (1, 2, 3, 7, 9):
        parts = [[name for name, _ in shard_videos(videos, i, n)] for i in range(n)]
        assert sorted(sum(parts, [])) == names  # every video exactly once
        assert all(part == names[i::n] for i, part in enumerate(parts))
    with pytest.raises(EpamnetError, match="shard 3 of 3 is out of range"):
        shard_videos(videos, 3, 3)
    with pytest.raises(EpamnetError, match="listed twice"):
        shard_videos(videos + videos[:1], 0, 1)


def test_keypoint_boxes_are_padded_clipped_and_skip_unseen_persons():
    kp = np.array([[10, 20], [30, 60], [500, 500]], np.float32).repeat([1, 1, 15], axis=0)
    score = np.r_[1.0, 1.0, np.zeros(15)].astype(np.float32)  # only the first two joints are seen
    np.testing.assert_allclose(keypoint_box(kp, score, (96, 128), padding=0.25), [5, 10, 35, 70])
    np.testing.assert_allclose(keypoint_box(kp, score, (64, 32), padding=0.25), [5, 10, 32, 64])
    assert keypoint_box(kp, np.r_[1.0, np.zeros(16)].astype(np.float32), (96, 128), 0.25) is None
    # keypoints in a 48 x 64 annotation are rescaled to the 96 x 128 decoded frame
    ann = {"frame_dir": "v", "img_shape": (48, 64), "keypoint": kp[None, None] / 2, "keypoint_score": score[None, None]}
    fb = SkeletonBoxes([ann], padding=0.0)("v", 0, np.zeros((96, 128, 3), np.uint8))
    np.testing.assert_allclose(fb.boxes, [[10, 20, 30, 60]])
    assert fb.tracks.tolist() == [0]
    assert len(SkeletonBoxes([ann])("v", 5, np.zeros((96, 128, 3), np.uint8))) == 0  # beyond the skeleton
    with pytest.raises(EpamnetError, match="has no skeleton for video w"):
        SkeletonBoxes([ann], source="sk.pkl")("w", 0, np.zeros((96, 128, 3), np.uint8))


def test_settings_are_checked():
    with pytest.raises(EpamnetError, match="pose.batch_size"):
        PoseSettings(batch_size=0)
    with pytest.raises(EpamnetError, match="pose.max_persons"):
        PoseSettings(max_persons=0)
    with pytest.raises(EpamnetError, match="pose.box_source: unknown source 'yolo'"):
        PoseSettings(box_source="yolo")
    with pytest.raises(EpamnetError, match="skeleton needs skeleton annotations"):
        make_box_source("skeleton")


def test_compat_does_nothing_when_the_real_modules_are_present(monkeypatch):
    real_ext = types.ModuleType("mmcv._ext")
    monkeypatch.setitem(sys.modules, "mmcv._ext", real_ext)
    assert compat.ensure_mmcv_ext() is False and sys.modules["mmcv._ext"] is real_ext
    assert compat.mmcv_ops_available()
    real_tv = types.ModuleType("torchvision")
    monkeypatch.setitem(sys.modules, "torchvision", real_tv)
    with compat.torchvision_placeholder() as active:
        assert active is False and sys.modules["torchvision"] is real_tv
    assert sys.modules["torchvision"] is real_tv
