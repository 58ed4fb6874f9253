"""X-ShiftNet backbones: X3D without temporal kernels, with a residual temporal shift.

One class serves both streams (spec sections 1-2); a :class:`StreamSpec` sets the sizes:

    conv1_s   1x3x3 conv (stride 1,s,s) + BN + ReLU
    layer1..K blocks; block j of stage i:
                  shift(x) -> conv1 1x1x1 BN ReLU -> conv2 depthwise 1x3x3 (stride 1,s,s) BN
                  -> SE (alternate blocks) -> Swish -> conv3 1x1x1 BN
                  + identity (downsample 1x1x1 stride + BN in the first block) -> ReLU
    conv5     1x1x1 conv + BN + ReLU

No layer strides time, so features keep the clip's T. Module names follow the official
(mmaction-style) key layout - ``conv1_s.conv``, ``layer2.0.conv2.bn``,
``layer1.0.se_module.fc1``, ``layer1.0.downsample.conv``, ``conv5.bn`` - so the released
checkpoints load without renaming (``models/convert.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from epamnet.config.model import StreamSpec
from epamnet.models.tsm import temporal_shift


class FrameConv3d(nn.Conv3d):
    """A Conv3d whose kernel spans one frame (``1 x k x k``, no temporal stride or padding),
    computed as a 2D convolution of the ``N * T`` frames in channels-last layout.

    The arithmetic is the convolution's own (the same weights, the same multiply-adds);
    on a CPU, oneDNN's 2D channels-last kernels run it, and their backward pass, much faster
    than the 3D ones (``benchmarks/bench_frame_conv.py``). Input and output are ordinary
    contiguous ``N, C, T, H, W`` tensors; the module stays an ``nn.Conv3d``, so weights,
    initialisation, state dicts and official checkpoints are unchanged.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel_size[0] != 1 or self.stride[0] != 1 or self.padding[0] != 0 or self.padding_mode != "zeros":
            return super().forward(x)
        frames = _ToFrames.apply(x)
        out = F.conv2d(frames, self.weight.squeeze(2), self.bias, self.stride[1:], self.padding[1:],
                       self.dilation[1:], self.groups)
        return _FromFrames.apply(out, x.shape[2])


class _ToFrames(torch.autograd.Function):
    """``N, C, T, H, W`` (contiguous) -> ``N*T, C, H, W`` channels-last; the gradient goes back contiguous."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        n, c, t, h, w = x.shape
        ctx.shape = (n, c, t, h, w)
        return x.transpose(1, 2).reshape(n * t, c, h, w).contiguous(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        n, c, t, h, w = ctx.shape
        return grad.reshape(n, t, c, h, w).transpose(1, 2).contiguous()


class _FromFrames(torch.autograd.Function):
    """``N*T, C, H, W`` -> contiguous ``N, C, T, H, W``; the gradient goes back channels-last."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, t: int) -> torch.Tensor:  # type: ignore[override]
        nt, c, h, w = y.shape
        ctx.shape = (nt, c, h, w, t)
        return y.reshape(nt // t, t, c, h, w).transpose(1, 2).contiguous()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        nt, c, h, w, t = ctx.shape
        return grad.transpose(1, 2).reshape(nt, c, h, w).contiguous(memory_format=torch.channels_last), None


class ConvBN(nn.Module):
    """Conv3d (no bias) + BatchNorm3d, optionally ReLU; names ``conv`` / ``bn`` as mmcv's ConvModule.

    A ``1 x k x k`` kernel (k > 1) runs as a :class:`FrameConv3d`."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, int, int],
        stride: tuple[int, int, int] = (1, 1, 1),
        padding: tuple[int, int, int] = (0, 0, 0),
        groups: int = 1,
        relu: bool = True,
    ) -> None:
        super().__init__()
        conv = FrameConv3d if kernel_size[1:] != (1, 1) else nn.Conv3d  # 1x1x1: the 3D kernel is as fast
        self.conv = conv(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm3d(out_channels)
        self.act = nn.ReLU(inplace=True) if relu else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


def se_bottleneck(channels: int, ratio: float, divisor: int = 8) -> int:
    """SE bottleneck width: ``channels * ratio`` rounded to a multiple of 8, at least 8.

    X3D's width rounding: round to the nearest multiple, and go one multiple up if that
    lost more than 10%. Paper widths 54, 108, 216, 432 give 8, 8, 16, 32.
    """
    width = channels * ratio
    out = max(divisor, int(width + divisor / 2) // divisor * divisor)
    if out < 0.9 * width:
        out += divisor
    return out


class SEModule(nn.Module):
    """Squeeze-and-excitation: global average pool, 1x1x1 conv down, ReLU, up, sigmoid, scale."""

    def __init__(self, channels: int, ratio: float) -> None:
        super().__init__()
        bottleneck = se_bottleneck(channels, ratio)
        self.avg_pool = nn.AdaptiveAvgPool3d(1)
        self.fc1 = nn.Conv3d(channels, bottleneck, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv3d(bottleneck, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))
        return x * w


class ShiftBlock(nn.Module):
    """One X-ShiftNet block (BlockX3D with a 1x3x3 depthwise conv and a residual shift)."""

    def __init__(
        self, inplanes: int, planes: int, outplanes: int, stride: int, fold_div: int, se_ratio: float | None
    ) -> None:
        super().__init__()
        self.fold_div = fold_div
        self.conv1 = ConvBN(inplanes, planes, (1, 1, 1))
        self.conv2 = ConvBN(planes, planes, (1, 3, 3), (1, stride, stride), (0, 1, 1), groups=planes, relu=False)
        self.se_module = SEModule(planes, se_ratio) if se_ratio else None
        self.swish = nn.SiLU(inplace=True)
        self.conv3 = ConvBN(planes, outplanes, (1, 1, 1), relu=False)
        self.downsample = (
            ConvBN(inplanes, outplanes, (1, 1, 1), (1, stride, stride), relu=False)
            if stride != 1 or inplanes != outplanes
            else None
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)  # the UNshifted input
        out = self.conv2(self.conv1(temporal_shift(x, self.fold_div)))
        if self.se_module is not None:
            out = self.se_module(out)
        out = self.conv3(self.swish(out))
        return self.relu(out + identity)


class XShiftNet(nn.Module):
    """X-ShiftNet backbone: ``N, in_channels, T, H, W`` -> ``N, out_channels, T, H', W'``."""

    def __init__(self, spec: StreamSpec) -> None:
        super().__init__()
        self.spec = spec
        s = spec.stem_stride
        self.conv1_s = ConvBN(spec.in_channels, spec.base_channels, (1, 3, 3), (1, s, s), (0, 1, 1))
        self.stage_names: list[str] = []
        inplanes = spec.base_channels
        for i, (blocks, stride, width, planes) in enumerate(
            zip(spec.stage_blocks, spec.spatial_strides, spec.stage_widths, spec.stage_planes, strict=True)
        ):
            layer = nn.Sequential(
                *(
                    ShiftBlock(
                        inplanes if j == 0 else width,
                        planes,
                        width,
                        stride if j == 0 else 1,
                        spec.fold_div,
                        spec.se_ratio if _use_se(spec.se_style, j) else None,
                    )
                    for j in range(blocks)
                )
            )
            name = f"layer{i + 1}"
            self.add_module(name, layer)
            self.stage_names.append(name)
            inplanes = width
        self.conv5 = ConvBN(inplanes, spec.out_channels, (1, 1, 1))
        self.init_weights()

    def init_weights(self) -> None:
        """Kaiming (fan_out, ReLU) convs with zero bias, BN 1/0, and zero conv3 BN (residual) weights."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, ShiftBlock):
                nn.init.zeros_(m.conv3.bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1_s(x)
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return self.conv5(x)


def _use_se(style: str, block_index: int) -> bool:
    """'half': SE in blocks 0, 2, 4, ... of each stage; 'all': every block; 'none': no SE."""
    return style == "all" or (style == "half" and block_index % 2 == 0)
