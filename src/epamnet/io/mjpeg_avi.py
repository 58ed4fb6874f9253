"""MJPEG AVI files written frame by frame: each frame a JPEG, in an AVI 1.0 container.

The frames are encoded by libjpeg-turbo (OpenCV's ``imencode``, the library its readers
decode with); the container is the plain RIFF layout every AVI reader knows, and the
one OpenCV's own MJPEG writer produces:

    RIFF 'AVI '
      LIST 'hdrl'   avih (main header), LIST 'strl' (strh: 'vids'/'MJPG', strf: BITMAPINFOHEADER)
      LIST 'movi'   one '00dc' chunk per frame (the JPEG, padded to an even size)
      idx1          per frame: '00dc', key frame, offset from 'movi', size

Why not OpenCV's MJPEG writer: it encodes with its own baseline JPEG encoder, several
times slower than libjpeg-turbo, and at the same quality setting its frames are larger
(``benchmarks/bench_prepared_video.py``); and no installed
library muxes ready JPEGs into AVI (OpenCV's writers take raw frames; FFmpeg's AVI
muxer would also write its version into the file). The same frames and quality give the
same bytes. Frame counts and sizes are filled into the headers when the file is closed.
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

AVIF_HASINDEX = 0x10
AVIF_ISINTERLEAVED = 0x100
AVIF_TRUSTCKTYPE = 0x800
AVIIF_KEYFRAME = 0x10
SUGGESTED_BUFFER = 1 << 20
#: RIFF sizes are 32-bit: an AVI 1.0 file stays under 4 GiB.
MAX_BYTES = (1 << 32) - 1


def _chunk(fourcc: bytes, payload: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) & 1)


def _list(kind: bytes, payload: bytes) -> bytes:
    return b"LIST" + struct.pack("<I", len(payload) + 4) + kind + payload


class MjpegAviWriter:
    """Writes ``width x height`` BGR uint8 frames (OpenCV's order) as JPEGs of ``quality``."""

    def __init__(self, path: str | Path, fps: float, width: int, height: int, quality: int) -> None:
        rate = Fraction(fps).limit_denominator(100_000)
        self.rate, self.scale = rate.numerator, rate.denominator
        self.fps, self.width, self.height = float(fps), width, height
        self.params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
        self.index: list[tuple[int, int]] = []  # (offset from 'movi', size) per frame
        self.largest = 0
        self._fh: BinaryIO | None = open(path, "wb")  # noqa: SIM115 - closed by release()
        self._fh.write(self._headers())
        self._movi = self._fh.tell() - 4  # offsets in idx1 count from the 'movi' tag

    def isOpened(self) -> bool:  # noqa: N802 - cv2.VideoWriter's name
        return self._fh is not None

    def _headers(self) -> bytes:
        frames, w, h = len(self.index), self.width, self.height
        avih = struct.pack(
            "<10I16x", round(1e6 / self.fps), self.largest * round(self.fps) or 1, 0,
            AVIF_HASINDEX | AVIF_ISINTERLEAVED | AVIF_TRUSTCKTYPE, frames, 0, 1, SUGGESTED_BUFFER, w, h,
        )  # fmt: skip
        strh = struct.pack(
            "<4s4sI2H8I4h", b"vids", b"MJPG", 0, 0, 0, 0, self.scale, self.rate, 0, frames, SUGGESTED_BUFFER,
            0xFFFFFFFF, 0, 0, 0, w, h,
        )  # fmt: skip
        strf = struct.pack("<I2i2H4s5I", 40, w, h, 1, 24, b"MJPG", w * h * 3, 0, 0, 0, 0)
        hdrl = _list(b"hdrl", _chunk(b"avih", avih) + _list(b"strl", _chunk(b"strh", strh) + _chunk(b"strf", strf)))
        movi_size = 4 + sum(8 + size + (size & 1) for _, size in self.index)
        idx1_size = 8 + 16 * frames
        riff_size = 4 + len(hdrl) + 8 + movi_size + idx1_size
        return b"RIFF" + struct.pack("<I", riff_size) + b"AVI " + hdrl + b"LIST" + struct.pack("<I", movi_size) + b"movi"

    def write(self, bgr: np.ndarray) -> None:
        """Append one frame (H x W x 3 uint8, BGR)."""
        assert self._fh is not None
        ok, jpeg = cv2.imencode(".jpg", bgr, self.params)
        if not ok:
            raise ValueError("libjpeg could not encode the frame")
        data = jpeg.tobytes()
        offset = self._fh.tell() - self._movi
        if offset + 8 + len(data) + 16 * (len(self.index) + 1) > MAX_BYTES:
            raise ValueError("the video would exceed the 4 GiB of an AVI 1.0 file")
        self._fh.write(_chunk(b"00dc", data))
        self.index.append((offset, len(data)))
        self.largest = max(self.largest, len(data))

    def release(self) -> None:
        """Write the index, fill in the headers' counts and sizes, close the file."""
        if self._fh is None:
            return
        fh, self._fh = self._fh, None
        try:
            fh.write(_chunk(b"idx1", b"".join(struct.pack("<4s3I", b"00dc", AVIIF_KEYFRAME, o, s) for o, s in self.index)))
            fh.seek(0)
            fh.write(self._headers())
        finally:
            fh.close()
