"""Our data transforms against mmaction2 1.2.0's own (the oracle environment: envs/oracle.txt).

Every test here runs mmaction2's transform and ours on the same generated input and
compares: frame indices and compaction must be identical, heatmaps within 1e-5 (they
are in fact bit-identical). Without mmaction2 the tests skip, or fail with a clear
message when ``EPAMNET_REQUIRE_ORACLE=1``.

mmaction2 1.2.0 still uses ``np.Inf`` in PoseCompact, which NumPy 2 removed; the tests
put the alias back on the numpy module for their own duration (pytest ``monkeypatch``).
mmaction2's test-mode sampling and Flip use the global NumPy RNG; each call is wrapped
so the global state is restored afterwards.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest

from epamnet.loader.dataset import PoseClipConfig, pose_clip
from epamnet.loader.heatmaps import generate_heatmaps
from epamnet.loader.pose_transforms import COCO_LEFT, COCO_RIGHT, compact_keypoints, flip_keypoints, resize_keypoints
from epamnet.loader.sampling import sample_frame_indices
from epamnet.prepare.global_box import global_box

pytestmark = pytest.mark.oracle


@pytest.fixture(scope="module")
def mm() -> SimpleNamespace:
    """mmaction2's pose transforms, or skip (fail under EPAMNET_REQUIRE_ORACLE=1)."""
    try:
        pose = importlib.import_module("mmaction.datasets.transforms.pose_transforms")
        proc = importlib.import_module("mmaction.datasets.transforms.processing")
    except Exception as exc:  # ImportError, or an incompatible dependency failing at import
        message = (
            f"mmaction2 oracle not importable ({type(exc).__name__}: {exc}); "
            "install it with the commands in envs/oracle.txt"
        )
        if os.environ.get("EPAMNET_REQUIRE_ORACLE") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return SimpleNamespace(
        UniformSampleFrames=pose.UniformSampleFrames,
        PoseDecode=pose.PoseDecode,
        PoseCompact=pose.PoseCompact,
        MMCompact=pose.MMCompact,
        GeneratePoseTarget=pose.GeneratePoseTarget,
        Resize=proc.Resize,
        Flip=proc.Flip,
    )


@pytest.fixture
def np_inf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Restore ``np.Inf`` (removed in NumPy 2, still used by mmaction2 1.2.0's PoseCompact)."""
    monkeypatch.setattr(np, "Inf", np.inf, raising=False)


@contextlib.contextmanager
def global_rng_kept() -> Iterator[None]:
    state = np.random.get_state()
    try:
        yield
    finally:
        np.random.set_state(state)


def make_annotation(
    rng: np.random.Generator,
    m: int,
    t: int,
    img_shape: tuple[int, int],
    *,
    spread: float = 0.4,
    border: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints ``M x T x 17 x 2`` and scores ``M x T x 17`` with the awkward cases.

    Persons wander around random centres; some points are zero (missing, score 0), some
    NaN (with score 0 or a positive score), some exactly on or just beyond the image
    border (``border``), some scores below the 1e-4 cut; one person disappears in some frames.
    """
    h, w = img_shape
    centre = rng.uniform([0.2 * w, 0.2 * h], [0.8 * w, 0.8 * h], size=(m, 1, 1, 2))
    kp = centre + rng.normal(0, spread * min(h, w) / 3, size=(m, t, 17, 2))
    score = rng.uniform(0.05, 1.0, size=(m, t, 17))
    u = rng.random((m, t, 17))
    kp[u < 0.08] = 0.0
    score[u < 0.08] = 0.0
    kp[(u >= 0.08) & (u < 0.11)] = np.nan
    score[(u >= 0.08) & (u < 0.10)] = 0.0
    score[(u >= 0.11) & (u < 0.13)] = rng.uniform(0, 2e-4, size=int(((u >= 0.11) & (u < 0.13)).sum()))
    on_border = (u >= 0.13) & (u < 0.18) & border
    kp[on_border, 0] = rng.choice([0.3, w - 0.2, w + 0.7, -0.6, float(w)], size=int(on_border.sum()))
    if m > 1:
        gone = rng.random(t) < 0.2
        kp[m - 1, gone] = 0.0
        score[m - 1, gone] = 0.0
    return kp.astype(np.float32), score.astype(np.float32)


# ---------------------------------------------------------------- sampling


SAMPLING_CASES = [(n, c) for c in (1, 3, 16, 48) for n in range(1, 3 * c + 3)] + [
    (n, c) for c in (16, 48) for n in (97, 150, 300, 301, 1000, 4321)
]


def test_test_mode_indices_equal_mmaction(mm: SimpleNamespace) -> None:
    assert len(SAMPLING_CASES) > 200
    for n, clip_len in SAMPLING_CASES:
        sampler = mm.UniformSampleFrames(clip_len=clip_len, num_clips=1, test_mode=True)
        with global_rng_kept():
            ref = sampler.transform({"total_frames": n, "start_index": 0})["frame_inds"]
        state = np.random.get_state()
        ours = sample_frame_indices(n, clip_len, test_mode=True)
        after = np.random.get_state()
        assert all(np.array_equal(a, b) for a, b in zip(state, after, strict=True)), "global RNG touched"
        np.testing.assert_array_equal(ours, ref, err_msg=f"total_frames={n} clip_len={clip_len}")


def test_train_mode_same_draws_as_mmaction_given_the_same_random_state(mm: SimpleNamespace) -> None:
    for k, (n, clip_len) in enumerate(SAMPLING_CASES[::7]):
        sampler = mm.UniformSampleFrames(clip_len=clip_len, num_clips=1, test_mode=False)
        with global_rng_kept():
            np.random.seed(1000 + k)
            ref = sampler.transform({"total_frames": n, "start_index": 0})["frame_inds"]
        ours = sample_frame_indices(n, clip_len, test_mode=False, rng=np.random.RandomState(1000 + k))
        np.testing.assert_array_equal(ours, ref, err_msg=f"total_frames={n} clip_len={clip_len}")


# ---------------------------------------------------------------- compaction, resize, flip


COMPACT_SETTINGS = [
    {"padding": 0.25, "threshold": 10, "hw_ratio": 1.0, "allow_imgpad": False},
    {"padding": 0.25, "threshold": 10, "hw_ratio": 1.0, "allow_imgpad": True},
    {"padding": 0.1, "threshold": 10, "hw_ratio": None, "allow_imgpad": True},
    {"padding": 0.5, "threshold": 5, "hw_ratio": (0.75, 1.5), "allow_imgpad": False},
]


@pytest.mark.parametrize("setting", COMPACT_SETTINGS, ids=lambda s: f"pad{s['padding']}-{s['allow_imgpad']}")
def test_compaction_equals_posecompact(mm: SimpleNamespace, np_inf: None, setting: dict) -> None:
    rng = np.random.default_rng(7)
    shapes = [(224, 224), (1080, 1920), (240, 320), (60, 40)]
    checked_compacted = 0
    for trial in range(40):
        img_shape = shapes[trial % len(shapes)]
        spread = [0.4, 1.5, 0.01, 0.8][trial % 4]  # 0.01: a box under the threshold
        border = (trial // 4) % 2 == 0  # border points widen the box to the whole image
        kp, _ = make_annotation(rng, m=1 + trial % 3, t=12, img_shape=img_shape, spread=spread, border=border)
        ref = mm.PoseCompact(**setting).transform({"keypoint": kp.copy(), "img_shape": img_shape})
        ours = compact_keypoints(kp, img_shape, **setting)
        np.testing.assert_array_equal(ours.keypoint, ref["keypoint"])
        assert ours.img_shape == tuple(ref["img_shape"])
        h, w = img_shape
        x0, y0, x1, y1 = ours.box
        quad = ref.get("crop_quadruple", (0.0, 0.0, 1.0, 1.0))
        np.testing.assert_allclose((x0 / w, y0 / h, (x1 - x0) / w, (y1 - y0) / h), quad, rtol=0, atol=1e-12)
        checked_compacted += ours.img_shape != img_shape
    assert checked_compacted >= 8  # enough trials really compacted


def test_resize_and_flip_equal_mmaction(mm: SimpleNamespace) -> None:
    rng = np.random.default_rng(3)
    for img_shape in [(224, 224), (131, 97)]:
        kp, score = make_annotation(rng, m=2, t=10, img_shape=img_shape)
        kp = np.nan_to_num(kp)
        ref = mm.Resize(scale=(56, 48), keep_ratio=False).transform({"keypoint": kp.copy(), "img_shape": img_shape})
        ours = resize_keypoints(kp, img_shape, (48, 56))
        np.testing.assert_array_equal(ours, ref["keypoint"])
        assert ref["img_shape"] == (48, 56)

        flip = mm.Flip(flip_ratio=1.0, left_kp=list(COCO_LEFT), right_kp=list(COCO_RIGHT))
        with global_rng_kept():
            fref = flip.transform(
                {"keypoint": ours.copy(), "keypoint_score": score.copy(), "img_shape": (48, 56), "modality": "Pose"}
            )
        fkp, fscore = flip_keypoints(ours, score, 56)
        np.testing.assert_array_equal(fkp, fref["keypoint"])
        np.testing.assert_array_equal(fscore, fref["keypoint_score"])


# ---------------------------------------------------------------- heatmaps


@pytest.mark.parametrize(
    ("sigma", "use_score", "size"),
    [(0.6, True, (56, 56)), (0.6, False, (56, 56)), (1.0, True, (48, 64)), (2.5, True, (32, 32))],
)
def test_heatmaps_equal_generateposetarget(
    mm: SimpleNamespace, sigma: float, use_score: bool, size: tuple[int, int]
) -> None:
    rng = np.random.default_rng(11)
    gen = mm.GeneratePoseTarget(sigma=sigma, use_score=use_score, with_kp=True, with_limb=False)
    for m in (1, 2, 3):
        kp, score = make_annotation(rng, m=m, t=8, img_shape=size)
        kp = np.nan_to_num(kp)  # mmaction2 cannot take NaN coordinates (int(nan)); compaction zeroes them
        ref = gen.transform({"keypoint": kp.copy(), "keypoint_score": score.copy(), "img_shape": size})["imgs"]
        ours = generate_heatmaps(kp, score, size, sigma=sigma, use_score=use_score)
        assert ours.dtype == np.float32 and ours.shape == (17, 8, *size)
        ref_cthw = ref.transpose(1, 0, 2, 3)
        assert np.abs(ours - ref_cthw).max() <= 1e-5
        assert ref_cthw.max() > 0.5  # something was drawn


@pytest.mark.parametrize("flip", [False, True])
def test_full_pose_pipeline_equals_mmaction_chain(mm: SimpleNamespace, np_inf: None, flip: bool) -> None:
    """Sample (test mode) -> decode -> PoseCompact -> Resize 56 -> [Flip] -> GeneratePoseTarget."""
    rng = np.random.default_rng(5)
    config = PoseClipConfig(clip_len=48, heatmap_size=(56, 56))
    for total, m, img_shape in [(30, 2, (224, 224)), (70, 1, (224, 224)), (200, 2, (1080, 1920))]:
        kp, score = make_annotation(rng, m=m, t=total, img_shape=img_shape)
        results = {"keypoint": kp.copy(), "keypoint_score": score.copy(), "img_shape": img_shape, "total_frames": total}
        with global_rng_kept():
            results = mm.UniformSampleFrames(clip_len=48, test_mode=True).transform(results)
            results = mm.PoseDecode().transform(results)
            results = mm.PoseCompact(padding=0.25, threshold=10, hw_ratio=1, allow_imgpad=False).transform(results)
            results = mm.Resize(scale=(56, 56), keep_ratio=False).transform(results)
            if flip:
                results["modality"] = "Pose"
                results = mm.Flip(flip_ratio=1.0, left_kp=list(COCO_LEFT), right_kp=list(COCO_RIGHT)).transform(
                    results
                )
            results = mm.GeneratePoseTarget(sigma=0.6, use_score=True, with_kp=True, with_limb=False).transform(
                results
            )
        ref = results["imgs"].transpose(1, 0, 2, 3)
        inds = sample_frame_indices(total, 48, test_mode=True)
        ours = pose_clip(kp, score, img_shape, inds, config, flip=flip)
        assert ours.shape == ref.shape == (17, 48, 56, 56)
        assert np.abs(ours - ref).max() <= 1e-5
        assert ref.max() > 0.5


# ---------------------------------------------------------------- the crop's global box

# The official crop rule (MMCompact of the fusion pipeline; params.yaml prepare.crop): our
# crop clips the box to the frame, i.e. allow_imgpad=False.
CROP_BOX = {"padding": 0.25, "threshold": 10, "hw_ratio": 1}


def _reference_boxes(mm: SimpleNamespace, kp: np.ndarray, img_shape: tuple[int, int]) -> tuple[tuple, tuple]:
    """The box of MMCompact._get_box and the one PoseCompact cuts (from its crop_quadruple)."""
    h, w = img_shape
    kp = np.nan_to_num(kp)  # what PoseCompact does first; MMCompact._get_box cannot take NaN
    mm_box = mm.MMCompact(**CROP_BOX, allow_imgpad=False)._get_box(kp.copy(), img_shape)
    ref = mm.PoseCompact(**CROP_BOX, allow_imgpad=False).transform({"keypoint": kp.copy(), "img_shape": img_shape})
    if "crop_quadruple" not in ref:  # threshold or no point: the whole frame
        pc_box = (0, 0, w, h)
    else:
        x0, y0 = round(ref["crop_quadruple"][0] * w), round(ref["crop_quadruple"][1] * h)
        pc_box = (x0, y0, x0 + ref["img_shape"][1], y0 + ref["img_shape"][0])
    return tuple(int(v) for v in mm_box), pc_box


def _annotation(kp: np.ndarray, score: np.ndarray, img_shape: tuple[int, int]) -> dict:
    return {"frame_dir": "x", "label": 0, "img_shape": img_shape, "original_shape": img_shape,
            "total_frames": kp.shape[1], "keypoint": kp, "keypoint_score": score}


def _quarter_skeleton(rng: np.random.Generator, m: int, t: int, img_shape: tuple[int, int], spread: float):
    """Keypoints on a quarter-pixel grid (box arithmetic exact in float32 and float64) with missing
    (0, 0) points (score 0, or a positive score: missing is a matter of coordinates), NaN points,
    points outside the frame, and a second person gone in some frames."""
    h, w = img_shape
    centre = rng.uniform([0.2 * w, 0.2 * h], [0.8 * w, 0.8 * h], size=(m, 1, 1, 2))
    kp = np.round((centre + rng.normal(0, spread * min(h, w) / 3, size=(m, t, 17, 2))) * 4) / 4
    kp[kp == 0] = 0.25  # no lone zero coordinate here (see the cases below)
    score = rng.uniform(0.05, 1.0, size=(m, t, 17))
    u = rng.random((m, t, 17))
    kp[u < 0.15] = 0.0
    score[u < 0.10] = 0.0
    kp[(u >= 0.15) & (u < 0.18)] = np.nan  # NaN on both coordinates
    if m > 1:
        gone = rng.random(t) < 0.3
        kp[m - 1, gone] = 0.0
        score[m - 1, gone] = 0.0
    return kp.astype(np.float32), score.astype(np.float32)


def _one_point_skeleton(points: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    kp = np.zeros((1, 1, 17, 2), np.float32)
    kp[0, 0, : len(points)] = points
    return kp, np.ones((1, 1, 17), np.float32)  # every joint scored, the unused ones (0, 0)


# Points with exactly one zero coordinate, placed where mmaction2's per-coordinate rule (the
# zero is ignored, the other coordinate counts) and ours (the point counts) give one box:
# a lone zero that cannot move the box (clipped axis, or a negative coordinate beyond it)
# while its other coordinate is the extreme of its axis. Dropping such points changes the box.
LONE_ZERO_CASES = [
    ([(40, 120), (60, 280), (0, 290)], (400, 100)),  # tall frame: x clipped both sides, y reaches 290
    ([(120, 40), (280, 60), (290, 0)], (100, 400)),  # wide frame: the same transposed
    ([(-8, 50), (30, 60), (0, 140)], (200, 200)),  # x = -8 is the minimum anyway
    ([(50, -6), (70, 30), (150, 0)], (200, 200)),
    ([(0, 0), (0, 0), (40, 120), (60, 280), (0, 290), (0.0, 0.0)], (400, 100)),  # plus missing points
]


def test_global_box_equals_mmcompact_and_posecompact(mm: SimpleNamespace, np_inf: None) -> None:
    rng = np.random.default_rng(17)
    cases: list[tuple[np.ndarray, np.ndarray, tuple[int, int]]] = []
    shapes = [(120, 160), (90, 200), (300, 80), (1080, 1920)]
    for trial in range(48):
        img_shape = shapes[trial % len(shapes)]
        spread = [0.4, 1.2, 0.01, 0.8][(trial // 4) % 4]  # 1.2: beyond the frame; 0.01: under the threshold
        cases.append((*_quarter_skeleton(rng, 1 + trial % 3, 6, img_shape, spread), img_shape))
    for points, img_shape in LONE_ZERO_CASES:
        cases.append((*_one_point_skeleton(points), img_shape))
    missing = np.zeros((2, 4, 17, 2), np.float32)  # every point missing: the whole frame
    cases.append((missing, np.ones((2, 4, 17), np.float32), (120, 160)))
    cases.append((missing, np.zeros((2, 4, 17), np.float32), (120, 160)))

    cropped = 0
    for kp, score, img_shape in cases:
        mm_box, pc_box = _reference_boxes(mm, kp, img_shape)
        assert mm_box == pc_box  # the two mmaction2 transforms agree with each other
        ours = global_box(_annotation(kp, score, img_shape), **CROP_BOX)
        assert ours == mm_box, (img_shape, kp[np.isfinite(kp).all(-1) & (kp != 0).any(-1)].tolist())
        cropped += ours != (0, 0, img_shape[1], img_shape[0])
    assert cropped >= 30  # most cases really crop


def test_global_box_ignores_a_lone_zero_coordinate_like_mmcompact(mm: SimpleNamespace, np_inf: None) -> None:
    # mmaction2: x 100..150 (the 0 ignored), y 100..300 -> centre (125, 200), square half 125.
    # Counting x = 0 would give (0, 75, 200, 325); dropping the point (87, 92, 162, 167).
    kp, score = _one_point_skeleton([(100, 100), (150, 160), (0, 300)])
    mm_box, pc_box = _reference_boxes(mm, kp, (400, 400))
    assert mm_box == pc_box == (0, 75, 250, 325)
    assert global_box(_annotation(kp, score, (400, 400)), **CROP_BOX) == mm_box
