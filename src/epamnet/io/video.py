"""Video reading and writing (OpenCV).

Frames are always ``uint8`` RGB arrays (H x W x 3) on our side; OpenCV's BGR order
stays inside this module.

Two ways of reading, chosen per file:

- **MJPEG AVI** (every frame a JPEG; the prepared crop videos): read through OpenCV's own
  AVI/MJPEG reader (``cv2.CAP_OPENCV_MJPEG``, part of every OpenCV build, no FFmpeg), which
  jumps to a frame through the AVI index. :func:`read_frames` decodes only the frames it is
  asked for. Every read of such a file, sequential or not, goes through this one reader, so
  a frame decodes to the same pixels however it is reached.
- **Anything else** (MPEG-4, H.264, ... through FFmpeg): decoded sequentially from the
  first frame (no seeking: seeking in inter-coded video is unreliable across builds), the
  frame count taken from what actually decodes, because container headers can be wrong.

Writing goes to a temporary file with the destination's suffix (so OpenCV still picks
the container from the extension) that is renamed into place only when complete. The
``MJPG`` codec is written as libjpeg-turbo JPEGs in an AVI container
(:mod:`epamnet.io.mjpeg_avi`; no FFmpeg, the same frames and quality give the same
bytes), other codecs by OpenCV through FFmpeg.

Every problem a user can fix (missing file, undecodable or empty video, a writer
that does not open) raises :class:`~epamnet.errors.EpamnetError` with one line.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from epamnet.errors import file_error
from epamnet.io.atomic import atomic_path
from epamnet.io.mjpeg_avi import MjpegAviWriter

logger = logging.getLogger(__name__)

#: Codec chosen from the file suffix when ``codec`` is not given.
DEFAULT_CODECS: dict[str, str] = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v", ".mov": "mp4v"}

#: JPEG quality of ``MJPG`` videos when none is given (OpenCV's default for JPEG).
DEFAULT_MJPEG_QUALITY = 95
#: Bytes of an AVI file searched for its codec (the RIFF headers come first).
_SNIFF_BYTES = 4096

#: A decoded count may fall short of the header's count by this many frames (or this
#: fraction of it, whichever is larger) before the file is called truncated: some
#: encoders announce a frame or two they never write.
HEADER_SLACK_FRAMES = 2
HEADER_SLACK_FRACTION = 0.02

_FIX_READ = "check that the file is a complete video (re-download or re-generate it)"


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds: frame count, frames per second and frame size."""

    frames: int
    fps: float
    height: int
    width: int


def _looks_mjpeg_avi(path: Path) -> bool:
    """An AVI (RIFF) file whose headers name the MJPG codec: sniffed, so that OpenCV's MJPEG
    reader is never tried on another codec (it logs a warning for each such file)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError:
        return False
    return head[:4] == b"RIFF" and head[8:12] == b"AVI " and b"MJPG" in head


def _open_mjpeg(path: Path) -> cv2.VideoCapture | None:
    """OpenCV's AVI/MJPEG reader on ``path``, or None when the file is not an MJPEG AVI."""
    if path.suffix.lower() != ".avi" or not _looks_mjpeg_avi(path):
        return None
    cap = cv2.VideoCapture(str(path), cv2.CAP_OPENCV_MJPEG)
    if cap.isOpened() and cap.get(cv2.CAP_PROP_FRAME_COUNT) > 0:
        return cap
    cap.release()
    return None


def _open_capture(path: Path) -> cv2.VideoCapture:
    if not path.is_file():
        raise file_error(path, "video file not found", "check the path or run the stage that creates it")
    if path.stat().st_size == 0:
        raise file_error(path, "video file is empty (0 bytes)", _FIX_READ)
    mjpeg = _open_mjpeg(path)
    if mjpeg is not None:
        return mjpeg
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise file_error(path, "OpenCV cannot open this video (unknown or corrupt container)", _FIX_READ)
    return cap


def _header(cap: cv2.VideoCapture) -> tuple[int, float, int, int]:
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    return max(frames, 0), fps, height, width


def _check_count(path: Path, decoded: int, header_frames: int) -> None:
    """Raise when nothing decoded, or clearly fewer frames than the header announces."""
    if decoded == 0:
        raise file_error(path, "no frame could be decoded (empty or corrupt video)", _FIX_READ)
    slack = max(HEADER_SLACK_FRAMES, int(HEADER_SLACK_FRACTION * header_frames))
    if header_frames > 0 and decoded < header_frames - slack:
        raise file_error(
            path,
            f"video is truncated or corrupt: decoded {decoded} of the {header_frames} frames its header announces",
            _FIX_READ,
        )


def video_info(path: str | Path, count_frames: bool = False) -> VideoInfo:
    """Return the frame count, fps and size of a video.

    The count comes from the container header, which is fast; with ``count_frames``
    (or when the header has no count) every frame is decoded and counted instead.
    """
    path = Path(path)
    cap = _open_capture(path)
    try:
        frames, fps, height, width = _header(cap)
        if count_frames or frames <= 0:
            decoded = 0
            while cap.grab():
                decoded += 1
            _check_count(path, decoded, frames)
            frames = decoded
    finally:
        cap.release()
    if height <= 0 or width <= 0:
        raise file_error(path, "video reports no frame size", _FIX_READ)
    return VideoInfo(frames=frames, fps=fps, height=height, width=width)


def iter_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Yield the frames of a video one at a time, in order, as H x W x 3 uint8 RGB.

    Raises at the end if the video turned out empty or clearly truncated.
    """
    path = Path(path)
    cap = _open_capture(path)
    header_frames = _header(cap)[0]
    decoded = 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            decoded += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()
    _check_count(path, decoded, header_frames)


def is_random_access(path: str | Path) -> bool:
    """Whether :func:`read_frames` decodes only the frames asked for (an MJPEG AVI) in ``path``."""
    cap = _open_mjpeg(Path(path))
    if cap is None:
        return False
    cap.release()
    return True


def _read_indexed(path: Path, cap: cv2.VideoCapture, wanted: np.ndarray) -> np.ndarray:
    """Frames ``wanted`` of an MJPEG AVI: a jump through the index and one JPEG decode each."""
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    last = int(wanted.max())
    if last >= count:
        raise file_error(
            path,
            f"frame {last} requested but the video has only {count} frames",
            "check the annotation's total_frames against the video",
        )
    got: dict[int, np.ndarray] = {}
    for index in sorted(set(wanted.tolist())):
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = cap.read()
        if not ok or frame is None:
            raise file_error(path, f"frame {index} of {count} does not decode (corrupt JPEG frame)", _FIX_READ)
        got[index] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    return np.stack([got[i] for i in wanted.tolist()])


def read_frames(path: str | Path, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Decode a video into a T x H x W x 3 uint8 RGB array.

    ``indices`` (0-based, any order, repeats allowed) selects frames; the result has
    one frame per index, in the order given. In an MJPEG AVI only those frames are
    decoded (each once); otherwise frames are decoded sequentially up to the largest
    index, and frames not asked for are skipped without colour conversion. An index
    beyond the video's frames raises an error naming the real count.
    """
    path = Path(path)
    if indices is None:
        frames = list(iter_frames(path))
        return np.stack(frames)
    wanted = np.asarray(indices, dtype=np.int64).reshape(-1)
    if wanted.size == 0:
        info = video_info(path)
        return np.zeros((0, info.height, info.width, 3), dtype=np.uint8)
    if wanted.min() < 0:
        raise file_error(path, f"negative frame index {int(wanted.min())} requested", "pass 0-based indices")
    last = int(wanted.max())
    needed = set(wanted.tolist())
    cap = _open_capture(path)
    if cap.getBackendName() == "CV_MJPEG":
        try:
            return _read_indexed(path, cap, wanted)
        finally:
            cap.release()
    header_frames = _header(cap)[0]
    got: dict[int, np.ndarray] = {}
    decoded = 0
    try:
        while decoded <= last:
            if decoded in needed:
                ok, frame = cap.read()
                if ok and frame is not None:
                    got[decoded] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            else:
                ok = cap.grab()
            if not ok:
                break
            decoded += 1
    finally:
        cap.release()
    if decoded <= last:
        _check_count(path, decoded, header_frames)
        raise file_error(
            path,
            f"frame {last} requested but the video decodes only {decoded} frames",
            "check the annotation's total_frames against the video",
        )
    return np.stack([got[i] for i in wanted.tolist()])


def _fourcc(codec: str) -> int:
    return cv2.VideoWriter_fourcc(*codec)


class VideoWriter:
    """Streaming, atomic video writer: append RGB frames one at a time.

    Use as a context manager::

        with VideoWriter(path, fps=30) as writer:
            for frame in frames:
                writer.write(frame)

    Frames go to a temporary file next to ``path`` (same suffix); on a clean exit the
    writer is released and the file renamed onto ``path``. On an exception, or when no
    frame was written, the temporary file is removed and ``path`` is left untouched.
    The frame size is taken from the first frame; later frames must match it.
    ``quality`` (1-100) is the JPEG quality of ``MJPG`` videos (default
    :data:`DEFAULT_MJPEG_QUALITY`); other codecs have none.
    """

    def __init__(self, path: str | Path, fps: float, codec: str | None = None, quality: int | None = None) -> None:
        self.path = Path(path)
        if fps <= 0:
            raise file_error(self.path, f"invalid fps {fps}", "pass a positive frame rate")
        self.fps = float(fps)
        suffix = self.path.suffix.lower()
        if codec is None:
            if suffix not in DEFAULT_CODECS:
                raise file_error(
                    self.path,
                    f"no default codec for suffix '{suffix}'",
                    f"use one of {sorted(DEFAULT_CODECS)} or pass a codec",
                )
            codec = DEFAULT_CODECS[suffix]
        if len(codec) != 4:
            raise file_error(self.path, f"codec '{codec}' is not a four-character code", "pass e.g. 'mp4v' or 'MJPG'")
        self.codec = codec
        if quality is not None and (codec != "MJPG" or not 1 <= quality <= 100):
            raise file_error(self.path, f"quality {quality} given for codec {codec}",
                             "give a quality of 1-100, and only with the MJPG codec")
        self.quality = DEFAULT_MJPEG_QUALITY if quality is None and codec == "MJPG" else quality
        self.frames_written = 0
        self._stack: contextlib.ExitStack | None = None
        self._tmp: Path | None = None
        self._writer: cv2.VideoWriter | MjpegAviWriter | None = None
        self._size: tuple[int, int] | None = None  # (height, width)

    def __enter__(self) -> VideoWriter:
        self._stack = contextlib.ExitStack()
        self._tmp = self._stack.enter_context(atomic_path(self.path))
        return self

    def _open(self, height: int, width: int) -> None:
        assert self._tmp is not None
        writer: cv2.VideoWriter | MjpegAviWriter
        if self.codec == "MJPG":  # libjpeg-turbo frames in an AVI: the same frames give the same bytes
            if self.path.suffix.lower() != ".avi":
                raise file_error(self.path, "the MJPG codec is written as AVI", "use a .avi path for MJPG")
            writer = MjpegAviWriter(self._tmp, self.fps, width, height, self.quality)  # type: ignore[arg-type]
        else:
            writer = cv2.VideoWriter(str(self._tmp), _fourcc(self.codec), self.fps, (width, height))
        if not writer.isOpened():
            writer.release()
            raise file_error(
                self.path,
                f"OpenCV could not open a video writer (codec {self.codec}, {width}x{height}, {self.fps} fps)",
                "use a .mp4 (mp4v) or .avi (MJPG) path, another codec, or a writable folder",
            )
        self._writer = writer
        self._size = (height, width)

    def write(self, frame: np.ndarray) -> None:
        """Append one H x W x 3 uint8 RGB frame."""
        if self._stack is None:
            raise RuntimeError("VideoWriter.write() called outside its 'with' block")
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise file_error(
                self.path,
                f"frame {self.frames_written} has shape {frame.shape} and dtype {frame.dtype}",
                "pass H x W x 3 uint8 RGB frames",
            )
        if self._writer is None:
            self._open(frame.shape[0], frame.shape[1])
        if frame.shape[:2] != self._size:
            raise file_error(
                self.path,
                f"frame {self.frames_written} is {frame.shape[1]}x{frame.shape[0]} but the video is "
                f"{self._size[1]}x{self._size[0]}",  # type: ignore[index]
                "give all frames of a video the same size",
            )
        assert self._writer is not None
        self._writer.write(np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)))
        self.frames_written += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        assert self._stack is not None
        stack, self._stack = self._stack, None
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if exc_type is None:
            assert self._tmp is not None
            problem = None
            if self.frames_written == 0:
                problem = file_error(self.path, "no frames were written", "pass at least one frame")
            elif not self._tmp.is_file() or self._tmp.stat().st_size == 0:
                problem = file_error(self.path, "the video writer produced no data", "check the codec and free disk space")
            if problem is not None:
                with contextlib.suppress(type(problem)):
                    stack.__exit__(type(problem), problem, None)  # removes the temporary file
                raise problem
            stack.close()  # renames the temporary file onto self.path
            logger.debug("wrote %s (%d frames, %s)", self.path, self.frames_written, self.codec)
            return False
        stack.__exit__(exc_type, exc, tb)  # removes the temporary file
        return False


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray] | np.ndarray,
    fps: float,
    codec: str | None = None,
    quality: int | None = None,
) -> int:
    """Write RGB frames (an array T x H x W x 3 or any iterable of H x W x 3) to ``path``.

    Atomic: the file appears only when complete. The codec defaults to ``mp4v`` for
    ``.mp4`` and ``MJPG`` for ``.avi``; ``quality`` is MJPG's JPEG quality. Returns the
    number of frames written.
    """
    with VideoWriter(path, fps=fps, codec=codec, quality=quality) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.frames_written


__all__ = [
    "DEFAULT_CODECS",
    "DEFAULT_MJPEG_QUALITY",
    "is_random_access",
    "VideoInfo",
    "VideoWriter",
    "iter_frames",
    "read_frames",
    "video_info",
    "write_video",
]
