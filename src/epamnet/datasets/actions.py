"""What NTU and PKU-MMD names share: a 1-based action number that gives the label."""

from __future__ import annotations


class ActionLabel:
    """Mixin of a parsed sample name with a 1-based ``action`` number."""

    action: int

    @property
    def label(self) -> int:
        """0-based class index: ``action - 1``."""
        return self.action - 1
