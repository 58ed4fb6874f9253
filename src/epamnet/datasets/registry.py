"""One small interface over the datasets, used by the stages.

``get_dataset(name)`` returns an object with:

* ``protocols``: the evaluation protocols of the dataset;
* ``class_names(protocol, num_classes=None)``: the protocol's class list (labels index it);
* ``video_relpath(frame_dir)``: the source video, relative to ``data/raw/<dataset>/``;
* ``assign(frame_dir, protocol)``: ``'train'``, ``'val'``, ``'test'`` or ``None``;
* ``label(frame_dir, protocol)``: the sample's label under the protocol, or ``None``;
* ``name_label(frame_dir)``: the label the name itself carries (NTU, PKU clips), or ``None``.

Everything is derived from the sample name (``frame_dir``) and the official rules in
:mod:`~epamnet.datasets.ntu`, :mod:`~epamnet.datasets.pku` and
:mod:`~epamnet.datasets.toyota`; PKU-MMD's protocols come from its ``Split/`` files.

Synthetic datasets use the same names with fewer classes (``num_classes``). For NTU and
PKU they are the first K classes (``A001``.., label ``k`` is action ``k+1``). For Toyota
they are the first K activities of the synthetic class design
(:data:`epamnet.prepare.synthetic.design.TOYOTA_NAMES`), and each protocol's list is those
of its classes that the design uses, in the protocol's own (sorted) order.
"""

from __future__ import annotations

from pathlib import Path

from epamnet.datasets import PROTOCOLS, ntu, pku, toyota
from epamnet.errors import EpamnetError

__all__ = ["Dataset", "NtuDataset", "PkuDataset", "ToyotaDataset", "get_dataset"]


def _check_num_classes(dataset: str, num_classes: int | None, full: int) -> int | None:
    if num_classes is not None and not 1 <= num_classes <= full:
        raise EpamnetError(f"{dataset}: num_classes {num_classes} is out of range; use 1..{full}")
    return num_classes


class Dataset:
    """Base of the per-dataset adapters (see the module docstring for the interface)."""

    name: str
    protocols: tuple[str, ...]

    def __init__(self, num_classes: int | None = None) -> None:
        self.num_classes = num_classes

    def check_protocol(self, protocol: str) -> None:
        if protocol not in self.protocols:
            raise EpamnetError(f"{self.name} has no protocol {protocol!r}; use one of {self.protocols}")

    def class_names(self, protocol: str, num_classes: int | None = None) -> tuple[str, ...]:
        raise NotImplementedError

    def video_relpath(self, frame_dir: str) -> str:
        raise NotImplementedError

    def assign(self, frame_dir: str, protocol: str) -> str | None:
        raise NotImplementedError

    def label(self, frame_dir: str, protocol: str) -> int | None:
        raise NotImplementedError

    def name_label(self, frame_dir: str) -> int | None:
        """Label carried by the name regardless of protocol; ``None`` where names carry none."""
        return None

    def _prefix_label(self, frame_dir: str, label: int) -> int:
        if self.num_classes is not None and label >= self.num_classes:
            raise EpamnetError(
                f"{frame_dir}: class {label + 1} is beyond the {self.num_classes} classes of this "
                f"{self.name} dataset; regenerate the data or fix the class count"
            )
        return label


class NtuDataset(Dataset):
    """NTU RGB+D 60 or 120 (names ``SsssCcccPpppRrrrAaaa``)."""

    def __init__(self, name: str, num_classes: int | None = None) -> None:
        super().__init__(_check_num_classes(name, num_classes, ntu.MAX_ACTION[name]))
        self.name = name
        self.protocols = PROTOCOLS[name]

    def class_names(self, protocol: str, num_classes: int | None = None) -> tuple[str, ...]:
        self.check_protocol(protocol)
        k = _check_num_classes(self.name, num_classes, ntu.MAX_ACTION[self.name]) or self.num_classes
        return ntu.CLASS_NAMES_120[: k or ntu.MAX_ACTION[self.name]]

    def video_relpath(self, frame_dir: str) -> str:
        return f"nturgb+d_rgb/{ntu.video_name(frame_dir)}"

    def assign(self, frame_dir: str, protocol: str) -> str | None:
        self.check_protocol(protocol)
        return ntu.assign(ntu.parse_name(frame_dir), self.name, protocol)

    def name_label(self, frame_dir: str) -> int | None:
        sample = ntu.parse_name(frame_dir)
        if not ntu.in_dataset(sample, self.name):
            return None
        return self._prefix_label(frame_dir, sample.label)

    def label(self, frame_dir: str, protocol: str) -> int | None:
        self.check_protocol(protocol)
        return self.name_label(frame_dir)


class PkuDataset(Dataset):
    """PKU-MMD: untrimmed videos ``dddd-V`` and their action clips ``<video>-Aaa-Nkk``.

    ``split_dir`` is the dataset's ``Split/`` folder; it is needed by :meth:`assign` only.
    """

    name = "pku"
    protocols = PROTOCOLS["pku"]

    def __init__(self, split_dir: str | Path | None = None, num_classes: int | None = None) -> None:
        super().__init__(_check_num_classes("pku", num_classes, pku.NUM_CLASSES))
        self.split_dir = Path(split_dir) if split_dir is not None else None
        self._lists: dict[str, pku.SplitLists] = {}

    def class_names(self, protocol: str, num_classes: int | None = None) -> tuple[str, ...]:
        self.check_protocol(protocol)
        k = _check_num_classes("pku", num_classes, pku.NUM_CLASSES) or self.num_classes
        return pku.CLASS_NAMES[: k or pku.NUM_CLASSES]

    def video_relpath(self, frame_dir: str) -> str:
        """The untrimmed source video (for a clip name: the video it was cut from)."""
        return f"RGB_VIDEO/{pku.video_of(frame_dir)}.avi"

    def split_lists(self, protocol: str) -> pku.SplitLists:
        """The protocol file's lists (read once per protocol)."""
        self.check_protocol(protocol)
        if protocol not in self._lists:
            if self.split_dir is None:
                raise EpamnetError(
                    "pku: the protocols come from the dataset's Split/ folder and none was given; "
                    "pass pku_split_dir (data/raw/pku/Split)"
                )
            self._lists.update(pku.load_protocols(self.split_dir, [protocol]))
        return self._lists[protocol]

    def assign(self, frame_dir: str, protocol: str) -> str | None:
        return self.split_lists(protocol).assign(pku.video_of(frame_dir))

    def name_label(self, frame_dir: str) -> int | None:
        if pku.VIDEO_RE.match(frame_dir):
            return None
        return self._prefix_label(frame_dir, pku.parse_clip_name(frame_dir).label)

    def label(self, frame_dir: str, protocol: str) -> int | None:
        self.check_protocol(protocol)
        return self.name_label(frame_dir)


class ToyotaDataset(Dataset):
    """Toyota Smarthome (names ``<Activity>_pSS_rRR_vVV_cCC``); labels depend on the protocol."""

    name = "toyota"
    protocols = PROTOCOLS["toyota"]

    def __init__(self, num_classes: int | None = None) -> None:
        super().__init__(num_classes)
        if num_classes is not None:
            self._synthetic_activities(num_classes)  # validates the range

    @staticmethod
    def _synthetic_activities(num_classes: int) -> tuple[str, ...]:
        from epamnet.prepare.synthetic.design import TOYOTA_NAMES

        _check_num_classes("toyota", num_classes, len(TOYOTA_NAMES))
        return TOYOTA_NAMES[:num_classes]

    def class_names(self, protocol: str, num_classes: int | None = None) -> tuple[str, ...]:
        self.check_protocol(protocol)
        full = toyota.protocol_classes(protocol)
        k = num_classes if num_classes is not None else self.num_classes
        if k is None:
            return full
        used = set(self._synthetic_activities(k))
        return tuple(c for c in full if c in used)

    def video_relpath(self, frame_dir: str) -> str:
        toyota.parse_name(frame_dir)
        return f"mp4/{frame_dir}.mp4"

    def label(self, frame_dir: str, protocol: str) -> int | None:
        activity = toyota.parse_name(frame_dir).activity
        if activity not in toyota.CS_CLASSES:
            raise EpamnetError(
                f"{frame_dir}: {activity!r} is not a Toyota Smarthome activity; expected one of the "
                f"{len(toyota.CS_CLASSES)} cross-subject classes"
            )
        classes = self.class_names(protocol)
        if activity in classes:
            return classes.index(activity)
        if activity in toyota.protocol_classes(protocol):
            raise EpamnetError(
                f"{frame_dir}: {activity!r} is not among the {self.num_classes} classes of this synthetic "
                "toyota dataset; regenerate the data or fix the class count"
            )
        return None  # an activity the CV protocols leave out

    def assign(self, frame_dir: str, protocol: str) -> str | None:
        if self.label(frame_dir, protocol) is None:
            return None
        return toyota.assign(toyota.parse_name(frame_dir), protocol)


def get_dataset(
    name: str, *, num_classes: int | None = None, pku_split_dir: str | Path | None = None
) -> Dataset:
    """The adapter of dataset ``name`` (``ntu60``, ``ntu120``, ``pku``, ``toyota``).

    ``num_classes`` truncates the class lists for synthetic datasets; ``pku_split_dir`` is
    PKU-MMD's ``Split/`` folder (needed to assign PKU samples to a split).
    """
    if name in ("ntu60", "ntu120"):
        return NtuDataset(name, num_classes)
    if name == "pku":
        return PkuDataset(pku_split_dir, num_classes)
    if name == "toyota":
        return ToyotaDataset(num_classes)
    raise EpamnetError(f"unknown dataset {name!r}; use one of {tuple(PROTOCOLS)}")
