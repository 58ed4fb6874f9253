"""The splits stage (epamnet.prepare.splits.make_splits) on small generated annotation files."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from epamnet.datasets import pku, toyota
from epamnet.errors import EpamnetError
from epamnet.io.skeleton import save_annotations
from epamnet.prepare.splits import make_splits


def ann(frame_dir: str, label: int) -> dict:
    """A minimal valid annotation (one person, two frames)."""
    return {
        "frame_dir": frame_dir,
        "label": label,
        "img_shape": (224, 224),
        "original_shape": (240, 320),
        "total_frames": 2,
        "keypoint": np.zeros((1, 2, 17, 2), np.float32),
        "keypoint_score": np.ones((1, 2, 17), np.float32),
    }


def write(path: Path, entries: list[dict]) -> Path:
    save_annotations(path, entries)
    return path


def read_txt(path: Path) -> list[tuple[str, int]]:
    text = path.read_text(encoding="utf-8")
    assert not text.endswith("\n")
    return [(line.rsplit(" ", 1)[0][: -len(".mp4")], int(line.rsplit(" ", 1)[1])) for line in text.split("\n") if line]


def ntu_names(subjects=(1, 2, 3, 4), cameras=(1, 2, 3), setups=(1, 2), actions=(1, 2, 3)) -> list[str]:
    return [
        f"S{s:03d}C{c:03d}P{p:03d}R001A{a:03d}"
        for s in setups for c in cameras for p in subjects for a in actions
    ]  # fmt: skip


def test_ntu60_splits_files_and_schema(tmp_path, caplog):
    names = ntu_names()
    path = write(tmp_path / "annotations.pkl", [ann(n, int(n[-3:]) - 1) for n in names])
    out = tmp_path / "splits"
    with caplog.at_level(logging.INFO, logger="epamnet.prepare.splits"):
        splits = make_splits("ntu60", path, out, ["xsub", "xview"], num_classes=3, source="synthetic")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{p}{s}" for p in ("xsub", "xview") for s in (".json", "_train.txt", "_val.txt", "_test.txt")
    )
    doc = json.loads((out / "xsub.json").read_text(encoding="utf-8"))
    assert list(doc) == ["dataset", "protocol", "source", "classes", "num_classes", "train", "val", "test"]
    assert (doc["dataset"], doc["protocol"], doc["source"], doc["num_classes"]) == ("ntu60", "xsub", "synthetic", 3)
    assert doc["classes"] == ["drink water", "eat meal/snack", "brushing teeth"]
    # performers 1, 2, 4 train and 3 tests (xsub); cameras 2, 3 train and 1 tests (xview)
    assert {int(n[9:12]) for n, _ in doc["train"]} == {1, 2, 4} and {int(n[9:12]) for n, _ in doc["test"]} == {3}
    assert doc["val"] == []
    assert len(doc["train"]) + len(doc["test"]) == len(names)
    assert all(label == int(name[-3:]) - 1 for name, label in doc["train"] + doc["test"])
    assert doc["train"] == sorted(doc["train"])
    for part in ("train", "val", "test"):
        assert read_txt(out / f"xsub_{part}.txt") == [tuple(x) for x in doc[part]]
    xview = json.loads((out / "xview.json").read_text(encoding="utf-8"))
    assert {n[4:8] for n, _ in xview["train"]} == {"C002", "C003"} and {n[4:8] for n, _ in xview["test"]} == {"C001"}
    assert [len(splits["xview"].parts[p]) for p in ("train", "val", "test")] == [48, 0, 24]
    assert "ntu60/xsub: 54 train, 0 val, 18 test, 0 in no part; 3 classes" in caplog.text


def test_unknown_labels_pass_and_wrong_labels_fail(tmp_path):
    names = ntu_names()
    entries = [ann(n, -1) for n in names]
    make_splits("ntu60", write(tmp_path / "a.pkl", entries), tmp_path / "ok", ["xsub"])
    entries[5] = ann(names[5], 0 if names[5].endswith("A002") else 1)
    path = write(tmp_path / "b.pkl", entries)
    with pytest.raises(EpamnetError) as err:
        make_splits("ntu60", path, tmp_path / "bad", ["xsub"])
    msg = str(err.value)
    assert msg.startswith(str(path)) and names[5] in msg and "but its name says" in msg and "\n" not in msg
    assert not (tmp_path / "bad").exists()


def test_empty_test_split_is_an_error_and_keeps_old_output(tmp_path):
    out = tmp_path / "splits"
    make_splits("ntu60", write(tmp_path / "good.pkl", [ann(n, -1) for n in ntu_names()]), out, ["xsub"])
    before = (out / "xsub.json").read_text(encoding="utf-8")
    only_train = ntu_names(subjects=(1, 2))  # both are xsub training performers
    path = write(tmp_path / "a.pkl", [ann(n, -1) for n in only_train])
    with pytest.raises(EpamnetError) as err:
        make_splits("ntu60", path, out, ["xview", "xsub"])
    assert "ntu60/xsub has no test samples" in str(err.value) and str(err.value).startswith(str(path))
    assert (out / "xsub.json").read_text(encoding="utf-8") == before  # untouched
    assert not (out / "xview.json").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp leftovers


def test_output_folder_is_replaced_whole(tmp_path):
    out = tmp_path / "splits"
    out.mkdir()
    (out / "stale.json").write_text("{}", encoding="utf-8")
    make_splits("ntu120", write(tmp_path / "a.pkl", [ann(n, -1) for n in ntu_names()]), out, ["xset"])
    assert sorted(p.name for p in out.iterdir()) == ["xset.json", "xset_test.txt", "xset_train.txt", "xset_val.txt"]
    doc = json.loads((out / "xset.json").read_text(encoding="utf-8"))
    assert {n[:4] for n, _ in doc["train"]} == {"S002"} and {n[:4] for n, _ in doc["test"]} == {"S001"}
    assert doc["num_classes"] == 120


def test_ntu60_leaves_out_ntu120_only_samples(tmp_path):
    names = ntu_names() + ["S018C001P001R001A001", "S001C001P003R001A061"]
    splits = make_splits("ntu60", write(tmp_path / "a.pkl", [ann(n, -1) for n in names]), tmp_path / "s", ["xsub"])
    assert splits["xsub"].skipped == 2
    assert all(n not in dict(splits["xsub"].parts["train"] + splits["xsub"].parts["test"]) for n in names[-2:])


def test_synthetic_class_count_is_enforced(tmp_path):
    path = write(tmp_path / "a.pkl", [ann(n, -1) for n in ntu_names(actions=(1, 2, 3, 4))])
    with pytest.raises(EpamnetError, match="beyond the 3 classes"):
        make_splits("ntu60", path, tmp_path / "s", ["xsub"], num_classes=3, source="synthetic")


def pku_setup(tmp_path: Path) -> tuple[Path, list[str]]:
    split_dir = tmp_path / "Split"
    split_dir.mkdir()
    (split_dir / "cross-subject.txt").write_text(
        "Training videos: \n0001-L, 0001-M, 0001-R, 0002-L, 0002-M, 0002-R\n"
        "Validataion videos: \n0003-L, 0003-M, 0003-R\n",
        encoding="utf-8",
    )
    (split_dir / "cross-view.txt").write_text(
        pku.format_split_file(
            [f"000{i}-{v}" for i in (1, 2, 3) for v in "MR"], [f"000{i}-L" for i in (1, 2, 3)]
        ),
        encoding="utf-8",
    )
    clips = [
        pku.format_clip_name(f"000{i}-{v}", action, k)
        for i in (1, 2, 3) for v in "LMR" for k, action in enumerate((5, 1, 51), start=1)
    ]  # fmt: skip
    clips.append("0004-L-A02-N01")  # a video in neither list
    return split_dir, clips


def test_pku_clips_inherit_their_video_split(tmp_path):
    split_dir, clips = pku_setup(tmp_path)
    path = write(tmp_path / "a.pkl", [ann(c, pku.parse_clip_name(c).label) for c in clips])
    out = tmp_path / "splits"
    splits = make_splits("pku", path, out, ["xsub", "xview"], pku_split_dir=split_dir)
    xsub = json.loads((out / "xsub.json").read_text(encoding="utf-8"))
    assert xsub["num_classes"] == 51 and xsub["classes"][0] == "bow" and xsub["val"] == []
    assert {n[:4] for n, _ in xsub["train"]} == {"0001", "0002"} and {n[:4] for n, _ in xsub["test"]} == {"0003"}
    assert sorted({label for _, label in xsub["train"]}) == [0, 4, 50]
    xview = splits["xview"].parts
    assert {n[5] for n, _ in xview["train"]} == {"M", "R"} and {n[5] for n, _ in xview["test"]} == {"L"}
    assert splits["xsub"].skipped == splits["xview"].skipped == 1
    assert read_txt(out / "xview_test.txt")[0] == ("0001-L-A01-N02", 0)


def test_pku_label_mismatch_and_missing_split_dir(tmp_path):
    split_dir, clips = pku_setup(tmp_path)
    entries = [ann(c, pku.parse_clip_name(c).label) for c in clips]
    entries[0]["label"] = 7
    path = write(tmp_path / "a.pkl", entries)
    with pytest.raises(EpamnetError, match=f"{clips[0]}.*has label 7 but its name says 4"):
        make_splits("pku", path, tmp_path / "s", ["xsub"], pku_split_dir=split_dir)
    with pytest.raises(EpamnetError, match="pku_split_dir"):
        make_splits("pku", path, tmp_path / "s", ["xsub"])
    videos = write(tmp_path / "videos.pkl", [ann("0001-L", -1), ann("0003-L", -1)])
    with pytest.raises(EpamnetError, match="untrimmed videos .*0001-L.*not action clips"):
        make_splits("pku", videos, tmp_path / "s", ["xsub"], pku_split_dir=split_dir)


def toyota_names(activities, subjects=(3, 19, 2), cameras=(1, 5, 2, 8)) -> list[str]:
    return [toyota.format_name(a, s, 0, 1, c) for a in activities for s in subjects for c in cameras]


def test_toyota_cs_and_cv2_with_validation(tmp_path):
    acts = ("Walk", "Cook.Stir", "Drink.Fromcup")
    names = toyota_names(acts)
    path = write(tmp_path / "a.pkl", [ann(n, toyota.CS_CLASSES.index(n.split("_")[0])) for n in names])
    out = tmp_path / "splits"
    make_splits("toyota", path, out, ["cs", "cv2"])
    cs = json.loads((out / "cs.json").read_text(encoding="utf-8"))
    assert cs["num_classes"] == 31 and len(cs["train"]) == len(cs["val"]) == len(cs["test"]) == 12
    assert {toyota.parse_name(n).subject for n, _ in cs["val"]} == {19}
    assert {label for _, label in cs["test"]} == {29, 3, 8}
    cv2 = json.loads((out / "cv2.json").read_text(encoding="utf-8"))
    assert cv2["num_classes"] == 19
    assert all(n.split("_")[0] != "Cook.Stir" for part in ("train", "val", "test") for n, _ in cv2[part])
    assert {toyota.parse_name(n).camera for n, _ in cv2["val"]} == {5}
    assert {label for _, label in cv2["train"]} == {18, 3}
    assert read_txt(out / "cv2_val.txt") == [tuple(x) for x in cv2["val"]]


def test_toyota_synthetic_truncation(tmp_path):
    from epamnet.datasets.toyota import SYNTHETIC_ACTIVITIES as TOYOTA_NAMES

    acts = TOYOTA_NAMES[:8]
    path = write(tmp_path / "a.pkl", [ann(n, -1) for n in toyota_names(acts)])
    splits = make_splits("toyota", path, tmp_path / "s", ["cs", "cv2"], num_classes=8, source="synthetic")
    assert splits["cs"].classes == tuple(sorted(acts))
    assert splits["cv2"].classes == tuple(a for a in toyota.CV_CLASSES if a in acts)
    assert {lbl for _, lbl in splits["cs"].parts["train"]} == set(range(8))
    assert {lbl for _, lbl in splits["cv2"].parts["train"]} == set(range(len(splits["cv2"].classes)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"dataset": "ntu60", "protocols": ["xset"]}, "no protocol"),
        ({"dataset": "ntu60", "protocols": []}, "no protocols"),
        ({"dataset": "kinetics", "protocols": ["xsub"]}, "unknown dataset"),
        ({"dataset": "ntu60", "protocols": ["xsub"], "source": "fake"}, "source"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    path = write(tmp_path / "a.pkl", [ann(n, -1) for n in ntu_names()])
    with pytest.raises(EpamnetError, match=match):
        make_splits(annotations_path=path, out_dir=tmp_path / "s", **kwargs)


def test_missing_annotations_file(tmp_path):
    with pytest.raises(EpamnetError) as err:
        make_splits("ntu60", tmp_path / "nope.pkl", tmp_path / "s", ["xsub"])
    assert "nope.pkl" in str(err.value)
