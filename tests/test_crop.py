"""Global-box crop: box maths, pose/RGB alignment after crop+resize, sharding, merge, bad input."""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

from epamnet.datasets.registry import get_dataset
from epamnet.errors import EpamnetError
from epamnet.io.skeleton import load_annotations, save_annotations
from epamnet.io.video import read_frames, video_info, write_video
from epamnet.prepare.global_box import keypoint_box, keypoints_to_crop, scale_box, valid_keypoints
from epamnet.prepare.crop import PREPARED_VIDEO_SUFFIX, crop_sample, crop_shard, failures_path, global_box, merge_shards

# ----------------------------------------------------------------------------- box maths


def _ann(points: list[list[list[tuple[float, float]]]], img_shape=(100, 200), scores=None) -> dict:
    """Annotation from points[person][frame] = list of (x, y); missing joints are (0, 0)."""
    m, t = len(points), len(points[0])
    kp = np.zeros((m, t, 17, 2), dtype=np.float32)
    for p, person in enumerate(points):
        for f, frame in enumerate(person):
            if frame:
                kp[p, f, : len(frame)] = frame
    score = np.ones((m, t, 17), dtype=np.float32) if scores is None else np.asarray(scores, dtype=np.float32)
    return {"frame_dir": "x", "label": 0, "img_shape": img_shape, "original_shape": img_shape,
            "total_frames": t, "keypoint": kp, "keypoint_score": score}


def test_box_padding_and_square_expansion() -> None:
    ann = _ann([[[(10, 20), (50, 40)]]])  # tight box x 10..50, y 20..40, centre (30, 30)
    assert global_box(ann, padding=0.0, hw_ratio=None) == (10, 20, 50, 40)
    assert global_box(ann, padding=0.25, hw_ratio=None) == (5, 17, 55, 42)  # half-sizes 25 and 12.5
    assert global_box(ann, padding=0.25) == (5, 5, 55, 55)  # square: half-height raised to 25
    assert global_box(ann, padding=0.25, hw_ratio=2.0) == (5, 0, 55, 80)  # h = 2w = 100, clipped at the top


def test_box_clipped_at_the_border_can_end_non_square() -> None:
    ann = _ann([[[(2, 2), (30, 30)]]])  # centre 16, half 17.5 -> -1.5..33.5
    assert global_box(ann) == (0, 0, 33, 33)
    ann = _ann([[[(170, 60), (198, 98)]]])  # half 23.75 square -> x 160.25..207.75, y 55.25..102.75
    assert global_box(ann) == (160, 55, 200, 100)


def test_box_below_threshold_or_empty_is_the_full_frame() -> None:
    assert global_box(_ann([[[(10, 20), (15, 60)]]]), threshold=10) == (0, 0, 200, 100)  # 5 px wide
    assert global_box(_ann([[[(10, 20), (15, 60)]]]), threshold=4) != (0, 0, 200, 100)
    assert global_box(_ann([[[]]])) == (0, 0, 200, 100)  # no valid keypoint at all
    empty = _ann([[[(10, 20)]]])
    empty["keypoint"] = np.zeros((0, 1, 17, 2), dtype=np.float32)  # no person
    empty["keypoint_score"] = np.zeros((0, 1, 17), dtype=np.float32)
    assert global_box(empty) == (0, 0, 200, 100)


def test_box_unites_all_persons_and_all_frames() -> None:
    ann = _ann([
        [[(10, 10), (20, 20)], [(12, 12)]],
        [[(30, 30)], [(60, 70), (70, 80)]],
    ])  # union x 10..70, y 10..80: centre (40, 45), half-sizes 37.5 and 43.75 -> square 43.75
    assert global_box(ann, hw_ratio=None) == (2, 1, 77, 88)
    assert global_box(ann) == (0, 1, 83, 88)


def test_box_ignores_nan_zero_and_unscored_points() -> None:
    base = _ann([[[(10, 20), (50, 40)]]])
    kp = base["keypoint"]
    kp[0, 0, 2] = (np.nan, 90)  # NaN
    kp[0, 0, 3] = (190, np.inf)  # not finite
    kp[0, 0, 4] = (195, 95)  # real position, score 0
    base["keypoint_score"][0, 0, 4] = 0.0
    base["keypoint_score"][0, 0, 5] = np.nan
    kp[0, 0, 5] = (180, 85)  # NaN score
    # joints 6..16 stay (0, 0) with score 1: missing joints, ignored
    assert global_box(base) == (5, 5, 55, 55)


def test_box_keeps_points_with_one_zero_coordinate() -> None:
    """A joint on the frame's left or top edge, (0, y) or (x, 0), is a position, not a missing joint.

    Each case puts the lone zero where it cannot move the box (the zero coordinate itself is
    ignored, as in mmaction2's PoseCompact; test_oracle_mmaction checks a case where it would)
    while the point's other coordinate is the extreme of its axis.
    """
    # Tall 400 x 100 frame. y: 120..290 (290 from (0, 290)) -> centre 205, half 85 * 1.25 = 106.25
    # -> y 98.75..311.25 -> 98, 311. Square: half-width 106.25 around any centre in 0..100 -> x 0..100.
    tall = _ann([[[(40, 120), (60, 280), (0, 290)]]], img_shape=(400, 100))
    assert global_box(tall) == (0, 98, 100, 311)
    # Without (0, 290) it would be y 120..280 -> (0, 100, 100, 300).
    # Wide 100 x 400 frame: the same with x and y swapped.
    wide = _ann([[[(120, 40), (280, 60), (290, 0)]]], img_shape=(100, 400))
    assert global_box(wide) == (98, 0, 311, 100)
    # 200 x 200, x = -8 is the minimum anyway. x: -8..30, y: 50..140 (140 from (0, 140)): centre
    # (11, 95), half-sizes 23.75 and 56.25 -> square 56.25 -> x -45.25..67.25, y 38.75..151.25.
    # (Without (0, 140): y 50..60 -> square 23.75 -> (0, 31, 34, 78).)
    negative = _ann([[[(-8, 50), (30, 60), (0, 140)]]], img_shape=(200, 200))
    assert global_box(negative) == (0, 38, 67, 151)
    # The same point with score 0 (or both coordinates zero) is dropped: y 50..60.
    negative["keypoint_score"][0, 0, 2] = 0.0
    assert global_box(negative) == (0, 31, 34, 78)


def test_keypoints_to_crop_maps_pixels_and_zeroes_invalid_points() -> None:
    kp = np.array([[[[10, 20], [0, 0], [np.nan, 5], [30, 40]]]], dtype=np.float32)
    score = np.array([[[0.9, 0.8, 0.7, 0.0]]], dtype=np.float32)
    new, new_score = keypoints_to_crop(kp, score, (10, 20, 30, 40), (40, 80))
    # pixel centres: x' = (x - x0 + 0.5) * 80 / 20 - 0.5
    np.testing.assert_allclose(new[0, 0, 0], [(0.5 * 4) - 0.5, (0.5 * 2) - 0.5])
    np.testing.assert_array_equal(new[0, 0, 1:], 0.0)
    np.testing.assert_array_equal(new_score[0, 0], np.float32([0.9, 0.0, 0.0, 0.0]))
    assert new.dtype == np.float32 and new_score.dtype == np.float32


def test_keypoint_box_matches_global_box() -> None:
    ann = _ann([[[(10, 20), (50, 40)]]])
    assert keypoint_box(ann["keypoint"], ann["keypoint_score"], (100, 200)) == global_box(ann)


# ----------------------------------------------------------------------------- crop + resize alignment

VH, VW, SIDE, T = 64, 80, 12, 12  # video height, width; square side; frames


def _square_video(path: Path, fps: float = 15.0) -> list[tuple[int, int]]:
    """A white SIDE x SIDE square moving over a dark frame; return its top-left pixel per frame."""
    frames = np.full((T, VH, VW, 3), 20, dtype=np.uint8)
    corners = []
    for f in range(T):
        x, y = 12 + 3 * f, 10 + 2 * f
        frames[f, y : y + SIDE, x : x + SIDE] = (240, 240, 240)
        corners.append((x, y))
    write_video(path, frames, fps=fps, codec="MJPG")
    return corners


def _square_skeleton(corners: list[tuple[int, int]], scale: int = 1) -> dict:
    """Joints 0-3 on the square's corner pixels (in a frame ``scale`` times the video), others missing."""
    kp = np.zeros((1, T, 17, 2), dtype=np.float32)
    score = np.zeros((1, T, 17), dtype=np.float32)
    for f, (x, y) in enumerate(corners):
        pts = np.array([(x, y), (x + SIDE - 1, y), (x, y + SIDE - 1), (x + SIDE - 1, y + SIDE - 1)], float)
        kp[0, f, :4] = (pts + 0.5) * scale - 0.5  # the pixel centre, in the skeleton's frame
        score[0, f, :4] = 0.9
    shape = (VH * scale, VW * scale)
    return {"frame_dir": "sq", "label": 3, "img_shape": shape, "original_shape": shape,
            "total_frames": T, "keypoint": kp, "keypoint_score": score}


@pytest.mark.parametrize("scale", [1, 2])  # 2: keypoints in a frame twice the video's size
def test_crop_keypoints_land_on_the_square_corners(tmp_path: Path, scale: int) -> None:
    corners = _square_video(tmp_path / "sq.avi")
    ann = _square_skeleton(corners, scale)
    size = 48
    new = crop_sample(ann, tmp_path / "sq.avi", tmp_path / "out" / "sq.avi", size=size)

    info = video_info(tmp_path / "out" / "sq.avi", count_frames=True)
    assert (info.frames, info.height, info.width) == (T, size, size)
    assert info.fps == pytest.approx(15.0)
    assert new["img_shape"] == (size, size) and new["original_shape"] == (VH * scale, VW * scale)
    assert new["total_frames"] == T and new["filename"] == "sq.avi" and new["label"] == 3
    x0, y0, x1, y1 = new["crop_box"]
    # the region cut from the video, in skeleton pixels: the global box up to the video's pixel grid
    np.testing.assert_allclose((x0, y0, x1, y1), global_box(ann), atol=scale / 2)
    assert x1 - x0 < VW * scale  # a real crop, not the full frame

    frames = read_frames(tmp_path / "out" / "sq.avi")
    for f in range(T):
        ys, xs = np.nonzero(frames[f].mean(axis=2) > 130)
        found = np.array([(xs.min(), ys.min()), (xs.max(), ys.min()), (xs.min(), ys.max()), (xs.max(), ys.max())])
        np.testing.assert_allclose(new["keypoint"][0, f, :4], found, atol=1.5)
    assert np.all(new["keypoint"][0, :, 4:] == 0) and np.all(new["keypoint_score"][0, :, 4:] == 0)
    np.testing.assert_allclose(new["keypoint_score"][0, :, :4], 0.9)


def test_crop_fewer_video_frames_than_skeleton_is_an_error(tmp_path: Path) -> None:
    corners = _square_video(tmp_path / "sq.avi")
    ann = _square_skeleton(corners)  # 15 skeleton frames, 12 video frames
    ann["total_frames"] = T + 3
    ann["keypoint"] = np.concatenate([ann["keypoint"], ann["keypoint"][:, :3]], axis=1)
    ann["keypoint_score"] = np.concatenate([ann["keypoint_score"], ann["keypoint_score"][:, :3]], axis=1)
    with pytest.raises(EpamnetError, match=r"sq\.avi: the video has 12 frames but the skeleton of sq has 15"):
        crop_sample(ann, tmp_path / "sq.avi", tmp_path / "out" / "sq.avi", size=32)
    assert not (tmp_path / "out" / "sq.avi").exists()


def test_crop_longer_video_keeps_the_skeleton_frames(tmp_path: Path) -> None:
    corners = _square_video(tmp_path / "sq.avi")
    ann = _square_skeleton(corners)
    for key in ("keypoint", "keypoint_score"):
        ann[key] = ann[key][:, :8].copy()
    ann["total_frames"] = 8
    new = crop_sample(ann, tmp_path / "sq.avi", tmp_path / "sq.avi", size=32)
    assert new["total_frames"] == 8
    assert video_info(tmp_path / "sq.avi", count_frames=True).frames == 8


# ----------------------------------------------------------------------------- shards and merge

NAMES = ["s05", "s01", "s07", "s03", "s02", "s06", "s04"]


def _tiny_dataset(root: Path, names=NAMES) -> tuple[Path, dict[str, Path]]:
    """Per-sample 4-frame 24x32 videos and a skeleton file; returns (pkl, frame_dir -> video)."""
    videos, anns = {}, []
    rng = np.random.default_rng(0)
    for name in names:
        videos[name] = root / "raw" / f"{name}_rgb.avi"
        write_video(videos[name], rng.integers(0, 255, (4, 24, 32, 3), dtype=np.uint8), fps=10, codec="MJPG")
        kp = rng.uniform(4, 20, (1, 4, 17, 2)).astype(np.float32)
        anns.append({"frame_dir": name, "label": int(name[-2:]), "img_shape": (24, 32), "original_shape": (24, 32),
                     "total_frames": 4, "keypoint": kp, "keypoint_score": np.ones((1, 4, 17), np.float32)})
    pkl = root / "skeletons.pkl"
    save_annotations(pkl, anns)
    return pkl, videos


def _run_shard(root: Path, pkl: Path, videos: dict[str, Path], i: int, n: int, **kw):
    return crop_shard(pkl, lambda name: videos[name], i, n, root / "interim" / f"shard-{i:03d}.pkl",
                      root / "prepared" / "videos" / f"shard-{i:03d}", size=16, **kw)


def test_shards_partition_the_samples_and_merge_reproduces_them(tmp_path: Path) -> None:
    pkl, videos = _tiny_dataset(tmp_path)
    n = 3
    seen: list[str] = []
    for i in range(n):
        result = _run_shard(tmp_path, pkl, videos, i, n)
        shard = load_annotations(tmp_path / "interim" / f"shard-{i:03d}.pkl")
        names = [a["frame_dir"] for a in shard]
        assert names == sorted(NAMES)[i::n]  # positions i, i+n, ... of the sorted names
        assert result.written == len(names) and result.failed == []
        assert json.loads(failures_path(tmp_path / "interim" / f"shard-{i:03d}.pkl").read_text()) == []
        assert sorted(p.name for p in (tmp_path / "prepared" / "videos" / f"shard-{i:03d}").iterdir()) == [
            f"{x}{PREPARED_VIDEO_SUFFIX}" for x in names
        ]
        assert all(a["filename"] == f"videos/shard-{i:03d}/{a['frame_dir']}{PREPARED_VIDEO_SUFFIX}" for a in shard)
        seen += names
    assert sorted(seen) == sorted(NAMES) and len(seen) == len(set(seen))  # union = all, no overlap

    merged = merge_shards([tmp_path / "interim" / f"shard-{i:03d}.pkl" for i in range(n)],
                          tmp_path / "prepared" / "annotations.pkl")
    saved = load_annotations(tmp_path / "prepared" / "annotations.pkl")
    assert [a["frame_dir"] for a in saved] == [a["frame_dir"] for a in merged] == sorted(NAMES)
    assert all(a["img_shape"] == (16, 16) and (tmp_path / "prepared" / a["filename"]).is_file() for a in saved)
    assert {a["frame_dir"]: a["label"] for a in saved} == {x: int(x[1:]) for x in NAMES}


def test_merge_rejects_duplicates_and_missing_videos(tmp_path: Path) -> None:
    pkl, videos = _tiny_dataset(tmp_path)
    _run_shard(tmp_path, pkl, videos, 0, 2)
    _run_shard(tmp_path, pkl, videos, 1, 2)
    shards = [tmp_path / "interim" / f"shard-{i:03d}.pkl" for i in range(2)]
    out = tmp_path / "prepared" / "annotations.pkl"
    with pytest.raises(EpamnetError, match=r"shard-000\.pkl: sample s01 is also in .*shard-000\.pkl"):
        merge_shards([shards[0], shards[0]], out)
    (tmp_path / "prepared" / "videos" / "shard-001" / f"s02{PREPARED_VIDEO_SUFFIX}").unlink()
    with pytest.raises(EpamnetError, match=r"shard-001\.pkl: the video of s02 .*does not exist"):
        merge_shards(shards, out)
    assert not out.exists()


def test_shard_with_a_corrupt_video_fails_with_one_line_and_no_output(tmp_path: Path) -> None:
    pkl, videos = _tiny_dataset(tmp_path)
    videos["s03"].write_bytes(b"\x00garbage" * 100)
    with pytest.raises(EpamnetError) as info:
        _run_shard(tmp_path, pkl, videos, 0, 2)  # shard 0: s01, s03, s05, s07
    assert "\n" not in str(info.value) and "s03_rgb.avi" in str(info.value)
    assert not (tmp_path / "interim").exists() or not any((tmp_path / "interim").iterdir())
    assert not any((tmp_path / "prepared" / "videos").iterdir())  # no shard folder, no temporary one


def test_shard_skip_records_failures_and_keeps_the_rest(tmp_path: Path) -> None:
    pkl, videos = _tiny_dataset(tmp_path)
    videos["s03"].write_bytes(b"\x00garbage" * 100)
    videos["s05"] = tmp_path / "raw" / "missing.avi"
    result = _run_shard(tmp_path, pkl, videos, 0, 2, on_error="skip")
    failures = json.loads(failures_path(tmp_path / "interim" / "shard-000.pkl").read_text())
    assert [f["frame_dir"] for f in failures] == ["s03", "s05"] == [f["frame_dir"] for f in result.failed]
    assert failures[0]["file"].endswith("s03_rgb.avi") and failures[1]["file"].endswith("missing.avi")
    assert all(f["reason"] and "\n" not in f["reason"] for f in failures)
    assert "not found" in failures[1]["reason"]
    shard = load_annotations(tmp_path / "interim" / "shard-000.pkl")
    assert [a["frame_dir"] for a in shard] == ["s01", "s07"]
    assert sorted(p.name for p in (tmp_path / "prepared" / "videos" / "shard-000").iterdir()) == [f"s01{PREPARED_VIDEO_SUFFIX}", f"s07{PREPARED_VIDEO_SUFFIX}"]


def _ntu_finder(videos: dict[str, Path]):
    """The crop stage's lookup for NTU: the name must parse (raises for the mmaction2 ``_rgb`` name)."""
    info = get_dataset("ntu60")
    return lambda name: videos[info.video_id(name)]


def test_shard_name_lookup_failure_obeys_on_sample_error(tmp_path: Path) -> None:
    # A skeleton file that did not pass through `pose`: one entry named as mmaction2's
    # ntu_pose_extraction.py names it (the video file's stem), one proper NTU name.
    good, bad = "S001C001P001R001A001", "S001C001P001R001A002_rgb"
    pkl, videos = _tiny_dataset(tmp_path, names=[good, "S001C001P001R001A002"])
    anns = load_annotations(pkl)
    anns[1]["frame_dir"] = bad
    with open(pkl, "wb") as fh:
        pickle.dump(anns, fh, protocol=2)  # what mmengine.dump writes
    out = tmp_path / "interim" / "shard-000.pkl"
    run = lambda **kw: crop_shard(pkl, _ntu_finder(videos), 0, 1, out,  # noqa: E731
                                  tmp_path / "prepared" / "videos" / "shard-000", size=16, **kw)
    with pytest.raises(EpamnetError) as info:
        run()
    msg = str(info.value)
    assert msg.startswith(f"{pkl} (frame_dir {bad!r}): finding the video of {bad} failed (")
    assert "is not an NTU sample name" in msg and "prepare.on_sample_error: skip" in msg and "\n" not in msg
    assert not out.exists()
    result = run(on_error="skip")
    assert result.written == 1 and [f["frame_dir"] for f in result.failed] == [bad]
    assert result.failed[0]["file"] == f"{pkl} (frame_dir {bad!r})"
    assert "is not an NTU sample name" in result.failed[0]["reason"]
    assert [a["frame_dir"] for a in load_annotations(out)] == [good]


def test_shard_skip_covers_any_error_of_a_sample(tmp_path: Path, caplog) -> None:
    pkl, videos = _tiny_dataset(tmp_path, names=["s01", "s02"])

    def finder(name: str) -> Path:
        if name == "s02":
            raise KeyError(name)  # a lookup that fails with a plain Python error
        return videos[name]

    out = tmp_path / "interim" / "shard-000.pkl"
    result = crop_shard(pkl, finder, 0, 1, out, tmp_path / "prepared" / "videos" / "shard-000", size=16,
                        on_error="skip")
    assert result.written == 1 and result.failed == [
        {"frame_dir": "s02", "file": f"{pkl} (frame_dir 's02')", "reason": "KeyError: 's02'"}
    ]
    with pytest.raises(EpamnetError, match=r"frame_dir 's02'\): finding the video of s02 failed \(KeyError"):
        crop_shard(pkl, finder, 0, 1, out, tmp_path / "prepared" / "videos" / "shard-000", size=16)


def test_shard_index_out_of_range(tmp_path: Path) -> None:
    pkl, videos = _tiny_dataset(tmp_path, names=["s01"])
    with pytest.raises(EpamnetError, match="shard 2 of 2"):
        _run_shard(tmp_path, pkl, videos, 2, 2)

# ================================================================ edges found by mutation testing
# (the global box rule's threshold boundary, one coordinate missing, threshold 0, clamping a scaled box, NaN scores; `make mutation`). Expected values are typed out or worked out by hand,
# not built from the code's own constants.


def kp(*points: tuple[float, float]) -> np.ndarray:
    return np.array([[list(points)]], dtype=np.float64)  # 1 person, 1 frame


def test_a_range_of_exactly_the_threshold_is_a_box():
    # x 40..50 and y 40..50: ranges 10, not < 10 -> centre 45, half 5 * 1.25 = 6.25 -> 38.75..51.25
    assert keypoint_box(kp((40, 40), (50, 50)), None, (100, 100)) == (38, 38, 51, 51)
    # y 100..105 is 5 < 10 (although 100 + 105 is not): the whole frame
    assert keypoint_box(kp((10, 100), (90, 105)), None, (200, 300)) == (0, 0, 300, 200)


def test_keypoints_with_only_one_coordinate_nonzero():
    # every x is zero: no horizontal extent at all -> the whole frame
    assert keypoint_box(kp((0, 50), (0, 90)), None, (100, 120)) == (0, 0, 120, 100)
    assert keypoint_box(kp((50, 0), (90, 0)), None, (100, 120)) == (0, 0, 120, 100)
    # threshold 0: one x (50) and ys 20..80 -> centre (50, 50), half_h 30 * 1.25 = 37.5,
    # squared half_w 37.5 -> 12.5..87.5
    assert keypoint_box(kp((50, 20), (0, 80)), None, (100, 100), threshold=0) == (12, 12, 87, 87)
    assert keypoint_box(kp((20, 50), (80, 0)), None, (100, 100), threshold=0) == (12, 12, 87, 87)


def test_threshold_zero_and_a_flat_box_is_the_whole_frame():
    # x 50..50 (and no squaring): x0 == x1 == 50, no width -> the whole frame
    assert keypoint_box(kp((50, 20), (50, 80)), None, (100, 120), threshold=0, hw_ratio=None) == (0, 0, 120, 100)
    assert keypoint_box(kp((20, 50), (80, 50)), None, (100, 120), threshold=0, hw_ratio=None) == (0, 0, 120, 100)


def test_scale_box_clamps_to_the_image_and_keeps_one_pixel():
    assert scale_box((0, 10, 10, 20), 2.0, 3.0, 100, 100) == (0, 30, 20, 60)
    # starts past the right/bottom edge once scaled: the last pixel
    assert scale_box((95, 95, 100, 100), 2.0, 2.0, 100, 100) == (99, 99, 100, 100)
    # x0 -> 1.0, x1 -> 1.1: both round to 1, so the box keeps one pixel
    assert scale_box((10, 10, 11, 11), 0.1, 0.1, 100, 100) == (1, 1, 2, 2)


def test_a_nan_score_is_not_valid():
    points = kp((10, 20), (30, 40))
    np.testing.assert_array_equal(valid_keypoints(points, np.array([[[np.nan, 0.5]]])), [[[False, True]]])


def test_a_position_too_large_for_float32_is_dropped_without_a_warning():
    points = np.array([[[[1e300, 5.0], [10.0, 20.0]]]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new, score = keypoints_to_crop(points, np.ones((1, 1, 2)), (0.0, 0.0, 100.0, 100.0), (100, 100))
    np.testing.assert_array_equal(new[0, 0], [[0.0, 0.0], [10.0, 20.0]])
    np.testing.assert_array_equal(score[0, 0], [0.0, 1.0])
