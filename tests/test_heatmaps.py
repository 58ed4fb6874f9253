"""Heatmap volumes, keypoint transforms and RGB transforms, against the rules written out.

The heatmap reference below is a literal per-point loop over the GeneratePoseTarget rules
(independent of mmaction2, so these tests run without the oracle environment).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from epamnet.loader.heatmaps import generate_heatmaps
from epamnet.loader.pose_transforms import (
    COCO_LEFT,
    COCO_RIGHT,
    compact_keypoints,
    crop_keypoints,
    flip_keypoints,
    random_resized_crop_box,
    resize_keypoints,
    short_side_shape,
)
from epamnet.loader.rgb import RGB_MEAN, RGB_STD, flip_frames, normalize_frames, resize_frames

# ---------------------------------------------------------------- heatmaps


def loop_reference(
    kp: np.ndarray, score: np.ndarray, size: tuple[int, int], sigma: float = 0.6, use_score: bool = True
) -> np.ndarray:
    """One Gaussian per (person, frame, joint), pixel window int(mu -/+ 3 sigma), max-combined."""
    m, t, v, _ = kp.shape
    h, w = size
    out = np.zeros((v, t, h, w), dtype=np.float32)
    for pi in range(m):
        for ti in range(t):
            for vi in range(v):
                value = np.float32(score[pi, ti, vi]) if use_score else np.float32(1.0)
                mx, my = np.float32(kp[pi, ti, vi, 0]), np.float32(kp[pi, ti, vi, 1])
                if math.isnan(value) or math.isnan(mx) or math.isnan(my) or value < 1e-4:
                    continue
                x0, x1 = max(int(mx - 3 * sigma), 0), min(int(mx + 3 * sigma) + 1, w)
                y0, y1 = max(int(my - 3 * sigma), 0), min(int(my + 3 * sigma) + 1, h)
                for y in range(y0, y1):
                    for x in range(x0, x1):
                        g = np.exp(-((np.float32(x) - mx) ** 2 + (np.float32(y) - my) ** 2) / 2 / sigma**2) * value
                        out[vi, ti, y, x] = max(out[vi, ti, y, x], g)
    return out


def random_points(rng: np.random.Generator, m: int, t: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    h, w = size
    kp = rng.uniform([-4, -4], [w + 4, h + 4], size=(m, t, 17, 2)).astype(np.float32)
    score = rng.uniform(0, 1, size=(m, t, 17)).astype(np.float32)
    u = rng.random((m, t, 17))
    score[u < 0.1] = 0.0
    score[(u >= 0.1) & (u < 0.13)] = np.nan
    kp[(u >= 0.13) & (u < 0.16), 1] = np.nan
    score[(u >= 0.16) & (u < 0.2)] = 5e-5
    return kp, score


@pytest.mark.parametrize(
    ("sigma", "use_score", "size", "m"),
    [(0.6, True, (16, 16), 2), (0.6, False, (12, 20), 1), (1.3, True, (16, 12), 3)],
)
def test_heatmaps_equal_the_per_point_loop(sigma: float, use_score: bool, size: tuple[int, int], m: int) -> None:
    rng = np.random.default_rng(int(sigma * 10) + m)
    kp, score = random_points(rng, m, 4, size)
    ours = generate_heatmaps(kp, score, size, sigma=sigma, use_score=use_score)
    ref = loop_reference(kp, score, size, sigma, use_score)
    assert ours.shape == (17, 4, *size) and ours.dtype == np.float32
    assert np.abs(ours - ref).max() <= 1e-6
    assert ref.max() > 0.5


def test_single_point_peak_truncation_and_score() -> None:
    kp = np.zeros((1, 1, 17, 2), dtype=np.float32)
    score = np.zeros((1, 1, 17), dtype=np.float32)
    kp[0, 0, 3] = (10, 20)
    score[0, 0, 3] = 0.7
    hm = generate_heatmaps(kp, score, (32, 32))
    assert hm[3, 0, 20, 10] == pytest.approx(0.7)
    assert hm[3, 0, 20, 11] == pytest.approx(0.7 * math.exp(-1 / (2 * 0.36)), rel=1e-6)
    assert hm[3, 0, 21, 11] == pytest.approx(0.7 * math.exp(-2 / (2 * 0.36)), rel=1e-6)
    # the window is int(mu - 1.8) .. int(mu + 1.8): 8..11 and 18..21, lopsided for integer points
    assert hm[3, 0, 18, 8] == pytest.approx(0.7 * math.exp(-8 / (2 * 0.36)), rel=1e-5)
    assert hm[3, 0, 20, 12] == 0.0 and hm[3, 0, 22, 10] == 0.0
    assert np.count_nonzero(hm[3]) == 16
    assert np.count_nonzero(np.delete(hm, 3, axis=0)) == 0  # zero-score joints draw nothing


def test_persons_combine_by_maximum_and_low_or_nan_scores_skip() -> None:
    kp = np.full((3, 1, 17, 2), 8.0, dtype=np.float32)
    score = np.zeros((3, 1, 17), dtype=np.float32)
    score[:, 0, 0] = (0.3, 0.9, 0.5)  # three persons on the same spot
    score[0, 0, 1], score[1, 0, 1] = 1e-4, 0.99e-4  # at and just under the cut
    score[0, 0, 2] = np.nan
    kp[1, 0, 4] = np.nan
    score[1, 0, 4] = 1.0
    hm = generate_heatmaps(kp, score, (16, 16))
    assert hm[0, 0].max() == pytest.approx(0.9)  # max, not sum
    assert hm[1, 0].max() == pytest.approx(1e-4)
    assert hm[2].max() == 0.0 and hm[4].max() == 0.0
    flat = generate_heatmaps(kp, score, (16, 16), use_score=False)
    # without use_score every point with coordinates draws at 1, whatever its score (as mmaction2)
    assert all(flat[j, 0].max() == 1.0 for j in (0, 1, 2, 4, 5))
    kp[:, 0, 4] = np.nan
    assert generate_heatmaps(kp, score, (16, 16), use_score=False)[4].max() == 0.0  # NaN coordinates never draw


def test_points_outside_the_map_light_only_what_the_window_reaches() -> None:
    kp = np.zeros((1, 3, 17, 2), dtype=np.float32)
    score = np.zeros((1, 3, 17), dtype=np.float32)
    kp[0, :, 0] = [(-2.5, 5.0), (-3.5, 5.0), (17.0, 5.0)]
    score[0, :, 0] = 1.0
    hm = generate_heatmaps(kp, score, (10, 16))
    # -2.5: int(-2.5 + 1.8) + 1 = 1 -> column 0 still inside the window (truncation toward 0);
    # rows int(5 - 1.8) .. int(5 + 1.8) = 3..6
    assert hm[0, 0, 5, 0] == pytest.approx(math.exp(-(2.5**2) / 0.72), rel=1e-5)
    assert np.count_nonzero(hm[0, 0]) == 4 and np.count_nonzero(hm[0, 0, :, 0]) == 4
    assert np.count_nonzero(hm[0, 1]) == 0  # -3.5: window ends before column 0
    assert np.count_nonzero(hm[0, 2]) == 4 and np.count_nonzero(hm[0, 2, :, 15]) == 4  # 17: back to column 15


def test_heatmaps_no_person_and_bad_inputs() -> None:
    empty = generate_heatmaps(np.zeros((0, 5, 17, 2)), np.zeros((0, 5, 17)), (8, 8))
    assert empty.shape == (17, 5, 8, 8) and not empty.any()
    ones = generate_heatmaps(np.full((1, 1, 17, 2), 4.0), None, (8, 8))
    assert np.all(ones[:, 0, 4, 4] == 1.0)
    with pytest.raises(ValueError, match="M x T x V x 2"):
        generate_heatmaps(np.zeros((5, 17, 2)), None, (8, 8))
    with pytest.raises(ValueError, match="keypoint_score"):
        generate_heatmaps(np.zeros((1, 5, 17, 2)), np.zeros((1, 5, 16)), (8, 8))
    with pytest.raises(ValueError, match="sigma"):
        generate_heatmaps(np.zeros((1, 5, 17, 2)), None, (8, 8), sigma=0)
    with pytest.raises(ValueError, match="heatmap size"):
        generate_heatmaps(np.zeros((1, 5, 17, 2)), None, (0, 8))


# ---------------------------------------------------------------- keypoint transforms


def test_compaction_box_by_hand() -> None:
    kp = np.zeros((2, 2, 17, 2), dtype=np.float32)
    kp[0, 0, 0] = (100, 50)
    kp[1, 1, 5] = (140, 70)
    kp[0, 1, 2] = (np.nan, np.nan)
    kp[1, 0, 3] = (0, 60)  # a zero x is "missing" per coordinate: only y moves
    original = kp.copy()
    out = compact_keypoints(kp, (224, 224), padding=0.25, threshold=10, hw_ratio=1.0)
    # box x 100..140, y 50..70; centre (120, 60); half sizes 25 and 12.5 -> square 25
    assert out.box == (95, 35, 145, 85) and out.img_shape == (50, 50)
    np.testing.assert_array_equal(out.keypoint[0, 0, 0], (5, 15))
    np.testing.assert_array_equal(out.keypoint[1, 1, 5], (45, 35))
    np.testing.assert_array_equal(out.keypoint[0, 1, 2], (0, 0))
    np.testing.assert_array_equal(out.keypoint[1, 0, 3], (0, 25))
    assert out.keypoint[0, 0, 1].tolist() == [0, 0]
    np.testing.assert_array_equal(kp, original)  # input untouched (NaN included)


def test_compaction_clips_to_image_or_pads_and_respects_threshold() -> None:
    kp = np.zeros((1, 1, 17, 2), dtype=np.float32)
    kp[0, 0, :2] = [(5, 100), (45, 120)]  # near the left border
    clipped = compact_keypoints(kp, (224, 224), allow_imgpad=False)
    assert clipped.box == (0, 85, 50, 135) and clipped.img_shape == (50, 50)
    padded = compact_keypoints(kp, (224, 224), allow_imgpad=True)
    assert padded.box == (0, 85, 50, 135)
    kp[0, 0, :2] = [(2, 100), (42, 104)]
    wide = compact_keypoints(kp, (224, 224), threshold=3, allow_imgpad=True)
    assert wide.box[0] < 0 and wide.img_shape == (wide.box[3] - wide.box[1], wide.box[2] - wide.box[0])
    small = compact_keypoints(kp, (224, 224), threshold=10)  # 4 px high: too small to compact
    assert small.box == (0, 0, 224, 224) and small.img_shape == (224, 224)
    np.testing.assert_array_equal(small.keypoint, kp)
    with pytest.raises(ValueError, match="padding"):
        compact_keypoints(kp, (224, 224), padding=-1)


def test_resize_and_flip_keypoints() -> None:
    kp = np.zeros((1, 1, 17, 2), dtype=np.float32)
    kp[0, 0, 1] = (10, 20)  # left eye
    kp[0, 0, 0] = (0, 30)  # nose with a zero x
    score = np.arange(17, dtype=np.float32).reshape(1, 1, 17)
    small = resize_keypoints(kp, (200, 100), (50, 50))
    np.testing.assert_allclose(small[0, 0, 1], (5, 5))
    np.testing.assert_allclose(small[0, 0, 0], (0, 7.5))
    flipped, fscore = flip_keypoints(small, score, 50)
    np.testing.assert_allclose(flipped[0, 0, 2], (45, 5))  # now the right eye
    assert flipped[0, 0, 1].tolist() == [0, 0]
    np.testing.assert_allclose(flipped[0, 0, 0], (0, 7.5))  # zero x stays zero
    assert fscore is not None and fscore[0, 0, 2] == 1 and fscore[0, 0, 1] == 2 and fscore[0, 0, 0] == 0
    back, bscore = flip_keypoints(flipped, fscore, 50)
    np.testing.assert_allclose(back, small)
    np.testing.assert_array_equal(bscore, score)
    assert sorted(COCO_LEFT + COCO_RIGHT) == list(range(1, 17))
    with pytest.raises(ValueError, match="positive"):
        resize_keypoints(kp, (0, 10), (5, 5))


def test_short_side_shape_rounds_each_side_half_up() -> None:
    assert short_side_shape((224, 224), 64) == (64, 64)
    assert short_side_shape((1080, 1920), 64) == (64, 114)  # 1920 * 64 / 1080 = 113.8
    assert short_side_shape((100, 50), 64) == (128, 64)
    assert short_side_shape((40, 60), 64) == (64, 96)
    assert short_side_shape((64, 113), 64) == (64, 113)
    assert short_side_shape((3, 200), 64) == (64, 4267)  # 200 * 64 / 3 = 4266.67
    with pytest.raises(ValueError, match="positive"):
        short_side_shape((0, 10), 64)


def test_random_resized_crop_boxes_stay_inside_and_in_range() -> None:
    rng = np.random.default_rng(0)
    areas, aspects, offsets = [], [], set()
    for _ in range(300):
        h, w = (64, 64)
        x0, y0, x1, y1 = random_resized_crop_box((h, w), rng, area_range=(0.56, 1.0))
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        areas.append((x1 - x0) * (y1 - y0) / (h * w))
        aspects.append((x1 - x0) / (y1 - y0))
        offsets.add((x0, y0))
    # rounded sides: the area and aspect ranges hold up to a pixel's rounding
    assert 0.56 - 0.03 <= min(areas) and max(areas) <= 1.0 and max(areas) > 0.95
    assert 3 / 4 - 0.03 <= min(aspects) and max(aspects) <= 4 / 3 + 0.03
    assert len(offsets) > 30  # the offsets are drawn too
    # same generator state, same box; Generator and RandomState both work
    assert random_resized_crop_box((80, 60), np.random.default_rng(5)) == random_resized_crop_box(
        (80, 60), np.random.default_rng(5)
    )
    box = random_resized_crop_box((80, 60), np.random.RandomState(5))
    assert 0 <= box[0] < box[2] <= 60 and 0 <= box[1] < box[3] <= 80


def test_random_resized_crop_falls_back_to_the_centred_square() -> None:
    # the whole area at a wide aspect never fits a 40 x 100 frame: the centred 40 x 40 square
    box = random_resized_crop_box((40, 100), np.random.default_rng(1), area_range=(1.0, 1.0),
                                  aspect_ratio_range=(3.0, 4.0))
    assert box == (30, 0, 70, 40)
    with pytest.raises(ValueError, match="area_range"):
        random_resized_crop_box((40, 40), np.random.default_rng(0), area_range=(0.5, 1.2))
    with pytest.raises(ValueError, match="aspect_ratio_range"):
        random_resized_crop_box((40, 40), np.random.default_rng(0), aspect_ratio_range=(2.0, 1.0))
    with pytest.raises(ValueError, match="max_attempts"):
        random_resized_crop_box((40, 40), np.random.default_rng(0), max_attempts=0)


def test_crop_keypoints_shifts_every_point_like_mmaction() -> None:
    kp = np.zeros((1, 2, 17, 2), dtype=np.float32)
    kp[0, 0, 0] = (10.5, 20.25)
    kp[0, 1, 3] = (0, 30)
    original = kp.copy()
    out = crop_keypoints(kp, (4, 6, 40, 50))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[0, 0, 0], (6.5, 14.25))
    np.testing.assert_array_equal(out[0, 1, 3], (-4, 24))  # a zero coordinate moves too (RandomCrop._crop_kps)
    np.testing.assert_array_equal(out[0, 0, 5], (-4, -6))  # and so does a missing point
    np.testing.assert_array_equal(kp, original)


# ---------------------------------------------------------------- RGB transforms


def test_normalize_flip_resize_frames() -> None:
    frames = np.zeros((2, 4, 6, 3), dtype=np.uint8)
    frames[..., 0] = 200
    frames[:, :, 0, 1] = 255
    out = normalize_frames(frames)
    assert out.shape == (3, 2, 4, 6) and out.dtype == np.float32 and out.flags.c_contiguous
    assert out[0, 0, 0, 3] == pytest.approx((200 - RGB_MEAN[0]) / RGB_STD[0], rel=1e-6)
    assert out[2, 1, 3, 5] == pytest.approx(-RGB_MEAN[2] / RGB_STD[2], rel=1e-6)
    flipped = flip_frames(frames)
    assert flipped[0, 0, 5, 1] == 255 and flipped[0, 0, 0, 1] == 0
    np.testing.assert_array_equal(flip_frames(flipped), frames)
    big = resize_frames(frames, (8, 12))
    assert big.shape == (2, 8, 12, 3) and big.dtype == np.uint8 and np.all(big[..., 0] == 200)
    assert resize_frames(frames, (4, 6)) is frames
    with pytest.raises(ValueError, match="T x H x W x 3"):
        normalize_frames(np.zeros((4, 6, 3)))
    with pytest.raises(ValueError, match="std"):
        normalize_frames(frames, std=(1.0, 0.0, 1.0))
