"""X-ShiftNet backbones: X3D without temporal kernels, with a residual temporal shift.

One class serves both streams (spec sections 1-2); a :class:`StreamSpec` sets the sizes:

    conv1_s   1x3x3 conv (stride 1,s,s) + BN + ReLU
    layer1..K blocks; block j of stage i:
                  shift(x) -> conv1 1x1x1 BN ReLU -> conv2 depthwise 1x3x3 (stride 1,s,s) BN
                  -> SE (alternate blocks) -> Swish -> conv3 1x1x1 BN
                  + identity (downsample 1x1x1 stride + BN in the first block) -> ReLU
    conv5     1x1x1 conv + BN + ReLU

No layer strides time, so features keep the clip's T. Inside the backbone the features
travel as frames: the ``N*T, C, H, W`` images of the clips, in channels-last layout
(:func:`to_frames` at the input, :func:`from_frames`, a view, at the output). Every kernel
spans one frame, so the convolutions are 2D ones over the frames (:class:`FrameConv3d`),
BatchNorm's statistics over the frames are those over the clips, and only the shift and
SE's pool group frames into clips again (as views). The function is X-ShiftNet's on
``N, C, T, H, W``; :func:`reference_forward` computes it that way, with 3D kernels, for
tests and benchmarks. Module names follow the official
(mmaction-style) key layout - ``conv1_s.conv``, ``layer2.0.conv2.bn``,
``layer1.0.se_module.fc1``, ``layer1.0.downsample.conv``, ``conv5.bn`` - so the released
checkpoints load without renaming (``models/convert.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from epamnet.config.model import StreamSpec
from epamnet.models.tsm import temporal_shift, temporal_shift_frames


def to_frames(x: torch.Tensor) -> torch.Tensor:
    """``N, C, T, H, W`` -> the ``N*T, C, H, W`` frames in channels-last layout (one copy)."""
    return x.contiguous(memory_format=torch.channels_last_3d).transpose(1, 2).flatten(0, 1)


def from_frames(frames: torch.Tensor, t: int) -> torch.Tensor:
    """``N*T, C, H, W`` frames -> ``N, C, T, H, W`` (a view, no copy: channels_last_3d strides)."""
    return frames.unflatten(0, (-1, t)).transpose(1, 2)


class FrameConv3d(nn.Conv3d):
    """A Conv3d whose kernel spans one frame (``1 x k x k``), applied to frames ``N*T, C, H, W``.

    The same weights and multiply-adds as the Conv3d on ``N, C, T, H, W``, computed as a 2D
    convolution of every frame: on a CPU, oneDNN's 2D channels-last kernels run it, and its
    backward pass, much faster than the 3D ones (``benchmarks/bench_frame_layout.py``). It
    stays an ``nn.Conv3d``, so weights, initialisation, state dicts and official checkpoints
    are unchanged.
    """

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        if self.kernel_size[0] != 1 or self.stride[0] != 1 or self.padding[0] != 0 or self.padding_mode != "zeros":
            raise ValueError(f"a frame convolution spans one frame, got kernel {self.kernel_size}, "
                             f"stride {self.stride}, padding {self.padding} ({self.padding_mode})")

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return F.conv2d(frames, self.weight.squeeze(2), self.bias, self.stride[1:], self.padding[1:],
                        self.dilation[1:], self.groups)


class FrameBatchNorm3d(nn.BatchNorm3d):
    """BatchNorm3d applied to frames ``N*T, C, H, W``: per channel, the statistics over
    N, T, H and W are the ones BatchNorm3d takes over ``N, C, T, H, W``."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() != 4:
            raise ValueError(f"expected N*T, C, H, W frames (4D input), got {input.dim()}D input")


class ConvBN(nn.Module):
    """Frame conv (no bias) + BatchNorm, optionally ReLU; names ``conv`` / ``bn`` as mmcv's ConvModule."""

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
        self.conv = FrameConv3d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False)
        self.bn = FrameBatchNorm3d(out_channels)
        self.act = nn.ReLU(inplace=True) if relu else nn.Identity()

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(frames)))


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
    """Squeeze-and-excitation: global average pool, 1x1x1 conv down, ReLU, up, sigmoid, scale.

    The pool is per clip, over its T frames and all pixels."""

    def __init__(self, channels: int, ratio: float) -> None:
        super().__init__()
        bottleneck = se_bottleneck(channels, ratio)
        self.avg_pool = nn.AdaptiveAvgPool3d(1)
        self.fc1 = nn.Conv3d(channels, bottleneck, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv3d(bottleneck, channels, 1)

    def forward(self, frames: torch.Tensor, t: int) -> torch.Tensor:
        x = from_frames(frames, t)
        w = torch.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))  # N, C, 1, 1, 1
        return (x * w).transpose(1, 2).flatten(0, 1)


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

    def forward(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """``x``: the ``N*T, C, H, W`` frames of clips of ``t`` frames."""
        identity = x if self.downsample is None else self.downsample(x)  # the UNshifted input
        out = self.conv2(self.conv1(temporal_shift_frames(x, t, self.fold_div)))
        if self.se_module is not None:
            out = self.se_module(out, t)
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
        t = x.shape[2]
        frames = self.conv1_s(to_frames(x))
        for name in self.stage_names:
            for block in getattr(self, name):
                frames = block(frames, t)
        return from_frames(self.conv5(frames), t)


def reference_forward(net: XShiftNet, x: torch.Tensor) -> torch.Tensor:
    """``net``'s function computed the straightforward way: ``N, C, T, H, W`` clips through 3D
    convolutions, BatchNorm on 5D tensors and :func:`~epamnet.models.tsm.temporal_shift`,
    as the official code does. Same parameters and buffers (running statistics update as
    ``net``'s own forward would); the reference for tests and benchmarks."""

    def conv_bn(m: ConvBN, x: torch.Tensor) -> torch.Tensor:
        c, bn = m.conv, m.bn
        y = F.conv3d(x, c.weight, c.bias, c.stride, c.padding, c.dilation, c.groups)
        momentum = 0.0 if bn.momentum is None else bn.momentum
        y = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.training, momentum, bn.eps)
        return F.relu(y) if isinstance(m.act, nn.ReLU) else y

    def se(m: SEModule, x: torch.Tensor) -> torch.Tensor:
        w = F.adaptive_avg_pool3d(x, 1)
        w = torch.sigmoid(F.conv3d(F.relu(F.conv3d(w, m.fc1.weight, m.fc1.bias)), m.fc2.weight, m.fc2.bias))
        return x * w

    x = conv_bn(net.conv1_s, x)
    for name in net.stage_names:
        for block in getattr(net, name):
            identity = x if block.downsample is None else conv_bn(block.downsample, x)
            out = conv_bn(block.conv2, conv_bn(block.conv1, temporal_shift(x, block.fold_div)))
            if block.se_module is not None:
                out = se(block.se_module, out)
            x = F.relu(conv_bn(block.conv3, F.silu(out)) + identity)
    return conv_bn(net.conv5, x)


def _use_se(style: str, block_index: int) -> bool:
    """'half': SE in blocks 0, 2, 4, ... of each stage; 'all': every block; 'none': no SE."""
    return style == "all" or (style == "half" and block_index % 2 == 0)
