"""Pose-driven attention maps: ``N, C, T, H, W`` pose features -> ``N, 1, T, H, W`` in (0, 1).

:class:`CBAMSpatialEfficientTemporalAttention` is the paper's module (spec section 3,
'nested'): a CBAM spatial map A_S from the channel max and mean, and an efficient
(ECA-style) temporal map A_T computed from A_S itself; the output is A_S * A_T.
:class:`SpatialTemporalAttention` is the official alternative ('spatial_temporal').
Attribute names follow the official modules so released weights load by name.

Initialisation is the official EPAM-Net model's (its ``init_weights``, which covers the
attention; the backbones and heads then re-initialise themselves): every Conv3d and
Conv1d Kaiming normal with ``mode="fan_out"``, ``nonlinearity="relu"`` (std
``sqrt(2 / fan_out)``, fan_out = out channels x kernel size) and bias 0; BatchNorm
weight 1 and bias 0; Linear normal with std 0.01 and bias 0. PyTorch's default would
leave the 7x7 spatial conv at std ``1 / sqrt(3 fan_in)``, about a quarter of it.
"""

from __future__ import annotations

import torch
from torch import nn

from epamnet.config.model import ModelSpec


def init_attention_weights(module: nn.Module) -> None:
    """Initialise ``module``'s layers as the official model's ``init_weights`` does (module doc)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv3d, nn.Conv1d)):
            nn.init.kaiming_normal_(m.weight, a=0, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:  # mmcv's _BatchNorm
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def channel_pool(x: torch.Tensor) -> torch.Tensor:
    """``[max over C, mean over C]`` -> ``N, 2, T, H, W`` (CBAM's ChannelPool)."""
    return torch.cat((x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)), dim=1)


class SpatialConvBN(nn.Module):
    """CBAM's BasicConv without ReLU: Conv3d 2->1 (1, k, k) 'same', no bias, then BN3d."""

    def __init__(self, kernel: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv3d(2, 1, (1, kernel, kernel), padding=(0, kernel // 2, kernel // 2), bias=False)
        self.bn = nn.BatchNorm3d(1, eps=1e-5, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class CBAMSpatialEfficientTemporalAttention(nn.Module):
    """A = A_S * A_T with A_S = sigmoid(BN(conv([max, mean]))), A_T = sigmoid(conv1d(mean_HW A_S)).

    107 parameters: 98 (7x7x2 conv) + 2 (BN affine) + 7 (temporal conv1d).
    """

    def __init__(self, kernel: int = 7) -> None:
        super().__init__()
        self.spatial = SpatialConvBN(kernel)
        self.conv_temporal_attention = nn.Conv1d(1, 1, kernel_size=kernel, padding=kernel // 2, bias=False)
        init_attention_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, _, _ = x.shape
        spatial = torch.sigmoid(self.spatial(channel_pool(x)))  # N,1,T,H,W
        pooled = spatial.mean(dim=(3, 4)).view(n, 1, t)  # nested: from A_S, not from the features
        temporal = torch.sigmoid(self.conv_temporal_attention(pooled)).view(n, 1, t, 1, 1)
        return spatial * temporal


class SpatialTemporalAttention(nn.Module):
    """The official 'spatial_temporal' variant; its temporal MLP needs the clip length T.

    A_S = sigmoid(conv7x7(ReLU(conv3x3 C->1))); A_T = sigmoid(fc2(ReLU(fc1(mean_HW A_S)))).
    """

    def __init__(self, channels: int, frames: int) -> None:
        super().__init__()
        self.frames = frames
        self.conv_ch_compress = nn.Conv3d(channels, 1, (1, 3, 3), padding=(0, 1, 1))
        self.conv_sptial_attention = nn.Conv3d(1, 1, (1, 7, 7), padding=(0, 3, 3))  # official spelling
        self.fc1 = nn.Linear(frames, frames, bias=False)
        self.fc2 = nn.Linear(frames, frames, bias=False)
        init_attention_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, _, _ = x.shape
        if t != self.frames:
            raise ValueError(f"spatial_temporal attention was built for T={self.frames}, got T={t}")
        spatial = torch.sigmoid(self.conv_sptial_attention(torch.relu(self.conv_ch_compress(x))))
        pooled = spatial.mean(dim=(3, 4)).view(n, t)
        temporal = torch.sigmoid(self.fc2(torch.relu(self.fc1(pooled)))).view(n, 1, t, 1, 1)
        return spatial * temporal


def build_attention(spec: ModelSpec) -> nn.Module:
    """The attention module ``spec.attention`` names, sized for the strided pose features."""
    if spec.attention == "cbam_nested":
        return CBAMSpatialEfficientTemporalAttention()
    if spec.attention == "spatial_temporal":
        return SpatialTemporalAttention(spec.pose.out_channels, spec.rgb.clip_len)
    raise ValueError(f"unknown attention kind {spec.attention!r}")
