"""Our data transforms against mmaction2 1.2.0's own (the oracle environment: envs/oracle.txt).

Every test here runs mmaction2's transform and ours on the same generated input and
compares: frame indices and compaction must be identical, heatmaps within 1e-5 (they
are in fact bit-identical). Without mmaction2 the tests skip, or fail with a clear
message when ``EPAMNET_REQUIRE_ORACLE=1``.

mmaction2 1.2.0 still uses ``np.Inf`` in PoseCompact, which NumPy 2 removed; the tests
put the alias back on the numpy module for their own duration (pytest ``monkeypatch``).
mmaction2's test-mode sampling and Flip use the global NumPy RNG; each call is wrapped
so the global state is restored afterwards. Its RandomResizedCrop draws the candidate
boxes from the global NumPy RNG and the offsets from Python's ``random``: the tests seed
both and hand ours the same states (a ``RandomState`` and a ``random.Random``).

The attention initialisation is compared with the official model's ``init_weights``
rule run through mmengine's own ``kaiming_init`` / ``constant_init`` / ``normal_init``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import random
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from epamnet.loader.dataset import PoseClipConfig, pose_clip, pose_pipeline_config
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
from epamnet.loader.sampling import sample_frame_indices
from epamnet.models import attention
from epamnet.prepare.global_box import global_box

pytestmark = pytest.mark.oracle


@pytest.fixture(scope="module")
def mm() -> SimpleNamespace:
    """mmaction2's pose transforms, or skip (fail under EPAMNET_REQUIRE_ORACLE=1)."""
    try:
        pose = importlib.import_module("mmaction.datasets.transforms.pose_transforms")
        proc = importlib.import_module("mmaction.datasets.transforms.processing")
        init = importlib.import_module("mmengine.model")
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
        RandomResizedCrop=proc.RandomResizedCrop,
        processing=proc,
        kaiming_init=init.kaiming_init,
        constant_init=init.constant_init,
        normal_init=init.normal_init,
    )


@pytest.fixture
def np_inf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Restore ``np.Inf`` (removed in NumPy 2, still used by mmaction2 1.2.0's PoseCompact)."""
    monkeypatch.setattr(np, "Inf", np.inf, raising=False)


@contextlib.contextmanager
def global_rng_kept() -> Iterator[None]:
    state, py_state = np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        np.random.set_state(state)
        random.setstate(py_state)


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


# ---------------------------------------------------------------- the official pose-only pipeline

# Frame shapes the pose-only pipeline meets: compacted boxes (square, or clipped), whole
# frames (a box under the threshold), and the short-side-64 frames that the crop sees.
POSE_ONLY_SHAPES = [(64, 64), (64, 113), (85, 64), (57, 57), (224, 224), (1080, 1920), (60, 40), (131, 97), (3, 200)]


def test_short_side_resize_equals_mmaction(mm: SimpleNamespace) -> None:
    rng = np.random.default_rng(23)
    for img_shape in POSE_ONLY_SHAPES:
        kp, _ = make_annotation(rng, m=2, t=5, img_shape=img_shape)
        kp = np.nan_to_num(kp)
        for short in (64, 56, 7):
            ref = mm.Resize(scale=(-1, short)).transform({"keypoint": kp.copy(), "img_shape": img_shape})
            shape = short_side_shape(img_shape, short)
            assert shape == tuple(ref["img_shape"]), (img_shape, short)
            assert min(shape) == short
            np.testing.assert_array_equal(resize_keypoints(kp, img_shape, shape), ref["keypoint"])


CROP_RANGES = [
    {"area_range": (0.56, 1.0)},  # the official pose-only pipeline's
    {},  # mmaction2's defaults: area 0.08-1, aspect 3/4-4/3
    {"area_range": (1.0, 1.0)},  # whole area at an aspect != 1 rarely fits: the centred-square fallback
    {"area_range": (0.3, 0.5), "aspect_ratio_range": (0.2, 5.0)},
]


@pytest.mark.parametrize("ranges", CROP_RANGES, ids=lambda r: "-".join(map(str, r.get("area_range", ("default",)))))
def test_random_resized_crop_equals_mmaction_given_the_same_random_state(mm: SimpleNamespace, ranges: dict) -> None:
    rng = np.random.default_rng(29)
    fallbacks = moved = 0
    for trial in range(60):
        img_shape = POSE_ONLY_SHAPES[trial % len(POSE_ONLY_SHAPES)]
        kp, _ = make_annotation(rng, m=1 + trial % 2, t=4, img_shape=img_shape)
        kp = np.nan_to_num(kp)  # as after compaction; missing (0, 0) points included
        seed = 500 + trial
        with global_rng_kept():
            np.random.seed(seed)
            random.seed(seed)
            ref = mm.RandomResizedCrop(**ranges).transform({"keypoint": kp.copy(), "img_shape": img_shape})
        box = random_resized_crop_box(
            img_shape, np.random.RandomState(seed), offset_rng=random.Random(seed), **ranges
        )
        assert box == tuple(int(v) for v in ref["crop_bbox"]), (img_shape, seed)
        assert (box[3] - box[1], box[2] - box[0]) == tuple(ref["img_shape"])
        ours = crop_keypoints(kp, box)
        assert ours.dtype == np.float32
        np.testing.assert_array_equal(ours, ref["keypoint"].astype(np.float32))  # theirs: float64
        side = min(img_shape)
        fallbacks += box == ((img_shape[1] - side) // 2, (img_shape[0] - side) // 2,
                             (img_shape[1] + side) // 2, (img_shape[0] + side) // 2)
        moved += box[:2] != (0, 0)
    assert moved >= 10  # offsets really drawn
    if ranges.get("area_range") == (1.0, 1.0):
        assert fallbacks >= 30


class _OffsetsFromNumpy:
    """Python's ``random.randint`` drawn from NumPy's global RNG: one seed drives all of mmaction2's draws."""

    @staticmethod
    def randint(low: int, high: int) -> int:
        return int(np.random.randint(low, high + 1))


@pytest.mark.parametrize("flip", [False, True])
def test_official_pose_only_pipeline_equals_mmaction_chain(
    mm: SimpleNamespace, np_inf: None, monkeypatch: pytest.MonkeyPatch, flip: bool
) -> None:
    """Train: decode -> PoseCompact(allow_imgpad) -> Resize(-1, 64) -> RandomResizedCrop(0.56-1)
    -> Resize 56 -> [Flip] -> GeneratePoseTarget; test: decode -> PoseCompact(allow_imgpad)
    -> Resize 56 -> GeneratePoseTarget (the official pose-only pipelines)."""
    monkeypatch.setattr(mm.processing, "random", _OffsetsFromNumpy)
    rng = np.random.default_rng(31)
    config = pose_pipeline_config(PoseClipConfig(clip_len=48, heatmap_size=(56, 56)), "official_pose")
    assert config.allow_imgpad and config.crop_area == (0.56, 1.0) and config.crop_short_side == 64
    cases = [(30, 2, (224, 224), 0.4), (70, 1, (224, 224), 1.5), (200, 2, (1080, 1920), 0.4),
             (60, 1, (240, 320), 0.01), (90, 2, (131, 97), 0.8)]
    peaks, cropped = [], 0
    for k, (total, m, img_shape, spread) in enumerate(cases):
        kp, score = make_annotation(rng, m=m, t=total, img_shape=img_shape, spread=spread)
        inds = sample_frame_indices(total, 48, test_mode=True)
        for train in (True, False):
            results = {"keypoint": kp.copy(), "keypoint_score": score.copy(), "img_shape": img_shape,
                       "total_frames": total, "frame_inds": inds.copy(), "clip_len": 48, "num_clips": 1,
                       "modality": "Pose"}
            with global_rng_kept():
                results = mm.PoseDecode().transform(results)
                results = mm.PoseCompact(padding=0.25, threshold=10, hw_ratio=1, allow_imgpad=True).transform(results)
                if train:
                    results = mm.Resize(scale=(-1, 64)).transform(results)
                    np.random.seed(40 + k)
                    results = mm.RandomResizedCrop(area_range=(0.56, 1.0)).transform(results)
                results = mm.Resize(scale=(56, 56), keep_ratio=False).transform(results)
                if flip and train:
                    results = mm.Flip(flip_ratio=1.0, left_kp=list(COCO_LEFT), right_kp=list(COCO_RIGHT)).transform(
                        results
                    )
                results = mm.GeneratePoseTarget(sigma=0.6, use_score=True, with_kp=True, with_limb=False).transform(
                    results
                )
            ref = results["imgs"].transpose(1, 0, 2, 3)
            draws = np.random.RandomState(40 + k) if train else None
            ours = pose_clip(kp, score, img_shape, inds, config, flip=flip and train, rng=draws)
            assert ours.shape == ref.shape == (17, 48, 56, 56)
            assert np.abs(ours - ref).max() <= 1e-5, (k, train)
            assert ref.max() > 0.05  # something was drawn
            peaks.append(ref.max())
            if train:  # the crop really moved the heatmaps
                cropped += not np.allclose(ours, pose_clip(kp, score, img_shape, inds, config, flip=flip))
    assert max(peaks) > 0.5 and cropped >= 3


# ---------------------------------------------------------------- attention initialisation


def _official_init(module: nn.Module, mm: SimpleNamespace) -> None:
    """The official EPAM-Net ``init_weights`` rule, through mmengine's init functions."""
    for m in module.modules():
        if isinstance(m, (nn.Conv3d, nn.Conv1d)):
            mm.kaiming_init(m)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            mm.constant_init(m, 1)
        elif isinstance(m, nn.Linear):
            mm.normal_init(m, std=0.01)


@pytest.mark.parametrize(
    "build",
    [attention.CBAMSpatialEfficientTemporalAttention, lambda: attention.SpatialTemporalAttention(16, 8)],
    ids=["cbam_nested", "spatial_temporal"],
)
def test_attention_init_equals_the_official_rule(
    mm: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, build
) -> None:
    torch.manual_seed(13)
    ours = build()
    with monkeypatch.context() as patch:  # the same module with PyTorch's default init only
        patch.setattr(attention, "init_attention_weights", lambda module: None)
        torch.manual_seed(13)
        ref = build()
    default = {k: v.clone() for k, v in ref.state_dict().items()}
    _official_init(ref, mm)  # continues from the same random state as ours did
    for name, value in ref.state_dict().items():
        assert torch.equal(ours.state_dict()[name], value), name
    changed = [k for k, v in default.items() if v.is_floating_point() and not torch.equal(v, ref.state_dict()[k])]
    assert any("conv" in k and k.endswith("weight") for k in changed)  # the rule really re-drew the convs


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
