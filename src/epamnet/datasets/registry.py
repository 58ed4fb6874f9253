"""One adapter per dataset: every fact the pipeline needs about it, behind one interface.

``get_dataset(name)`` returns an object with these facts:

* ``name``, ``display_name`` (how tables and figures name it) and ``protocols``;
* ``reported_metric``: the metric its results are reported in (``top1``, or
  ``mean_class_acc`` for Toyota Smarthome);
* ``has_validation``: whether its protocols have a validation list (Toyota Smarthome);
* ``needs_clips``: whether its raw videos are untrimmed and the ``clips`` stage cuts them
  into action clips, which ``crop`` then reads (PKU-MMD);
* ``split_folder``: the folder of ``data/raw/<dataset>/`` holding the protocol files
  that ``splits`` reads (PKU-MMD's ``Split``), or ``None`` where names decide;
* ``skeletons_file``: the file name of the skeletons a raw folder provides;
* ``video_folder`` and ``video_suffix``: the raw videos are
  ``<video_folder>/<video id><video_suffix>`` under ``data/raw/<dataset>/``;

and these rules:

* ``class_names(protocol, num_classes=None)``: the protocol's class list (labels index it);
* ``video_relpath(frame_dir)``: the source video, relative to ``data/raw/<dataset>/``;
* ``sample_name(name)``: a name as tools that name entries after the video file write it
  (NTU: ``S001C001P001R001A001_rgb``) turned into the sample name (``S001C001P001R001A001``);
* ``is_untrimmed(frame_dir)``: whether the name is an untrimmed video, not an action clip;
* ``assign(frame_dir, protocol)``: ``'train'``, ``'val'``, ``'test'`` or ``None``;
* ``label(frame_dir, protocol)``: the sample's label under the protocol, or ``None``;
* ``name_label(frame_dir)``: the label the name itself carries (NTU, PKU clips), or ``None``.

Everything is derived from the sample name (``frame_dir``) and the official rules in
:mod:`~epamnet.datasets.ntu`, :mod:`~epamnet.datasets.pku` and
:mod:`~epamnet.datasets.toyota`; PKU-MMD's protocols come from its ``Split/`` files.
:data:`REPORTED_METRIC` and :data:`DISPLAY_NAME` hold two of the facts for every dataset.

Synthetic datasets use the same names with fewer classes (``num_classes``). For NTU and
PKU they are the first K classes (``A001``.., label ``k`` is action ``k+1``). For Toyota
they are the first K activities of :data:`epamnet.datasets.toyota.SYNTHETIC_ACTIVITIES`,
and each protocol's list is those of its classes that the synthetic dataset uses, in the
protocol's own (sorted) order.
"""

from __future__ import annotations

from pathlib import Path

from epamnet.datasets import DATASETS, PROTOCOLS, ntu, pku, toyota
from epamnet.errors import EpamnetError, did_you_mean

__all__ = [
    "DISPLAY_NAME", "REPORTED_METRIC", "Dataset", "NtuDataset", "PkuDataset", "ToyotaDataset", "get_dataset",
]  # fmt: skip


def _check_num_classes(dataset: str, num_classes: int | None, full: int) -> int | None:
    if num_classes is not None and not 1 <= num_classes <= full:
        raise EpamnetError(f"{dataset}: num_classes {num_classes} is out of range; use 1..{full}")
    return num_classes


class Dataset:
    """Base of the per-dataset adapters (see the module docstring for the interface)."""

    name: str
    display_name: str
    protocols: tuple[str, ...]
    reported_metric: str
    has_validation: bool = False
    needs_clips: bool = False
    split_folder: str | None = None
    video_folder: str
    video_suffix: str

    def __init__(self, num_classes: int | None = None) -> None:
        self.num_classes = num_classes

    @property
    def skeletons_file(self) -> str:
        """The skeletons a raw folder provides: ``<name>_2d.pkl`` (mmaction2's naming)."""
        return f"{self.name}_2d.pkl"

    def check_protocol(self, protocol: str) -> None:
        if protocol not in self.protocols:
            raise EpamnetError(
                f"{self.name} has no protocol {protocol!r}; use one of {self.protocols}"
                f"{did_you_mean(protocol, self.protocols)}"
            )

    def class_names(self, protocol: str, num_classes: int | None = None) -> tuple[str, ...]:
        raise NotImplementedError

    def video_id(self, frame_dir: str) -> str:
        """The raw video a sample comes from (its name checked)."""
        raise NotImplementedError

    def video_relpath(self, frame_dir: str) -> str:
        return f"{self.video_folder}/{self.video_id(frame_dir)}{self.video_suffix}"

    @property
    def name_suffix(self) -> str:
        """What a video file's stem adds to the sample name (NTU: ``_rgb`` of ``<name>_rgb.avi``; else none)."""
        stem, dot, _ext = self.video_suffix.rpartition(".")
        return stem if dot else ""

    def sample_name(self, name: str) -> str:
        """``name`` without :attr:`name_suffix`: mmaction2's ``ntu_pose_extraction.py`` names each entry
        after its video file's stem (``S001C001P001R001A001_rgb``), the datasets' own files after the sample."""
        suffix = self.name_suffix
        return name[: -len(suffix)] if suffix and name.endswith(suffix) else name

    def is_untrimmed(self, frame_dir: str) -> bool:
        """Whether ``frame_dir`` names an untrimmed video (one the clips stage still has to cut)."""
        return False

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

    DISPLAY_NAMES = {"ntu60": "NTU-60", "ntu120": "NTU-120"}
    reported_metric = "top1"
    video_folder = ntu.VIDEO_FOLDER
    video_suffix = ntu.VIDEO_SUFFIX

    def __init__(self, name: str, num_classes: int | None = None) -> None:
        super().__init__(_check_num_classes(name, num_classes, ntu.MAX_ACTION[name]))
        self.name = name
        self.display_name = self.DISPLAY_NAMES[name]
        self.protocols = PROTOCOLS[name]

    def class_names(self, protocol: str, num_classes: int | None = None) -> tuple[str, ...]:
        self.check_protocol(protocol)
        k = _check_num_classes(self.name, num_classes, ntu.MAX_ACTION[self.name]) or self.num_classes
        return ntu.CLASS_NAMES_120[: k or ntu.MAX_ACTION[self.name]]

    def video_id(self, frame_dir: str) -> str:
        ntu.parse_name(frame_dir)
        return frame_dir

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
    display_name = "PKU-MMD"
    protocols = PROTOCOLS["pku"]
    reported_metric = "top1"
    needs_clips = True
    split_folder = pku.SPLIT_FOLDER
    video_folder = pku.VIDEO_FOLDER
    video_suffix = pku.VIDEO_SUFFIX

    def __init__(self, split_dir: str | Path | None = None, num_classes: int | None = None) -> None:
        super().__init__(_check_num_classes("pku", num_classes, pku.NUM_CLASSES))
        self.split_dir = Path(split_dir) if split_dir is not None else None
        self._lists: dict[str, pku.SplitLists] = {}

    def class_names(self, protocol: str, num_classes: int | None = None) -> tuple[str, ...]:
        self.check_protocol(protocol)
        k = _check_num_classes("pku", num_classes, pku.NUM_CLASSES) or self.num_classes
        return pku.CLASS_NAMES[: k or pku.NUM_CLASSES]

    def video_id(self, frame_dir: str) -> str:
        """The untrimmed source video (for a clip name: the video it was cut from)."""
        return pku.video_of(frame_dir)

    def is_untrimmed(self, frame_dir: str) -> bool:
        return pku.VIDEO_RE.match(frame_dir) is not None

    def split_lists(self, protocol: str) -> pku.SplitLists:
        """The protocol file's lists (read once per protocol)."""
        self.check_protocol(protocol)
        if protocol not in self._lists:
            if self.split_dir is None:
                raise EpamnetError(
                    f"pku: the protocols come from the dataset's {self.split_folder}/ folder and none was given; "
                    f"pass pku_split_dir (data/raw/pku/{self.split_folder})"
                )
            self._lists.update(pku.load_protocols(self.split_dir, [protocol]))
        return self._lists[protocol]

    def assign(self, frame_dir: str, protocol: str) -> str | None:
        return self.split_lists(protocol).assign(pku.video_of(frame_dir))

    def name_label(self, frame_dir: str) -> int | None:
        if self.is_untrimmed(frame_dir):
            return None
        return self._prefix_label(frame_dir, pku.parse_clip_name(frame_dir).label)

    def label(self, frame_dir: str, protocol: str) -> int | None:
        self.check_protocol(protocol)
        return self.name_label(frame_dir)


class ToyotaDataset(Dataset):
    """Toyota Smarthome (names ``<Activity>_pSS_rRR_vVV_cCC``); labels depend on the protocol."""

    name = "toyota"
    display_name = "Toyota Smarthome"
    protocols = PROTOCOLS["toyota"]
    reported_metric = "mean_class_acc"
    has_validation = True
    video_folder = toyota.VIDEO_FOLDER
    video_suffix = toyota.VIDEO_SUFFIX

    def __init__(self, num_classes: int | None = None) -> None:
        super().__init__(num_classes)
        if num_classes is not None:
            self._synthetic_activities(num_classes)  # validates the range

    @staticmethod
    def _synthetic_activities(num_classes: int) -> tuple[str, ...]:
        _check_num_classes("toyota", num_classes, len(toyota.SYNTHETIC_ACTIVITIES))
        return toyota.SYNTHETIC_ACTIVITIES[:num_classes]

    def class_names(self, protocol: str, num_classes: int | None = None) -> tuple[str, ...]:
        self.check_protocol(protocol)
        full = toyota.protocol_classes(protocol)
        k = num_classes if num_classes is not None else self.num_classes
        if k is None:
            return full
        used = set(self._synthetic_activities(k))
        return tuple(c for c in full if c in used)

    def video_id(self, frame_dir: str) -> str:
        toyota.parse_name(frame_dir)
        return frame_dir

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


#: The metric each dataset's results are reported in, and how tables and figures name it.
REPORTED_METRIC: dict[str, str] = {name: get_dataset(name).reported_metric for name in DATASETS}
DISPLAY_NAME: dict[str, str] = {name: get_dataset(name).display_name for name in DATASETS}
