"""The PKU-MMD ``clips`` stage: one clip per label row, at the source fps, overlaps kept."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from epamnet.config import validate_params
from epamnet.errors import EpamnetError
from epamnet.layout import Layout
from epamnet.stages import clips as clips_stage
from epamnet.io.skeleton import load_annotations, save_annotations
from epamnet.io.video import read_frames, video_info, write_video
from epamnet.prepare.pku_clips import make_clips

FPS = 25.0  # not the official script's hard-coded 20
H, W = 32, 40


def _frames(n: int) -> np.ndarray:
    """Uniform grey frames whose level encodes the frame index (10 * index)."""
    levels = (10 * np.arange(n)).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (n, H, W, 3)).copy()


def _skeleton(video_id: str, n: int) -> dict:
    """Untrimmed skeleton whose x coordinate of every joint is the frame index + 1."""
    kp = np.zeros((2, n, 17, 2), dtype=np.float32)
    kp[..., 0] = np.arange(1, n + 1, dtype=np.float32)[None, :, None]
    kp[..., 1] = 5.0
    return {
        "frame_dir": video_id, "label": -1, "img_shape": (H, W), "original_shape": (H, W),
        "total_frames": n, "keypoint": kp, "keypoint_score": np.ones((2, n, 17), dtype=np.float32),
    }


def _dataset(root: Path, videos: dict[str, tuple[int, str]], skeleton_frames: dict[str, int] | None = None) -> Path:
    """Write raw_dir with RGB_VIDEO/<id>.avi, label files, and skeletons.pkl; return the pkl path."""
    skeletons = []
    for video_id, (n, labels) in videos.items():
        write_video(root / "RGB_VIDEO" / f"{video_id}.avi", _frames(n), fps=FPS)
        (root / "Train_Label_PKU_final").mkdir(parents=True, exist_ok=True)
        (root / "Train_Label_PKU_final" / f"{video_id}.txt").write_text(labels)
        skeletons.append(_skeleton(video_id, (skeleton_frames or {}).get(video_id, n)))
    path = root / "skeletons.pkl"
    save_annotations(path, skeletons)
    return path


# rows out of order, two overlapping (0..5 and 4..8), a blank line, one ending on the last frame
LABELS_A = "3,10,15,1\n1,0,5,2\n\n7,4,8,1\n"
LABELS_B = "51,0,23,1\n"


def test_clips_cut_every_row_at_source_fps_with_overlaps(tmp_path: Path) -> None:
    skel = _dataset(tmp_path / "raw", {"0001-L": (24, LABELS_A), "0002-M": (24, LABELS_B)})
    out = tmp_path / "clips"
    clips = make_clips(tmp_path / "raw", skel, out)

    expected = {  # name -> (label 0-based, start, end); k follows the start order
        "0001-L-A01-N01": (0, 0, 5),
        "0001-L-A07-N02": (6, 4, 8),
        "0001-L-A03-N03": (2, 10, 15),
        "0002-M-A51-N01": (50, 0, 23),
    }
    assert sorted(p.name for p in (out / "videos").iterdir()) == sorted(f"{n}.mp4" for n in expected)
    saved = {a["frame_dir"]: a for a in load_annotations(out / "skeletons.pkl")}
    assert set(saved) == set(expected) == {c["frame_dir"] for c in clips}
    for name, (label, start, end) in expected.items():
        video = out / "videos" / f"{name}.mp4"
        info = video_info(video, count_frames=True)
        assert info.frames == end - start + 1
        assert info.fps == pytest.approx(FPS)
        levels = read_frames(video).reshape(info.frames, -1).mean(axis=1)
        np.testing.assert_allclose(levels, 10 * np.arange(start, end + 1), atol=4)  # the right frames, in order
        ann = saved[name]
        assert ann["label"] == label
        assert ann["total_frames"] == end - start + 1
        assert ann["keypoint"].shape == (2, end - start + 1, 17, 2)
        np.testing.assert_array_equal(ann["keypoint"][0, :, 0, 0], np.arange(start + 1, end + 2))
        assert ann["keypoint_score"].shape == (2, end - start + 1, 17)
        assert ann["source_video"] == name[:6] and tuple(ann["source_frames"]) == (start, end)
    # the overlapping frames 4 and 5 are in both clips
    assert saved["0001-L-A01-N01"]["keypoint"][0, 4:, 0, 0].tolist() == [5.0, 6.0]
    assert saved["0001-L-A07-N02"]["keypoint"][0, :2, 0, 0].tolist() == [5.0, 6.0]


def test_clips_replace_previous_output(tmp_path: Path) -> None:
    skel = _dataset(tmp_path / "raw", {"0002-M": (24, LABELS_B)})
    out = tmp_path / "clips"
    (out / "videos").mkdir(parents=True)
    (out / "videos" / "stale.mp4").write_bytes(b"old")
    make_clips(tmp_path / "raw", skel, out)
    assert sorted(p.name for p in (out / "videos").iterdir()) == ["0002-M-A51-N01.mp4"]


def _break_row_past_end(raw: Path) -> None:
    (raw / "Train_Label_PKU_final" / "0001-L.txt").write_text("1,0,5,1\n\n2,20,24,1\n")


def _break_malformed(raw: Path) -> None:
    (raw / "Train_Label_PKU_final" / "0001-L.txt").write_text("1,0,5,1\n2;4;8\n")


def _break_start_after_end(raw: Path) -> None:
    (raw / "Train_Label_PKU_final" / "0001-L.txt").write_text("1,9,5,1\n")


def _break_missing_video(raw: Path) -> None:
    (raw / "RGB_VIDEO" / "0001-L.avi").unlink()


def _break_missing_labels(raw: Path) -> None:
    (raw / "Train_Label_PKU_final" / "0001-L.txt").unlink()


def _break_corrupt_video(raw: Path) -> None:
    (raw / "RGB_VIDEO" / "0001-L.avi").write_bytes(b"this is not a video" * 50)


@pytest.mark.parametrize(
    ("breaker", "names", "says"),
    [
        (_break_row_past_end, ["0001-L.txt:3", "2,20,24,1", "24 frames"], "ends at frame 24"),
        (_break_malformed, ["0001-L.txt:2", "2;4;8"], "bad row"),
        (_break_start_after_end, ["0001-L.txt:1", "1,9,5,1"], "start <= end"),
        (_break_missing_video, ["RGB_VIDEO/0001-L.avi"], "not found"),
        (_break_missing_labels, ["Train_Label_PKU_final/0001-L.txt"], "not found"),
        (_break_corrupt_video, ["RGB_VIDEO/0001-L.avi"], "video"),
    ],
)
def test_clips_bad_input_one_line_error_and_no_output(tmp_path: Path, breaker, names, says) -> None:
    raw = tmp_path / "raw"
    skel = _dataset(raw, {"0001-L": (24, LABELS_A), "0002-M": (24, LABELS_B)})
    breaker(raw)
    out = tmp_path / "clips"
    with pytest.raises(EpamnetError) as info:
        make_clips(raw, skel, out)
    message = str(info.value)
    assert "\n" not in message
    for name in names:
        assert name in message
    assert says in message
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["raw"]  # no temporary folder left behind


def test_clips_skeleton_frame_count_must_match_video(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    skel = _dataset(raw, {"0001-L": (24, LABELS_A), "0002-M": (24, LABELS_B)}, skeleton_frames={"0002-M": 30})
    out = tmp_path / "clips"
    with pytest.raises(EpamnetError, match=r"skeletons\.pkl: the skeleton of 0002-M has 30 frames .*decodes 24"):
        make_clips(raw, skel, out)
    assert not out.exists()


# ----------------------------------------------------------------------------- the real labels' bad row

# 0043-L.txt of the real label set: 20 good rows, then line 21 ends before it starts. The
# real files' confidence column holds 0, 1 and 2.
REAL_BAD_ROW = "1,4925,4036,2"
LABELS_0043_L = "".join(f"{k},{k - 1},{k},{k % 3}\n" for k in range(1, 21)) + REAL_BAD_ROW + "\n"


def _dataset_0043(raw: Path) -> Path:
    return _dataset(raw, {"0043-L": (24, LABELS_0043_L), "0002-M": (24, LABELS_B)})


def test_the_real_bad_row_stops_clips_with_file_line_and_fix(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    skel = _dataset_0043(raw)
    with pytest.raises(EpamnetError) as info:
        make_clips(raw, skel, tmp_path / "clips")
    assert str(info.value) == (
        f"{raw / 'Train_Label_PKU_final' / '0043-L.txt'}:21: bad row '{REAL_BAD_ROW}': it ends (frame 4036) before "
        "it starts (frame 4925); a known defect of the real PKU-MMD labels: the same action in 0043-M/R ends near "
        "frame 5036; label must be 1..51 and 0 <= start <= end, or set prepare.on_sample_error: skip to leave the "
        "row out"
    )
    assert not (tmp_path / "clips").exists()


def test_with_skip_the_real_bad_row_is_reported_once_and_the_rest_is_cut(tmp_path: Path, caplog) -> None:
    raw = tmp_path / "raw"
    skel = _dataset_0043(raw)
    with caplog.at_level(logging.WARNING, logger="epamnet.prepare.pku_clips"):
        clips = make_clips(raw, skel, tmp_path / "clips", on_error="skip")
    names = sorted(c["frame_dir"] for c in clips)
    assert names == sorted([f"0043-L-A{k:02d}-N{k:02d}" for k in range(1, 21)] + ["0002-M-A51-N01"])
    assert {c["frame_dir"]: tuple(c["source_frames"]) for c in clips}["0043-L-A20-N20"] == (19, 20)
    assert sorted(p.stem for p in (tmp_path / "clips" / "videos").iterdir()) == names
    about_row = [r.getMessage() for r in caplog.records if "0043-L.txt:21" in r.getMessage()]
    assert len(about_row) == 1 and REAL_BAD_ROW in about_row[0] and "ends (frame 4036) before" in about_row[0]


def test_the_clips_stage_takes_on_sample_error_from_params(tmp_path: Path) -> None:
    params = validate_params({"paths": {"data": str(tmp_path / "data")}, "prepare": {"on_sample_error": "skip"}})
    lay = Layout.from_params(params)
    skel = _dataset_0043(lay.raw("pku"))
    lay.skeletons("pku").parent.mkdir(parents=True)
    skel.rename(lay.skeletons("pku"))
    clips_stage.run(params, "pku")
    assert len(load_annotations(lay.clips("pku") / "skeletons.pkl")) == 21
    strict = params.model_copy(update={"prepare": params.prepare.model_copy(update={"on_sample_error": "fail"})})
    with pytest.raises(EpamnetError, match=r"0043-L\.txt:21: bad row"):
        clips_stage.run(strict, "pku")
