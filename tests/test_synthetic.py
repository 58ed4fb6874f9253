"""The synthetic datasets: real raw layouts, real naming and split rules, determinism,
skeletons that match the rendered figures, and the class design (object-only and
motion-only differences)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Self

import numpy as np
import pytest

from epamnet.config.synthetic import SyntheticSpec
from epamnet.errors import EpamnetError
from epamnet.io.skeleton import load_annotation_file
from epamnet.io.video import read_frames, video_info
from epamnet.prepare.synthetic import formats as synth_formats
from epamnet.prepare.synthetic.body import R_WRIST, random_body
from epamnet.prepare.synthetic.design import class_design
from epamnet.prepare.synthetic.formats import clip_take, generate
from epamnet.prepare.synthetic.render import (
    background,
    make_camera,
    noise_bank,
    render_frame,
    rng_for,
)

SEED = 7
TINY = SyntheticSpec(
    num_classes=8,
    height=64,
    width=80,
    frames=(12, 16),
    ntu_subjects=(1, 3),
    ntu_cameras=(1, 2),
    ntu_setups=(1, 2),
    ntu_replications=(1,),
    pku_sequences=2,
    pku_subjects=(1, 2),
    pku_val_subjects=(2,),
    pku_actions_per_video=3,
    pku_gap=(3, 5),
    pku_overlap_prob=1.0,
    pku_overlap=(2, 3),
    toyota_subjects=(3, 19, 2),
    toyota_cameras=(1, 2, 5),
    second_person_prob=0.5,
)

# The real rules, written out here independently of the generator.
NTU_NAME = re.compile(r"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})_rgb\.avi$")
NTU60_XSUB_TRAIN = {1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38}
PKU_NAME = re.compile(r"^(\d{4})-([LMR])\.avi$")
TOYOTA_NAME = re.compile(r"^([A-Za-z]+(?:\.[A-Za-z]+)?)_p(\d{2})_r(\d{2})_v(\d{2})_c(\d{2})\.mp4$")
TOYOTA_CS = sorted(
    "Cook.Cleandishes Cook.Cleanup Cook.Cut Cook.Stir Cook.Usestove Cutbread Drink.Frombottle Drink.Fromcan "
    "Drink.Fromcup Drink.Fromglass Eat.Attable Eat.Snack Enter Getup Laydown Leave Makecoffee.Pourgrains "
    "Makecoffee.Pourwater Maketea.Boilwater Maketea.Insertteabag Pour.Frombottle Pour.Fromcan Pour.Fromkettle "
    "Readbook Sitdown Takepills Uselaptop Usetablet Usetelephone Walk WatchTV".split()
)
TOYOTA_CV = set(
    "Cutbread Drink.Frombottle Drink.Fromcan Drink.Fromcup Drink.Fromglass Eat.Attable Eat.Snack Enter Getup "
    "Leave Pour.Frombottle Pour.Fromcan Readbook Sitdown Takepills Uselaptop Usetablet Usetelephone Walk".split()
)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("raw")
    return {fmt: generate(fmt, root / fmt, TINY, seed=SEED) for fmt in ("ntu60", "ntu120", "pku", "toyota")}


def manifest(folder: Path) -> dict:
    return json.loads((folder / "MANIFEST.json").read_text())


def test_same_seed_gives_identical_files(datasets: dict[str, Path], tmp_path: Path) -> None:
    again = generate("ntu60", tmp_path / "ntu60", TINY, seed=SEED)
    first, second = manifest(datasets["ntu60"]), manifest(again)
    assert first == second
    assert (datasets["ntu60"] / "ntu60_2d.pkl").read_bytes() == (again / "ntu60_2d.pkl").read_bytes()
    video = "nturgb+d_rgb/S001C001P001R001A001_rgb.avi"
    np.testing.assert_array_equal(read_frames(datasets["ntu60"] / video), read_frames(again / video))
    other = generate("ntu60", tmp_path / "other", TINY, seed=SEED + 1)
    assert (other / "ntu60_2d.pkl").read_bytes() != (again / "ntu60_2d.pkl").read_bytes()


@pytest.mark.parametrize("fmt", ["ntu60", "ntu120", "pku", "toyota"])
def test_manifest_lists_every_file_with_size_and_hash(datasets: dict[str, Path], fmt: str) -> None:
    folder = datasets[fmt]
    info = manifest(folder)
    on_disk = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert on_disk == sorted([f["path"] for f in info["files"]] + ["MANIFEST.json"])
    for entry in info["files"]:
        data = (folder / entry["path"]).read_bytes()
        assert entry["size"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert info["seed"] == SEED and info["dataset_format"] == fmt
    assert SyntheticSpec.from_mapping(info["spec"]) == TINY
    assert [c["label"] for c in info["classes"]] == list(range(TINY.num_classes))
    # Nothing but the dataset folders in the parent: no temporary leftovers.
    assert sorted(p.name for p in folder.parent.iterdir()) == ["ntu120", "ntu60", "pku", "toyota"]


def test_ntu_names_labels_and_splits_follow_the_real_rules(datasets: dict[str, Path]) -> None:
    folder = datasets["ntu60"]
    annotations, split = load_annotation_file(folder / "ntu60_2d.pkl")
    videos = sorted(p.name for p in (folder / "nturgb+d_rgb").iterdir())
    parsed = {m.group(0)[:-8]: tuple(map(int, m.groups())) for m in map(NTU_NAME.match, videos) if m}
    assert len(parsed) == len(videos) == len(annotations) == 2 * 2 * TINY.num_classes
    for ann in annotations:
        setup, camera, subject, rep, action = parsed[ann["frame_dir"]]
        assert ann["label"] == action - 1
        assert ann["img_shape"] == ann["original_shape"] == (64, 80)
        assert ann["keypoint"].dtype == np.float32 and ann["keypoint_score"].dtype == np.float32
    names = sorted(parsed)
    assert set(split) == {"xsub_train", "xsub_val", "xview_train", "xview_val"}
    assert split["xsub_train"] == [n for n in names if parsed[n][2] in NTU60_XSUB_TRAIN]
    assert split["xsub_val"] == [n for n in names if parsed[n][2] not in NTU60_XSUB_TRAIN]
    assert split["xview_train"] == [n for n in names if parsed[n][1] in (2, 3)]
    assert split["xview_val"] == [n for n in names if parsed[n][1] == 1]
    assert all(split.values())
    # Every label appears on both sides of both protocols.
    label = {a["frame_dir"]: a["label"] for a in annotations}
    for part in split.values():
        assert {label[n] for n in part} == set(range(TINY.num_classes))
    # The video decodes to the annotated number of frames.
    first = annotations[0]
    info = video_info(folder / "nturgb+d_rgb" / f"{first['frame_dir']}_rgb.avi", count_frames=True)
    assert (info.frames, info.height, info.width, info.fps) == (first["total_frames"], 64, 80, 30.0)
    # Multi-person samples exist, and only as an extra (second) person.
    assert {a["keypoint"].shape[0] for a in annotations} == {1, 2}


def test_ntu120_uses_xset_by_setup_parity(datasets: dict[str, Path]) -> None:
    annotations, split = load_annotation_file(datasets["ntu120"] / "ntu120_2d.pkl")
    assert set(split) == {"xsub_train", "xsub_val", "xset_train", "xset_val"}
    assert split["xset_train"] and all(int(n[1:4]) % 2 == 0 for n in split["xset_train"])
    assert split["xset_val"] and all(int(n[1:4]) % 2 == 1 for n in split["xset_val"])
    assert sorted(split["xset_train"] + split["xset_val"]) == sorted(a["frame_dir"] for a in annotations)


def test_keypoints_are_inside_the_frame_and_on_the_drawn_figure(datasets: dict[str, Path]) -> None:
    folder = datasets["ntu60"]
    annotations, _ = load_annotation_file(folder / "ntu60_2d.pkl")
    hits, total = 0, 0
    for ann in annotations[::5]:
        kp = ann["keypoint"]
        assert kp[..., 0].min() >= 0 and kp[..., 0].max() <= 79
        assert kp[..., 1].min() >= 0 and kp[..., 1].max() <= 63
        score = ann["keypoint_score"]
        assert score.min() >= 0.5 and score.max() <= 1.0
        setup, camera = int(ann["frame_dir"][1:4]), int(ann["frame_dir"][5:8])
        bg = background(SEED, f"ntu/S{setup:03d}/C{camera:03d}", 64, 80).astype(np.int16)
        frames = read_frames(folder / "nturgb+d_rgb" / f"{ann['frame_dir']}_rgb.avi").astype(np.int16)
        for t in range(0, ann["total_frames"], 4):
            diff = np.abs(frames[t] - bg).max(axis=-1)
            x, y = np.round(kp[0, t]).astype(int).T
            hits += int((diff[y, x] > 30).sum())
            total += len(x)
            assert np.median(diff[:6, :6]) < 15  # a corner is plain background
    assert hits / total > 0.97, hits / total


def test_pku_layout_labels_overlaps_and_split_files(datasets: dict[str, Path]) -> None:
    folder = datasets["pku"]
    info = manifest(folder)
    videos = sorted(p.name for p in (folder / "RGB_VIDEO").iterdir())
    assert all(PKU_NAME.match(v) for v in videos) and len(videos) == TINY.pku_sequences * 3
    annotations, split = load_annotation_file(folder / "pku_2d.pkl")
    assert split is None
    by_id = {a["frame_dir"]: a for a in annotations}
    assert sorted(by_id) == [v[:-4] for v in videos]
    rows_of: dict[str, list[tuple[int, ...]]] = {}
    for vid, ann in by_id.items():
        assert ann["label"] == -1
        assert video_info(folder / "RGB_VIDEO" / f"{vid}.avi", count_frames=True).frames == ann["total_frames"]
        lines = (folder / "Train_Label_PKU_final" / f"{vid}.txt").read_text().splitlines()
        rows = [tuple(int(v) for v in line.split(",")) for line in lines]
        assert len(rows) == TINY.pku_actions_per_video
        for label, start, end, confidence in rows:
            assert 1 <= label <= TINY.num_classes and confidence == 1
            assert 0 <= start <= end < ann["total_frames"]
        rows_of[vid] = rows
    # The three views of a sequence share their labels.
    for vid, rows in rows_of.items():
        assert rows == rows_of[vid[:4] + "-M"]
    # With pku_overlap_prob=1 every pair of consecutive rows overlaps by the recorded frames.
    overlaps = info["summary"]["overlaps"]
    assert len(overlaps) == len(videos) * (TINY.pku_actions_per_video - 1)
    for item in overlaps:
        (_, _, end_a, _), (_, start_b, _, _) = (rows_of[item["video"]][i] for i in item["rows"])
        assert end_a - start_b + 1 == item["frames"] and 2 <= item["frames"] <= 3
    # Split files: the real PKU-MMD format, including its 'Validataion' spelling.
    subjects = info["summary"]["sequence_subjects"]
    for name, is_val in (
        ("cross-view.txt", lambda v: v.endswith("-M")),  # the official rule: L and R train, M tests
        ("cross-subject.txt", lambda v: subjects[v[:4]] in TINY.pku_val_subjects),
    ):
        lines = (folder / "Split" / name).read_text().split("\n")
        assert lines[0] == "Training videos: " and lines[2] == "Validataion videos: " and lines[4:] == [""]
        train, val = lines[1].split(", "), lines[3].split(", ")
        assert sorted(train + val) == sorted(by_id) and not set(train) & set(val)
        assert val == [v for v in sorted(by_id) if is_val(v)] and train and val


def test_toyota_names_labels_and_protocol_coverage(datasets: dict[str, Path]) -> None:
    folder = datasets["toyota"]
    annotations = load_annotation_file(folder / "toyota_2d.pkl")[0]
    files = sorted(p.name for p in (folder / "mp4").iterdir())
    assert len(files) == len(annotations) == 3 * 3 * TINY.num_classes
    label = {a["frame_dir"]: a["label"] for a in annotations}
    parsed = []
    for name in files:
        m = TOYOTA_NAME.match(name)
        assert m, name
        activity, subject, camera = m.group(1), int(m.group(2)), int(m.group(5))
        assert label[name[:-4]] == TOYOTA_CS.index(activity)
        parsed.append((activity, subject, camera))
    activities = {a for a, _, _ in parsed}
    assert len(activities) == TINY.num_classes
    assert 0 < len(activities & TOYOTA_CV) < len(activities)  # CV classes and CS-only classes
    cs = {"train": {3, 4, 6, 7, 9, 12, 13, 15, 17}, "val": {19, 25}, "test": {2, 10, 11, 14, 16, 18, 20}}
    for subjects in cs.values():
        assert {a for a, s, _ in parsed if s in subjects} == activities
    for cameras in ({1}, {5}, {2}, {1, 3, 4, 6, 7}):  # CV1 train, CV val, CV test, CV2 train
        assert {a for a, _, c in parsed if c in cameras} == activities
    assert video_info(folder / "mp4" / files[0]).fps == 20.0


def test_object_only_classes_share_the_motion_and_differ_near_the_hand() -> None:
    classes = class_design(8)
    a, b = classes[0], classes[1]  # same group and variant, different object
    assert (a.group, a.variant) == (b.group, b.variant) and a.object != b.object
    actor = random_body(rng_for(SEED, "actor"))
    take_a = clip_take(a, actor, rng_for(SEED, "take"), TINY)
    take_b = clip_take(b, actor, rng_for(SEED, "take"), TINY)
    np.testing.assert_array_equal(take_a.people[0][0], take_b.people[0][0])
    camera = make_camera(0.0, 8.0, 1.0, 0.0, 64, 80)
    bg = background(SEED, "test", 64, 80)
    noise = np.zeros((64, 80, 3), np.int16)
    t = take_a.num_frames // 2
    pts, depth = camera.project(take_a.people[0][0][t])
    img_a = render_frame(bg, noise, [(pts, depth, actor)], take_a.objects[t], camera.scale).astype(int)
    img_b = render_frame(bg, noise, [(pts, depth, actor)], take_b.objects[t], camera.scale).astype(int)
    changed = np.argwhere(np.abs(img_a - img_b).max(axis=-1) > 0)
    assert len(changed) > 0
    dist = np.hypot(changed[:, 1] - pts[R_WRIST, 0], changed[:, 0] - pts[R_WRIST, 1])
    assert dist.max() < 0.3 * camera.scale  # every changed pixel lies within 30 cm of the right wrist


def test_motion_only_classes_differ_in_bounce_rate_and_alias_at_the_rgb_rate() -> None:
    classes = class_design(8)
    slow, fast = classes[0], classes[2]  # same group and object, different variant
    assert (slow.group, slow.object) == (fast.group, fast.object) and slow.variant != fast.variant
    actor = random_body(rng_for(SEED, "actor"))
    # 97 frames: frame i is at clip position i / 96, so frames 0, 12, ... sit at k / 8.
    spec = SyntheticSpec(frames=(97, 97), fine_cycles=1.0, fine_alias=8.0, fine_radius=0.07)
    flat = SyntheticSpec(frames=(97, 97), fine_cycles=1.0, fine_alias=8.0, fine_radius=0.0)
    base = clip_take(slow, actor, rng_for(SEED, "take"), flat).people[0][0]
    offsets = []
    for cls in (slow, fast):
        joints = clip_take(cls, actor, rng_for(SEED, "take"), spec).people[0][0]
        offset = joints - base
        np.testing.assert_allclose(offset, np.broadcast_to(offset[:, :1], offset.shape), atol=1e-9)  # whole body
        radius = np.linalg.norm(offset[:, 0], axis=-1)
        assert 0.06 < radius.max() <= 0.07 + 1e-9
        offsets.append(offset[:, 0])

    def steps(path: np.ndarray) -> np.ndarray:
        return np.linalg.norm(np.diff(path, axis=0), axis=-1)

    # At the pose stream's rate (24 samples) the fast bounce moves several times further per step.
    pose_rate = [steps(o[::4])[3:-3].mean() for o in offsets]  # away from the fades
    assert pose_rate[1] > 3 * pose_rate[0]
    # At the RGB rate (8 samples) the fast path is the slow one mirrored: same distances.
    rgb = [o[::12] for o in offsets]
    dist = [np.linalg.norm(r[:, None] - r[None], axis=-1) for r in rgb]
    np.testing.assert_allclose(dist[0], dist[1], atol=1e-9)


def test_bad_arguments_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(EpamnetError, match="unknown dataset format"):
        generate("kinetics", tmp_path / "x", TINY, seed=0)
    with pytest.raises(EpamnetError, match="num_classes"):
        SyntheticSpec(num_classes=1)
    with pytest.raises(EpamnetError, match="frames"):
        SyntheticSpec(frames=(20, 10))
    with pytest.raises(EpamnetError, match="pku_val_subjects"):
        SyntheticSpec(pku_subjects=(1, 2), pku_val_subjects=(3,))
    with pytest.raises(EpamnetError, match="unknown key"):
        SyntheticSpec.from_mapping({"num_clases": 4})
    assert not (tmp_path / "x").exists()


def test_failure_midway_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = synth_formats.render_take

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(synth_formats, "render_take", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        generate("toyota", tmp_path / "toyota", TINY, seed=0)
    assert list(tmp_path.iterdir()) == []


def test_render_take_writes_exactly_the_frames_render_frame_draws(tmp_path: Path, monkeypatch) -> None:
    """render_take draws each frame on a copy of one of a few noisy backgrounds made once per
    take, and the background is shared by every take of a scene; the frames must still be
    render_frame's, drawn afresh from the background and that frame's noise (a figure left
    on a shared image would show up in later frames)."""
    written: list[np.ndarray] = []

    class Recorder:  # the frames handed to the video writer, before any codec touches them
        def __init__(self, path: Path, fps: float, codec: str) -> None:
            pass

        def __enter__(self) -> Self:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def write(self, frame: np.ndarray) -> None:
            written.append(frame.copy())

    monkeypatch.setattr(synth_formats, "VideoWriter", Recorder)
    actor = random_body(rng_for(SEED, "actor"))
    take = clip_take(class_design(8)[0], actor, rng_for(SEED, "take"), TINY)
    camera = make_camera(0.0, 8.0, 1.0, 0.0, 64, 80)
    bg = background(SEED, "render-take", 64, 80)
    assert background(SEED, "render-take", 64, 80) is bg and not bg.flags.writeable
    synth_formats.render_take(tmp_path / "take.avi", take, camera, bg, rng_for(SEED, "render"), 30.0, 1.0)
    rng = rng_for(SEED, "render")  # render_take draws the noise bank, then each frame's pick
    bank = noise_bank(rng, 64, 80)
    picks = rng.integers(len(bank), size=take.num_frames)
    projected = [camera.project(joints) for joints, _ in take.people]
    assert len(written) == take.num_frames and len(set(picks.tolist())) > 1
    for t, frame in enumerate(written):
        people = [(pts[t], depth[t], body) for (pts, depth), (_, body) in zip(projected, take.people)]
        np.testing.assert_array_equal(frame, render_frame(bg, bank[picks[t]], people, take.objects[t], camera.scale))
