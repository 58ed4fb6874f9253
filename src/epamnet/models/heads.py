"""Classification head (I3DHead of the official code): pool, dropout, linear."""

from __future__ import annotations

import torch
from torch import nn


class ClassifierHead(nn.Module):
    """``N, C, T, H, W`` features -> ``N, num_classes`` logits.

    AdaptiveAvgPool3d(1), Dropout(p), Linear named ``fc_cls`` (normal std 0.01, bias 0),
    as the official I3DHead, so its keys read ``<stream>_cls_head.fc_cls.{weight,bias}``.
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc_cls = nn.Linear(in_channels, num_classes)
        nn.init.normal_(self.fc_cls.weight, std=0.01)
        nn.init.zeros_(self.fc_cls.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avg_pool(x).flatten(1)
        return self.fc_cls(self.dropout(x))
