"""``epamnet predict``: a video in, the top-5 actions out, and the annotated video.

A tiny synthetic NTU-like dataset (two 30-frame videos of 128 x 96) and a randomly
initialised EPAM-Net of the synthetic preset, saved exactly as ``train`` publishes
``models/<dataset>/<protocol>/fusion/model.pt``. Keypoints come from the dataset's own
skeleton file (``--skeletons``), except in the test marked ``pose``, which runs mmpose's
HRNet with random weights (skipped without the pose stack, failed instead under
``EPAMNET_REQUIRE_POSE=1``). The CLI test runs ``python -m epamnet.cli predict``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from epamnet.cli import add_predict_arguments
from epamnet.config import validate_params
from epamnet.loader.dataset import RGBPoseDataset
from epamnet.loader.rgb import normalize_clips
from epamnet.datasets.registry import get_dataset
from epamnet.engine.checkpoint import FORMAT
from epamnet.engine.trainer import _plain_state_dict, _save_model
from epamnet.errors import EpamnetError
from epamnet.inference.visualize import nearest_sampled
from epamnet.io.skeleton import load_annotations, save_annotations
from epamnet.io.video import read_frames, video_info, write_video
from epamnet.models.epam import build_model
from epamnet.pose.extract import PoseSettings
from epamnet.prepare.crop import crop_sample
from epamnet.config.synthetic import SyntheticSpec
from epamnet.prepare.synthetic.formats import generate
from epamnet.stages import predict as P
from epamnet.stages.streams import clip_configs

NUM_CLASSES = 8
SPEC = SyntheticSpec(
    num_classes=2, height=96, width=128, frames=(30, 30), ntu_subjects=(1,), ntu_cameras=(1,),
    ntu_setups=(1,), ntu_replications=(1,), second_person_prob=1.0, pku_overlap=(2, 3),
)
NAME = "S001C001P001R001A001"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A project folder: params.yaml, the raw synthetic videos, a trained-format model and its split."""
    root = tmp_path_factory.mktemp("predict")
    raw = generate("ntu60", root / "raw", SPEC, seed=3)
    values = {"paths": {"data": str(root / "data"), "models": str(root / "models"), "results": str(root / "results")}}
    (root / "params.yaml").write_text(json.dumps(values))  # JSON is YAML
    params = validate_params(values)
    torch.manual_seed(0)
    model = build_model(params.model_spec(), NUM_CLASSES, "fusion")
    # Non-trivial weights, so the top-5 is not a tie: perturb the classifier heads.
    with torch.no_grad():
        model.rgb_cls_head.fc_cls.weight.normal_(0, 0.5)
        model.pose_cls_head.fc_cls.bias.copy_(torch.linspace(-1, 1, NUM_CLASSES))
    ckpt = root / "models" / "ntu60" / "xsub" / "fusion" / "model.pt"
    _save_model(ckpt, _plain_state_dict(model))  # exactly what train publishes
    classes = list(get_dataset("ntu60", num_classes=NUM_CLASSES).class_names("xsub"))
    split = root / "data" / "prepared" / "ntu60" / "splits" / "xsub.json"
    split.parent.mkdir(parents=True)
    split.write_text(json.dumps({"dataset": "ntu60", "protocol": "xsub", "classes": classes,
                                 "num_classes": NUM_CLASSES, "train": [], "val": [], "test": []}))
    return {
        "root": root, "params": params, "model": model.eval(), "ckpt": ckpt, "classes": classes, "split": split,
        "video": raw / "nturgb+d_rgb" / f"{NAME}_rgb.avi", "skeletons": raw / "ntu60_2d.pkl",
    }


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="epamnet predict")
    add_predict_arguments(parser)
    return parser.parse_args([str(a) for a in argv])


def run_predict(world: dict, *argv: str, capsys: pytest.CaptureFixture | None = None) -> str:
    assert P.run(parse(*argv), world["params"]) == 0
    return capsys.readouterr().out if capsys is not None else ""


# ----------------------------------------------------------------------------- top-5


def test_top5_with_skeletons_matches_the_evaluation_clip(world, tmp_path, capsys):
    out_json = tmp_path / "out" / "pred.json"
    text = run_predict(world, world["video"], "--checkpoint", world["ckpt"], "--skeletons", world["skeletons"],
                       "--json", out_json, capsys=capsys)
    data = json.loads(out_json.read_text())
    top = data["top"]
    assert [r["rank"] for r in top] == [1, 2, 3, 4, 5]
    scores = [r["score"] for r in top]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1 + 1e-6
    assert all(r["class"] == world["classes"][r["index"]] for r in top)
    assert data["classes_from"] == str(world["split"])  # found from models/<d>/<p>/fusion/model.pt
    assert data["num_classes"] == NUM_CLASSES and data["frames"] == 30
    # The printed table: a header and one row per rank, with the class names and scores.
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("rank"))
    for r, line in zip(top, lines[header + 1 : header + 6]):
        assert line.split()[0] == str(r["rank"]) and r["class"] in line and f"{r['score']:.3f}" in line

    # The same sample as the pipeline would evaluate it: crop stage + test-mode dataset item.
    params, ann_dir = world["params"], tmp_path / "prepared"
    ann = next(a for a in load_annotations(world["skeletons"]) if a["frame_dir"] == NAME)
    crop = params.prepare.crop
    cropped = crop_sample(ann, world["video"], ann_dir / "v.avi", size=crop.size, padding=crop.padding,
                          threshold=crop.threshold, filename="v.avi")
    (ann_dir / "split.json").write_text(json.dumps({"test": [[NAME, 0]]}))
    pose_cfg, rgb_cfg = clip_configs(params)
    item = RGBPoseDataset(ann_dir / "split.json", "test", [cropped], ann_dir, pose=pose_cfg, rgb=rgb_cfg)[0]
    with torch.no_grad():
        rgb, pose = world["model"](normalize_clips(item["imgs"][None]), item["heatmaps"][None])
    expected = torch.softmax((rgb + pose)[0].double(), 0).numpy()
    assert np.allclose([r["score"] for r in top], np.sort(expected)[::-1][:5], atol=1e-5)
    assert top[0]["index"] == int(expected.argmax())


def test_class_names_from_a_file_or_none(world, tmp_path, capsys):
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"action {k}" for k in range(NUM_CLASSES)) + "\n")
    copy = tmp_path / "model.pt"  # outside models/: no split is found from its path
    copy.write_bytes(world["ckpt"].read_bytes())
    text = run_predict(world, world["video"], "--checkpoint", copy, "--skeletons", world["skeletons"],
                       "--classes", names, "--top", "3", capsys=capsys)
    assert "action " in text and f"names from {names}" in text
    assert len([line for line in text.splitlines() if line.strip().startswith(("1 ", "2 ", "3 "))]) == 3
    text = run_predict(world, world["video"], "--checkpoint", copy, "--skeletons", world["skeletons"], capsys=capsys)
    assert "no class names given" in text and "class " in text
    # --dataset/--protocol: the pipeline's model (params' paths) and the split's class names.
    text = run_predict(world, world["video"], "--dataset", "ntu60", "--protocol", "xsub",
                       "--skeletons", world["skeletons"], capsys=capsys)
    assert f"model:      {world['ckpt']}" in text and f"names from {world['split']}" in text


def test_official_and_training_checkpoint_forms_give_the_same_scores(world, tmp_path):
    state = torch.load(world["ckpt"], weights_only=True)
    official = tmp_path / "official.pth"
    torch.save({"epoch": 9, "model_state_dict": {f"module.{k}": v for k, v in state.items()},
                "optimizer_state_dict": {}}, official)
    training = tmp_path / "epoch_003.pt"
    torch.save({"format": FORMAT, "epoch": 3, "model": state}, training)
    common = dict(skeletons=world["skeletons"], split=world["split"])
    ours = P.predict(world["video"], world["params"], checkpoint=world["ckpt"], **common)
    for other in (official, training):
        pred = P.predict(world["video"], world["params"], checkpoint=other, **common)
        assert np.allclose(pred.logits, ours.logits, atol=1e-6)


# ----------------------------------------------------------------------------- annotated video


@pytest.mark.parametrize("overlay_on", ["original", "crop"])
def test_annotated_video(world, tmp_path, overlay_on):
    out = tmp_path / "annotated.mp4"
    pred = P.predict(world["video"], world["params"], checkpoint=world["ckpt"], skeletons=world["skeletons"],
                     output_video=out, overlay_on=overlay_on)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotated.mp4"]  # no temporary file left
    info = video_info(out, count_frames=True)
    size = world["params"].prepare.crop.size
    assert info.frames == 30
    assert (info.height, info.width) == ((96, 128) if overlay_on == "original" else (size, size))
    assert pred.attention.shape[0] == world["params"].model_spec().rgb.clip_len
    got = read_frames(out, [0, 29]).astype(np.int16)
    src = world["video"] if overlay_on == "original" else None
    if src is not None:
        orig = read_frames(src, [0, 29]).astype(np.int16)
        x0, y0, x1, y1 = pred.crop_box
        inside = np.abs(got[:, y0:y1, x0:x1] - orig[:, y0:y1, x0:x1]).mean()
        assert inside > 10  # the heat map is over the crop region
    # Top-left: the label on a black box.
    assert got[0, 2:6, 2:40].mean() < 120


def test_nearest_sampled_frame_maps_video_frames_to_attention_frames():
    sampled = np.array([0, 3, 7, 12])
    assert [nearest_sampled(i, sampled) for i in (0, 1, 2, 5, 6, 11, 40)] == [0, 0, 1, 1, 2, 3, 3]


# ----------------------------------------------------------------------------- errors


def _error(world: dict, **kwargs) -> str:
    kwargs.setdefault("checkpoint", world["ckpt"])
    kwargs.setdefault("skeletons", world["skeletons"])
    video = kwargs.pop("video", world["video"])
    with pytest.raises(EpamnetError) as info:
        P.predict(video, world["params"], **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_bad_inputs_give_one_line_naming_the_file(world, tmp_path):
    missing = tmp_path / "nope.avi"
    assert str(missing) in _error(world, video=missing) and "not found" in _error(world, video=missing)
    garbage = tmp_path / "garbage.avi"
    garbage.write_bytes(os.urandom(4096))
    assert str(garbage) in _error(world, video=garbage)

    msg = _error(world, checkpoint=tmp_path / "none.pt")
    assert "none.pt" in msg and "checkpoint not found" in msg
    not_torch = tmp_path / "text.pt"
    not_torch.write_text("hello")
    assert "text.pt" in _error(world, checkpoint=not_torch)

    state = torch.load(world["ckpt"], weights_only=True)
    pose_only = tmp_path / "pose.pt"
    torch.save({k: v for k, v in state.items() if k.startswith("pose_")}, pose_only)
    msg = _error(world, checkpoint=pose_only)
    assert "pose.pt" in msg and "pose-stream checkpoint" in msg and "fusion" in msg
    missing_key = tmp_path / "missing_key.pt"
    torch.save({k: v for k, v in state.items() if not k.startswith("attention_module.")}, missing_key)
    msg = _error(world, checkpoint=missing_key)
    assert "missing_key.pt" in msg and "missing keys" in msg and "attention_module" in msg

    # Wrong sizes: a model with wider streams than the checkpoint; the hint names the sizes that fit.
    wide = validate_params({"paths": world["params"].paths.model_dump(), "model": {"rgb": {"base_channels": 16}}})
    with pytest.raises(EpamnetError, match=r"model\.pt: weights do not fit .* but fit the plain synthetic preset; "
                                           r"set model\.preset: synthetic in params\.yaml and remove"):
        P.predict(world["video"], wide, checkpoint=world["ckpt"], skeletons=world["skeletons"])
    paper = validate_params({"paths": world["params"].paths.model_dump(), "model": {"preset": "paper"}})
    alternatives = P.model_alternatives(paper)
    assert [what for what, _, _ in alternatives] == ["model preset 'synthetic'"]
    with pytest.raises(EpamnetError, match=r"model\.pt: weights do not fit .*preset paper.* but fit model preset "
                                           r"'synthetic'; pass --model-preset synthetic"):
        P.load_model(world["ckpt"], paper.model_spec(), preset_name="params.yaml's model (preset paper)",
                     alternatives=alternatives)
    # --model-preset replaces params.yaml's preset, for the model and for the clip sizes alike.
    pred = P.predict(world["video"], paper, checkpoint=world["ckpt"], skeletons=world["skeletons"],
                     model_preset="synthetic", split=world["split"])
    assert pred.attention.shape[0] == world["params"].model_spec().rgb.clip_len

    few = tmp_path / "few.txt"
    few.write_text("a\nb\nc\n")
    msg = _error(world, classes=few)
    assert "few.txt" in msg and "lists 3 classes" in msg and str(NUM_CLASSES) in msg

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    msg = _error(world, output_video=blocker / "out.mp4")
    assert "out.mp4" in msg and "--output-video" in msg
    assert "unknown video suffix" in _error(world, output_video=tmp_path / "out.gif")

    other = tmp_path / "other.pkl"
    msg = _error(world, skeletons=world["skeletons"], skeleton_id="S999")
    assert "ntu60_2d.pkl" in msg and "--skeleton-id" in msg
    assert "other.pkl" in _error(world, skeletons=other)


def _one_entry_file(world: dict, path: Path, entry: str, *, frame_dir: str | None = None) -> Path:
    """The entry ``entry`` of the dataset's skeletons alone, dumped as mmaction2's ntu_pose_extraction.py
    dumps a video's annotation: one dict (not a list), pickle protocol 2 (mmengine.dump)."""
    ann = next(a for a in load_annotations(world["skeletons"]) if a["frame_dir"] == entry)
    ann["frame_dir"] = frame_dir or entry
    path.write_bytes(pickle.dumps(ann, protocol=2))
    return path


def test_a_skeleton_named_after_another_video_is_refused_unless_forced(world, tmp_path, caplog):
    other = "S001C001P001R001A002"  # the other video of the synthetic dataset
    one = _one_entry_file(world, tmp_path / f"{other}_rgb.pkl", other, frame_dir=f"{other}_rgb")
    msg = _error(world, skeletons=one)
    assert msg == (
        f"{one}: its only entry, '{other}_rgb', is the skeleton of another video than {NAME}_rgb.avi (names differ), "
        "and keypoints of another video give a confident but meaningless answer; pass the skeletons of "
        f"{NAME}_rgb.avi (an entry named '{NAME}_rgb'), or pass --force-skeletons to use it anyway"
    )
    msg = _error(world, skeleton_id=other)  # an entry picked by name is checked too
    assert f"entry '{other}' (--skeleton-id) is the skeleton of another video" in msg
    with caplog.at_level("WARNING", logger="epamnet.inference.skeletons"):
        pred = P.predict(world["video"], world["params"], checkpoint=world["ckpt"], skeletons=one,
                         force_skeletons=True, split=world["split"])
    assert pred.keypoints_from == f"{one} (entry {other}_rgb)"
    assert any("--force-skeletons" in r.getMessage() for r in caplog.records)
    assert parse(world["video"], "--skeletons", one, "--force-skeletons").force_skeletons


def test_the_videos_own_skeleton_as_ntu_pose_extraction_writes_it(world, tmp_path):
    # the video's file stem is its frame_dir there (S..._rgb); a frame_dir without the suffix matches too
    for frame_dir in (f"{NAME}_rgb", NAME):
        one = _one_entry_file(world, tmp_path / "own.pkl", NAME, frame_dir=frame_dir)
        expected = P.predict(world["video"], world["params"], checkpoint=world["ckpt"], skeletons=world["skeletons"],
                             split=world["split"])
        pred = P.predict(world["video"], world["params"], checkpoint=world["ckpt"], skeletons=one,
                         split=world["split"])
        assert pred.keypoints_from == f"{one} (entry {frame_dir})"
        np.testing.assert_allclose(pred.logits, expected.logits, atol=1e-6)


def test_without_skeletons_a_pose_checkpoint_is_required(world, tmp_path):
    msg = _error(world, skeletons=None)
    assert "--pose-checkpoint" in msg and "--skeletons" in msg
    msg = _error(world, skeletons=None, pose=PoseSettings(checkpoint=tmp_path / "hrnet.pth", box_source="full_frame"))
    assert "hrnet.pth" in msg and "not found" in msg and "--pose-checkpoint" in msg
    # From the command line, params.yaml's pose section fills what is not given.
    args = parse(world["video"], "--checkpoint", world["ckpt"])
    opts = P.pose_options(args, world["params"])
    assert opts.checkpoint == Path(world["params"].pose.checkpoint) and not opts.random_init
    assert opts.det_config is None  # boxes: the full frame, whatever pose.box_source says for datasets
    msg = _error(world, skeletons=None, pose=opts)
    assert Path(world["params"].pose.checkpoint).name in msg and "not found" in msg
    opts = P.pose_options(parse(world["video"], "--pose-random-init", "--no-flip-test", "--max-persons", "1"),
                          world["params"])
    assert opts.random_init and not opts.flip_test and opts.max_persons == 1


def test_a_video_without_any_person_is_refused(world, tmp_path):
    ann = next(a for a in load_annotations(world["skeletons"]) if a["frame_dir"] == NAME)
    ann["keypoint_score"] = np.zeros_like(ann["keypoint_score"])
    empty = tmp_path / "empty.pkl"
    save_annotations(empty, [ann])
    msg = _error(world, skeletons=empty)
    assert str(world["video"]) in msg and "no person found" in msg


def test_no_model_given(world):
    msg = _error(world, checkpoint=None)
    assert "--checkpoint" in msg
    msg = _error(world, checkpoint=None, dataset="ntu60", protocol="xview")
    assert "xview" in msg and "epamnet train" in msg


# ----------------------------------------------------------------------------- CLI


def _cli(world: dict, *argv: object) -> subprocess.CompletedProcess:
    src = Path(P.__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")])))
    return subprocess.run(
        [sys.executable, "-m", "epamnet.cli", "predict", *map(str, argv)],
        cwd=world["root"], env=env, capture_output=True, text=True, timeout=120,
    )


def test_cli_prints_a_readable_top5_and_one_line_errors(world, tmp_path):
    out_video = tmp_path / "cli.mp4"
    proc = _cli(world, world["video"], "--checkpoint", world["ckpt"], "--skeletons", world["skeletons"],
                "--output-video", out_video, "--json", tmp_path / "cli.json")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:3] == ["rank", "class", "score"])
    rows = lines[header + 1 : header + 6]
    assert [row.split()[0] for row in rows] == ["1", "2", "3", "4", "5"]
    assert all(any(name in row for name in world["classes"]) for row in rows)
    assert out_video.is_file() and json.loads((tmp_path / "cli.json").read_text())["top"][0]["rank"] == 1

    proc = _cli(world, tmp_path / "missing.avi", "--checkpoint", world["ckpt"], "--skeletons", world["skeletons"])
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "missing.avi" in errors[0] and "Traceback" not in proc.stderr


# ----------------------------------------------------------------------------- mmpose


@pytest.mark.pose
def test_predict_through_mmpose_with_a_random_hrnet(world, tmp_path, pose_stack, monkeypatch):
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object, *args: object) -> None:
        attempts.append(address)
        raise OSError(f"network disabled in tests (tried {address!r})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    short = tmp_path / "short.avi"  # 4 frames, one forward pass: keeps the full-size HRNet fast on a CPU
    write_video(short, read_frames(world["video"], range(4)), fps=30)
    out_json, out_video = tmp_path / "pose.json", tmp_path / "pose.mp4"
    args = parse(short, "--checkpoint", world["ckpt"], "--pose-random-init", "--no-flip-test", "--pose-batch-size", "4",
                 "--json", out_json, "--output-video", out_video)
    assert P.run(args, world["params"]) == 0
    data = json.loads(out_json.read_text())
    assert "mmpose" in data["keypoints_from"] and "random" in data["keypoints_from"]
    assert "full frame" in data["keypoints_from"]
    assert len(data["top"]) == 5 and data["frames"] == 4
    assert video_info(out_video, count_frames=True).frames == 4
    assert not attempts, f"predict tried to open network connections: {attempts}"
