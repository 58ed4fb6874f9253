"""The splits stage (epamnet.prepare.splits.make_splits) on small generated annotation files."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from epamnet.datasets import pku, toyota
from epamnet.datasets.registry import get_dataset
from epamnet.errors import EpamnetError
from epamnet.io.skeleton import save_annotations
from epamnet.prepare.splits import _frame_dirs, build_split, check_labels, make_splits


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
    (split_dir / "cross-view.txt").write_text(  # the official rule: left and right train, middle tests
        pku.format_split_file(
            [f"000{i}-{v}" for i in (1, 2, 3) for v in "LR"], [f"000{i}-M" for i in (1, 2, 3)]
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
    assert {n[5] for n, _ in xview["train"]} == {"L", "R"} and {n[5] for n, _ in xview["test"]} == {"M"}
    assert splits["xsub"].skipped == splits["xview"].skipped == 1
    assert read_txt(out / "xview_test.txt")[0] == ("0001-M-A01-N02", 0)


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

# ================================================================ edges found by mutation testing
# (what the stage logs, its exact one-line errors, build_split and check_labels called directly; `make mutation`). Expected values are typed out or worked out by hand,
# not built from the code's own constants.


def test_log_lines_of_a_small_ntu60_run(tmp_path, caplog):
    # performers 1 (xsub train) and 3 (test), cameras 1 (xview test) and 2 (train), actions 1-2,
    # one more A001 of P001/C002 (R002), and one NTU-120-only setup (S018: in no part)
    names = ntu_names(subjects=(1, 3), cameras=(1, 2), setups=(1,), actions=(1, 2))
    names += ["S001C002P001R002A001", "S018C001P001R001A001"]
    path = write(tmp_path / "annotations.pkl", [ann(n, -1) for n in names])
    out = tmp_path / "splits"
    with caplog.at_level(logging.INFO, logger="epamnet.prepare.splits"):
        make_splits("ntu60", path, out, ["xsub", "xview"], num_classes=3, source="synthetic")
    records = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "epamnet.prepare.splits"]
    per_protocol = []
    for protocol in ("xsub", "xview"):
        per_protocol += [
            ("INFO", f"ntu60/{protocol}: 5 train, 0 val, 4 test, 1 in no part; 3 classes"),
            ("INFO", f"ntu60/{protocol} train: 2 of 3 classes present, 2..3 samples per present class"),
            ("WARNING", f"ntu60/{protocol}: no training samples for brushing teeth"),
            ("INFO", f"ntu60/{protocol} test: 2 of 3 classes present, 2..2 samples per present class"),
        ]
    assert records == [
        ("INFO", f"ntu60: 10 annotated samples in {path}"),
        *per_protocol,
        ("INFO", f"wrote ntu60 splits for xsub, xview to {out}"),
    ]


def test_frame_dirs_sorted_and_duplicate_message():
    # (the annotation file's own check refuses duplicates first; this is the stage's backstop)
    entries = [{"frame_dir": n} for n in ("b", "c", "a")]
    assert _frame_dirs(entries, Path("a.pkl")) == ["a", "b", "c"]
    with pytest.raises(EpamnetError) as err:
        _frame_dirs([*entries, {"frame_dir": "c"}], Path("a.pkl"))
    assert str(err.value) == "a.pkl: frame_dir 'c' appears 2 times; regenerate the annotations"


@pytest.mark.parametrize("entry", [{"label": 0}, ["S001C001P001R001A001"], {"frame_dir": 5}, {"frame_dir": ""}])
def test_entry_without_a_frame_dir_message(entry):
    with pytest.raises(EpamnetError) as err:
        _frame_dirs([{"frame_dir": "S001C001P001R001A001"}, entry], Path("a.pkl"))
    assert str(err.value) == "a.pkl: entry 1 has no frame_dir; regenerate the annotations (crop-merge)"


def test_unknown_protocol_message(tmp_path):
    path = write(tmp_path / "a.pkl", [ann(n, -1) for n in ntu_names()])
    with pytest.raises(EpamnetError) as err:
        make_splits("ntu60", path, tmp_path / "s", ["xsub", "xset"])
    assert str(err.value) == "splits: ntu60 has no protocol(s) ['xset']; use some of ('xsub', 'xview')"


def test_empty_train_part_message(tmp_path):
    path = write(tmp_path / "a.pkl", [ann(n, -1) for n in ntu_names(cameras=(1,))])  # camera 1: xview test only
    with pytest.raises(EpamnetError) as err:
        make_splits("ntu60", path, tmp_path / "s", ["xview"])
    assert str(err.value) == (
        f"{path}: protocol ntu60/xview has no train samples among 24 annotations; "
        "the data must cover the protocol's training and test subjects/cameras/setups"
    )


def test_pku_empty_part_and_untrimmed_messages(tmp_path):
    split_dir = tmp_path / "Split"
    split_dir.mkdir()
    (split_dir / "cross-subject.txt").write_text(pku.format_split_file(["0009-L"], ["0001-L"]), encoding="utf-8")
    clips = ["0001-L-A01-N01", "0001-L-A02-N02"]
    path = write(tmp_path / "a.pkl", [ann(c, -1) for c in clips])
    with pytest.raises(EpamnetError) as err:
        make_splits("pku", path, tmp_path / "s", ["xsub"], pku_split_dir=split_dir)
    assert str(err.value) == (
        f"{path}: protocol pku/xsub has no train samples among 2 annotations; "
        f"the data must cover the protocol's training and test subjects/cameras/setups (see {split_dir})"
    )
    videos = write(tmp_path / "videos.pkl", [ann("0001-L", -1), ann("0009-L", -1)])
    with pytest.raises(EpamnetError) as err:
        make_splits("pku", videos, tmp_path / "s", ["xsub"], pku_split_dir=split_dir)
    assert str(err.value) == (
        f"{videos}: 2 entries are untrimmed videos (e.g. 0001-L), not action clips; "
        "split the clips' annotations (run the clips and crop stages first)"
    )


def test_build_split_skips_what_has_no_part_or_no_label(tmp_path):
    split_dir = tmp_path / "Split"
    split_dir.mkdir()
    (split_dir / "cross-subject.txt").write_text(pku.format_split_file(["0001-L"], ["0002-L"]), encoding="utf-8")
    info = get_dataset("pku", num_classes=6, pku_split_dir=split_dir)
    # an untrimmed video has a part but no label; a clip of a video in neither list is not
    # labelled at all (its action, 13, is beyond the 6 classes and would be an error)
    split = build_split(info, ["0001-L", "0001-L-A02-N01", "0003-L-A13-N01", "0002-L-A06-N01"], "xsub")
    assert split.parts == {"train": [("0001-L-A02-N01", 1)], "val": [], "test": [("0002-L-A06-N01", 5)]}
    assert split.skipped == 2
    assert split.source == "real" and split.as_json()["source"] == "real"


def test_check_labels_treats_a_missing_label_as_unknown():
    info = get_dataset("ntu60")
    check_labels(info, [{"frame_dir": "S001C001P001R001A001"}, {"frame_dir": "S001C001P001R001A003"}], "a.pkl")
    with pytest.raises(EpamnetError) as err:
        check_labels(info, [{"frame_dir": "S001C001P001R001A003", "label": 1}], "a.pkl")
    assert str(err.value) == (
        "a.pkl: entry 0 (S001C001P001R001A003) has label 1 but its name says 2; "
        "labels must follow the names (0-based class index); regenerate the annotations"
    )


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_only(tmp_path, monkeypatch, capsys):
    path = write(tmp_path / "a.pkl", [ann(n, -1) for n in ntu_names()])
    make_splits("ntu60", path, tmp_path / "s", ["xsub", "xview"])
    assert capsys.readouterr().err == ""  # not a terminal: no bar
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    make_splits("ntu60", path, tmp_path / "s", ["xsub", "xview"])
    bar = terminal.getvalue()
    assert "splits ntu60: 100%" in bar and "2/2" in bar and "protocol/s" in bar
