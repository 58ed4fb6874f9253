"""Benchmark: which video format the crop stage should write, by decode time, disk size and fidelity.

A training clip needs a few frames of each prepared crop video (16 of 70-300 in the paper's
RGB stream), at random positions. This compares, on the same generated crop clips
(``scenes.render_sample``: 224 x 224 frames of one or two persons in a textured room with
sensor noise; ``--clips`` clips of 70-140 frames, as NTU's, and as many of 300-600, as
longer untrimmed-style clips; ``--lengths`` sets the groups):

- ``mp4v``: MPEG-4 Part 2 in MP4 through FFmpeg (the crop stage's former format); an
  inter-coded stream is read from the first frame up to the last frame a clip needs
  (``epamnet.io.video.read_frames``'s sequential path);
- ``mjpeg qNN``: MJPEG AVI at JPEG quality NN, as the crop stage writes it (libjpeg-turbo
  JPEGs in an AVI container, ``epamnet.io.mjpeg_avi``) and read through its AVI index,
  decoding only the sampled frames (the random-access path);
- with decord installed: decord's ``get_batch`` on the mp4v files (what mmaction2 would use).

Per format, per clip of 16 frames sampled as a training clip samples them (uniform
segments, a random offset in each): the median decode time and its ratio to mp4v,
kilobytes per frame, the disk size of 114,480 clips (NTU-120) per 100 frames of average
clip length, the PSNR of the decoded frames against the frames before encoding, and the
time to write a frame. The last line compares writing MJPEG at the crop stage's quality
with OpenCV's own MJPEG writer (its built-in JPEG encoder), the crop stage's former writer.
Everything is pinned to one core (OpenCV and decord at one thread).

Run: ``PYTHONPATH=src python benchmarks/bench_prepared_video.py [--clips 8] [--repeats 5]``.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from epamnet.io.video import read_frames, write_video
from epamnet.loader.sampling import sample_frame_indices
from epamnet.prepare.crop import PREPARED_QUALITY
from scenes import FPS, render_sample

NTU120_CLIPS = 114_480
CLIP_LEN = 16


def psnr(decoded: np.ndarray, source: np.ndarray) -> float:
    mse = float(np.mean((decoded.astype(np.float64) - source.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8, help="clips per length group")
    parser.add_argument("--lengths", type=int, nargs="+", default=[70, 140, 300, 600],
                        help="pairs of min and max frames, one group each")
    parser.add_argument("--repeats", type=int, default=5, help="sampled clips per video and format")
    parser.add_argument("--qualities", type=int, nargs="+", default=[75, PREPARED_QUALITY, 95])
    args = parser.parse_args()
    logging.disable(logging.INFO)
    core = sorted(os.sched_getaffinity(0))[-1]
    os.sched_setaffinity(0, {core})
    cv2.setNumThreads(1)
    try:
        import decord  # type: ignore[import-not-found]
    except ImportError:
        decord = None

    print(f"pinned to CPU {core}; OpenCV {cv2.__version__}; decord {'installed' if decord else 'not installed'}; "
          f"load average {os.getloadavg()[0]:.2f}; {args.repeats} training draws of {CLIP_LEN} frames per clip")
    groups = list(zip(args.lengths[::2], args.lengths[1::2], strict=True))
    for g, (lo, hi) in enumerate(groups):
        measure(args, lo, hi, np.random.default_rng(g), decord)
    print(f"prepared format of the crop stage: mjpeg q{PREPARED_QUALITY}. Disk: clips x 100 frames x kB/frame, "
          "scale by the real mean clip length / 100; generated scenes compress unlike camera video, so measure "
          "on real crops before sizing a disk")


def measure(args: argparse.Namespace, lo: int, hi: int, rng: np.random.Generator, decord) -> None:
    """Write, time and compare every format on ``args.clips`` clips of ``lo``-``hi`` frames."""
    lengths = np.linspace(lo, hi, args.clips).round().astype(int)
    sources = [render_sample(int(n), 2 if i % 3 == 2 else 1, rng)[0] for i, n in enumerate(lengths)]
    formats = {"mp4v": (".mp4", {})} | {f"mjpeg q{q}": (".avi", {"quality": q}) for q in args.qualities}
    draws = np.random.default_rng(1)
    indices = [[sample_frame_indices(len(s), CLIP_LEN, test_mode=False, rng=draws) for _ in range(args.repeats)]
               for s in sources]
    print(f"{args.clips} generated crop clips 224x224 of {lo}-{hi} frames:")
    rows = {}
    with tempfile.TemporaryDirectory(prefix="bench_prepared_") as tmp:
        root = Path(tmp)
        for name, (suffix, kwargs) in formats.items():
            paths = []
            t0 = time.perf_counter()
            for i, frames in enumerate(sources):
                path = root / f"{name.replace(' ', '_')}_{i}{suffix}"
                write_video(path, frames, fps=FPS, **kwargs)
                paths.append(path)
            encode = (time.perf_counter() - t0) / sum(len(s) for s in sources)
            size = sum(p.stat().st_size for p in paths) / sum(len(s) for s in sources)
            times, quality = [], []
            read_frames(paths[0], indices[0][0])  # warm-up
            for path, source, draws_of in zip(paths, sources, indices, strict=True):
                for inds in draws_of:
                    t0 = time.perf_counter()
                    read_frames(path, inds)
                    times.append(time.perf_counter() - t0)
                quality.append(psnr(read_frames(path), source))
            rows[name] = (statistics.median(times), size, statistics.mean(quality), encode)
            if name == "mp4v" and decord is not None:
                times = []
                for path, draws_of in zip(paths, indices, strict=True):
                    reader = decord.VideoReader(str(path), num_threads=1)
                    for inds in draws_of:
                        t0 = time.perf_counter()
                        reader.get_batch(list(inds)).asnumpy()
                        times.append(time.perf_counter() - t0)
                rows["mp4v, decord"] = (statistics.median(times), size, rows["mp4v"][2], float("nan"))
        opencv = opencv_writer_seconds(root, sources)

    base = rows["mp4v"][0]
    print(f"{'format':<14} {'decode 16 frames':>17} {'vs mp4v':>8} {'kB/frame':>9} {'NTU-120 GB/100 fr':>18} "
          f"{'PSNR dB':>8} {'write/frame':>12}")
    for name, (t, size, q, enc) in rows.items():
        gb = NTU120_CLIPS * 100 * size / 1e9
        print(f"{name:<14} {t * 1e3:14.2f} ms {base / t:7.2f}x {size / 1e3:9.2f} {gb:18.1f} {q:8.1f} "
              f"{enc * 1e3:9.3f} ms")
    ours = rows[f"mjpeg q{PREPARED_QUALITY}"][3]
    print(f"writing mjpeg q{PREPARED_QUALITY}: ours {ours * 1e3:.3f} ms/frame, OpenCV's MJPEG writer "
          f"{opencv * 1e3:.3f} ms/frame: {opencv / ours:.2f}x")


def opencv_writer_seconds(root: Path, sources: list[np.ndarray]) -> float:
    """Seconds per frame of OpenCV's own MJPEG writer at the crop stage's quality (same frames)."""
    t0 = time.perf_counter()
    for i, frames in enumerate(sources):
        h, w = frames.shape[1:3]
        writer = cv2.VideoWriter(str(root / f"opencv_{i}.avi"), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"),
                                 FPS, (w, h))  # fmt: skip
        writer.set(cv2.VIDEOWRITER_PROP_QUALITY, float(PREPARED_QUALITY))
        for frame in frames:
            writer.write(np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)))
        writer.release()
    return (time.perf_counter() - t0) / sum(len(s) for s in sources)




if __name__ == "__main__":
    main()
