"""Models: temporal shift, specs, X-ShiftNet, attention, EPAM-Net and stream loading."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from epamnet.errors import EpamnetError
from epamnet.models.attention import (
    CBAMSpatialEfficientTemporalAttention,
    SpatialTemporalAttention,
)
from epamnet.models.epam import (
    EPAMNet,
    PoseClassifier,
    RGBClassifier,
    build_model,
    load_stream_weights,
    stream_prefixes,
    time_stride,
)
from epamnet.models.profile import count_parameters
from epamnet.config.model import paper_spec, spec_from_dict, synthetic_spec
from epamnet.models.tsm import temporal_shift, temporal_shift_frames, temporal_shift_naive
from epamnet.models.xshift import (
    FrameBatchNorm3d,
    FrameConv3d,
    XShiftNet,
    from_frames,
    reference_forward,
    se_bottleneck,
    to_frames,
)

# ----------------------------------------------------------------------------- shift


@pytest.mark.parametrize(
    ("shape", "fold_div"),
    [((2, 16, 5, 3, 3), 8), ((2, 17, 6, 2, 3), 4), ((1, 8, 1, 2, 2), 4), ((1, 3, 4, 2, 2), 8), ((1, 4, 2, 1, 1), 2)],
)
def test_shift_matches_naive_and_its_gradient(shape, fold_div):
    torch.manual_seed(0)
    x = torch.randn(*shape, requires_grad=True)
    before = x.detach().clone()
    ours, naive = temporal_shift(x, fold_div), temporal_shift_naive(x, fold_div)
    assert torch.equal(ours, naive)
    assert torch.equal(x.detach(), before)  # not in place
    g = torch.randn_like(ours)
    (g_ours,) = torch.autograd.grad(ours, x, g)
    (g_naive,) = torch.autograd.grad(naive, x, g)
    assert torch.equal(g_ours, g_naive)


def test_shift_semantics_by_hand():
    # C=8, fold_div=4 -> fold 2: channels 0,1 take t+1, channels 2,3 take t-1, rest copied.
    x = torch.arange(1, 8 * 3 + 1, dtype=torch.float32).view(1, 8, 3, 1, 1)
    out = temporal_shift(x, 4)[0, :, :, 0, 0]
    xs = x[0, :, :, 0, 0]
    assert torch.equal(out[0], torch.tensor([xs[0, 1], xs[0, 2], 0.0]))
    assert torch.equal(out[2], torch.tensor([0.0, xs[2, 0], xs[2, 1]]))
    assert torch.equal(out[4:], xs[4:])


def test_shift_gradcheck_double():
    x = torch.randn(2, 8, 4, 2, 2, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: temporal_shift(t, 4), (x,))
    assert torch.autograd.gradgradcheck(lambda t: temporal_shift(t, 4), (x,))


def test_shift_rejects_bad_input():
    with pytest.raises(ValueError, match="N,C,T,H,W"):
        temporal_shift(torch.zeros(2, 8, 4, 4), 8)
    with pytest.raises(ValueError, match="fold_div"):
        temporal_shift(torch.zeros(2, 8, 4, 4, 4), 1)


# ----------------------------------------------------------------------------- specs


def test_paper_spec_values():
    s = paper_spec()
    assert (s.rgb.base_channels, s.rgb.stage_blocks, s.rgb.fold_div, s.rgb.clip_len) == (24, (3, 5, 11, 7), 8, 16)
    assert s.rgb.stage_planes == (54, 108, 216, 432) and s.rgb.out_channels == 432
    assert (s.pose.in_channels, s.pose.stage_blocks, s.pose.stem_stride, s.pose.fold_div) == (17, (5, 11, 7), 1, 4)
    assert s.pose.out_channels == 216 and s.pose.clip_len == 48
    assert s.rgb.feature_size == s.pose.feature_size == 7 and s.time_stride == 3
    assert (s.attention, s.dropout) == ("cbam_nested", 0.5)


def test_spec_from_dict_overrides_and_round_trip():
    s = spec_from_dict({"rgb": {"base_channels": 16, "stage_blocks": [1, 1, 1, 1]}, "dropout": 0.2})
    assert s.rgb.base_channels == 16 and s.rgb.stage_blocks == (1, 1, 1, 1) and s.dropout == 0.2
    assert s.pose == paper_spec().pose
    assert spec_from_dict({}) == paper_spec()
    syn = synthetic_spec()
    assert spec_from_dict(syn.to_dict()) == syn


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"rgb": {"base_channel": 8}}, "model.rgb.base_channel"),
        ({"colour": 1}, "model.colour"),
        ({"rgb": {"fold_div": 1}}, "model.rgb.fold_div"),
        ({"rgb": {"base_channels": True}}, "model.rgb.base_channels"),
        ({"pose": {"stage_blocks": [5, "x", 7]}}, "model.pose.stage_blocks[1]"),
        ({"pose": {"spatial_strides": [2, 2]}}, "model.pose.spatial_strides"),
        ({"attention": "self_attention"}, "model.attention"),
        ({"dropout": 1.0}, "model.dropout"),
        ({"pose": {"clip_len": 40}}, "model.pose.clip_len"),
        ({"pose": {"input_size": 64}}, "model.pose.input_size"),
        ({"rgb": "big"}, "model.rgb"),
    ],
)
def test_spec_from_dict_rejects_bad_values(data, key):
    with pytest.raises(EpamnetError) as err:
        spec_from_dict(data)
    assert f"{key} " in str(err.value) and "\n" not in str(err.value)


def test_se_bottleneck_widths():
    assert [se_bottleneck(c, 1 / 16) for c in (54, 108, 216, 432)] == [8, 8, 16, 32]


# ----------------------------------------------------------------------------- sizes


def _near(value: float, target: float, tol: float = 0.01) -> bool:
    return abs(value - target) <= tol * target


def test_paper_parameter_counts():
    spec = paper_spec()
    with torch.device("meta"):
        m60, m120 = EPAMNet(spec, 60), EPAMNet(spec, 120)
    assert _near(count_parameters(m60.rgb_backbone), 1.98e6)
    assert _near(count_parameters(m60.pose_backbone), 0.52e6)
    assert count_parameters(m60.attention_module) == 107
    assert _near(count_parameters(m60), 2.54e6)
    assert _near(count_parameters(m120), 2.58e6)
    # Heads: (432 + 1 + 216 + 1) per class.
    assert count_parameters(m120) - count_parameters(m60) == 650 * 60


def test_paper_output_shapes():
    spec = paper_spec()
    with torch.device("meta"):
        model = EPAMNet(spec, 60)
        imgs, heat = torch.empty(2, 3, 16, 224, 224), torch.empty(2, 17, 48, 56, 56)
        assert model.rgb_backbone(imgs).shape == (2, 432, 16, 7, 7)
        assert model.pose_backbone(heat).shape == (2, 216, 48, 7, 7)
        rgb, pose, att = model(imgs, heat, return_attention=True)
    assert rgb.shape == pose.shape == (2, 60)
    assert att.shape == (2, 1, 16, 7, 7)


def test_backbone_structure_and_init():
    net = XShiftNet(paper_spec().rgb)
    blocks = [b for name in net.stage_names for b in getattr(net, name)]
    assert len(blocks) == 26
    assert [b.se_module is not None for b in net.layer2] == [True, False, True, False, True]
    assert all((b.downsample is not None) == (j == 0) for name in net.stage_names for j, b in enumerate(getattr(net, name)))
    assert all(torch.all(b.conv3.bn.weight == 0) for b in blocks)
    assert torch.all(net.conv1_s.bn.weight == 1) and torch.all(net.conv5.bn.bias == 0)
    assert net.layer1[0].conv2.conv.groups == 54 and net.layer1[0].conv2.conv.kernel_size == (1, 3, 3)
    pose = XShiftNet(paper_spec().pose)
    assert pose.conv1_s.conv.stride == (1, 1, 1) and pose.layer1[0].fold_div == 4


# ----------------------------------------------------------------------------- attention


def test_cbam_attention_is_spatial_times_nested_temporal():
    torch.manual_seed(0)
    att = CBAMSpatialEfficientTemporalAttention().eval()
    nn.init.normal_(att.spatial.conv.weight)
    nn.init.normal_(att.conv_temporal_attention.weight)
    att.spatial.bn.running_mean.fill_(0.3)
    x = torch.randn(2, 10, 6, 5, 5)
    out = att(x)
    pooled = torch.cat([x.max(1, keepdim=True)[0], x.mean(1, keepdim=True)], 1)
    bn = att.spatial.bn
    s = F.conv3d(pooled, att.spatial.conv.weight, padding=(0, 3, 3))
    a_s = torch.sigmoid((s - 0.3) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias)
    a_t = torch.sigmoid(F.conv1d(a_s.mean((3, 4)).view(2, 1, 6), att.conv_temporal_attention.weight, padding=3))
    torch.testing.assert_close(out, a_s * a_t.view(2, 1, 6, 1, 1))
    assert out.shape == (2, 1, 6, 5, 5) and bool((out > 0).all() and (out < 1).all())
    assert count_parameters(att) == 107


def test_spatial_temporal_attention_variant():
    spec = synthetic_spec().replace(attention="spatial_temporal")
    model = EPAMNet(spec, 5).eval()
    assert isinstance(model.attention_module, SpatialTemporalAttention)
    imgs = torch.randn(1, 3, spec.rgb.clip_len, spec.rgb.input_size, spec.rgb.input_size)
    heat = torch.rand(1, 17, spec.pose.clip_len, spec.pose.input_size, spec.pose.input_size)
    _, _, att = model(imgs, heat, return_attention=True)
    assert att.shape == (1, 1, spec.rgb.clip_len, 4, 4)
    with pytest.raises(ValueError, match="T=8"):
        model.attention_module(torch.randn(1, spec.pose.out_channels, 5, 4, 4))


def _pooled(build, n: int, pick) -> torch.Tensor:
    """The weights ``pick(module)`` of ``n`` freshly built modules (seeded), as one vector."""
    torch.manual_seed(21)
    return torch.cat([pick(build()).detach().flatten() for _ in range(n)])


def _kaiming_fan_out_std(weight: torch.Tensor) -> float:
    """Kaiming normal's std for ReLU, mode fan_out: sqrt(2 / (out channels x kernel size))."""
    return math.sqrt(2.0 / (weight.shape[0] * weight[0, 0].numel()))


def _pytorch_default_std(weight: torch.Tensor) -> float:
    """PyTorch's default conv init, uniform(+-1/sqrt(fan_in)): std 1/sqrt(3 fan_in)."""
    return 1.0 / math.sqrt(3.0 * weight[0].numel())


@pytest.mark.parametrize(
    ("build", "layer", "n"),
    [
        (CBAMSpatialEfficientTemporalAttention, lambda m: m.spatial.conv, 200),  # 2 -> 1, 1x7x7: std 0.202
        (CBAMSpatialEfficientTemporalAttention, lambda m: m.conv_temporal_attention, 600),  # 1 -> 1, 7: 0.535
        (lambda: SpatialTemporalAttention(16, 8), lambda m: m.conv_ch_compress, 200),  # 16 -> 1, 1x3x3: 0.471
        (lambda: SpatialTemporalAttention(16, 8), lambda m: m.conv_sptial_attention, 200),  # 1 -> 1, 1x7x7: 0.202
    ],
    ids=["cbam-spatial", "cbam-temporal", "st-compress", "st-spatial"],
)
def test_attention_convs_are_kaiming_normal_fan_out(build, layer, n):
    """The official init_weights: Kaiming normal (fan_out, ReLU), bias 0 (not PyTorch's default)."""
    weights = _pooled(build, n, lambda m: layer(m).weight)
    shape = layer(build()).weight
    expected, default = _kaiming_fan_out_std(shape), _pytorch_default_std(shape)
    fan_in_std = math.sqrt(2.0 / shape[0].numel())
    # std of n*k normal samples is within ~5 standard errors (1/sqrt(2 n k)) of the true one
    tolerance = 5 / math.sqrt(2 * weights.numel())
    assert abs(weights.std().item() / expected - 1) < tolerance, (weights.std().item(), expected)
    assert abs(weights.mean().item()) < 5 * expected / math.sqrt(weights.numel())
    assert weights.abs().max().item() > math.sqrt(3) * expected  # normal tails, not a bounded uniform
    for other in (default, fan_in_std):  # neither PyTorch's default nor Kaiming fan_in
        if abs(other / expected - 1) > 0.1:
            assert abs(weights.std().item() / other - 1) > 3 * tolerance
    bias = layer(build()).bias
    assert bias is None or torch.all(bias == 0)


def test_attention_other_layers_follow_the_official_init():
    torch.manual_seed(4)
    cbam = CBAMSpatialEfficientTemporalAttention()
    assert torch.all(cbam.spatial.bn.weight == 1) and torch.all(cbam.spatial.bn.bias == 0)
    fc = _pooled(lambda: SpatialTemporalAttention(16, 16), 20, lambda m: torch.cat([m.fc1.weight, m.fc2.weight]))
    assert abs(fc.std().item() / 0.01 - 1) < 0.05  # Linear: normal, std 0.01
    # the fusion model's attention is built the same way
    spec = synthetic_spec()
    torch.manual_seed(5)
    model = EPAMNet(spec, 4)
    spatial = model.attention_module.spatial.conv.weight
    assert spatial.std().item() > 2 * _pytorch_default_std(spatial)


def _np_sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _np_correlate_same(img, kernel):
    """2-D cross-correlation (what Conv does) of one H x W map, zero padding, same size."""
    k = kernel.shape[0]
    padded = np.pad(img, k // 2)
    h, w = img.shape
    return np.array([[np.sum(kernel * padded[i : i + k, j : j + k]) for j in range(w)] for i in range(h)])


def test_spatial_temporal_attention_values_by_hand():
    """Official 'spatial_temporal': A_S = sigmoid(conv7x7(ReLU(conv3x3 C->1))),
    A_T = sigmoid(fc2(ReLU(fc1(mean_HW A_S)))), output A_S * A_T; computed here in NumPy from
    weights the test sets (asymmetric kernels and matrices, so flips and transposes show)."""
    n, c, t, h, w = 2, 3, 4, 5, 6
    att = SpatialTemporalAttention(channels=c, frames=t).double().eval()

    # All weights zero: A_S = sigmoid(0) = 0.5 everywhere, A_T = sigmoid(0) = 0.5 -> 0.25.
    for p in att.parameters():
        nn.init.zeros_(p)
    x = torch.randn(n, c, t, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(att(x), torch.full((n, 1, t, h, w), 0.25, dtype=torch.float64), rtol=0, atol=1e-15)

    k3 = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]])
    gains = np.array([0.5, -1.0, 0.25])  # per input channel
    b1 = -0.2
    k7 = np.arange(49.0).reshape(7, 7) / 100 - 0.2
    b2 = 0.1
    w1 = 2 * np.array([[1, -1, 0, 0], [0, 1, -1, 0], [0, 0, 1, -1], [-1, 0, 0, 1]], dtype=float)
    w2 = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]], dtype=float) - 0.5
    with torch.no_grad():
        att.conv_ch_compress.weight.copy_(torch.from_numpy(gains[:, None, None, None] * k3[None, None]).view(1, c, 1, 3, 3))
        att.conv_ch_compress.bias.fill_(b1)
        att.conv_sptial_attention.weight.copy_(torch.from_numpy(k7).view(1, 1, 1, 7, 7))
        att.conv_sptial_attention.bias.fill_(b2)
        att.fc1.weight.copy_(torch.from_numpy(w1))
        att.fc2.weight.copy_(torch.from_numpy(w2))
    with torch.no_grad():
        out = att(x).numpy()

    xs = x.numpy()
    expected = np.zeros((n, 1, t, h, w))
    for i in range(n):
        a_s = np.zeros((t, h, w))
        for f in range(t):
            compress = sum(_np_correlate_same(xs[i, ch, f], gains[ch] * k3) for ch in range(c)) + b1
            a_s[f] = _np_sigmoid(_np_correlate_same(np.maximum(compress, 0.0), k7) + b2)
        pooled = a_s.mean(axis=(1, 2))  # one value per frame
        a_t = _np_sigmoid(w2 @ np.maximum(w1 @ pooled, 0.0))  # nn.Linear: y = W x
        expected[i, 0] = a_s * a_t[:, None, None]
    assert out.shape == (n, 1, t, h, w)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-14)
    # the test is not vacuous: ReLUs clip, and the frames get different temporal weights
    assert np.ptp(expected.mean(axis=(3, 4))) > 1e-3


# ----------------------------------------------------------------------------- EPAM-Net


def _inputs(spec, n=2, rgb_t=None, pose_t=None):
    g = torch.Generator().manual_seed(1)
    r, p = spec.rgb, spec.pose
    imgs = torch.randn(n, 3, rgb_t or r.clip_len, r.input_size, r.input_size, generator=g)
    heat = torch.rand(n, 17, pose_t or p.clip_len, p.input_size, p.input_size, generator=g)
    return imgs, heat


def test_synthetic_forward_backward():
    spec = synthetic_spec()
    model = EPAMNet(spec, 6)
    imgs, heat = _inputs(spec)
    y = torch.tensor([1, 4])
    rgb, pose = model(imgs, heat)
    assert rgb.shape == pose.shape == (2, 6)
    loss = model.loss(rgb, pose, y)
    torch.testing.assert_close(loss, F.cross_entropy(rgb, y) + F.cross_entropy(pose, y))
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    # Zero-initialised residual BNs receive gradient, as do the heads and the attention.
    assert grads["rgb_backbone.layer1.0.conv3.bn.weight"].abs().sum() > 0
    assert grads["pose_cls_head.fc_cls.weight"].abs().sum() > 0
    assert grads["attention_module.conv_temporal_attention.weight"].abs().sum() > 0
    torch.testing.assert_close(model.score(rgb, pose), rgb + pose)


def test_attention_sees_time_strided_pose_features():
    spec = synthetic_spec()
    model = EPAMNet(spec, 4).eval()
    seen = {}
    model.pose_backbone.register_forward_hook(lambda m, i, o: seen.__setitem__("pose", o))
    model.attention_module.register_forward_hook(lambda m, i, o: seen.__setitem__("att_in", i[0]))
    # Stride from the tensors: 16 pose frames over 8 RGB frames -> 2 (the spec says 3).
    imgs, heat = _inputs(spec, n=1, pose_t=16)
    _, _, att = model(imgs, heat, return_attention=True)
    assert torch.equal(seen["att_in"], seen["pose"][:, :, 0::2])
    assert att.shape[2] == 8
    imgs, heat = _inputs(spec, n=1, pose_t=20)
    with pytest.raises(EpamnetError, match="not a multiple"):
        model(imgs, heat)


class _Zero(nn.Module):
    def forward(self, x):
        return torch.zeros_like(x[:, :1])


def test_streams_load_strictly_and_match_unimodal_models():
    spec = synthetic_spec()
    torch.manual_seed(3)
    rgb_only, pose_only, fusion = RGBClassifier(spec, 5).eval(), PoseClassifier(spec, 5).eval(), EPAMNet(spec, 5).eval()
    for m in (rgb_only, pose_only):  # non-trivial weights and BN statistics
        for name, t in m.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand_like(t) + 0.5 if "running_var" in name else torch.randn_like(t) * 0.1)
    load_stream_weights(fusion, {f"module.{k}": v for k, v in rgb_only.state_dict().items()}, "rgb", "rgb.pt")
    load_stream_weights(fusion, pose_only.state_dict(), "pose", "pose.pt")
    imgs, heat = _inputs(spec)
    with torch.no_grad():
        _, pose_logits = fusion(imgs, heat)
        torch.testing.assert_close(pose_logits, pose_only(heat))
        fusion.attention_module = _Zero()  # A = 0 -> rgb_head(f + f*0) is the RGB model alone
        rgb_logits, _ = fusion(imgs, heat)
        torch.testing.assert_close(rgb_logits, rgb_only(imgs))


def test_stream_loading_reports_mismatches():
    spec = synthetic_spec()
    fusion = EPAMNet(spec, 5)
    state = RGBClassifier(spec, 5).state_dict()
    missing = {k: v for k, v in state.items() if k != "rgb_backbone.conv5.bn.running_mean"}
    with pytest.raises(EpamnetError, match=r"rgb\.pt: .*missing keys 1 \(rgb_backbone\.conv5\.bn\.running_mean\)"):
        load_stream_weights(fusion, missing, "rgb", "rgb.pt")
    with pytest.raises(EpamnetError, match=r"wrong shapes 2 \(rgb_cls_head\.fc_cls\.bias \(7,\) vs \(5,\)"):
        load_stream_weights(fusion, RGBClassifier(spec, 7).state_dict(), "rgb", "rgb.pt")
    with pytest.raises(EpamnetError, match="unexpected keys"):
        load_stream_weights(fusion, state, "pose", "rgb.pt")  # the RGB file given as the pose stream


def test_build_model_checks_arguments():
    spec = synthetic_spec()
    assert isinstance(build_model(spec, 3, "pose"), PoseClassifier)
    assert isinstance(build_model(spec, 3), EPAMNet)
    with pytest.raises(EpamnetError, match="modality"):
        build_model(spec, 3, "depth")
    with pytest.raises(EpamnetError, match="num_classes"):
        build_model(spec, 1)


# ----------------------------------------------------------------------------- exact behaviour (mutation)


def test_time_stride_values_and_message():
    assert time_stride(16, 48) == 3
    assert time_stride(1, 3) == 3  # a one-frame RGB clip is allowed
    assert time_stride(1, 1) == 1
    with pytest.raises(EpamnetError) as info:
        time_stride(16, 40)
    assert str(info.value) == (
        "model input: pose clip has 40 frames, not a multiple of the RGB clip's 16; "
        "set pose clip_len to an integer multiple of rgb clip_len (paper: 48 and 16)"
    )
    with pytest.raises(EpamnetError, match="not a multiple of the RGB clip's 0;"):
        time_stride(0, 48)


def test_stream_prefixes_and_message():
    assert stream_prefixes("rgb") == ("rgb_backbone.", "rgb_cls_head.")
    assert stream_prefixes("pose") == ("pose_backbone.", "pose_cls_head.")
    with pytest.raises(ValueError) as info:
        stream_prefixes("depth")
    assert str(info.value) == "stream must be 'rgb' or 'pose', got 'depth'"


def test_stream_loading_error_names_the_stream_fix():
    spec = synthetic_spec()
    fusion = EPAMNet(spec, 5)
    state = RGBClassifier(spec, 5).state_dict()
    del state["rgb_cls_head.fc_cls.bias"]
    with pytest.raises(EpamnetError) as info:
        load_stream_weights(fusion, state, "rgb", "rgb.pt")
    assert str(info.value) == (
        "rgb.pt: weights do not match the model: missing keys 1 (rgb_cls_head.fc_cls.bias); "
        "pass the rgb stream checkpoint trained with the same model settings and classes"
    )


def test_build_model_variants_and_exact_errors():
    spec = synthetic_spec().replace(dropout=0.25)
    for modality, cls in (("fusion", EPAMNet), ("rgb", RGBClassifier), ("pose", PoseClassifier)):
        model = build_model(spec, 2, modality)  # two classes is the smallest valid count
        assert type(model) is cls
        assert model.spec is spec and model.num_classes == 2
        heads = [m for name, m in model.named_children() if name.endswith("_cls_head")]
        assert len(heads) == (2 if modality == "fusion" else 1)
        for head in heads:
            assert isinstance(head.dropout, nn.Dropout) and head.dropout.p == 0.25
            assert head.fc_cls.out_features == 2
    # the RGB classifier's head reads the RGB stream's conv5 width, the pose one the pose width
    assert build_model(spec, 2, "rgb").rgb_cls_head.fc_cls.in_features == spec.rgb.out_channels
    assert build_model(spec, 2, "pose").pose_cls_head.fc_cls.in_features == spec.pose.out_channels
    with pytest.raises(EpamnetError) as info:
        build_model(spec, 3, "depth")
    assert str(info.value) == "model: unknown modality 'depth'; use one of fusion, rgb, pose"
    for bad in (1, 0, 3.0, "3", True):
        with pytest.raises(EpamnetError) as info:
            build_model(spec, bad)
        assert str(info.value) == f"model: num_classes must be an integer >= 2, got {bad!r}; check the split file"


def test_dropout_zero_gives_identity_heads():
    spec = synthetic_spec().replace(dropout=0.0)
    for model in (EPAMNet(spec, 3), RGBClassifier(spec, 3), PoseClassifier(spec, 3)):
        for name, m in model.named_children():
            if name.endswith("_cls_head"):
                assert isinstance(m.dropout, nn.Identity)


class _Const(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x):
        return torch.full_like(x[:, :1], self.value)


def test_attention_scales_rgb_features_by_one_plus_a():
    # rgb_head(f + f*A) with A = 0.5 everywhere is rgb_head(1.5 f); the head is pool + linear
    # with zero bias, so the logits are 1.5 times the RGB stream's own logits.
    spec = synthetic_spec()
    torch.manual_seed(1)
    fusion = EPAMNet(spec, 4).eval()
    torch.nn.init.normal_(fusion.rgb_cls_head.fc_cls.weight, std=1.0)  # logits well away from 0
    rgb_only = RGBClassifier(spec, 4).eval()
    rgb_only.load_state_dict({k: v for k, v in fusion.state_dict().items() if k.startswith(stream_prefixes("rgb"))})
    fusion.attention_module = _Const(0.5)
    g = torch.Generator().manual_seed(0)
    imgs = torch.randn(2, 3, 8, 64, 64, generator=g)
    heat = torch.rand(2, 17, 24, 32, 32, generator=g)
    with torch.no_grad():
        rgb_logits, _ = fusion(imgs, heat)
        torch.testing.assert_close(rgb_logits, 1.5 * rgb_only(imgs))


def test_unequal_feature_sizes_are_a_one_line_error():
    spec = synthetic_spec()
    model = EPAMNet(spec, 3).eval()
    # synthetic_spec: RGB 64 px -> 4x4 conv5 features (16x smaller), pose 32 px -> 4x4 (8x);
    # RGB at 32 px therefore gives 2x2 against the pose stream's 4x4.
    imgs = torch.zeros(1, 3, 8, 32, 32)
    heat = torch.zeros(1, 17, 24, 32, 32)
    with pytest.raises(EpamnetError) as info:
        model(imgs, heat)
    assert str(info.value) == (
        "model input: RGB features are (2, 2) but pose features (4, 4); "
        "choose RGB and pose input sizes that give equal feature sizes"
    )


def _shift_by_hand(x, fold):
    out = torch.zeros_like(x)
    t = x.shape[2]
    for c in range(x.shape[1]):
        for i in range(t):
            if c < fold:
                out[:, c, i] = x[:, c, i + 1] if i + 1 < t else 0
            elif c < 2 * fold:
                out[:, c, i] = x[:, c, i - 1] if i >= 1 else 0
            else:
                out[:, c, i] = x[:, c, i]
    return out


def test_shift_with_one_channel_per_direction():
    # fold = 8 // 8 = 1 (the RGB stream's fold_div on 8 channels): channel 0 moves to t+1's
    # value, channel 1 to t-1's, channels 2..7 stay; the boundary frames are zeros.
    x = torch.arange(1, 8 * 4 * 2 + 1, dtype=torch.float32).view(1, 8, 4, 2, 1)
    expected = _shift_by_hand(x, 1)
    assert torch.equal(expected[0, 0, :, 0, 0], torch.tensor([3.0, 5.0, 7.0, 0.0]))
    assert torch.equal(expected[0, 1, :, 0, 0], torch.tensor([0.0, 9.0, 11.0, 13.0]))
    for _ in range(3):
        junk = torch.full_like(x, 7.0)  # leave non-zero memory for the next allocation
        del junk
        assert torch.equal(temporal_shift(x, 8), expected)
        xg = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(temporal_shift(xg, 8), xg, torch.ones_like(x))
        # adjoint: channel 0's frame 0 and channel 1's last frame feed nothing
        exp_grad = torch.ones_like(x)
        exp_grad[:, 0, 0] = 0
        exp_grad[:, 1, -1] = 0
        assert torch.equal(grad, exp_grad)


# ---------------------------------------------------------------- the frames layout


def test_frames_layout_round_trip_is_channels_last_and_the_way_back_a_view():
    x = torch.randn(2, 5, 3, 4, 6)
    frames = to_frames(x)
    assert frames.shape == (6, 5, 4, 6) and frames.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(frames[4], x[1, :, 1])  # frame 4 = clip 1's frame 1
    back = from_frames(frames, 3)
    assert torch.equal(back, x) and back.data_ptr() == frames.data_ptr()


@pytest.mark.parametrize(
    ("cin", "cout", "kernel", "stride", "padding", "groups"),
    [
        (17, 8, (1, 3, 3), (1, 1, 1), (0, 1, 1), 1),  # pose stem
        (3, 6, (1, 3, 3), (1, 2, 2), (0, 1, 1), 1),  # RGB stem, spatial stride
        (12, 12, (1, 3, 3), (1, 2, 2), (0, 1, 1), 12),  # depthwise, strided
        (12, 7, (1, 1, 1), (1, 2, 2), (0, 0, 0), 1),  # downsample: 1x1x1, strided
    ],
)
def test_frame_conv_equals_conv3d_forward_and_backward(cin, cout, kernel, stride, padding, groups):
    """FrameConv3d on the frames computes the Conv3d's function and gradients on the clips
    (float64: to rounding)."""

    torch.manual_seed(0)
    reference = nn.Conv3d(cin, cout, kernel, stride, padding, groups=groups, bias=True).double()
    frame = FrameConv3d(cin, cout, kernel, stride, padding, groups=groups, bias=True).double()
    frame.load_state_dict(reference.state_dict())
    x = torch.randn(2, cin, 5, 9, 11, dtype=torch.float64)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = reference(xa), from_frames(frame(to_frames(xb)), 5)
    assert yb.shape == ya.shape
    torch.testing.assert_close(yb, ya, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(ya)
    ya.backward(g)
    yb.backward(g)
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(frame.weight.grad, reference.weight.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(frame.bias.grad, reference.bias.grad, rtol=1e-12, atol=1e-12)


def test_frame_conv_refuses_a_temporal_kernel_and_frame_bn_refuses_clips():
    with pytest.raises(ValueError, match="spans one frame"):
        FrameConv3d(5, 4, (3, 3, 3), padding=(1, 1, 1))
    with pytest.raises(ValueError, match="4D input"):
        FrameBatchNorm3d(4)(torch.zeros(2, 4, 3, 2, 2))


@pytest.mark.parametrize("fold_div", [4, 8])
def test_shift_of_frames_equals_the_shift_of_clips_and_keeps_channels_last(fold_div):
    torch.manual_seed(0)
    x = torch.randn(3, 16, 5, 4, 2, dtype=torch.float64)
    frames = to_frames(x).requires_grad_()
    out = temporal_shift_frames(frames, 5, fold_div)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(from_frames(out, 5), temporal_shift(x, fold_div))
    g = torch.randn_like(x)
    (grad,) = torch.autograd.grad(out, frames, to_frames(g))
    xg = x.clone().requires_grad_()
    (expected,) = torch.autograd.grad(temporal_shift(xg, fold_div), xg, g)
    assert torch.equal(from_frames(grad, 5), expected)
    with pytest.raises(ValueError, match="T=4"):
        temporal_shift_frames(frames, 4, fold_div)


@pytest.mark.parametrize("stream", ["pose", "rgb"])
def test_backbone_in_frames_layout_equals_the_3d_reference(stream):
    """XShiftNet (frames, 2D kernels) = the same weights run on clips with 3D kernels:
    output, every parameter's gradient and the running statistics (float64, training mode)."""
    spec = getattr(synthetic_spec(), stream).replace(input_size=16, clip_len=6)
    torch.manual_seed(0)
    net = XShiftNet(spec).double().train()
    with torch.no_grad():
        for p in net.parameters():  # random everything: init zeros the residual BN weights
            p.normal_()
    ref = XShiftNet(spec).double().train()
    ref.load_state_dict(net.state_dict())
    x = torch.randn(2, spec.in_channels, 6, 16, 16, dtype=torch.float64)
    ours, theirs = net(x), reference_forward(ref, x)
    torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-9)
    g = torch.randn_like(theirs)
    grads = torch.autograd.grad(ours, list(net.parameters()), g)
    expected = torch.autograd.grad(theirs, list(ref.parameters()), g)
    for (name, _), a, b in zip(net.named_parameters(), grads, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=name)
    for name, buf in net.named_buffers():
        if buf.is_floating_point():
            torch.testing.assert_close(buf, ref.get_buffer(name), rtol=1e-12, atol=1e-12, msg=name)


def test_backbone_modules_are_3d_ones_and_the_state_dict_is_unchanged():

    net = XShiftNet(synthetic_spec().pose)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv3d)]
    assert all(isinstance(m, FrameConv3d) for m in net.modules() if isinstance(m, nn.Conv3d) and m.kernel_size[1:] != (1, 1))
    assert all(m.weight.dim() == 5 for m in convs)
    assert all(isinstance(m, nn.BatchNorm3d) for m in net.modules() if "BatchNorm" in type(m).__name__)
    assert "conv1_s.conv.weight" in net.state_dict() and net.conv1_s.conv.weight.shape[2:] == (1, 3, 3)


# ----------------------------------------------------------------------------- unwritten memory


def _fused_steps(fill: bool) -> dict[str, torch.Tensor]:
    """Weights after two SGD steps of EPAM-Net under deterministic mode, with or without
    torch's NaN fill of new tensors."""
    spec = synthetic_spec()
    torch.manual_seed(0)
    model = EPAMNet(spec, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    imgs, heat = _inputs(spec, n=3)
    y = torch.tensor([0, 3, 1])
    prev = torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = fill
    try:
        for _ in range(2):
            opt.zero_grad(set_to_none=True)
            model.loss(*model(imgs, heat), y).backward()
            opt.step()
    finally:
        torch.use_deterministic_algorithms(prev[0])
        torch.utils.deterministic.fill_uninitialized_memory = prev[1]
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_training_never_reads_memory_it_did_not_write():
    """The trainer turns torch's NaN fill of new tensors off (engine/trainer.py); that is
    only sound while every kernel of the models writes its output before reading it. A
    kernel that reads an unwritten element gets NaN with the fill and other values
    without, so the two trainings' weights differ."""
    with_fill, without = _fused_steps(True), _fused_steps(False)
    assert all(torch.isfinite(v).all() for v in with_fill.values() if v.is_floating_point())
    for key in with_fill:
        assert torch.equal(with_fill[key], without[key]), key
