"""PKU-MMD (phase 1): video ids, label files, action clips and the protocol files.

* Videos are untrimmed sequences ``dddd-V`` (``V`` is the view: ``L``, ``M`` or ``R``),
  stored as ``RGB_VIDEO/<id>.avi``.
* Each video has a label file ``<id>.txt`` with one row per action,
  ``label,start,end,confidence`` (label 1..51; frames 0-based, inclusive; confidence
  0, 1 or 2 in the real files, ignored). Blank lines are allowed. The real label set
  has one row that cannot be a clip (:data:`KNOWN_BAD_ROWS`).
* The ``clips`` stage cuts one clip per row, named ``<id>-A{label:02d}-N{k:02d}`` where
  ``k`` is the 1-based position of the row after sorting by start frame (rows left out
  as bad are not counted). A clip's label is ``label - 1`` and it inherits its video's split.
* The protocols are the dataset's own files ``Split/cross-subject.txt`` (``xsub``) and
  ``Split/cross-view.txt`` (``xview``): a line ``Training videos:`` followed by a line of
  comma-separated ids, then ``Validataion videos:`` (sic; ``Validation`` is accepted too)
  followed by a line of ids. The dataset calls the second list "validation"; the
  protocol evaluates on it, so it is our ``test`` part and there is no ``val`` part.
  Which ids go where is read from those files, never hard-coded.

The raw folder holds :data:`VIDEO_FOLDER`, :data:`LABEL_FOLDER` and :data:`SPLIT_FOLDER`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from epamnet.datasets.actions import ActionLabel
from epamnet.datasets.textfiles import numbered_lines, read_text
from epamnet.errors import EpamnetError, file_error

VIDEO_RE = re.compile(r"^(\d{4})-([LMR])$")
CLIP_RE = re.compile(r"^(\d{4}-[LMR])-A(\d{2})-N(\d{2})$")

NUM_CLASSES = 51

#: The raw folder: untrimmed videos ``<VIDEO_FOLDER>/<id><VIDEO_SUFFIX>``, label files
#: ``<LABEL_FOLDER>/<id>.txt`` and the protocol files under ``<SPLIT_FOLDER>/``.
VIDEO_FOLDER = "RGB_VIDEO"
VIDEO_SUFFIX = ".avi"
LABEL_FOLDER = "Train_Label_PKU_final"
SPLIT_FOLDER = "Split"

#: Protocol -> its file under ``Split/``.
SPLIT_FILES: dict[str, str] = {"xsub": "cross-subject.txt", "xview": "cross-view.txt"}

#: The camera views of every sequence, and those the dataset's cross-view file trains on:
#: left and right train, middle tests (the splits stage reads the file; generated
#: datasets write it from these).
VIEWS: tuple[str, ...] = ("L", "M", "R")
XVIEW_TRAIN_VIEWS: frozenset[str] = frozenset(("L", "R"))

#: Rows of the real label files that cannot be cut into a clip, (video id, line) -> what
#: is known about them. The clips stage refuses them unless prepare.on_sample_error is skip.
KNOWN_BAD_ROWS: dict[tuple[str, int], str] = {
    ("0043-L", 21): "a known defect of the real PKU-MMD labels: the same action in 0043-M/R ends near frame 5036",
}

#: The 51 action names, action id 1 first. They are in alphabetical order, as the dataset's
#: Actions.xlsx numbers them; transcribed from the label strings of a public PKU-MMD code
#: base rather than from Actions.xlsx itself (names only label tables and figures).
CLASS_NAMES: tuple[str, ...] = (
    "bow", "brushing hair", "brushing teeth", "check time (from watch)", "cheer up", "clapping",
    "cross hands in front (say stop)", "drink water", "drop", "eat meal/snack", "falling",
    "giving something to other person", "hand waving", "handshaking",
    "hopping (one foot jumping)", "hugging other person", "jump up", "kicking other person",
    "kicking something", "make a phone call/answer phone", "pat on back of other person",
    "pickup", "playing with phone/tablet", "point finger at the other person",
    "pointing to something with finger", "punching/slapping other person",
    "pushing other person", "put on a hat/cap", "put something inside pocket", "reading",
    "rub two hands together", "salute", "sitting down", "standing up", "take off a hat/cap",
    "take off glasses", "take off jacket", "take out something from pocket", "taking a selfie",
    "tear up paper", "throw", "touch back (backache)", "touch chest (stomachache/heart pain)",
    "touch head (headache)", "touch neck (neckache)", "typing on a keyboard",
    "use a fan (with hand or paper)/feeling warm", "wear jacket", "wear on glasses",
    "wipe face", "writing",
)  # fmt: skip

_TRAIN_HEADER = re.compile(r"^\s*training\s+videos\s*:(.*)$", re.IGNORECASE)
_TEST_HEADER = re.compile(r"^\s*valid(?:ation|ataion)\s+videos\s*:(.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class LabelRow:
    """One action of a label file: 1-based ``label``, inclusive 0-based frames ``start..end``."""

    label: int
    start: int
    end: int
    confidence: int


@dataclass(frozen=True)
class PkuClip(ActionLabel):
    """A clip name's parts: source ``video`` id, 1-based ``action`` and position ``index``.

    ``label`` is ``action - 1``.
    """

    video: str
    action: int
    index: int

    def __str__(self) -> str:
        return format_clip_name(self.video, self.action, self.index)


@dataclass(frozen=True)
class SplitLists:
    """The two video lists of one protocol file."""

    train: frozenset[str]
    test: frozenset[str]

    def assign(self, video: str) -> str | None:
        if video in self.train:
            return "train"
        if video in self.test:
            return "test"
        return None


def parse_video_id(video: str) -> tuple[int, str]:
    """``dddd-V`` -> (number, view)."""
    m = VIDEO_RE.match(video)
    if m is None:
        raise EpamnetError(f"{video!r} is not a PKU-MMD video id; expected dddd-V with V in L/M/R, e.g. 0002-L")
    return int(m.group(1)), m.group(2)


def parse_clip_name(name: str) -> PkuClip:
    """``<video>-A{label:02d}-N{k:02d}`` -> :class:`PkuClip`."""
    m = CLIP_RE.match(name)
    if m is None or not 1 <= int(m.group(2)) <= NUM_CLASSES or int(m.group(3)) < 1:
        raise EpamnetError(
            f"{name!r} is not a PKU-MMD clip name; expected <dddd-V>-A<label 01..{NUM_CLASSES}>-N<k from 01>, "
            "e.g. 0002-L-A13-N01"
        )
    return PkuClip(m.group(1), int(m.group(2)), int(m.group(3)))


def format_clip_name(video: str, action: int, index: int) -> str:
    """Name of the ``index``-th clip (1-based) of ``video``, of 1-based ``action``."""
    parse_video_id(video)
    if not 1 <= action <= NUM_CLASSES or not 1 <= index <= 99:
        raise EpamnetError(f"PKU-MMD clip of {video}: action {action} must be 1..{NUM_CLASSES} and index {index} 1..99")
    return f"{video}-A{action:02d}-N{index:02d}"


def video_of(name: str) -> str:
    """The video id of a clip name, or the name itself if it is a video id."""
    if VIDEO_RE.match(name):
        return name
    return parse_clip_name(name).video


@dataclass(frozen=True)
class BadRow:
    """A label-file row that cannot become a clip: where it is, its text, what is wrong and the fix."""

    path: Path
    lineno: int
    text: str
    problem: str
    fix: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.lineno}"

    @property
    def known(self) -> str | None:
        """What :data:`KNOWN_BAD_ROWS` says about this row, if it is one of them."""
        return KNOWN_BAD_ROWS.get((self.path.stem, self.lineno))


def label_rows(path: str | Path) -> tuple[list[tuple[int, LabelRow]], list[BadRow]]:
    """The rows of a label file with their line numbers, and the rows that are not valid."""
    path = Path(path)
    rows: list[tuple[int, LabelRow]] = []
    bad: list[BadRow] = []
    for lineno, line in numbered_lines(path, "the label file", "check the PKU-MMD download"):
        text = line.strip()
        fields = [f.strip() for f in line.split(",")]
        try:
            if len(fields) != 4:
                raise ValueError(f"{len(fields)} fields, not 4")
            label, start, end, confidence = (int(f) for f in fields)
        except ValueError as exc:
            detail = str(exc) if "fields" in str(exc) else "not all integers"
            bad.append(BadRow(path, lineno, text, detail, "each row must be four integers label,start,end,confidence"))
            continue
        problem = None
        if not 1 <= label <= NUM_CLASSES:
            problem = f"label {label} is not 1..{NUM_CLASSES}"
        elif start < 0:
            problem = f"start frame {start} is negative"
        elif end < start:
            problem = f"it ends (frame {end}) before it starts (frame {start})"
        if problem is not None:
            bad.append(BadRow(path, lineno, text, problem, f"label must be 1..{NUM_CLASSES} and 0 <= start <= end"))
            continue
        rows.append((lineno, LabelRow(label, start, end, confidence)))
    return rows, bad


def read_label_file(path: str | Path) -> list[LabelRow]:
    """Rows of a label file, in file order. The first bad row is an error naming the file and line number."""
    rows, bad = label_rows(path)
    if bad:
        raise file_error(bad[0].where, f"bad row {bad[0].text!r}", bad[0].fix)
    return [row for _, row in rows]


def _ids(text: str, path: Path, lineno: int) -> list[str]:
    out = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if not VIDEO_RE.match(item):
            raise file_error(
                f"{path}:{lineno}", f"{item!r} is not a video id (dddd-L/M/R)", "fix or re-download the split file"
            )
        out.append(item)
    return out


def read_split_file(path: str | Path) -> SplitLists:
    """Parse a ``Split/cross-*.txt`` file into its training and held-out (test) lists."""
    path = Path(path)
    text = read_text(path, "the protocol file", f"put the PKU-MMD {SPLIT_FOLDER}/ folder in place")
    lists: dict[str, list[str]] = {}
    current: str | None = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        for part, header in (("train", _TRAIN_HEADER), ("test", _TEST_HEADER)):
            m = header.match(line)
            if m:
                if part in lists:
                    raise file_error(f"{path}:{lineno}", f"second {part!r} header", "the file must list each part once")
                current = part
                lists[part] = _ids(m.group(1), path, lineno)
                break
        else:
            if not line.strip():
                continue
            if current is None:
                raise file_error(
                    f"{path}:{lineno}",
                    "ids before any header",
                    "the file must start with 'Training videos:' and hold 'Validataion videos:' later",
                )
            lists[current].extend(_ids(line, path, lineno))
    missing = [h for p, h in (("train", "Training videos:"), ("test", "Validataion videos:")) if not lists.get(p)]
    if missing:
        raise file_error(path, f"no ids under {' / '.join(missing)}", "use the dataset's own Split/ files")
    both = sorted(set(lists["train"]) & set(lists["test"]))
    if both:
        raise file_error(
            path, f"{len(both)} video(s) in both lists, e.g. {both[0]}", "use the dataset's own Split/ files"
        )
    return SplitLists(frozenset(lists["train"]), frozenset(lists["test"]))


def load_protocols(split_dir: str | Path, protocols: Iterable[str]) -> dict[str, SplitLists]:
    """Read the protocol files of ``protocols`` from ``split_dir``."""
    out = {}
    for protocol in protocols:
        if protocol not in SPLIT_FILES:
            raise EpamnetError(f"pku has no protocol {protocol!r}; use one of {tuple(SPLIT_FILES)}")
        out[protocol] = read_split_file(Path(split_dir) / SPLIT_FILES[protocol])
    return out


def format_split_file(train: Iterable[str], test: Iterable[str]) -> str:
    """Text of a protocol file in the dataset's own layout (for generated datasets)."""
    return f"Training videos: \n{', '.join(train)}\nValidataion videos: \n{', '.join(test)}\n"
