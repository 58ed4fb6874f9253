"""Hostile and broken input: every case is one line naming the file and the fix, and nothing half-written.

What the unit suites already cover is not repeated here (docs/reliability.md lists
them): the restricted unpickler and truncated pickles (test_skeleton_io,
test_pose_provided), undecodable and short videos (test_video_io, test_crop,
test_pku_clips), bad label rows (test_datasets, test_pku_clips), bad params values
(test_orchestration) and mismatched official checkpoints (test_convert, test_models).
This file drives the same cases through ``epamnet <stage>`` where the units are only
tested as functions, and covers what had no test: hostile keypoint values and skeletons
without a person, per-sample failures recorded by a CLI crop shard, wrong-typed params,
checkpoints of another model on resume and evaluation, and a full disk.

CLI cases run ``epamnet.cli.main`` in-process (same code path as the console script,
without the interpreter start-up) in a temporary project folder.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn
from torch.utils.data import TensorDataset

from epamnet.loader.heatmaps import generate_heatmaps
from epamnet.engine.checkpoint import load_checkpoint, save_checkpoint
from epamnet.engine.tasks import SingleStreamTask
from epamnet.config.train import TrainConfig
from epamnet.engine.trainer import train
from epamnet.errors import DiskFullError, EpamnetError
from epamnet.io import atomic
from epamnet.io.skeleton import load_annotations, save_annotations
from epamnet.io.video import VideoWriter, video_info, write_video
from epamnet.models.epam import build_model
from epamnet.config.model import synthetic_spec
from epamnet.prepare.crop import PREPARED_VIDEO_SUFFIX, crop_sample, crop_shard, failures_path
from epamnet.prepare.splits import make_splits
from helpers import one_error_line, run_cli

NTU = ["S001C001P001R001A001", "S001C001P001R001A002", "S001C001P003R001A001", "S001C001P003R001A002"]
T, H, W = 6, 24, 32


# ----------------------------------------------------------------------------- helpers


def annotation(name: str, m: int = 1, t: int = T, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "frame_dir": name, "label": int(name[-3:]) - 1, "img_shape": (H, W), "original_shape": (H, W),
        "total_frames": t,
        "keypoint": rng.uniform(4, 20, (m, t, 17, 2)).astype(np.float32),
        "keypoint_score": np.full((m, t, 17), 0.9, np.float32),
    }


def write_params(root: Path, **sections) -> Path:
    params = {
        "datasets": {"run": ["ntu60"], "ntu60": {"protocols": ["xsub"]}},
        "prepare": {"shards": 1, "on_sample_error": "fail", "crop": {"size": 16}},
    }
    for key, value in sections.items():
        params[key] = {**params.get(key, {}), **value}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root / "params.yaml"


def ntu_project(root: Path, anns: list[dict], frames: dict[str, int] | None = None, **sections) -> Path:
    """A project whose ``pose`` stage is done: NTU-named raw videos and data/interim/ntu60/skeletons.pkl."""
    write_params(root, **sections)
    rng = np.random.default_rng(1)
    for ann in anns:
        n = (frames or {}).get(ann["frame_dir"], ann["total_frames"])
        write_video(root / "data/raw/ntu60/nturgb+d_rgb" / f"{ann['frame_dir']}_rgb.avi",
                    rng.integers(0, 255, (n, H, W, 3), dtype=np.uint8), fps=10, codec="MJPG")
    save_annotations(root / "data/interim/ntu60/skeletons.pkl", anns)
    return root


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


class Payload:
    """Unpickling this runs ``touch pwned``: what a tampered file would do with plain pickle."""

    def __reduce__(self):
        return (os.system, ("touch pwned",))


# ----------------------------------------------------------------------------- pickles through the CLI


def _malicious(path: Path) -> None:
    with open(path, "wb") as fh:
        pickle.dump([Payload()], fh)


def _truncated(path: Path) -> None:
    save_annotations(path, [annotation(NTU[0])])
    path.write_bytes(path.read_bytes()[:-40])


@pytest.mark.parametrize(("breaker", "says"), [(_malicious, "refuses to load"), (_truncated, "truncated")])
def test_pose_stage_refuses_a_bad_skeleton_pickle(tmp_path, monkeypatch, capsys, breaker, says):
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path)
    src = tmp_path / "data/raw/ntu60/ntu60_2d.pkl"
    src.parent.mkdir(parents=True)
    breaker(src)
    rc, err = run_cli(["pose", "--dataset", "ntu60"], capsys)
    line = one_error_line(err)
    assert rc == 1 and "data/raw/ntu60/ntu60_2d.pkl" in line and says in line and "regenerate" in line
    assert not (tmp_path / "pwned").exists()
    assert files_under(tmp_path / "data") == {"raw/ntu60/ntu60_2d.pkl"}


def test_a_training_checkpoint_that_would_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / "checkpoints" / "last.pt"
    ckpt.parent.mkdir()
    torch.save({"format": "epamnet-train-checkpoint/1", "epoch": 1, "model": Payload()}, ckpt)
    with pytest.raises(EpamnetError) as info:
        load_checkpoint(ckpt)
    assert str(ckpt) in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "pwned").exists()


# ----------------------------------------------------------------------------- hostile keypoints


def test_nan_negative_huge_and_unscored_keypoints_are_skipped_or_clipped(tmp_path):
    ann = annotation(NTU[0])
    kp, sc = ann["keypoint"].astype(np.float64), ann["keypoint_score"].copy()
    kp[0, 0, 0] = (np.nan, 5.0)  # NaN coordinate
    kp[0, 0, 1] = (-40.0, -30.0)  # outside the frame, negative
    kp[0, 1, 2] = (5000.0, 12.0)  # far outside the frame
    kp[0, 1, 3] = (1e300, 1e300)  # finite in float64, not in float32
    kp[0, 2, 4] = (np.inf, 3.0)
    sc[0, 3, 5], sc[0, 3, 6], sc[0, 3, 7] = 0.0, np.nan, -1.0  # unscored, NaN and negative scores
    ann["keypoint"], ann["keypoint_score"] = kp, sc
    write_video(tmp_path / "v.avi", np.zeros((T, H, W, 3), np.uint8), fps=10, codec="MJPG")

    new = crop_sample(ann, tmp_path / "v.avi", tmp_path / "out.avi", size=16)

    x0, y0, x1, y1 = new["crop_box"]
    assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H  # the box is clipped to the frame
    info = video_info(tmp_path / "out.avi", count_frames=True)
    assert (info.frames, info.height, info.width) == (T, 16, 16)
    k, s = new["keypoint"], new["keypoint_score"]
    assert k.dtype == s.dtype == np.float32 and np.isfinite(k).all() and np.isfinite(s).all()
    for f, j in [(0, 0), (1, 3), (2, 4), (3, 5), (3, 6), (3, 7)]:  # no position or no score: skipped
        assert s[0, f, j] == 0 and (k[0, f, j] == 0).all(), (f, j)
    assert s[0, 0, 1] > 0 and (k[0, 0, 1] < 0).all()  # out of frame: kept outside the crop ...
    heat = generate_heatmaps(k, s, (16, 16), sigma=0.6)
    assert np.isfinite(heat).all() and heat[1, 0].max() == 0  # ... where the heatmaps draw nothing
    save_annotations(tmp_path / "ok.pkl", [new])  # and the result is a valid annotation


@pytest.mark.parametrize("case", ["no person", "no valid keypoint"])
def test_a_skeleton_without_a_person_is_a_clear_per_sample_failure(tmp_path, case):
    ann = annotation(NTU[0], m=0 if case == "no person" else 2)
    if case == "no valid keypoint":
        ann["keypoint"][0] = np.nan
        ann["keypoint_score"][1] = 0.0
    write_video(tmp_path / "v.avi", np.zeros((T, H, W, 3), np.uint8), fps=10, codec="MJPG")
    with pytest.raises(EpamnetError) as info:
        crop_sample(ann, tmp_path / "v.avi", tmp_path / "out.avi", size=16)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(tmp_path / "v.avi")) and NTU[0] in msg
    assert case.replace("valid", "scored, finite") in msg and "on_sample_error: skip" in msg
    assert not (tmp_path / "out.avi").exists()


def test_cli_crop_shard_lists_every_bad_sample_in_its_failures_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    anns = [annotation(n, seed=i) for i, n in enumerate(NTU)]
    anns[1] = annotation(NTU[1], m=0)  # no person
    ntu_project(tmp_path, anns, frames={NTU[2]: 3}, prepare={"on_sample_error": "skip"})  # NTU[2]: 3 of 6 frames
    corrupt = tmp_path / "data/raw/ntu60/nturgb+d_rgb" / f"{NTU[3]}_rgb.avi"
    corrupt.write_bytes(b"\x00not a video" * 100)

    rc, err = run_cli(["crop", "--dataset", "ntu60", "--shard", "0"], capsys)
    assert rc == 0, err
    failures = json.loads((tmp_path / "data/interim/ntu60/crop/shard-000.failures.json").read_text())
    by_name = {f["frame_dir"]: f for f in failures}
    assert sorted(by_name) == sorted(NTU[1:])
    assert "no person" in by_name[NTU[1]]["reason"]
    assert "3 frames" in by_name[NTU[2]]["reason"] and "has 6" in by_name[NTU[2]]["reason"]
    assert by_name[NTU[3]]["file"] == str(Path("data/raw/ntu60/nturgb+d_rgb") / f"{NTU[3]}_rgb.avi")
    assert all(f["reason"] and "\n" not in f["reason"] for f in failures)
    assert "3 of 4 samples skipped" in err and "shard-000.failures.json" in err
    kept = load_annotations(tmp_path / "data/interim/ntu60/crop/shard-000.pkl")
    assert [a["frame_dir"] for a in kept] == [NTU[0]]
    assert sorted(os.listdir(tmp_path / "data/prepared/ntu60/videos/shard-000")) == [f"{NTU[0]}{PREPARED_VIDEO_SUFFIX}"]
    rc, err = run_cli(["crop-merge", "--dataset", "ntu60"], capsys)  # the merge says so again
    assert rc == 0 and "3 samples were skipped by the crop shards" in err and "shard-000.failures.json" in err

    # With on_sample_error: fail the first bad sample stops the shard, with no output at all.
    shutil.rmtree(tmp_path / "data/interim/ntu60/crop")
    shutil.rmtree(tmp_path / "data/prepared")
    write_params(tmp_path)
    rc, err = run_cli(["crop", "--dataset", "ntu60", "--shard", "0"], capsys)
    line = one_error_line(err)
    assert rc == 1 and NTU[1] in line and "no person" in line and "on_sample_error: skip" in line
    assert not (tmp_path / "data/interim/ntu60/crop").exists() or not os.listdir(tmp_path / "data/interim/ntu60/crop")
    assert not any((tmp_path / "data/prepared/ntu60/videos").iterdir())


# ----------------------------------------------------------------------------- params.yaml with wrong types

WRONG_TYPES = [
    ("train:\n  common:\n    epochs: '10'\n", "train.common.epochs"),
    ("train:\n  common:\n    base_lr: fast\n", "train.common.base_lr"),
    ("train:\n  pose:\n    batch_size: 2.5\n", "train.pose.batch_size"),
    ("model:\n  pose:\n    base_channels: [8]\n", "model.pose.base_channels"),
    ("synthetic:\n  frames: 48\n", "synthetic.frames"),
    ("datasets:\n  run: ntu60\n", "datasets.run"),
    ("paths:\n  data: 5\n", "paths.data"),
    ("prepare:\n  on_sample_error: ignore\n", "prepare.on_sample_error"),
    ("data:\n  flip_ratio: 2\n", "data.flip_ratio"),
    ("acquire:\n  retries: true\n", "acquire.retries"),
    ("- just\n- a list\n", "top level must be a mapping"),
    ("train: {common: [\n", "not valid YAML at line"),
]


@pytest.mark.parametrize(("text", "names"), WRONG_TYPES, ids=[w[1] for w in WRONG_TYPES])
def test_params_with_wrong_types_fail_at_start_up_with_one_line(tmp_path, capsys, text, names):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    rc, err = run_cli(["--params", str(path), "check"], capsys)
    line = one_error_line(err)
    assert rc == 1 and line.startswith(f"error: {path}: ") and names in line


# ----------------------------------------------------------------------------- checkpoints of another model


def test_resuming_from_a_checkpoint_of_another_model_is_one_line(tmp_path):
    task = SingleStreamTask(input_key=0, label_key=1)
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(12, 8, generator=g), torch.randint(0, 4, (12,), generator=g))
    cfg = TrainConfig(epochs=2, batch_size=4, base_lr=0.1, reference_batch=4)
    train(task, nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)), data, None, cfg, tmp_path)
    before = files_under(tmp_path)
    for other in (nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 4)),  # wider: wrong shapes
                  nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4), nn.Linear(4, 4))):  # extra keys
        with pytest.raises(EpamnetError) as info:
            train(task, other, data, None, cfg, tmp_path)
        msg = str(info.value)
        assert "\n" not in msg and msg.startswith(str(tmp_path / "checkpoints" / "last.pt"))
        assert ("wrong shapes" in msg or "missing keys" in msg) and f"delete {tmp_path / 'checkpoints'}" in msg
    assert files_under(tmp_path) == before


@pytest.mark.parametrize("case", ["classes", "missing", "code"])
def test_evaluate_refuses_weights_of_another_model(tmp_path, monkeypatch, capsys, case):
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path)
    splits = tmp_path / "data/prepared/ntu60/splits"
    splits.mkdir(parents=True)
    split = {"dataset": "ntu60", "protocol": "xsub", "source": "synthetic", "classes": ["a", "b", "c"],
             "num_classes": 3, "train": [[NTU[0], 0]], "val": [], "test": [[NTU[2], 0]]}
    (splits / "xsub.json").write_text(json.dumps(split))
    weights = tmp_path / "models/ntu60/xsub/pose/model.pt"
    weights.parent.mkdir(parents=True)
    state = build_model(synthetic_spec(), 5 if case == "classes" else 3, "pose").state_dict()
    if case == "missing":
        state = {k: v for k, v in state.items() if "cls_head" not in k}
    torch.save({"w": Payload()} if case == "code" else state, weights)

    rc, err = run_cli(["evaluate", "--dataset", "ntu60", "--protocol", "xsub", "--stream", "pose"], capsys)
    line = one_error_line(err)
    assert rc == 1 and "models/ntu60/xsub/pose/model.pt" in line
    says = {"classes": "wrong shapes", "missing": "missing keys", "code": "not a readable PyTorch checkpoint"}[case]
    assert says in line
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "results").exists()


# ----------------------------------------------------------------------------- full disk


def fill_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on every file the atomic writers open is /dev/full: writes fail with a real ENOSPC."""
    real_open = open

    def to_dev_full(file, mode="r", *args, **kwargs):
        return real_open("/dev/full", mode, *args, **kwargs)

    monkeypatch.setattr(atomic, "open", to_dev_full, raising=False)


needs_dev_full = pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")


def assert_disk_full_message(msg: str, path: Path) -> None:
    assert "\n" not in msg and msg.startswith(f"{path}: ") and "No space left on device" in msg
    assert "free space" in msg


@needs_dev_full
def test_full_disk_in_the_atomic_writers_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    fill_disk(monkeypatch)
    writes = [
        (tmp_path / "a.txt", lambda p: atomic.write_text(p, "x" * 100_000)),
        (tmp_path / "s.pkl", lambda p: save_annotations(p, [annotation(NTU[0])])),
        (tmp_path / "ck" / "epoch_001.pt", lambda p: save_checkpoint({"epoch": 1, "model": {"w": torch.zeros(1000)}}, p.parent)),
    ]
    for path, write in writes:
        with pytest.raises(DiskFullError) as info:
            write(path)
        assert_disk_full_message(str(info.value), path)
    assert files_under(tmp_path) == set()  # no output, no temporary file


@needs_dev_full
def test_full_disk_through_the_cli_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path)
    save_annotations(tmp_path / "data/raw/ntu60/ntu60_2d.pkl", [annotation(NTU[0])])
    fill_disk(monkeypatch)
    rc, err = run_cli(["pose", "--dataset", "ntu60"], capsys)
    line = one_error_line(err)
    assert rc == 1
    assert_disk_full_message(line.removeprefix("error: "), Path("data/interim/ntu60/skeletons.pkl"))
    assert files_under(tmp_path / "data") == {"raw/ntu60/ntu60_2d.pkl"}


def test_full_disk_in_a_folder_output_names_the_folder(tmp_path, monkeypatch):
    save_annotations(tmp_path / "ann.pkl", [annotation(n) for n in NTU])
    real = Path.write_text

    def write_text(self, *args, **kwargs):
        if ".tmp" in str(self):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    out = tmp_path / "splits"
    with pytest.raises(DiskFullError) as info:
        make_splits("ntu60", tmp_path / "ann.pkl", out, ["xsub"], num_classes=2, source="synthetic")
    assert_disk_full_message(str(info.value), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ann.pkl"]


def test_full_disk_stops_a_skipping_crop_shard_instead_of_skipping_every_sample(tmp_path, monkeypatch):
    anns = [annotation(n, seed=i) for i, n in enumerate(NTU)]
    ntu_project(tmp_path, anns)

    def no_space(self, frame):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(VideoWriter, "write", no_space)
    videos = tmp_path / "prepared/videos/shard-000"
    out_pkl = tmp_path / "interim/shard-000.pkl"
    with pytest.raises(DiskFullError) as info:
        crop_shard(tmp_path / "data/interim/ntu60/skeletons.pkl",
                   lambda n: tmp_path / "data/raw/ntu60/nturgb+d_rgb" / f"{n}_rgb.avi",
                   0, 1, out_pkl, videos, size=16, on_error="skip")
    assert_disk_full_message(str(info.value), videos)  # the output folder, not a temporary name
    assert not out_pkl.exists() and not failures_path(out_pkl).exists()
    assert not any(videos.parent.iterdir())


@needs_dev_full
def test_full_disk_during_a_download_keeps_the_part_for_resuming(tmp_path, monkeypatch):
    from test_acquire import FileServer

    from epamnet.prepare import acquire

    payload = bytes(range(256)) * 400
    real_open = open
    opened = []

    def part_on_dev_full(file, mode="r", *args, **kwargs):
        opened.append(Path(file))
        if str(file).endswith(".part") and "a" not in mode:
            Path(file).write_bytes(b"")  # the .part exists, as it would on a full disk
            return real_open("/dev/full", mode, *args, **kwargs)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(acquire, "open", part_on_dev_full, raising=False)
    dest = tmp_path / "f.bin"
    with FileServer(payload) as server:
        with pytest.raises(DiskFullError) as info:
            acquire.download(server.url, dest, None, chunk=4096, timeout=5.0, retry_wait=0.0, progress=False)
        msg = str(info.value)
        assert "\n" not in msg and msg.startswith(f"{dest}.part: disk full") and "free space" in msg
        assert "resume" in msg and not dest.exists()
        monkeypatch.setattr(acquire, "open", real_open)  # space freed: the next call finishes
        acquire.download(server.url, dest, None, chunk=4096, timeout=5.0, retry_wait=0.0, progress=False)
    assert dest.read_bytes() == payload


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EDQUOT], ids=["ENOSPC", "EDQUOT"])
def test_a_full_disk_and_an_exceeded_quota_are_the_same_stop(tmp_path, monkeypatch, err):
    """A quota (EDQUOT) stops a stage like a full disk (ENOSPC): one line naming the output and the reason."""
    save_annotations(tmp_path / "ann.pkl", [annotation(n) for n in NTU])
    real = Path.write_text

    def write_text(self, *args, **kwargs):
        if ".tmp" in str(self):
            raise OSError(err, os.strerror(err), str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    out = tmp_path / "splits"
    with pytest.raises(DiskFullError) as info:
        make_splits("ntu60", tmp_path / "ann.pkl", out, ["xsub"], num_classes=2, source="synthetic")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{out}: could not be written ({os.strerror(err)}); free space")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ann.pkl"]
