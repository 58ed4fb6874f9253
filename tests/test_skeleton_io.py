"""Skeleton annotation I/O: round trips, both file forms, validation, and the safe unpickler."""

from __future__ import annotations

import collections
import os
import pickle
import pickletools

import numpy as np
import pytest

from epamnet.errors import EpamnetError
from epamnet.io.skeleton import (
    load_annotation_file,
    load_annotations,
    save_annotations,
    validate_annotation,
)


def make_ann(name: str = "S001C001P001R001A001", m: int = 2, t: int = 5, v: int = 17, label: int = 0) -> dict:
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    return {
        "frame_dir": name,
        "label": label,
        "img_shape": (1080, 1920),
        "original_shape": (1080, 1920),
        "total_frames": t,
        "keypoint": rng.uniform(0, 1000, size=(m, t, v, 2)).astype(np.float32),
        "keypoint_score": rng.uniform(0, 1, size=(m, t, v)).astype(np.float32),
    }


def assert_same(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for key in a:
        if isinstance(a[key], np.ndarray):
            assert b[key].dtype == a[key].dtype
            np.testing.assert_array_equal(b[key], a[key])
        else:
            assert b[key] == a[key]


# ----------------------------------------------------------------- round trips
def test_list_form_round_trip(tmp_path):
    anns = [make_ann("S001C001P001R001A001"), make_ann("S001C002P001R001A002", m=0, label=1)]
    anns[0]["crop_box"] = (1.0, 2.0, 3.0, 4.0)  # extra keys survive
    path = tmp_path / "a.pkl"
    save_annotations(path, anns)
    loaded, split = load_annotation_file(path)
    assert split is None
    assert len(loaded) == 2
    for a, b in zip(anns, loaded):
        assert_same(a, b)
    assert loaded[1]["keypoint"].shape == (0, 5, 17, 2)
    assert not [p for p in tmp_path.iterdir() if p.name != "a.pkl"]  # no temp file left


def test_split_form_round_trip(tmp_path):
    anns = [make_ann("S001C001P001R001A001"), make_ann("S001C001P002R001A001")]
    split = {"xsub_train": ["S001C001P001R001A001"], "xsub_val": ["S001C001P002R001A001"]}
    path = tmp_path / "ntu.pkl"
    save_annotations(path, anns, split=split)
    loaded, got_split = load_annotation_file(path)
    assert got_split == split
    assert [a["frame_dir"] for a in loaded] == [a["frame_dir"] for a in anns]
    assert [a["frame_dir"] for a in load_annotations(path)] == [a["frame_dir"] for a in anns]


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_reads_files_written_by_plain_pickle(tmp_path, protocol):
    """What mmaction2/mmcv write: numpy scalars, tuples, OrderedDicts, any protocol."""
    ann = make_ann()
    ann["label"] = np.int64(7)
    ann["total_frames"] = np.int32(5)
    ann["keypoint"] = ann["keypoint"].astype(np.float16)  # pyskl's HRNet pickles use float16
    ann["score_mean"] = np.float64(0.5)
    ann["meta"] = collections.OrderedDict(fps=30.0)
    ann["fortran"] = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    path = tmp_path / f"p{protocol}.pkl"
    path.write_bytes(pickle.dumps({"split": {"x": [ann["frame_dir"]]}, "annotations": [ann]}, protocol=protocol))
    loaded, split = load_annotation_file(path)
    assert split == {"x": [ann["frame_dir"]]}
    assert_same(ann, loaded[0])
    assert isinstance(loaded[0]["meta"], collections.OrderedDict)


@pytest.mark.parametrize("protocol", [0, 2])
def test_reads_numpy1_module_paths(tmp_path, protocol):
    """numpy 1.x writes numpy.core.multiarray; text protocols let us rewrite the path faithfully."""
    ann = make_ann()
    ann["score_mean"] = np.float32(0.25)
    data = pickle.dumps([ann], protocol=protocol)
    assert b"numpy._core.multiarray" in data
    old = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    pickletools.dis(old, out=open(os.devnull, "w"))  # still a well-formed pickle
    path = tmp_path / "np1.pkl"
    path.write_bytes(old)
    (loaded,) = load_annotations(path)
    assert_same(ann, loaded)


# ----------------------------------------------------------------- malicious pickles
class _System:
    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


class _Eval:
    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        import builtins

        return (builtins.eval, (self.code,))


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_os_system_payload_is_refused_and_not_run(tmp_path, protocol):
    marker = tmp_path / "pwned"
    payload = [make_ann(), {"frame_dir": _System(f"touch {marker}")}]
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(payload, protocol=protocol))
    with pytest.raises(EpamnetError) as exc:
        load_annotations(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: refuses to load: the pickle references ")
    assert "os.system" in msg or "posix.system" in msg
    assert "never contains" in msg and "\n" not in msg
    assert not marker.exists()
    # the payload is live: plain pickle would have run it
    pickle.loads(path.read_bytes())
    assert marker.exists()


def test_builtins_eval_payload_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned-eval"
    code = f"open({str(marker)!r}, 'w').close()"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"annotations": [_Eval(code)]}))
    with pytest.raises(EpamnetError, match=r"refuses to load: the pickle references builtins\.eval"):
        load_annotation_file(path)
    assert not marker.exists()


def test_codecs_helper_only_does_latin1(tmp_path):
    """Protocol 0-2 call _codecs.encode(text, 'latin1'); any other use is rejected."""
    evil = b"c_codecs\nencode\n(Vabc\nVrot13\ntR."
    path = tmp_path / "codec.pkl"
    path.write_bytes(evil)
    with pytest.raises(EpamnetError, match="is not a readable pickle"):
        load_annotations(path)


# ----------------------------------------------------------------- broken files
def test_truncated_pickle(tmp_path):
    path = tmp_path / "t.pkl"
    data = pickle.dumps([make_ann(t=50)], protocol=4)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(EpamnetError, match=rf"^{path}: .*truncated.*; re-download or regenerate it$"):
        load_annotations(path)


def test_not_a_pickle(tmp_path):
    path = tmp_path / "page.pkl"
    path.write_text("<html><body>404 Not Found</body></html>")
    with pytest.raises(EpamnetError, match=rf"^{path}: is not a readable pickle"):
        load_annotations(path)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(EpamnetError, match="not found"):
        load_annotations(tmp_path / "nope.pkl")
    (tmp_path / "empty.pkl").write_bytes(b"")
    with pytest.raises(EpamnetError, match="is empty"):
        load_annotations(tmp_path / "empty.pkl")


@pytest.mark.parametrize(
    ("obj", "needle"),
    [
        ("just a string", "holds a str"),
        ({"split": {}}, "without an 'annotations' key"),
        ({"annotations": {"a": 1}}, "'annotations' is a dict"),
        ({"split": ["x"], "annotations": []}, "split"),
    ],
)
def test_wrong_top_level(tmp_path, obj, needle):
    path = tmp_path / "top.pkl"
    path.write_bytes(pickle.dumps(obj))
    with pytest.raises(EpamnetError, match=needle) as exc:
        load_annotation_file(path)
    assert str(exc.value).startswith(str(path))


def _bad(**changes):
    ann = make_ann("S001C001P001R001A001")
    for key, value in changes.items():
        if value is KeyError:
            del ann[key]
        else:
            ann[key] = value
    return ann


@pytest.mark.parametrize(
    ("ann", "needle"),
    [
        (_bad(keypoint_score=KeyError), "lacks key(s) keypoint_score"),
        (_bad(total_frames=6), "has 5 frames"),
        (_bad(keypoint=np.zeros((1, 5, 25, 2), np.float32), keypoint_score=np.zeros((1, 5, 25), np.float32)), "25 joints"),
        (_bad(keypoint=np.zeros((1, 5, 17, 3), np.float32)), "M x T x V x 2"),
        (_bad(keypoint_score=np.zeros((2, 5, 16), np.float32)), "keypoint_score has shape"),
        (_bad(keypoint=np.array([["a"] * 2] * 2)), "numeric numpy array"),
        (_bad(keypoint=[[0.0]]), "numeric numpy array"),
        (_bad(label="walk"), "label must be an int"),
        (_bad(label=True), "label must be an int"),
        (_bad(img_shape=(1080,)), "img_shape"),
        (_bad(original_shape=(0, 10)), "original_shape"),
        (_bad(frame_dir=""), "frame_dir must be a non-empty str"),
    ],
)
def test_bad_entry_names_file_index_and_frame_dir(tmp_path, ann, needle):
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps([make_ann("S001C001P001R001A002"), ann]))
    with pytest.raises(EpamnetError) as exc:
        load_annotations(path)
    msg = str(exc.value)
    assert needle in msg
    assert msg.startswith(f"{path}[1]")
    if ann.get("frame_dir"):
        assert "frame_dir 'S001C001P001R001A001'" in msg
    assert "\n" not in msg


def test_entry_that_is_not_a_dict(tmp_path):
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps([make_ann(), ("a", "tuple")]))
    with pytest.raises(EpamnetError, match=r"\[1\]: annotation is a tuple, expected a dict"):
        load_annotations(path)


def test_duplicate_frame_dir(tmp_path):
    path = tmp_path / "dup.pkl"
    path.write_bytes(pickle.dumps([make_ann("X"), make_ann("Y"), make_ann("X")]))
    with pytest.raises(EpamnetError, match=r"frame_dir 'X' appears twice \(entries 0 and 2\)"):
        load_annotations(path)


def test_validate_options(tmp_path):
    ann = make_ann(v=25)
    validate_annotation(ann, "mem", num_joints=None)  # any joint count when asked
    with pytest.raises(EpamnetError, match=r"^mem \(frame_dir"):
        validate_annotation(ann, "mem")
    path = tmp_path / "v25.pkl"
    path.write_bytes(pickle.dumps([ann]))
    assert load_annotations(path, num_joints=25)[0]["keypoint"].shape[2] == 25
    assert load_annotations(path, validate=False)[0]["frame_dir"] == ann["frame_dir"]


def test_save_refuses_bad_entry_and_leaves_nothing(tmp_path):
    path = tmp_path / "out.pkl"
    with pytest.raises(EpamnetError, match="total_frames"):
        save_annotations(path, [_bad(total_frames=0)])
    assert list(tmp_path.iterdir()) == []
