"""The acquire stage: resumable verified downloads against a loopback server, archive checks,
and assembling a raw dataset folder from archives and extracted folders."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from epamnet.errors import EpamnetError
from epamnet.io.skeleton import load_annotation_file, save_annotations
from epamnet.prepare.acquire import (
    NTU_PAGE,
    PKU_PAGE,
    TOYOTA_PAGE,
    acquire_real,
    download,
    find_archives,
    read_record,
    record_path,
)

# ----------------------------------------------------------------- loopback server


class FileServer:
    """Serves ``data`` at ``/file`` on 127.0.0.1 (port chosen by the OS).

    ``cuts``: per-request byte limits (popped in order; the response announces the full
    length, sends that many bytes and closes the connection). ``honor_range``: answer
    ``Range`` with 206, else ignore it (200 with everything). Every request's headers are
    kept in ``requests``.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.cuts: list[int] = []
        self.honor_range = True
        self.status = 200
        self.requests: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 5  # a stuck client cannot hold a handler thread forever

            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):  # noqa: N802 - http.server API
                owner.requests.append(dict(self.headers))
                if owner.status != 200:
                    self.send_error(owner.status)
                    return
                body, start, code = owner.data, 0, 200
                rng = self.headers.get("Range")
                if rng and owner.honor_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(owner.data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(owner.data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    body, code = owner.data[start:], 206
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                if code == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(owner.data) - 1}/{len(owner.data)}")
                self.end_headers()
                cut = owner.cuts.pop(0) if owner.cuts else None
                self.wfile.write(body if cut is None else body[:cut])
                self.wfile.flush()
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/file"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def payload() -> bytes:
    return np.random.default_rng(0).integers(0, 256, size=300_000, dtype=np.uint8).tobytes()


@pytest.fixture
def server(payload):
    with FileServer(payload) as srv:
        yield srv


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


FAST = {"chunk": 16_384, "timeout": 5.0, "retry_wait": 0.0, "progress": False}


# ----------------------------------------------------------------- download
def test_download_verified(tmp_path, server, payload):
    dest = tmp_path / "d" / "f.bin"
    assert download(server.url, dest, sha(payload), **FAST) == dest
    assert dest.read_bytes() == payload
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.bin"]  # no .part, no record when pinned
    assert "Range" not in server.requests[0]


def test_interrupted_download_resumes_on_next_call(tmp_path, server, payload):
    dest = tmp_path / "f.bin"
    server.cuts = [100_000]
    with pytest.raises(EpamnetError, match=r"download interrupted .*100000 bytes kept in .*f\.bin\.part: run again to resume"):
        download(server.url, dest, sha(payload), retries=0, **FAST)
    part = tmp_path / "f.bin.part"
    assert part.stat().st_size == 100_000 and not dest.exists()
    download(server.url, dest, sha(payload), retries=0, **FAST)
    assert server.requests[1]["Range"] == "bytes=100000-"
    assert dest.read_bytes() == payload
    assert not part.exists()


def test_interrupted_download_retries_within_call(tmp_path, server, payload):
    dest = tmp_path / "f.bin"
    server.cuts = [50_000, 70_000]  # two cuts, then a full answer
    download(server.url, dest, sha(payload), retries=2, **FAST)
    assert [r.get("Range") for r in server.requests] == [None, "bytes=50000-", "bytes=120000-"]
    assert dest.read_bytes() == payload


def test_server_ignoring_range_restarts_cleanly(tmp_path, server, payload):
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(b"stale bytes from another attempt" * 100)
    server.honor_range = False
    download(server.url, dest, sha(payload), **FAST)
    assert server.requests[0]["Range"] == f"bytes={32 * 100}-"
    assert dest.read_bytes() == payload


def test_complete_part_is_finished_without_new_bytes(tmp_path, server, payload):
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(payload)  # crashed after the last byte, before the rename
    download(server.url, dest, sha(payload), **FAST)
    assert dest.read_bytes() == payload
    assert server.requests[0]["Range"] == f"bytes={len(payload)}-"  # answered 416: nothing left


def test_wrong_checksum_is_rejected_and_nothing_remains(tmp_path, server, payload):
    dest = tmp_path / "f.bin"
    wrong = "0" * 64
    with pytest.raises(EpamnetError) as exc:
        download(server.url, dest, wrong, **FAST)
    msg = str(exc.value)
    assert server.url in msg and wrong in msg and sha(payload) in msg and "run again" in msg
    assert list(tmp_path.iterdir()) == []


def test_trust_on_first_use_record(tmp_path, server, payload):
    dest = tmp_path / "f.bin"
    download(server.url, dest, None, **FAST)
    record = record_path(dest)
    assert record.read_text() == f"{sha(payload)}  f.bin\n"
    assert read_record(dest) == sha(payload)
    # present and matching: verified without a request
    download(server.url, dest, None, **FAST)
    assert len(server.requests) == 1
    # the file on the server changes: the record catches it
    dest.unlink()
    server.data = payload[::-1]
    with pytest.raises(EpamnetError, match=rf"expected {sha(payload)} \(recorded in .*f\.bin\.sha256\), got {sha(payload[::-1])}"):
        download(server.url, dest, None, **FAST)
    assert not dest.exists() and not (tmp_path / "f.bin.part").exists()
    # a local file altered after download is caught too, and left for the user to inspect
    dest.write_bytes(b"edited")
    with pytest.raises(EpamnetError, match=rf"^{dest}: SHA-256 is .*delete .*f\.bin to download it again"):
        download(server.url, dest, None, **FAST)


def test_http_error_and_bad_arguments(tmp_path, server):
    server.status = 404
    with pytest.raises(EpamnetError, match=rf"^{server.url}: the server answered HTTP 404"):
        download(server.url, tmp_path / "f.bin", None, **FAST)
    server.status = 503  # temporary: retried, then reported with the way to resume
    with pytest.raises(EpamnetError, match=r"download interrupted \(the server answered HTTP 503"):
        download(server.url, tmp_path / "f.bin", None, retries=2, **FAST)
    assert len(server.requests) == 4
    with pytest.raises(EpamnetError, match="not a SHA-256"):
        download(server.url, tmp_path / "f.bin", "abc", **FAST)
    with pytest.raises(EpamnetError, match="only http"):
        download("ftp://example.org/f", tmp_path / "f.bin", None, **FAST)


def test_unreachable_server_is_a_clear_error(tmp_path):
    with FileServer(b"") as srv:
        url = srv.url
    with pytest.raises(EpamnetError, match=r"download interrupted \(cannot connect"):
        download(url, tmp_path / "f.bin", None, retries=1, **FAST)


# ----------------------------------------------------------------- fake datasets
def ntu_name(setup: int, cam: int = 1) -> str:
    return f"S{setup:03d}C{cam:03d}P001R001A001_rgb.avi"


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def write_tar(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def ntu_zips(downloads: Path, setups: range) -> None:
    for s in setups:
        write_zip(downloads / "ntu" / f"nturgbd_rgb_s{s:03d}.zip",
                  {f"nturgb+d_rgb/{ntu_name(s, c)}": f"video {s} {c}".encode() for c in (1, 2)})


def pku_folders(downloads: Path) -> None:
    root = downloads / "pku"
    for sub, files in {
        "RGB_VIDEO": {"0002-L.avi": b"v1", "0002-M.avi": b"v2", "notes.txt": b"ignored"},
        "Train_Label_PKU_final": {"0002-L.txt": b"1,10,50,1\n", "0002-M.txt": b"2,5,40,2\n"},
        "Split": {"cross-subject.txt": b"Training videos: 0002-L\n", "cross-view.txt": b"Training videos: 0002-M\n"},
    }.items():
        (root / sub).mkdir(parents=True)
        for name, data in files.items():
            (root / sub / name).write_bytes(data)


def test_find_archives_ntu_present(tmp_path):
    ntu_zips(tmp_path, range(1, 18))
    found = find_archives("ntu60", tmp_path)
    assert [p.name for p in found] == [f"nturgbd_rgb_s{s:03d}.zip" for s in range(1, 18)]


def test_find_archives_ntu_missing_names_file_url_and_folder(tmp_path):
    ntu_zips(tmp_path, [s for s in range(1, 18) if s != 5])
    with pytest.raises(EpamnetError) as exc:
        find_archives("ntu60", tmp_path)
    msg = str(exc.value)
    assert "nturgbd_rgb_s005.zip" in msg and "s004" not in msg
    assert NTU_PAGE in msg and f"{(tmp_path / 'ntu').resolve()}/" in msg
    assert "\n" not in msg


def test_find_archives_ntu120_all_missing_is_one_compact_line(tmp_path):
    ntu_zips(tmp_path, range(1, 18))
    with pytest.raises(EpamnetError, match=r"nturgbd_rgb_s018\.zip to nturgbd_rgb_s032\.zip") as exc:
        find_archives("ntu120", tmp_path)
    assert len(str(exc.value)) < 600


def test_find_archives_prefers_extracted_folder(tmp_path):
    folder = tmp_path / "ntu" / "nturgb+d_rgb"
    folder.mkdir(parents=True)
    for s in range(1, 18):
        (folder / ntu_name(s)).write_bytes(b"x")
    write_zip(tmp_path / "ntu" / "nturgbd_rgb_s001.zip", {"junk": b""})  # not even opened
    assert find_archives("ntu60", tmp_path) == [folder]


def test_corrupt_and_empty_zip(tmp_path):
    ntu_zips(tmp_path, range(1, 18))
    bad = tmp_path / "ntu" / "nturgbd_rgb_s003.zip"
    bad.write_bytes(os.urandom(2000))
    with pytest.raises(EpamnetError, match=rf"^{bad}: is not a readable zip archive .*download nturgbd_rgb_s003\.zip again from {NTU_PAGE}"):
        find_archives("ntu60", tmp_path)
    bad.write_bytes(b"")
    with pytest.raises(EpamnetError, match=rf"^{bad}: is empty"):
        find_archives("ntu60", tmp_path)
    write_zip(bad, {"readme.txt": b"wrong file"})
    with pytest.raises(EpamnetError, match="holds no file named like"):
        find_archives("ntu60", tmp_path)


def test_find_archives_pku_and_toyota(tmp_path):
    with pytest.raises(EpamnetError) as exc:
        find_archives("pku", tmp_path)
    msg = str(exc.value)
    assert "RGB_VIDEO/" in msg and "Split/" in msg and PKU_PAGE in msg and str((tmp_path / "pku").resolve()) in msg
    pku_folders(tmp_path)
    assert [p.name for p in find_archives("pku", tmp_path)] == ["RGB_VIDEO", "Train_Label_PKU_final", "Split"]
    (tmp_path / "pku" / "Split" / "cross-view.txt").unlink()
    with pytest.raises(EpamnetError, match=r"Split: lacks cross-view\.txt"):
        find_archives("pku", tmp_path)

    with pytest.raises(EpamnetError, match=rf"toyota_smarthome_mp4\.tar\.gz.*{TOYOTA_PAGE}"):
        find_archives("toyota", tmp_path)
    tar = write_tar(tmp_path / "toyota" / "toyota_smarthome_mp4.tar.gz", {"mp4/Walk_p02_r00_v00_c01.mp4": b"clip"})
    assert find_archives("toyota", tmp_path) == [tar]
    tar.write_bytes(b"\x1f\x8b" + os.urandom(500))  # gzip magic, garbage inside
    with pytest.raises(EpamnetError, match="is not a readable tar archive"):
        find_archives("toyota", tmp_path)


# ----------------------------------------------------------------- acquire_real
def skeleton_pickle(tmp_path: Path, names: list[str]) -> bytes:
    """A real annotation file in the NTU {split, annotations} form, as bytes."""
    anns = [
        {"frame_dir": n, "label": 0, "img_shape": (1080, 1920), "original_shape": (1080, 1920), "total_frames": 3,
         "keypoint": np.zeros((1, 3, 17, 2), np.float32), "keypoint_score": np.ones((1, 3, 17), np.float32)}
        for n in names
    ]
    path = tmp_path / "skeletons-src.pkl"
    save_annotations(path, anns, split={"xsub_train": names})
    data = path.read_bytes()
    path.unlink()
    return data


def test_acquire_ntu60_from_zips_and_download(tmp_path):
    downloads, raw = tmp_path / "downloads", tmp_path / "data" / "raw" / "ntu60"
    ntu_zips(downloads, range(1, 18))
    pkl = skeleton_pickle(tmp_path, [ntu_name(s)[:-8] for s in range(1, 18)])
    with FileServer(pkl) as srv:
        assert acquire_real("ntu60", downloads, raw, skeleton_url=srv.url, retries=0, progress=False) == raw
    videos = sorted(p.name for p in (raw / "nturgb+d_rgb").iterdir())
    assert videos == sorted(ntu_name(s, c) for s in range(1, 18) for c in (1, 2))
    assert (raw / "nturgb+d_rgb" / ntu_name(4, 2)).read_bytes() == b"video 4 2"
    anns, split = load_annotation_file(raw / "ntu60_2d.pkl")
    assert len(anns) == 17 and split is not None
    manifest = json.loads((raw / "MANIFEST.json").read_text())
    files = {f["path"]: f for f in manifest["files"]}
    assert len(files) == 35
    assert files["ntu60_2d.pkl"]["sha256"] == sha(pkl) == manifest["skeletons"]["sha256"]
    assert manifest["skeletons"]["sha256_pinned"] is False
    assert files[f"nturgb+d_rgb/{ntu_name(1)}"] == {"path": f"nturgb+d_rgb/{ntu_name(1)}", "size": 9, "sha256": None}
    assert read_record(downloads / "ntu" / "ntu60_2d.pkl") == sha(pkl)  # TOFU record for pinning
    assert sorted(p.name for p in raw.parent.iterdir()) == ["ntu60"]  # no temp dirs left


def test_acquire_pku_links_extracted_folders(tmp_path):
    downloads, raw = tmp_path / "downloads", tmp_path / "raw" / "pku"
    pku_folders(downloads)
    acquire_real("pku", downloads, raw, progress=False)
    src = downloads / "pku" / "RGB_VIDEO" / "0002-L.avi"
    dst = raw / "RGB_VIDEO" / "0002-L.avi"
    assert os.path.samefile(src, dst)  # linked (hard or symbolic), not copied
    assert not (raw / "RGB_VIDEO" / "notes.txt").exists()  # only files named by the dataset's rule
    assert (raw / "Split" / "cross-view.txt").read_bytes() == b"Training videos: 0002-M\n"
    files = {f["path"]: f for f in json.loads((raw / "MANIFEST.json").read_text())["files"]}
    assert set(files) == {"RGB_VIDEO/0002-L.avi", "RGB_VIDEO/0002-M.avi", "Train_Label_PKU_final/0002-L.txt",
                          "Train_Label_PKU_final/0002-M.txt", "Split/cross-subject.txt", "Split/cross-view.txt"}
    assert files["Train_Label_PKU_final/0002-L.txt"]["sha256"] == sha(b"1,10,50,1\n")
    assert files["RGB_VIDEO/0002-L.avi"]["sha256"] is None


def test_acquire_copy_mode_and_provided_skeletons(tmp_path):
    downloads, raw = tmp_path / "downloads", tmp_path / "raw" / "pku"
    pku_folders(downloads)
    pkl = skeleton_pickle(tmp_path, ["0002-L", "0002-M"])
    (downloads / "pku" / "pku_2d.pkl").write_bytes(pkl)
    acquire_real("pku", downloads, raw, link="copy", progress=False)
    dst = raw / "RGB_VIDEO" / "0002-L.avi"
    assert not dst.is_symlink() and not os.path.samefile(downloads / "pku" / "RGB_VIDEO" / "0002-L.avi", dst)
    assert (raw / "pku_2d.pkl").read_bytes() == pkl


def test_acquire_toyota_from_tar_and_truncated_tar_leaves_nothing(tmp_path):
    downloads, raw = tmp_path / "downloads", tmp_path / "raw" / "toyota"
    clips = {f"mp4/{a}_p{p:02d}_r00_v{v:02d}_c01.mp4": os.urandom(20_000)
             for a in ("Walk", "Drink.Fromcup", "Cook.Cleandishes") for p in (2, 3) for v in (0, 1)}
    tar = write_tar(downloads / "toyota" / "toyota_smarthome_mp4.tar.gz", {**clips, "mp4/../../evil.mp4": b"x"})
    acquire_real("toyota", downloads, raw, progress=False)
    assert sorted(p.name for p in (raw / "mp4").iterdir()) == sorted(Path(n).name for n in clips)
    assert (raw / "mp4" / "Walk_p02_r00_v00_c01.mp4").read_bytes() == clips["mp4/Walk_p02_r00_v00_c01.mp4"]
    assert not (tmp_path / "evil.mp4").exists() and not (raw.parent / "evil.mp4").exists()
    before = (raw / "MANIFEST.json").read_bytes()

    data = tar.read_bytes()
    tar.write_bytes(data[: len(data) * 2 // 3])  # the download was cut short
    with pytest.raises(EpamnetError, match=rf"^{tar}: is corrupt or truncated .*download it again from {TOYOTA_PAGE}"):
        acquire_real("toyota", downloads, raw, progress=False)
    assert (raw / "MANIFEST.json").read_bytes() == before  # the previous complete folder is untouched
    assert sorted(p.name for p in raw.parent.iterdir()) == ["toyota"]  # no half-built folder


def test_acquire_fails_fast_before_downloading(tmp_path):
    with pytest.raises(EpamnetError, match="nturgbd_rgb_s001.zip to nturgbd_rgb_s017.zip"):
        acquire_real("ntu60", tmp_path, tmp_path / "raw" / "ntu60", skeleton_url="http://127.0.0.1:9/never", progress=False)
    assert not (tmp_path / "raw").exists()
    with pytest.raises(EpamnetError, match="unknown real dataset 'synthetic'"):
        acquire_real("synthetic", tmp_path, tmp_path / "raw" / "x")


@pytest.mark.parametrize("compress", ["none", "gzip", "xz"])
@pytest.mark.parametrize("cut", ["mid-data", "at-header", "before-end-marker"])
def test_every_kind_of_truncated_tar_is_caught(tmp_path, compress, cut):
    """tarfile alone reads a cut archive as a shorter, valid one; acquire must not.

    The cut tar is written as-is or inside a complete gzip/xz stream (the compressed
    case where the compressor's own end check cannot help). The compression is detected
    from the magic bytes, so the .tar.gz name is used for all three.
    """
    downloads = tmp_path / "downloads"
    clips = {f"mp4/Walk_p{p:02d}_r00_v00_c01.mp4": os.urandom(3000) for p in range(2, 6)}
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w") as tf:
        for n, d in clips.items():
            info = tarfile.TarInfo(n)
            info.size = len(d)
            tf.addfile(info, io.BytesIO(d))
    member = 512 + 3072  # header + data padded to 512
    keep = {"mid-data": 2 * member + 1000, "at-header": 2 * member, "before-end-marker": 4 * member}[cut]
    data = plain.getvalue()[:keep]
    assert keep < len(plain.getvalue())
    path = downloads / "toyota" / "toyota_smarthome_mp4.tar.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes({"none": data, "gzip": gzip.compress(data), "xz": lzma.compress(data)}[compress])
    with pytest.raises(EpamnetError, match=rf"^{path}: is corrupt or truncated"):
        acquire_real("toyota", downloads, tmp_path / "raw" / "toyota", progress=False)
    assert not (tmp_path / "raw").exists() or list((tmp_path / "raw").iterdir()) == []
