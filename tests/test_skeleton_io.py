"""Skeleton annotation I/O: round trips, both file forms, validation, and the safe unpickler."""

from __future__ import annotations

import collections
import io
import logging
import os
import pickle
import pickletools
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from epamnet.errors import EpamnetError
from epamnet.io import skeleton
from epamnet.io.skeleton import (
    ForbiddenGlobal,
    SafeUnpickler,
    load_annotation_file,
    load_annotations,
    save_annotations,
    validate_annotation,
    validate_annotations,
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
        ({"split": {}}, "neither an annotation .*nor a file of them"),
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


# ----------------------------------------------------------------- exact messages and edge cases
FIX = "the file is not in the mmaction2 skeleton annotation format (docs/pipeline.md); re-download or regenerate it"


def test_missing_folder_and_empty_file_messages_in_full(tmp_path):
    missing = tmp_path / "nope.pkl"
    with pytest.raises(EpamnetError) as exc:
        load_annotations(missing)
    assert str(exc.value) == f"{missing}: annotation file not found; check the path or run the stage that writes it"
    folder = tmp_path / "skeletons.pkl"
    folder.mkdir()
    with pytest.raises(EpamnetError) as exc:
        load_annotations(folder)
    assert str(exc.value) == f"{folder}: is a folder, not an annotation file; point to the .pkl file inside it"
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    with pytest.raises(EpamnetError) as exc:
        load_annotations(empty)
    assert str(exc.value) == f"{empty}: is empty; re-download or regenerate it"


def test_truncated_and_refused_messages_in_full(tmp_path):
    path = tmp_path / "t.pkl"
    path.write_bytes(pickle.dumps([make_ann(t=50)], protocol=2)[:-1])  # no STOP: the reader runs out of input
    with pytest.raises(EpamnetError) as exc:
        load_annotations(path)
    assert str(exc.value) == f"{path}: ends in the middle of the pickle (truncated); re-download or regenerate it"
    path.write_bytes(b"cos\nsystem\n(S'true'\ntR.")  # GLOBAL os.system, as a protocol 0 pickle names it
    with pytest.raises(EpamnetError) as exc:
        load_annotations(path)
    assert str(exc.value) == (
        f"{path}: refuses to load: the pickle references os.system, which a skeleton annotation file never "
        "contains (nothing in it was run); it is another kind of file, or one made to run code when unpickled: "
        "do not open it with plain pickle; pass a skeleton annotation file, got again from its source or regenerated"
    )


def test_forbidden_global_names_the_global():
    exc = ForbiddenGlobal("os", "system")
    assert str(exc) == "os.system" and exc.qualname == "os.system"
    assert isinstance(exc, pickle.UnpicklingError)


def _raising(exc: BaseException):
    def load(self):
        raise exc

    return load


def test_unreadable_pickle_messages_name_the_first_line_or_the_exception_type(tmp_path, monkeypatch):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps([make_ann()]))
    monkeypatch.setattr(skeleton.SafeUnpickler, "load", _raising(ValueError()))
    with pytest.raises(EpamnetError) as exc:
        load_annotations(path)
    assert str(exc.value) == f"{path}: is not a readable pickle (ValueError); re-download or regenerate it"
    monkeypatch.setattr(skeleton.SafeUnpickler, "load", _raising(KeyError()))
    with pytest.raises(EpamnetError) as exc:
        load_annotations(path)
    assert str(exc.value) == f"{path}: is not a readable pickle (KeyError); re-download or regenerate it"
    monkeypatch.setattr(skeleton.SafeUnpickler, "load", _raising(ValueError("bad byte\nat 12")))
    with pytest.raises(EpamnetError) as exc:
        load_annotations(path)
    assert str(exc.value) == f"{path}: is not a readable pickle (bad byte); re-download or regenerate it"


def test_out_of_memory_while_loading_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "big.pkl"
    path.write_bytes(pickle.dumps([make_ann()]))
    monkeypatch.setattr(skeleton.SafeUnpickler, "load", _raising(MemoryError()))
    with pytest.raises(EpamnetError) as exc:
        load_annotations(path)
    assert str(exc.value) == (
        f"{path}: does not fit in memory while loading; free memory or use a machine with more RAM"
    )


def test_persistent_ids_are_refused(tmp_path):
    path = tmp_path / "persid.pkl"
    path.write_bytes(b"(lp0\nP1\na.")  # [persistent_load("1")], protocol 0
    with pytest.raises(EpamnetError) as exc:
        load_annotations(path)
    assert str(exc.value) == (
        f"{path}: is not a readable pickle (persistent ids are not part of the format); re-download or regenerate it"
    )


def test_codecs_helper_message_and_defaults(tmp_path):
    path = tmp_path / "codec.pkl"
    path.write_bytes(b"c_codecs\nencode\n(Vabc\nVrot13\ntR.")
    with pytest.raises(EpamnetError) as exc:
        load_annotations(path)
    assert str(exc.value) == (
        f"{path}: is not a readable pickle (_codecs.encode with encoding 'rot13'); re-download or regenerate it"
    )
    # _codecs.encode(text) and _codecs.encode() as a pickle may call them: latin-1, empty text
    assert SafeUnpickler(io.BytesIO(b"c_codecs\nencode\n(V\\u00e9a\ntR.")).load() == b"\xe9a"
    assert SafeUnpickler(io.BytesIO(b"c_codecs\nencode\n(tR.")).load() == b""


def test_numpy_attr_takes_the_first_module_that_has_the_name():
    assert skeleton._numpy_attr("ndarray", "numpy") is np.ndarray
    assert skeleton._numpy_attr("ndarray", "no_such_module_for_epamnet", "numpy") is np.ndarray
    assert skeleton._numpy_attr("ndarray", "collections", "numpy") is np.ndarray  # first lacks it
    with pytest.raises(ImportError) as exc:
        skeleton._numpy_attr("no_such_name", "numpy", "collections")
    assert str(exc.value) == "none of ('numpy', 'collections') provides no_such_name"


def test_extra_bytes_after_the_pickle_are_ignored_with_a_warning(tmp_path, caplog):
    path = tmp_path / "extra.pkl"
    path.write_bytes(pickle.dumps([make_ann()]) + b"\x00junk")
    with caplog.at_level(logging.WARNING, logger="epamnet.io.skeleton"):
        (loaded,) = load_annotations(path)
    assert loaded["frame_dir"] == make_ann()["frame_dir"]
    assert [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "epamnet.io.skeleton"] == [
        ("WARNING", f"{path}: extra bytes after the end of the pickle were ignored")
    ]


def test_no_warning_without_extra_bytes(tmp_path, caplog):
    path = tmp_path / "exact.pkl"
    path.write_bytes(pickle.dumps([make_ann()]))
    with caplog.at_level(logging.DEBUG, logger="epamnet.io.skeleton"):
        load_annotations(path)
    assert [r for r in caplog.records if r.name == "epamnet.io.skeleton"] == []


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ("just a string", "holds a str, expected a list of annotations, one annotation dict, or a dict with "
         "'annotations'"),
        (7, "holds an int, expected a list of annotations, one annotation dict, or a dict with 'annotations'"),
        ({"annotations": {"a": 1}}, "'annotations' is a dict, expected a list"),
        ({"split": {}}, "holds a dict that is neither an annotation (no 'frame_dir') nor a file of them "
         "(no 'annotations'; keys: ['split'])"),
        (dict.fromkeys("hgfedcba"), "holds a dict that is neither an annotation (no 'frame_dir') nor a file of "
         "them (no 'annotations'; keys: ['a', 'b', 'c', 'd', 'e', 'f'])"),
        ({"split": ["x"], "annotations": []}, "'split' is a list, expected a dict of name -> [frame_dir, ...]"),
        ({"split": {"xsub_train": ["a", 1]}, "annotations": []},
         "'split' entry 'xsub_train' is not a list of frame_dir strings"),
        ({"split": {1: ["a"]}, "annotations": []}, "'split' entry 1 is not a list of frame_dir strings"),
        ({"split": {"xsub_val": "abc"}, "annotations": []},
         "'split' entry 'xsub_val' is not a list of frame_dir strings"),
    ],
)
def test_wrong_top_level_messages_in_full(tmp_path, obj, message):
    path = tmp_path / "top.pkl"
    path.write_bytes(pickle.dumps(obj))
    with pytest.raises(EpamnetError) as exc:
        load_annotation_file(path)
    assert str(exc.value) == f"{path}: {message}; {FIX}"


def test_split_may_be_none_or_hold_tuples(tmp_path):
    path = tmp_path / "s.pkl"
    path.write_bytes(pickle.dumps({"split": None, "annotations": [make_ann("A")]}))
    assert load_annotation_file(path)[1] is None
    path.write_bytes(pickle.dumps({"split": {"train": ("A",), "val": []}, "annotations": [make_ann("A")]}))
    assert load_annotation_file(path)[1] == {"train": ["A"], "val": []}


def test_load_annotation_file_validates_by_default(tmp_path):
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps([_bad(total_frames=0)]))
    with pytest.raises(EpamnetError, match="total_frames must be an int >= 1, got 0"):
        load_annotation_file(path)
    assert load_annotation_file(path, validate=False)[0][0]["total_frames"] == 0


@pytest.mark.parametrize(
    ("ann", "problem"),
    [
        (_bad(keypoint=KeyError, keypoint_score=KeyError), "annotation lacks key(s) keypoint, keypoint_score"),
        (_bad(label=-2), "label must be an int >= -1 (-1: unknown), got -2"),
        (_bad(total_frames="5"), "total_frames must be an int >= 1, got '5'"),
        (_bad(total_frames=5.0), "total_frames must be an int >= 1, got 5.0"),
        (_bad(keypoint=[[0.0]]), "keypoint must be a numeric numpy array, got a list"),
        (_bad(keypoint=np.array([["a"] * 2] * 2)), "keypoint must be a numeric numpy array, got an array of dtype <U1"),
        (_bad(keypoint_score="x"), "keypoint_score must be a numeric numpy array, got a str"),
        (_bad(keypoint_score=np.zeros((2, 5, 17), bool)),
         "keypoint_score must be a numeric numpy array, got an array of dtype bool"),
        (_bad(keypoint_score=np.zeros((2, 5, 16), np.float32)),
         "keypoint_score has shape (2, 5, 16), expected (2, 5, 17) to match keypoint (2, 5, 17, 2)"),
        (_bad(total_frames=6), "keypoint has 5 frames (shape (2, 5, 17, 2)) but total_frames is 6"),
        (_bad(img_shape=(1080,)), "img_shape must be (height, width) with positive ints, got (1080,)"),
    ],
)
def test_validate_annotation_messages_in_full(ann, problem):
    with pytest.raises(EpamnetError) as exc:
        validate_annotation(ann, "skeletons.pkl[3]")
    assert str(exc.value) == f"skeletons.pkl[3] (frame_dir 'S001C001P001R001A001'): {problem}; {FIX}"


def test_validate_annotation_accepts_the_edges_of_the_format():
    ann = make_ann(t=1, label=-1)  # one frame, unknown label
    ann["img_shape"] = (1, 1)
    ann["original_shape"] = np.array([1, 2])
    validate_annotation(ann, "mem")
    ints = make_ann()  # integer keypoints and scores (real-valued, not float)
    ints["keypoint"] = ints["keypoint"].astype(np.int32)
    ints["keypoint_score"] = ints["keypoint_score"].astype(np.int64)
    validate_annotation(ints, "mem")


def test_duplicate_frame_dir_message_in_full():
    with pytest.raises(EpamnetError) as exc:
        validate_annotations([make_ann("X"), make_ann("Y"), make_ann("X")], "ann.pkl")
    assert str(exc.value) == (
        "ann.pkl: frame_dir 'X' appears twice (entries 0 and 2); each video must have one entry: regenerate the file"
    )


def test_save_names_the_file_in_validation_errors_and_passes_num_joints(tmp_path):
    path = tmp_path / "out.pkl"
    with pytest.raises(EpamnetError) as exc:
        save_annotations(path, [make_ann("A"), _bad(total_frames=0)])
    assert str(exc.value) == (
        f"{path}[1] (frame_dir 'S001C001P001R001A001'): total_frames must be an int >= 1, got 0; {FIX}"
    )
    v25 = make_ann("A", v=25)
    with pytest.raises(EpamnetError, match=r"keypoint has 25 joints .*expected 17 \(COCO-17\)"):
        save_annotations(path, [v25])
    assert not path.exists()
    save_annotations(path, [v25], num_joints=25)
    assert load_annotations(path, num_joints=25)[0]["keypoint"].shape == (2, 5, 25, 2)


def test_save_writes_protocol_5_and_logs_the_count(tmp_path, caplog):
    path = tmp_path / "out.pkl"
    with caplog.at_level(logging.DEBUG, logger="epamnet.io.skeleton"):
        save_annotations(path, [make_ann("A"), make_ann("B")])
    assert path.read_bytes()[:2] == b"\x80\x05"  # PROTO 5
    assert [r.getMessage() for r in caplog.records if r.name == "epamnet.io.skeleton"] == [
        f"wrote 2 annotations to {path}"
    ]


def test_payload_bytes_counts_shared_arrays_once():
    shared = np.zeros((3, 4), np.float32)  # 48 bytes
    a = {"keypoint": shared, "keypoint_score": np.zeros(5, np.int64), "frame_dir": "A"}  # + 40
    b = {"keypoint": shared, "keypoint_score": np.zeros(2, np.float16), "frame_dir": "B"}  # + 4
    assert skeleton._payload_bytes([a, b]) == 200 * 2 + 48 + 40 + 4
    assert skeleton._payload_bytes([]) == 0


# ----------------------------------------------------------------- progress reporting
class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


class _FakeBar:
    made: ClassVar[list[_FakeBar]] = []

    def __init__(self, **kwargs) -> None:
        self.kwargs, self.updates, self.closed = kwargs, [], False
        _FakeBar.made.append(self)

    def update(self, n) -> None:
        self.updates.append(n)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_bar(monkeypatch):
    _FakeBar.made = []
    monkeypatch.setattr(skeleton, "tqdm", _FakeBar)
    return _FakeBar.made


def _progress_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "epamnet.io.skeleton" and r.levelno == logging.INFO]


def test_progress_log_lines_every_10_percent(monkeypatch, caplog, fake_bar):
    monkeypatch.setattr(sys, "stderr", _Pipe())
    monkeypatch.setattr(skeleton, "PROGRESS_MIN_BYTES", 11_500_000)  # a file of exactly the threshold reports
    path = Path("data") / "ntu.pkl"
    with caplog.at_level(logging.INFO, logger="epamnet.io.skeleton"):
        progress = skeleton._Progress("reading", path, 11_500_000)
        for n in (1_000_000, 150_000, 1_140_000, 10_000, 115_000, 1_085_000, 8_000_000, 1_150_000):
            progress.update(n)
        progress.finished()  # the last line said 100 %: nothing more
        progress.close()
    # done: 1.0, 1.15, 2.29, 2.3, 2.415, 3.5, 11.5, 12.65 MB of 11.5 MB -> 8, 10, 19, 20, 21, 30, 100, 110 %
    assert _progress_lines(caplog) == [
        "reading data/ntu.pkl: 10% (1 of 12 MB)",
        "reading data/ntu.pkl: 20% (2 of 12 MB)",
        "reading data/ntu.pkl: 30% (4 of 12 MB)",
        "reading data/ntu.pkl: 100% (12 of 12 MB)",
        "reading data/ntu.pkl: 100% (13 of 12 MB)",  # a write's total is an estimate: never above 100 %
    ]
    assert fake_bar == []


def test_progress_says_done_when_the_last_line_was_short_of_100_percent(monkeypatch, caplog, fake_bar):
    monkeypatch.setattr(sys, "stderr", _Pipe())
    monkeypatch.setattr(skeleton, "PROGRESS_MIN_BYTES", 1)
    path = Path("out") / "skeletons.pkl"
    with caplog.at_level(logging.INFO, logger="epamnet.io.skeleton"):
        short = skeleton._Progress("writing", path, 11_500_000)
        short.update(3_500_000)  # 30 %
        short.finished()
        nineties = skeleton._Progress("writing", path, 11_500_000)
        nineties.update(11_000_000)  # 95 %: the next line would be at 100 %
        nineties.finished()
    assert _progress_lines(caplog) == [
        "writing out/skeletons.pkl: 30% (4 of 12 MB)",
        "writing out/skeletons.pkl: done (4 MB)",
        "writing out/skeletons.pkl: 95% (11 of 12 MB)",
        "writing out/skeletons.pkl: done (11 MB)",
    ]


def test_progress_of_a_tiny_total(monkeypatch, caplog, fake_bar):
    monkeypatch.setattr(sys, "stderr", _Pipe())
    monkeypatch.setattr(skeleton, "PROGRESS_MIN_BYTES", 1)
    with caplog.at_level(logging.INFO, logger="epamnet.io.skeleton"):
        one = skeleton._Progress("reading", Path("one.pkl"), 1)
        one.update(0)  # nothing read yet: 0 %
        one.update(1)
    assert _progress_lines(caplog) == ["reading one.pkl: 100% (0 of 0 MB)"]


def test_small_files_report_nothing(monkeypatch, caplog, fake_bar):
    monkeypatch.setattr(sys, "stderr", _Terminal())
    monkeypatch.setattr(skeleton, "PROGRESS_MIN_BYTES", 1000)
    with caplog.at_level(logging.INFO, logger="epamnet.io.skeleton"):
        progress = skeleton._Progress("writing", Path("small.pkl"), 999)
        progress.update(999)
        progress.finished()
        progress.close()
    assert fake_bar == []  # no bar even on a terminal
    assert _progress_lines(caplog) == []
    monkeypatch.setattr(sys, "stderr", _Pipe())
    with caplog.at_level(logging.INFO, logger="epamnet.io.skeleton"):
        progress = skeleton._Progress("writing", Path("small.pkl"), 999)
        progress.update(999)
        progress.finished()
    assert _progress_lines(caplog) == []


def test_progress_on_a_terminal_is_a_bar(monkeypatch, caplog, fake_bar):
    monkeypatch.setattr(sys, "stderr", _Terminal())
    monkeypatch.setattr(skeleton, "PROGRESS_MIN_BYTES", 100)
    with caplog.at_level(logging.INFO, logger="epamnet.io.skeleton"):
        progress = skeleton._Progress("reading", Path("data") / "ntu.pkl", 150)
        progress.update(40)
        progress.update(110)
        progress.finished()
        progress.close()
    (bar,) = fake_bar
    assert bar.kwargs == {"total": 150, "desc": "reading ntu.pkl", "unit": "B", "unit_scale": True, "leave": False}
    assert bar.updates == [40, 110] and bar.closed
    assert _progress_lines(caplog) == []


def _big_ann(name: str = "S001C001P001R001A001") -> dict:
    """1.5 MB of arrays: more than the reader's 1 MiB buffer, so the unpickler also calls
    ``readline`` (protocol 0) and ``readinto`` (protocol 5), not only ``read``."""
    return make_ann(name, m=24, t=300)


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_reading_reports_every_byte_of_the_file(tmp_path, monkeypatch, caplog, protocol):
    monkeypatch.setattr(sys, "stderr", _Pipe())
    monkeypatch.setattr(skeleton, "PROGRESS_MIN_BYTES", 1)
    path = tmp_path / f"p{protocol}.pkl"
    ann = _big_ann()
    path.write_bytes(pickle.dumps([ann], protocol=protocol))
    size = path.stat().st_size
    with caplog.at_level(logging.INFO, logger="epamnet.io.skeleton"):
        (loaded,) = load_annotations(path)
    assert_same(ann, loaded)
    lines = _progress_lines(caplog)
    assert lines and all(line.startswith(f"reading {path}: ") for line in lines), lines
    assert lines[-1] == f"reading {path}: 100% ({size / 1e6:.0f} of {size / 1e6:.0f} MB)"


def test_reading_on_a_terminal_feeds_the_bar_the_file_size(tmp_path, monkeypatch, caplog, fake_bar):
    monkeypatch.setattr(sys, "stderr", _Terminal())
    monkeypatch.setattr(skeleton, "PROGRESS_MIN_BYTES", 1)
    path = tmp_path / "ntu.pkl"
    path.write_bytes(pickle.dumps([_big_ann()], protocol=5))
    with caplog.at_level(logging.INFO, logger="epamnet.io.skeleton"):
        load_annotations(path)
    (bar,) = fake_bar
    assert bar.kwargs["desc"] == "reading ntu.pkl" and bar.kwargs["total"] == path.stat().st_size
    assert sum(bar.updates) == path.stat().st_size and bar.closed
    assert _progress_lines(caplog) == []


def test_writing_reports_progress_against_the_estimate(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(sys, "stderr", _Pipe())
    monkeypatch.setattr(skeleton, "PROGRESS_MIN_BYTES", 1)
    path = tmp_path / "out.pkl"
    anns = [_big_ann("S001C001P001R001A001"), _big_ann("S001C001P001R001A002")]
    estimate = 200 * 2 + sum(a["keypoint"].nbytes + a["keypoint_score"].nbytes for a in anns)
    with caplog.at_level(logging.INFO, logger="epamnet.io.skeleton"):
        save_annotations(path, anns)
    size = path.stat().st_size
    assert size >= estimate  # the estimate leaves out the keys: the bytes written reach 100 %
    lines = _progress_lines(caplog)
    assert lines and all(line.startswith(f"writing {path}: ") for line in lines), lines
    assert lines[-1] == f"writing {path}: 100% ({size / 1e6:.0f} of {estimate / 1e6:.0f} MB)"
    assert [a["frame_dir"] for a in load_annotations(path)] == [a["frame_dir"] for a in anns]


# ----------------------------------------------------------------------------- what mmaction2's and pyskl's tools write


def test_one_annotation_dict_reads_as_a_list_of_one(tmp_path):
    # mmaction2's tools/data/skeleton/ntu_pose_extraction.py dumps one dict per video (mmengine.dump: protocol 2),
    # keypoint and keypoint_score being views into one (M, T, 17, 3) float32 array.
    pose_results = np.random.default_rng(0).uniform(0, 1000, (2, 7, 17, 3)).astype(np.float32)
    anno = {"keypoint": pose_results[..., :2], "keypoint_score": pose_results[..., 2],
            "frame_dir": "S001C001P001R001A001_rgb", "img_shape": (1080, 1920), "original_shape": (1080, 1920),
            "total_frames": pose_results.shape[1], "label": 0}
    path = tmp_path / "S001C001P001R001A001_rgb.pkl"
    path.write_bytes(pickle.dumps(anno, protocol=2))
    (got,), split = load_annotation_file(path)
    assert split is None and got["frame_dir"] == "S001C001P001R001A001_rgb"
    np.testing.assert_array_equal(got["keypoint"], pose_results[..., :2])
    np.testing.assert_array_equal(got["keypoint_score"], pose_results[..., 2])


def test_kinetics_style_entries_are_named_as_such(tmp_path):
    # pyskl's Kinetics-400 file: the keypoints of each video live in a separate kpfile named by raw_file.
    entry = {"frame_dir": "---QUuC4vJs", "label": 84, "img_shape": (340, 480), "original_shape": (340, 480),
             "total_frames": 300, "raw_file": "kpfiles/part_3.pkl", "box_score": np.ones(300, np.float16),
             "frame_inds": np.arange(300, dtype=np.int16)}
    path = tmp_path / "k400_hrnet.pkl"
    path.write_bytes(pickle.dumps({"split": {"train": ["---QUuC4vJs"], "val": []}, "annotations": [entry]},
                                  protocol=2))
    with pytest.raises(EpamnetError) as exc:
        load_annotations(path)
    assert str(exc.value) == (
        f"{path}[0] (frame_dir '---QUuC4vJs'): annotation has no keypoint but raw_file 'kpfiles/part_3.pkl': "
        "a Kinetics-style (pyskl) annotation whose keypoints live in separate kpfiles, which this pipeline does "
        "not read; write each video's keypoint (M x T x 17 x 2) and keypoint_score (M x T x 17) into its entry, "
        "or extract the skeletons with `epamnet pose-extract` (datasets.<name>.skeletons: mmpose)"
    )


def test_compressed_pyskl_entries_are_named_as_such(tmp_path):
    entry = make_ann(t=4)
    entry["keypoint"] = np.zeros((6, 17, 3), np.float16)  # one row per detected person and frame
    entry["frame_inds"] = np.array([0, 0, 1, 2, 3, 3])
    path = tmp_path / "compressed.pkl"
    path.write_bytes(pickle.dumps([entry], protocol=2))
    with pytest.raises(EpamnetError, match=r"\[0\] .*frame_inds: a compressed \(pyskl\) annotation; decompress it"):
        load_annotations(path)


def test_a_results_pickle_with_torch_tensors_is_not_called_tampered(tmp_path):
    import torch  # a dependency of the package
    # what mmaction2's `tools/test.py --dump results.pkl` writes: one dict per sample holding tensors
    results = [{"pred_score": torch.softmax(torch.randn(60), 0), "pred_label": torch.tensor([3]),
                "gt_label": torch.tensor([3])} for _ in range(2)]
    path = tmp_path / "results.pkl"
    path.write_bytes(pickle.dumps(results, protocol=2))
    with pytest.raises(EpamnetError) as exc:
        load_annotations(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: refuses to load: the pickle references torch.")
    assert "it holds PyTorch tensors, as a results file (e.g. mmaction2's `tools/test.py --dump`) or a checkpoint holds" in msg
    assert "tamper" not in msg and "pass the skeleton annotation file instead" in msg and "\n" not in msg


def test_a_torch_save_archive_is_named_as_such(tmp_path):
    import torch  # a dependency of the package

    path = tmp_path / "epoch_24.pth"
    torch.save({"state_dict": {"cls_head.fc_cls.weight": torch.zeros(2, 2)}}, path)
    with pytest.raises(EpamnetError) as exc:
        load_annotations(path)
    assert str(exc.value) == (
        f"{path}: is a zip archive, as torch.save writes checkpoints and tensors, not a skeleton annotation pickle; "
        "pass the skeleton annotation file: a pickle of a list of dicts with numpy keypoint arrays (docs/pipeline.md)"
    )
