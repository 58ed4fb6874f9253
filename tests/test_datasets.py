"""Dataset naming rules, class lists and protocols (epamnet.datasets)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from helpers import read_toyota_list

from epamnet.datasets import PROTOCOLS, ntu, pku, toyota
from epamnet.datasets.registry import get_dataset
from epamnet.errors import EpamnetError
from epamnet.prepare.splits import build_split, format_list

TOYOTA_DATA = Path(__file__).parent / "data" / "toyota"

# The protocol lists, written out again here (from the spec) so that the code is checked
# against an independent copy rather than against itself.
NTU60_TRAIN = {1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38}
NTU120_TRAIN = NTU60_TRAIN | {
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86,
    89, 91, 92, 93, 94, 95, 97, 98, 100, 103,
}  # fmt: skip

# Every NTU-120 name in S001-S032 x C001-C003 x P001-P106 x R001-R002 x A001-A120.
DIMS = {"setup": 32, "camera": 3, "performer": 106, "replication": 2, "action": 120}
TOTAL = int(np.prod(list(DIMS.values())))


def expected_ntu(dataset: str, protocol: str, s: int, c: int, p: int, a: int) -> str | None:
    if s > (17 if dataset == "ntu60" else 32) or a > (60 if dataset == "ntu60" else 120):
        return None
    if protocol == "xsub":
        return "train" if p in (NTU60_TRAIN if dataset == "ntu60" else NTU120_TRAIN) else "test"
    if protocol == "xview":
        return "train" if c in (2, 3) else "test"
    return "train" if s % 2 == 0 else "test"


# ---------------------------------------------------------------- NTU names


def test_ntu_name_round_trip():
    name = "S017C003P106R002A120"
    sample = ntu.parse_name(name)
    assert (sample.setup, sample.camera, sample.performer, sample.replication, sample.action) == (17, 3, 106, 2, 120)
    assert sample.label == 119
    assert str(sample) == name
    assert ntu.format_name(1, 2, 3, 2, 13) == "S001C002P003R002A013"
    assert ntu.video_name("S001C002P003R002A013") == "S001C002P003R002A013_rgb.avi"


@pytest.mark.parametrize(
    "bad",
    ["S001C002P003R002A13", "s001C002P003R002A013", "S001C002P003R002A013_rgb", "S000C002P003R002A013",
     "S001C002P003R002A013.avi", "", "P003S001C002R002A013"],
)  # fmt: skip
def test_ntu_bad_names_name_the_name(bad):
    with pytest.raises(EpamnetError) as err:
        ntu.parse_name(bad)
    assert repr(bad) in str(err.value)
    assert "\n" not in str(err.value)


def test_ntu_rules_per_component_cover_the_whole_product():
    """The rules depend on setup, camera and performer (and the action range): check them all."""
    info = {d: get_dataset(d) for d in ("ntu60", "ntu120")}
    counts = {(d, p): {"train": 0, "test": 0, None: 0} for d in info for p in PROTOCOLS[d]}
    per_scp = DIMS["replication"] * DIMS["action"]
    for s, c, p in itertools.product(range(1, 33), range(1, 4), range(1, 107)):
        for a in (1, 60, 61, 120):  # the action matters only through the dataset's range
            name = ntu.format_name(s, c, p, 1, a)
            for d, ds in info.items():
                for protocol in PROTOCOLS[d]:
                    got = ds.assign(name, protocol)
                    assert got == expected_ntu(d, protocol, s, c, p, a), (name, d, protocol)
        for d, ds in info.items():  # whole-product counts: every replication and action
            n_in = DIMS["replication"] * (60 if d == "ntu60" else 120)  # names of this (s, c, p) in d
            for protocol in PROTOCOLS[d]:
                part = ds.assign(ntu.format_name(s, c, p, 1, 1), protocol)
                kept = n_in if part is not None else 0
                counts[(d, protocol)][part] += kept
                counts[(d, protocol)][None] += per_scp - kept
    unit120 = 32 * 3 * 2 * 120  # names per performer / per setup value etc.
    assert counts[("ntu120", "xsub")] == {"train": 53 * unit120, "test": 53 * unit120, None: 0}
    assert counts[("ntu120", "xset")] == {"train": 16 * 3 * 106 * 2 * 120, "test": 16 * 3 * 106 * 2 * 120, None: 0}
    n60 = 17 * 3 * 106 * 2 * 60
    assert counts[("ntu60", "xsub")] == {"train": 20 * 17 * 3 * 2 * 60, "test": 86 * 17 * 3 * 2 * 60, None: TOTAL - n60}
    assert counts[("ntu60", "xview")] == {"train": 2 * n60 // 3, "test": n60 // 3, None: TOTAL - n60}
    assert sum(counts[("ntu120", "xsub")].values()) == TOTAL == 2_442_240


def test_ntu_random_sample_of_full_names():
    rng = np.random.default_rng(0)
    idx = rng.choice(TOTAL, size=100_000, replace=False)
    comps = np.unravel_index(idx, tuple(DIMS.values()))
    info = {d: get_dataset(d) for d in ("ntu60", "ntu120")}
    seen = {"train": 0, "test": 0, None: 0}
    for s, c, p, r, a in zip(*(x + 1 for x in comps)):
        name = f"S{s:03d}C{c:03d}P{p:03d}R{r:03d}A{a:03d}"
        for d, ds in info.items():
            label = ds.label(name, PROTOCOLS[d][0])
            assert label == (a - 1 if expected_ntu(d, "xsub", s, c, p, a) else None)
            for protocol in PROTOCOLS[d]:
                got = ds.assign(name, protocol)
                assert got == expected_ntu(d, protocol, s, c, p, a)
                seen[got] += 1
    assert min(seen.values()) > 10_000  # the sample hits every outcome many times


def test_ntu_protocol_errors():
    with pytest.raises(EpamnetError, match="xset"):
        get_dataset("ntu60").assign("S002C001P001R001A001", "xset")
    with pytest.raises(EpamnetError, match="xview"):
        get_dataset("ntu120").label("S002C001P001R001A001", "xview")


def test_ntu_class_names_and_truncation():
    n60, n120 = get_dataset("ntu60"), get_dataset("ntu120")
    assert len(n60.class_names("xsub")) == 60 and len(n120.class_names("xset")) == 120
    assert n120.class_names("xsub")[:60] == n60.class_names("xview") == ntu.CLASS_NAMES_60
    names = n120.class_names("xsub")
    assert names[0] == "drink water" and names[59] == "walking apart from each other"
    assert n120.class_names("xsub")[60] == "put on headphone"
    assert n120.class_names("xsub")[119] == "finger-guessing game (playing rock-paper-scissors)"
    assert len(set(ntu.CLASS_NAMES_120)) == 120
    assert all(name.isascii() and name == name.strip() for name in ntu.CLASS_NAMES_120)
    assert n60.label("S001C001P001R001A013", "xsub") == 12
    small = get_dataset("ntu60", num_classes=8)
    assert small.class_names("xsub") == ntu.CLASS_NAMES_60[:8]
    assert n60.class_names("xsub", num_classes=5) == ntu.CLASS_NAMES_60[:5]
    assert small.label("S001C001P001R001A008", "xsub") == 7
    with pytest.raises(EpamnetError, match="beyond the 8 classes"):
        small.label("S001C001P001R001A009", "xsub")
    with pytest.raises(EpamnetError, match="out of range"):
        get_dataset("ntu60", num_classes=61)


# ---------------------------------------------------------------- PKU-MMD


def test_pku_ids_and_clip_names():
    assert pku.parse_video_id("0002-L") == (2, "L")
    clip = pku.parse_clip_name("0291-R-A51-N12")
    assert (clip.video, clip.action, clip.index, clip.label) == ("0291-R", 51, 12, 50)
    assert str(clip) == "0291-R-A51-N12" == pku.format_clip_name("0291-R", 51, 12)
    assert pku.video_of("0291-R-A51-N12") == pku.video_of("0291-R") == "0291-R"
    for bad in ("0002-X", "002-L", "0002-L-A52-N01", "0002-L-A00-N01", "0002-L-A1-N01", "0002-L-A01-N00"):
        with pytest.raises(EpamnetError) as err:
            pku.video_of(bad) if "-A" in bad else pku.parse_video_id(bad)
        assert repr(bad) in str(err.value)


def test_pku_class_names():
    info = get_dataset("pku")
    names = info.class_names("xsub")
    assert len(names) == 51 == len(set(names)) and names == info.class_names("xview")
    assert list(names) == sorted(names)  # Actions.xlsx lists them alphabetically
    assert names[0] == "bow" and names[50] == "writing"
    assert get_dataset("pku", num_classes=6).class_names("xsub") == names[:6]
    assert info.label("0002-L-A13-N01", "xsub") == 12
    assert info.label("0002-L", "xsub") is None  # an untrimmed video has no label


def test_pku_label_file(tmp_path):
    path = tmp_path / "0002-L.txt"
    path.write_text("13,100,180,1\n\n 2, 10, 50 ,2\n51,0,0,1\n", encoding="utf-8")
    rows = pku.read_label_file(path)
    assert [(r.label, r.start, r.end, r.confidence) for r in rows] == [(13, 100, 180, 1), (2, 10, 50, 2), (51, 0, 0, 1)]


@pytest.mark.parametrize(
    "row", ["13,100,180", "13,100,x,1", "52,1,2,1", "0,1,2,1", "3,20,10,1", "3,-1,10,1", "3;1;2;1"]
)
def test_pku_bad_label_row_names_file_and_line(tmp_path, row):
    path = tmp_path / "0002-M.txt"
    path.write_text(f"1,0,10,1\n\n{row}\n4,20,30,2\n", encoding="utf-8")
    with pytest.raises(EpamnetError) as err:
        pku.read_label_file(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}:3: ") and row.strip() in msg and "\n" not in msg


REAL_FORMAT = (
    "Training videos: \n"
    "0002-L, 0002-M, 0002-R, 0003-L, 0003-M, 0003-R, 0005-L\n"
    "Validataion videos: \n"
    "0004-L, 0004-M, 0004-R, 0006-L, \n"
)


def test_pku_split_file_real_format(tmp_path):
    path = tmp_path / "cross-subject.txt"
    path.write_text(REAL_FORMAT, encoding="utf-8")
    lists = pku.read_split_file(path)
    assert lists.train == {"0002-L", "0002-M", "0002-R", "0003-L", "0003-M", "0003-R", "0005-L"}
    assert lists.test == {"0004-L", "0004-M", "0004-R", "0006-L"}
    # the correct spelling, CRLF line ends and ids on the header line are accepted too
    path.write_text("Training videos: 0002-L,\r\n0002-M\r\nValidation videos:\r\n0004-L\r\n", encoding="utf-8")
    lists = pku.read_split_file(path)
    assert lists.train == {"0002-L", "0002-M"} and lists.test == {"0004-L"}
    # what the synthetic dataset writes reads back the same
    path.write_text(pku.format_split_file(["0001-L", "0001-M"], ["0009-R"]), encoding="utf-8")
    assert pku.read_split_file(path) == pku.SplitLists(frozenset({"0001-L", "0001-M"}), frozenset({"0009-R"}))


@pytest.mark.parametrize(
    "text, problem",
    [
        ("Training videos: \n0002-L, 02-M\nValidataion videos: \n0004-L\n", ":2: '02-M' is not a video id"),
        ("0002-L\nTraining videos: \n0002-M\nValidataion videos: \n0004-L\n", ":1: ids before any header"),
        ("Training videos: \n0002-L\n", "no ids under Validataion videos:"),
        ("Training videos: \n0002-L\nValidataion videos: \n0002-L\n", "in both lists"),
    ],
)
def test_pku_bad_split_file(tmp_path, text, problem):
    path = tmp_path / "cross-view.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(EpamnetError) as err:
        pku.read_split_file(path)
    assert str(err.value).startswith(str(path)) and problem in str(err.value)


def test_pku_assign_from_split_files(tmp_path):
    (tmp_path / "cross-subject.txt").write_text(REAL_FORMAT, encoding="utf-8")
    (tmp_path / "cross-view.txt").write_text(
        pku.format_split_file(["0002-M", "0002-R", "0004-M"], ["0002-L", "0004-L"]), encoding="utf-8"
    )
    info = get_dataset("pku", pku_split_dir=tmp_path)
    assert info.assign("0002-L-A13-N01", "xsub") == "train"
    assert info.assign("0002-L-A13-N01", "xview") == "test"
    assert info.assign("0004-M-A01-N03", "xsub") == "test"
    assert info.assign("0004-M", "xview") == "train"
    assert info.assign("0099-L-A01-N01", "xsub") is None  # in neither list
    assert info.video_relpath("0002-L-A13-N01") == info.video_relpath("0002-L") == "RGB_VIDEO/0002-L.avi"
    with pytest.raises(EpamnetError, match="pku_split_dir"):
        get_dataset("pku").assign("0002-L-A13-N01", "xsub")
    with pytest.raises(EpamnetError, match="cross-subject.txt"):
        get_dataset("pku", pku_split_dir=tmp_path / "missing").assign("0002-L", "xsub")


# ---------------------------------------------------------------- Toyota Smarthome


def test_toyota_class_lists_are_the_sorted_spec_lists():
    assert len(toyota.CS_CLASSES) == 31 and len(toyota.CV_CLASSES) == 19
    assert list(toyota.CS_CLASSES) == sorted(toyota.CS_CLASSES)
    assert list(toyota.CV_CLASSES) == sorted(toyota.CV_CLASSES)
    assert set(toyota.CV_CLASSES) < set(toyota.CS_CLASSES)
    assert toyota.CS_CLASSES[-2:] == ("Walk", "WatchTV")  # plain string order: 'W','a' < 'W','t'
    info = get_dataset("toyota")
    assert len(info.class_names("cs")) == 31
    assert len(info.class_names("cv1")) == len(info.class_names("cv2")) == 19


def test_toyota_names():
    clip = toyota.parse_name("Drink.Fromcup_p17_r02_v09_c01.mp4")
    assert (clip.activity, clip.subject, clip.repetition, clip.video, clip.camera) == ("Drink.Fromcup", 17, 2, 9, 1)
    assert toyota.format_name("Drink.Fromcup", 17, 2, 9, 1) == "Drink.Fromcup_p17_r02_v09_c01"
    for bad in ("Drink.Fromcup_p17_r02_v09", "Drink.Fromcup_17_r02_v09_c01", "Drink Fromcup_p17_r02_v09_c01"):
        with pytest.raises(EpamnetError) as err:
            toyota.parse_name(bad)
        assert repr(bad) in str(err.value)
    with pytest.raises(EpamnetError, match="not a Toyota Smarthome activity"):
        get_dataset("toyota").label("Dance_p03_r00_v01_c01", "cs")


def test_toyota_rules():
    info = get_dataset("toyota")
    for subject in range(1, 30):
        name = f"Walk_p{subject:02d}_r00_v01_c03"
        part = info.assign(name, "cs")
        want = ("train" if subject in {3, 4, 6, 7, 9, 12, 13, 15, 17} else "val" if subject in {19, 25}
                else "test" if subject in {2, 10, 11, 14, 16, 18, 20} else None)  # fmt: skip
        assert part == want, name
    for camera in range(1, 9):
        name = f"Sitdown_p03_r00_v01_c{camera:02d}"
        assert info.assign(name, "cv2") == {1: "train", 3: "train", 4: "train", 6: "train", 7: "train",
                                            5: "val", 2: "test"}.get(camera)  # fmt: skip
        assert info.assign(name, "cv1") == {1: "train", 5: "val", 2: "test"}.get(camera)
    # activities outside the 19 CV classes are in no CV split, but in CS
    assert info.assign("Cook.Stir_p03_r00_v01_c01", "cv2") is None
    assert info.label("Cook.Stir_p03_r00_v01_c01", "cv2") is None
    assert info.assign("Cook.Stir_p03_r00_v01_c01", "cs") == "train"
    assert info.label("Cook.Stir_p03_r00_v01_c01", "cs") == 3
    assert info.label("Walk_p03_r00_v01_c01", "cs") == 29 and info.label("Walk_p03_r00_v01_c01", "cv2") == 18
    assert info.video_relpath("Walk_p03_r00_v01_c01") == "mp4/Walk_p03_r00_v01_c01.mp4"


@pytest.mark.parametrize("protocol, suffix", [("cs", "CS"), ("cv2", "CV2")])
def test_toyota_official_lists_reproduced_line_for_line(protocol, suffix):
    info = get_dataset("toyota")
    files = {"train": f"train_{suffix}.txt", "val": f"validation_{suffix}.txt", "test": f"test_{suffix}.txt"}
    official = {part: (TOYOTA_DATA / f).read_text(encoding="utf-8") for part, f in files.items()}
    # all names of the three lists in one pool: the rules must sort them back, labels included
    pool = [name for part in files for name, _ in read_toyota_list(TOYOTA_DATA / files[part])]
    split = build_split(info, pool, protocol)
    assert split.skipped == 0
    for part, text in official.items():
        assert not text.endswith("\n") and text.count("\n") >= 99
        assert format_list(split.parts[part]) == text, part


def test_toyota_cs_names_under_cv2():
    """The CS lists' names, filed by the CV2 rules: CV activities only, by camera, CV labels."""
    info = get_dataset("toyota")
    files = ("train_CS.txt", "validation_CS.txt", "test_CS.txt")
    entries = [e for f in files for e in read_toyota_list(TOYOTA_DATA / f)]
    split = build_split(info, [n for n, _ in entries], "cv2")
    cs_label = dict(entries)
    for part, cams in (("train", {1, 3, 4, 6, 7}), ("val", {5}), ("test", {2})):
        assert split.parts[part], part
        for name, label in split.parts[part]:
            assert toyota.parse_name(name).camera in cams
            assert toyota.CV_CLASSES[label] == toyota.CS_CLASSES[cs_label[name]]
    kept = sum(len(v) for v in split.parts.values())
    assert kept + split.skipped == len(entries)
    assert split.skipped == sum(1 for n, _ in entries if toyota.parse_name(n).activity not in toyota.CV_CLASSES)


def test_toyota_synthetic_truncation():
    from epamnet.datasets.toyota import SYNTHETIC_ACTIVITIES as TOYOTA_NAMES

    info = get_dataset("toyota", num_classes=8)
    used = set(TOYOTA_NAMES[:8])
    cs, cv = info.class_names("cs"), info.class_names("cv2")
    assert list(cs) == sorted(used) and len(cs) == 8
    assert list(cv) == sorted(used & set(toyota.CV_CLASSES)) and set(cv) <= set(cs)
    name = f"{cs[-1]}_p03_r01_v01_c01"
    assert info.label(name, "cs") == 7
    unused = next(c for c in toyota.CV_CLASSES if c not in used)
    with pytest.raises(EpamnetError, match="synthetic"):
        info.label(f"{unused}_p03_r01_v01_c01", "cs")


# ---------------------------------------------------------------- registry


def test_registry_interface():
    for name, protocols in PROTOCOLS.items():
        info = get_dataset(name)
        assert info.protocols == protocols and info.name == name
    assert get_dataset("ntu120").video_relpath("S020C001P050R001A100") == "nturgb+d_rgb/S020C001P050R001A100_rgb.avi"
    with pytest.raises(EpamnetError, match="unknown dataset"):
        get_dataset("kinetics")
    with pytest.raises(EpamnetError, match="no protocol 'xsub'"):
        get_dataset("toyota").class_names("xsub")

# ================================================================ edges found by mutation testing
# (range limits, tolerated blanks and the exact one-line error messages of the dataset modules; `make mutation`). Expected values are typed out or worked out by hand,
# not built from the code's own constants.


# ---------------------------------------------------------------- PKU-MMD split files


def test_pku_split_ids_after_an_empty_item_or_a_blank_line_are_kept(tmp_path):
    path = tmp_path / "cross-subject.txt"
    path.write_text(
        "Training videos: \n0002-L, , 0002-M,,0003-L\n\n0003-M\nValidataion videos: \n\n0004-L\n", encoding="utf-8"
    )
    lists = pku.read_split_file(path)
    assert lists.train == {"0002-L", "0002-M", "0003-L", "0003-M"}
    assert lists.test == {"0004-L"}


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "Training videos: \n0002-L, 02-M\nValidataion videos: \n0004-L\n",
            "{path}:2: '02-M' is not a video id (dddd-L/M/R); fix or re-download the split file",
        ),
        (
            "Training videos: 0002-L, 02-M\nValidataion videos: \n0004-L\n",
            "{path}:1: '02-M' is not a video id (dddd-L/M/R); fix or re-download the split file",
        ),
        (
            "Training videos: \n0002-L\nTraining videos: \n0002-M\nValidataion videos: \n0004-L\n",
            "{path}:3: second 'train' header; the file must list each part once",
        ),
        (
            "0002-L\nTraining videos: \n0002-M\nValidataion videos: \n0004-L\n",
            (
                "{path}:1: ids before any header; "
                "the file must start with 'Training videos:' and hold 'Validataion videos:' later"
            ),
        ),
        ("\n", "{path}: no ids under Training videos: / Validataion videos:; use the dataset's own Split/ files"),
        (
            "Training videos: \n0002-L, 0003-L\nValidataion videos: \n0003-L\n",
            "{path}: 1 video(s) in both lists, e.g. 0003-L; use the dataset's own Split/ files",
        ),
    ],
)
def test_pku_split_file_error_messages(tmp_path, text, message):
    path = tmp_path / "cross-view.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(EpamnetError) as err:
        pku.read_split_file(path)
    assert str(err.value) == message.format(path=path)


def test_pku_missing_split_file_message(tmp_path):
    path = tmp_path / "cross-view.txt"
    with pytest.raises(EpamnetError) as err:
        pku.read_split_file(path)
    assert str(err.value) == (
        f"{path}: cannot read the protocol file (No such file or directory); put the PKU-MMD Split/ folder in place"
    )


def test_pku_unknown_protocol_message(tmp_path):
    with pytest.raises(EpamnetError) as err:
        pku.load_protocols(tmp_path, ["xset"])
    assert str(err.value) == "pku has no protocol 'xset'; use one of ('xsub', 'xview')"


# ---------------------------------------------------------------- PKU-MMD label files and clip names


@pytest.mark.parametrize(
    "row, fix",
    [
        ("13,100,180", "each row must be four integers label,start,end,confidence"),
        ("13,100,x,1", "each row must be four integers label,start,end,confidence"),
        ("52,1,2,1", "label must be 1..51 and 0 <= start <= end"),
        ("3,20,10,1", "label must be 1..51 and 0 <= start <= end"),
    ],
)
def test_pku_label_file_error_messages(tmp_path, row, fix):
    path = tmp_path / "0002-M.txt"
    path.write_text(f"1,0,10,1\n\n{row}\n", encoding="utf-8")
    with pytest.raises(EpamnetError) as err:
        pku.read_label_file(path)
    assert str(err.value) == f"{path}:3: bad row {row!r}; {fix}"


def test_pku_missing_label_file_message(tmp_path):
    path = tmp_path / "0002-M.txt"
    with pytest.raises(EpamnetError) as err:
        pku.read_label_file(path)
    assert str(err.value) == (
        f"{path}: cannot read the label file (No such file or directory); check the PKU-MMD download"
    )


def test_pku_clip_index_runs_from_1_to_99():
    assert pku.format_clip_name("0002-L", 1, 1) == "0002-L-A01-N01"
    assert pku.format_clip_name("0002-L", 51, 99) == "0002-L-A51-N99"
    for action, index in ((1, 100), (1, 0), (52, 1), (0, 1)):
        with pytest.raises(EpamnetError) as err:
            pku.format_clip_name("0002-L", action, index)
        assert str(err.value) == f"PKU-MMD clip of 0002-L: action {action} must be 1..51 and index {index} 1..99"


def test_pku_bad_clip_name_message():
    with pytest.raises(EpamnetError) as err:
        pku.parse_clip_name("0002-L-A52-N01")
    assert str(err.value) == (
        "'0002-L-A52-N01' is not a PKU-MMD clip name; expected <dddd-V>-A<label 01..51>-N<k from 01>, "
        "e.g. 0002-L-A13-N01"
    )


# ---------------------------------------------------------------- Toyota Smarthome


def test_toyota_subject_and_camera_run_from_0_to_99():
    assert toyota.format_name("Walk", 0, 1, 2, 0) == "Walk_p00_r01_v02_c00"
    assert toyota.format_name("Walk", 99, 1, 2, 99) == "Walk_p99_r01_v02_c99"
    for activity, subject, camera in (
        ("Walk", 100, 1),
        ("Walk", -1, 1),
        ("Walk", 1, 100),
        ("Walk", 1, -1),
        ("Two_parts", 1, 1),
        ("Two parts", 1, 1),
    ):
        with pytest.raises(EpamnetError) as err:
            toyota.format_name(activity, subject, 1, 1, camera)
        assert str(err.value) == f"Toyota name parts {activity!r}, p{subject}, c{camera} are not valid"


def test_toyota_bad_name_and_protocol_messages():
    with pytest.raises(EpamnetError) as err:
        toyota.parse_name("Walk_p1_r01_v01_c01")
    assert str(err.value) == (
        "'Walk_p1_r01_v01_c01' is not a Toyota Smarthome clip name; expected <Activity>_pSS_rRR_vVV_cCC, "
        "e.g. Drink.Fromcup_p17_r02_v09_c01"
    )
    with pytest.raises(EpamnetError) as err:
        toyota.protocol_classes("cv3")
    assert str(err.value) == "toyota has no protocol 'cv3'; use one of ('cs', 'cv1', 'cv2')"


# ---------------------------------------------------------------- the registry's class counts


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: get_dataset("pku", num_classes=52), "pku: num_classes 52 is out of range; use 1..51"),
        (lambda: get_dataset("pku").class_names("xsub", 52), "pku: num_classes 52 is out of range; use 1..51"),
        (lambda: get_dataset("pku").class_names("xsub", 0), "pku: num_classes 0 is out of range; use 1..51"),
        (lambda: get_dataset("ntu60").class_names("xsub", 61), "ntu60: num_classes 61 is out of range; use 1..60"),
        (lambda: get_dataset("ntu120", num_classes=121), "ntu120: num_classes 121 is out of range; use 1..120"),
        (lambda: get_dataset("toyota", num_classes=25), "toyota: num_classes 25 is out of range; use 1..24"),
        (lambda: get_dataset("toyota").class_names("cs", 25), "toyota: num_classes 25 is out of range; use 1..24"),
    ],
)
def test_class_count_out_of_range_messages(make, message):
    with pytest.raises(EpamnetError) as err:
        make()
    assert str(err.value) == message


def test_class_count_given_per_call():
    pku_six = ("bow", "brushing hair", "brushing teeth", "check time (from watch)", "cheer up", "clapping")
    assert get_dataset("pku").class_names("xview", 6) == pku_six
    assert get_dataset("pku", num_classes=51).class_names("xsub", 6) == pku_six
    # the first 4 synthetic Toyota activities, in the protocol's own (sorted) order
    drinks = ("Drink.Frombottle", "Drink.Fromcan", "Drink.Fromcup", "Drink.Fromglass")
    assert get_dataset("toyota").class_names("cs", 4) == drinks
    assert get_dataset("toyota", num_classes=24).class_names("cv1", 4) == drinks


def test_label_beyond_the_synthetic_classes_messages():
    with pytest.raises(EpamnetError) as err:
        get_dataset("pku", num_classes=6).name_label("0002-L-A13-N01")
    assert str(err.value) == (
        "0002-L-A13-N01: class 13 is beyond the 6 classes of this pku dataset; regenerate the data or fix the class count"
    )
    with pytest.raises(EpamnetError) as err:
        get_dataset("toyota", num_classes=4).label("Walk_p03_r01_v01_c01", "cs")
    assert str(err.value) == (
        "Walk_p03_r01_v01_c01: 'Walk' is not among the 4 classes of this synthetic toyota dataset; "
        "regenerate the data or fix the class count"
    )


# ---------------------------------------------------------------- exact messages and edges (mutation)


def test_ntu_name_errors_are_exact():
    with pytest.raises(EpamnetError) as info:
        ntu.parse_name("S001C002")
    assert str(info.value) == (
        "'S001C002' is not an NTU sample name; expected SsssCcccPpppRrrrAaaa with ids from 001, "
        "e.g. S001C002P003R002A013"
    )
    assert ntu.format_name(999, 999, 999, 999, 999) == "S999C999P999R999A999"  # the largest ids
    assert ntu.format_name(1, 1, 1, 1, 1) == "S001C001P001R001A001"
    for bad in ((1000, 1, 1, 1, 1), (1, 0, 1, 1, 1)):
        with pytest.raises(EpamnetError) as info:
            ntu.format_name(*bad)
        assert str(info.value) == f"NTU name ids {bad} must each lie in 1..999"


def test_ntu_xview_ignores_cameras_outside_the_protocol():
    # xview trains on cameras 2 and 3 and tests on camera 1; a (hypothetical) camera 4 is in neither.
    assert ntu.assign(ntu.parse_name("S001C001P001R001A001"), "ntu60", "xview") == "test"
    assert ntu.assign(ntu.parse_name("S001C002P001R001A001"), "ntu60", "xview") == "train"
    assert ntu.assign(ntu.parse_name("S001C004P001R001A001"), "ntu60", "xview") is None
    # other protocols do not look at the camera
    assert ntu.assign(ntu.parse_name("S001C004P001R001A001"), "ntu60", "xsub") == "train"


def test_ntu_adapter_names_and_one_class():
    assert get_dataset("ntu60").display_name == "NTU-60"
    assert get_dataset("ntu120").display_name == "NTU-120"
    one = get_dataset("ntu60", num_classes=1)  # 1..60 are valid
    assert one.class_names("xsub") == ("drink water",)
    assert get_dataset("ntu120").class_names("xsub", num_classes=1) == ("drink water",)
    with pytest.raises(EpamnetError) as info:
        get_dataset("ntu60", num_classes=0)
    assert str(info.value) == "ntu60: num_classes 0 is out of range; use 1..60"
