"""The `pose` stage with `skeletons: provided`: the dataset's own skeletons, validated."""

from __future__ import annotations

import logging
import os
import pickle

import numpy as np
import pytest

from epamnet.errors import EpamnetError
from epamnet.io.skeleton import load_annotations, save_annotations
from epamnet.prepare.pose import provided_skeletons


def annotation(name: str, frames: int = 6, persons: int = 1) -> dict:
    rng = np.random.default_rng(len(name))
    return {
        "frame_dir": name,
        "label": 0,
        "img_shape": (120, 160),
        "original_shape": (120, 160),
        "total_frames": frames,
        "keypoint": rng.uniform(0, 100, (persons, frames, 17, 2)).astype(np.float32),
        "keypoint_score": rng.uniform(0.5, 1, (persons, frames, 17)).astype(np.float32),
    }


def test_provided_skeletons_are_validated_sorted_and_written(tmp_path):
    raw = tmp_path / "raw"
    names = ["S001C002P001R001A002", "S001C001P001R001A001"]
    save_annotations(raw / "ntu60_2d.pkl", [annotation(n) for n in names], split={"xsub_train": names})
    out = tmp_path / "interim" / "skeletons.pkl"
    assert provided_skeletons("ntu60", raw, out) == 2
    got = load_annotations(out)
    assert [a["frame_dir"] for a in got] == sorted(names)
    np.testing.assert_array_equal(got[0]["keypoint"], annotation(sorted(names)[0])["keypoint"])


def test_missing_file_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(EpamnetError, match=r"ntu60_2d\.pkl: provided skeletons not found; .*epamnet acquire"):
        provided_skeletons("ntu60", tmp_path, tmp_path / "out.pkl")
    assert not (tmp_path / "out.pkl").exists()


def test_duplicate_entries_are_rejected_without_output(tmp_path):
    # written with plain pickle: save_annotations itself refuses duplicates
    with open(tmp_path / "toyota_2d.pkl", "wb") as fh:
        pickle.dump([annotation("Walk_p03_r00_v01_c01")] * 2, fh)
    with pytest.raises(EpamnetError, match="toyota_2d.pkl"):
        provided_skeletons("toyota", tmp_path, tmp_path / "out.pkl")
    assert not (tmp_path / "out.pkl").exists()


class Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_malicious_pickle_is_refused_and_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "pku_2d.pkl", "wb") as fh:
        pickle.dump([Payload()], fh)
    with pytest.raises(EpamnetError, match="refuses to load"):
        provided_skeletons("pku", tmp_path, tmp_path / "out.pkl")
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "out.pkl").exists()


def test_bad_entry_names_file_and_entry(tmp_path):
    bad = annotation("0002-L")
    bad["keypoint_score"] = bad["keypoint_score"][:, :3]  # T disagrees with keypoint
    with open(tmp_path / "pku_2d.pkl", "wb") as fh:
        pickle.dump([bad], fh)
    with pytest.raises(EpamnetError) as err:
        provided_skeletons("pku", tmp_path, tmp_path / "out.pkl")
    assert "pku_2d.pkl" in str(err.value) and "\n" not in str(err.value)


# ----------------------------------------------------------------------------- files of mmaction2's and pyskl's tools


def ntu_pose_extraction_output(video_stem: str, persons: int = 1, frames: int = 6) -> dict:
    """One video's annotation as mmaction2's tools/data/skeleton/ntu_pose_extraction.py builds it: the
    pose results (M, T, 17, 3) float32 split into keypoint and score views, the frame_dir the video
    file's stem (``<name>_rgb`` for an NTU video), fixed 1080p shapes and the label from the name."""
    pose_results = np.random.default_rng(1).uniform(1, 1000, (persons, frames, 17, 3)).astype(np.float32)
    return {
        "keypoint": pose_results[..., :2],
        "keypoint_score": pose_results[..., 2],
        "frame_dir": video_stem,
        "img_shape": (1080, 1920),
        "original_shape": (1080, 1920),
        "total_frames": pose_results.shape[1],
        "label": int(video_stem.split("A")[1][:3]) - 1,
    }


def dump_like_mmengine(obj, path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=2)  # mmengine.dump / mmcv.dump of a .pkl: pickle protocol 2


def test_ntu_pose_extraction_single_dict_with_rgb_name_is_accepted(tmp_path, caplog):
    raw = tmp_path / "raw"
    dump_like_mmengine(ntu_pose_extraction_output("S001C001P001R001A001_rgb"), raw / "ntu60_2d.pkl")
    out = tmp_path / "skeletons.pkl"
    with caplog.at_level(logging.WARNING, logger="epamnet.prepare.pose"):
        assert provided_skeletons("ntu60", raw, out) == 1
    (ann,) = load_annotations(out)
    assert ann["frame_dir"] == "S001C001P001R001A001" and ann["label"] == 0
    np.testing.assert_array_equal(ann["keypoint"], ntu_pose_extraction_output("S001C001P001R001A001_rgb")["keypoint"])
    (record,) = [r for r in caplog.records if r.name == "epamnet.prepare.pose"]
    assert "'S001C001P001R001A001_rgb'" in record.getMessage() and "sample names" in record.getMessage()


@pytest.mark.parametrize("wrap", ["list", "split"])
def test_rgb_names_in_a_list_or_split_file_are_reported_once(tmp_path, caplog, wrap):
    stems = [f"S001C00{c}P001R001A00{a}_rgb" for c in (1, 2) for a in (1, 2)]
    anns = [ntu_pose_extraction_output(s) for s in stems]
    obj = anns if wrap == "list" else {"split": {"xview_train": stems[2:], "xview_val": stems[:2]}, "annotations": anns}
    dump_like_mmengine(obj, tmp_path / "raw" / "ntu60_2d.pkl")
    with caplog.at_level(logging.WARNING, logger="epamnet.prepare.pose"):
        provided_skeletons("ntu60", tmp_path / "raw", tmp_path / "out.pkl")
    assert [a["frame_dir"] for a in load_annotations(tmp_path / "out.pkl")] == sorted(s[:-4] for s in stems)
    records = [r for r in caplog.records if r.name == "epamnet.prepare.pose"]
    assert len(records) == 1 and "4 of 4 entries" in records[0].getMessage()


def test_a_bad_name_fails_in_pose_naming_the_file_and_entry(tmp_path):
    raw = tmp_path / "raw"
    anns = [ntu_pose_extraction_output("S001C001P001R001A001_rgb"), ntu_pose_extraction_output("S001C001P001R001A002")]
    anns[1]["frame_dir"] = "my_clip_A002"
    dump_like_mmengine(anns, raw / "ntu60_2d.pkl")
    with pytest.raises(EpamnetError) as err:
        provided_skeletons("ntu60", raw, tmp_path / "out.pkl")
    msg = str(err.value)
    assert msg.startswith(f"{raw / 'ntu60_2d.pkl'}[1] (frame_dir 'my_clip_A002'): 'my_clip_A002' is not an NTU sample name")
    assert "nturgb+d_rgb/" in msg and "\n" not in msg
    assert not (tmp_path / "out.pkl").exists()


def test_pku_clip_entries_and_repeated_samples_are_refused(tmp_path):
    raw = tmp_path / "raw"
    dump_like_mmengine([annotation("0002-L-A13-N01")], raw / "pku_2d.pkl")
    with pytest.raises(EpamnetError, match=r"pku_2d\.pkl\[0\] \(frame_dir '0002-L-A13-N01'\): .*action clip, not an "
                       r"untrimmed PKU-MMD video; pass one skeleton per untrimmed video"):
        provided_skeletons("pku", raw, tmp_path / "out.pkl")
    dump_like_mmengine([annotation("S001C001P001R001A001"), annotation("S001C001P001R001A001_rgb")],
                       raw / "ntu60_2d.pkl")
    with pytest.raises(EpamnetError, match=r"ntu60_2d\.pkl\[1\] .*names the same sample as entry 0"):
        provided_skeletons("ntu60", raw, tmp_path / "out.pkl")
    assert not (tmp_path / "out.pkl").exists()
