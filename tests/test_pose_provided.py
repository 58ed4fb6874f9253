"""The `pose` stage with `skeletons: provided`: the dataset's own skeletons, validated."""

from __future__ import annotations

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
