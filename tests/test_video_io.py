"""Video I/O: round trips, frame selection, the streaming atomic writer, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from epamnet.errors import EpamnetError
from epamnet.io.video import (
    VideoInfo,
    VideoWriter,
    is_random_access,
    iter_frames,
    read_frames,
    video_info,
    write_video,
)

H, W, T = 48, 64, 12


def smooth_frames(num: int = T, height: int = H, width: int = W) -> np.ndarray:
    """Smooth colour gradients drifting over time: easy for lossy codecs to keep."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for t in range(num):
        r = 60 + 120 * xx / width + 4 * t
        g = 50 + 150 * yy / height
        b = np.full_like(xx, 90 + 5 * t)
        frames.append(np.stack([r, g, b], axis=-1))
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


def leftovers(folder: Path) -> list[str]:
    """Files in ``folder`` (temporary names start with a dot)."""
    return sorted(p.name for p in folder.iterdir())


def assert_one_line(err: pytest.ExceptionInfo, *needles: str) -> None:
    message = str(err.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_round_trip_keeps_count_size_fps_and_pixels(tmp_path: Path, suffix: str) -> None:
    frames = smooth_frames()
    path = tmp_path / f"clip{suffix}"
    assert write_video(path, frames, fps=25) == T
    assert video_info(path) == VideoInfo(frames=T, fps=25.0, height=H, width=W)
    assert video_info(path, count_frames=True).frames == T
    decoded = read_frames(path)
    assert decoded.shape == (T, H, W, 3) and decoded.dtype == np.uint8
    error = np.abs(decoded.astype(np.int16) - frames.astype(np.int16))
    assert error.mean() < 4.0, error.mean()
    # RGB order is kept: the red channel carries the horizontal gradient.
    assert decoded[0, :, -1, 0].mean() > decoded[0, :, 0, 0].mean() + 80
    assert leftovers(tmp_path) == [path.name]


def test_read_selected_indices_in_given_order(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    write_video(path, smooth_frames(), fps=30)
    full = read_frames(path)
    picked = read_frames(path, [7, 0, 7, 3])
    np.testing.assert_array_equal(picked, full[[7, 0, 7, 3]])
    assert read_frames(path, []).shape == (0, H, W, 3)
    streamed = list(iter_frames(path))
    assert len(streamed) == T
    np.testing.assert_array_equal(np.stack(streamed), full)


def test_index_beyond_decoded_frames_names_the_count(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    write_video(path, smooth_frames(), fps=30)
    with pytest.raises(EpamnetError) as err:
        read_frames(path, [0, T])
    assert_one_line(err, str(path), f"decodes only {T} frames")
    with pytest.raises(EpamnetError):
        read_frames(path, [-1])


def test_streaming_writer_appears_only_when_closed(tmp_path: Path) -> None:
    path = tmp_path / "long.mp4"
    frames = smooth_frames(30)
    with VideoWriter(path, fps=20) as writer:
        for frame in frames:
            writer.write(frame)
            assert not path.exists()
    assert writer.frames_written == 30
    assert video_info(path, count_frames=True) == VideoInfo(frames=30, fps=20.0, height=H, width=W)
    # A generator works with write_video too (frames are never held all at once).
    gen_path = tmp_path / "gen.avi"
    assert write_video(gen_path, (f for f in frames[:5]), fps=10, codec="XVID") == 5
    assert read_frames(gen_path).shape == (5, H, W, 3)
    assert leftovers(tmp_path) == ["gen.avi", "long.mp4"]


def test_writer_error_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "out.avi"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(path, fps=30) as writer:
            writer.write(smooth_frames(1)[0])
            raise RuntimeError("boom")
    assert leftovers(tmp_path) == []


def test_writer_rejects_bad_frames_and_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    with pytest.raises(EpamnetError) as err:
        write_video(path, [smooth_frames(1)[0], smooth_frames(1, H + 2, W)[0]], fps=30)
    assert_one_line(err, str(path), "same size")
    with pytest.raises(EpamnetError) as err:
        write_video(path, [np.zeros((H, W, 3), np.float32)], fps=30)
    assert_one_line(err, "uint8")
    with pytest.raises(EpamnetError) as err:
        write_video(path, [], fps=30)
    assert_one_line(err, "no frames")
    assert leftovers(tmp_path) == []


def test_writer_that_fails_to_open_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "out.avi"
    with pytest.raises(EpamnetError) as err:
        write_video(path, smooth_frames(3), fps=30, codec="ZZZZ")
    assert_one_line(err, str(path), "could not open a video writer")
    with pytest.raises(EpamnetError) as err:
        write_video(tmp_path / "out.xyz", smooth_frames(3), fps=30)
    assert_one_line(err, "no default codec")
    with pytest.raises(EpamnetError):
        write_video(path, smooth_frames(3), fps=0)
    assert leftovers(tmp_path) == []


def test_missing_and_empty_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    for call in (video_info, read_frames, lambda p: list(iter_frames(p))):
        with pytest.raises(EpamnetError) as err:
            call(missing)
        assert_one_line(err, str(missing), "not found")
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    with pytest.raises(EpamnetError) as err:
        read_frames(empty)
    assert_one_line(err, str(empty), "empty")


def test_random_bytes_are_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "noise.avi"
    path.write_bytes(np.random.default_rng(0).bytes(20_000))
    with pytest.raises(EpamnetError) as err:
        read_frames(path)
    assert_one_line(err, str(path), "re-generate")


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_truncated_video_is_an_error_and_a_transcode_leaves_nothing(tmp_path: Path, suffix: str) -> None:
    good = tmp_path / f"good{suffix}"
    write_video(good, smooth_frames(40), fps=30)
    bad = tmp_path / f"bad{suffix}"
    data = good.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(EpamnetError) as err:
        read_frames(bad)
    assert_one_line(err, str(bad))
    # Copying a corrupt video through the streaming writer raises and writes nothing.
    out = tmp_path / "copy.mp4"
    with pytest.raises(EpamnetError):
        with VideoWriter(out, fps=30) as writer:
            for frame in iter_frames(bad):
                writer.write(frame)
    assert leftovers(tmp_path) == sorted([good.name, bad.name])


# ---------------------------------------------------------------- MJPEG AVI: random access


def _noisy_frames(num: int = 30) -> np.ndarray:
    """Frames that differ from each other everywhere (a seek to the wrong frame shows)."""
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (num, 32, 40, 3), dtype=np.uint8)


def test_mjpeg_random_access_equals_a_sequential_read(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    frames = _noisy_frames()
    write_video(path, frames, fps=30)  # .avi: MJPG (libjpeg-turbo frames in an AVI, io/mjpeg_avi.py)
    assert is_random_access(path)
    sequential = np.stack(list(iter_frames(path)))  # every frame, in order, through the same reader
    assert sequential.shape == frames.shape
    for wanted in ([29, 0, 17, 17, 3], [5], list(range(30)), [28, 1, 14, 2, 27]):
        np.testing.assert_array_equal(read_frames(path, wanted), sequential[wanted])
    np.testing.assert_array_equal(read_frames(path), sequential)
    with pytest.raises(EpamnetError) as err:
        read_frames(path, [3, 30])
    assert_one_line(err, "clip.avi", "frame 30", "only 30 frames", "total_frames")


def _spoil_jpeg(path: Path, frame: int) -> None:
    """Overwrite the start-of-image marker of JPEG frame ``frame`` (its bytes stay in place)."""
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 2) if data[i : i + 3] == b"\xff\xd8\xff"]
    data[starts[frame] : starts[frame] + 2] = b"\x00\x00"
    path.write_bytes(bytes(data))


def test_mjpeg_reads_decode_only_the_frames_asked_for(tmp_path: Path) -> None:
    """A frame that cannot decode is harmless unless it is asked for: nothing else is decoded."""
    path = tmp_path / "clip.avi"
    frames = _noisy_frames(12)
    write_video(path, frames, fps=30)
    good = read_frames(path, [0, 4, 6, 11])
    _spoil_jpeg(path, 5)
    np.testing.assert_array_equal(read_frames(path, [0, 4, 6, 11]), good)  # frame 5 lies between: skipped
    with pytest.raises(EpamnetError) as err:
        read_frames(path, [0, 5])
    assert_one_line(err, "clip.avi", "frame 5", "does not decode")


def test_mjpeg_bytes_are_the_same_every_time_and_quality_counts(tmp_path: Path) -> None:
    frames = _noisy_frames(6)
    a, b, low = tmp_path / "a.avi", tmp_path / "b.avi", tmp_path / "low.avi"
    write_video(a, frames, fps=30, quality=90)
    write_video(b, iter(frames), fps=30, quality=90)
    write_video(low, frames, fps=30, quality=40)
    assert a.read_bytes() == b.read_bytes()
    assert low.stat().st_size < a.stat().st_size
    with pytest.raises(EpamnetError) as err:
        write_video(tmp_path / "c.mp4", frames, fps=30, quality=90)  # mp4v has no quality
    assert_one_line(err, "c.mp4", "quality 90", "MJPG")


@pytest.mark.parametrize("fps", [30.0, 30000 / 1001, 12.5])
def test_mjpeg_avi_is_the_jpegs_of_the_frames_and_ffmpeg_reads_it_too(tmp_path: Path, fps: float) -> None:
    """The written AVI holds libjpeg's JPEG of each frame, and its headers and index are
    right: our reader returns exactly each frame's decoded JPEG, by index; FFmpeg, reading
    sequentially with its own JPEG decoder, finds the same count, rate and size and frames
    within a grey level or two of ours."""
    import cv2

    path = tmp_path / "clip.avi"
    frames = smooth_frames(7)
    write_video(path, frames, fps=fps, quality=85)
    info = video_info(path)
    assert (info.frames, info.height, info.width) == (7, H, W)
    assert info.fps == pytest.approx(fps, rel=1e-6)
    bgr = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in frames]
    expected = np.stack([
        cv2.imdecode(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 85])[1], cv2.IMREAD_COLOR_RGB) for f in bgr
    ])
    np.testing.assert_array_equal(read_frames(path, [6, 0, 3]), expected[[6, 0, 3]])
    np.testing.assert_array_equal(read_frames(path), expected)
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 7 and cap.get(cv2.CAP_PROP_FPS) == pytest.approx(fps, rel=1e-4)
    by_ffmpeg = []
    while (got := cap.read())[0]:
        by_ffmpeg.append(cv2.cvtColor(got[1], cv2.COLOR_BGR2RGB))
    cap.release()
    assert len(by_ffmpeg) == 7
    for ours, theirs in zip(expected, by_ffmpeg, strict=True):
        assert np.abs(ours.astype(int) - theirs).mean() < 2


def test_other_videos_are_read_sequentially_and_quietly(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    """MPEG-4 in AVI or MP4 is not random access: read from the first frame, same frames;
    and OpenCV's MJPEG reader is not tried on them (it would print a warning per file)."""
    for name, codec in (("xvid.avi", "XVID"), ("clip.mp4", None)):
        path = tmp_path / name
        write_video(path, smooth_frames(), fps=30, codec=codec)
        capfd.readouterr()
        assert not is_random_access(path)
        full = read_frames(path)
        np.testing.assert_array_equal(read_frames(path, [9, 2, 9]), full[[9, 2, 9]])
        assert "WARN" not in capfd.readouterr().err
