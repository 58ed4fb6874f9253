"""The ``acquire`` stage for real datasets: download what is public, find what is licence-gated.

Two kinds of input:

* **Downloadable** (:data:`REMOTE_FILES`): mmaction2's pre-extracted 2D skeleton pickles of
  NTU RGB+D 60/120. :func:`download` fetches them resumably (HTTP ``Range``), verifies the
  SHA-256 and renames them into place only when complete. No checksum is published for
  them, so none is pinned: the first download records the measured hash next to the file
  (``<file>.sha256``, ``sha256sum`` format) and later runs verify against that record.
* **Licence-gated** (:data:`SOURCES`): the RGB videos of NTU RGB+D, PKU-MMD and Toyota
  Smarthome must be requested from their owners and downloaded by hand into
  ``<downloads>/<group>/`` (``ntu``, ``pku`` or ``toyota``), either as the archives the
  owners distribute or already extracted. :func:`find_archives` checks they are there and
  readable, and otherwise says exactly what to get, from where, and where to put it.

:func:`acquire_real` assembles ``data/raw/<dataset>/`` in the layout of docs/pipeline.md
from those sources: extracted folders are hard-linked (or symlinked) file by file, never
copied; archives are extracted member by member. Only files whose names follow the
dataset's naming rule are taken, by base name, so an archive cannot write outside the
folder. Everything is built in a temporary folder that replaces ``raw/<dataset>`` only
when complete, with ``MANIFEST.json`` written last.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import http.client
import json
import logging
import lzma
import os
import posixpath
import re
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

from tqdm import tqdm

from epamnet.datasets import ntu, pku
from epamnet.datasets.registry import get_dataset
from epamnet.errors import DiskFullError, EpamnetError, file_error
from epamnet.io.atomic import atomic_dir, atomic_write, is_disk_full, write_text
from epamnet.io.digest import sha256_file

logger = logging.getLogger(__name__)

LinkMode = Literal["auto", "hardlink", "symlink", "copy"]

NTU_PAGE = "https://rose1.ntu.edu.sg/dataset/actionRecognition/"
PKU_PAGE = "https://www.icst.pku.edu.cn/struct/Projects/PKUMMD.html"
TOYOTA_PAGE = "https://project.inria.fr/toyotasmarthome/"

VIDEO_SUFFIXES = frozenset({".avi", ".mp4"})
_HEX64 = re.compile(r"[0-9a-f]{64}")


# --------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class RemoteFile:
    """A file anyone can download; ``sha256`` is its published hash, or None if none is."""

    name: str
    url: str
    sha256: str | None


#: The downloadable files. No SHA-256 or md5 of these pickles is published (searched:
#: mmaction2's tools/data/skeleton/README.md, its docs and issue threads, pyskl's data
#: list). We never invent a pin: ``sha256`` stays None until the project can cite one;
#: meanwhile :func:`download` records the measured hash on first download (trust on
#: first use) and users can pin it with ``skeleton_sha256``.
#: They are the datasets' own skeleton files (the adapters' ``skeletons_file``) under one URL.
REMOTE_FILES: dict[str, RemoteFile] = {
    name: RemoteFile(name, f"https://download.openmmlab.com/mmaction/v1.0/skeleton/data/{name}", None)
    for name in (get_dataset(dataset).skeletons_file for dataset in ("ntu60", "ntu120"))
}


@dataclass(frozen=True)
class ManualItem:
    """One licence-gated piece of a dataset, downloaded by hand.

    Accepted as the extracted ``folder`` (preferred: linked, not copied) or as one of the
    ``archives`` (zip or tar), both directly inside ``<downloads>/<group>/``. ``member`` is
    the pattern a file's base name must match; matching files go to ``raw/<dataset>/<dest>/``.
    """

    name: str  # how messages call it, e.g. "nturgbd_rgb_s003.zip"
    what: str  # what it holds, e.g. "NTU RGB+D RGB videos, setup 3"
    archives: tuple[str, ...]
    folder: str
    member: str
    dest: str
    required: tuple[str, ...] = ()  # base names that must all be present

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.member)


@dataclass(frozen=True)
class DatasetSource:
    """Where a real dataset's raw files come from."""

    dataset: str
    group: str  # sub-folder of the downloads folder
    page: str  # the owners' request/download page
    items: tuple[ManualItem, ...]

    @property
    def skeletons(self) -> str:
        """File name of the provided skeletons inside ``raw/<dataset>/`` (the adapter's)."""
        return get_dataset(self.dataset).skeletons_file

    @property
    def remote(self) -> RemoteFile | None:
        """The downloadable skeletons; None where a hand-supplied pickle is optional."""
        return REMOTE_FILES.get(self.skeletons)


def _archive_names(stem: str) -> tuple[str, ...]:
    return tuple(f"{stem}{ext}" for ext in (".zip", ".tar", ".tar.gz", ".tgz"))


def _folder_item(folder: str, what: str, member: str, required: tuple[str, ...] = ()) -> ManualItem:
    """A piece handed out as one folder (or that folder archived), kept under its own name."""
    return ManualItem(f"{folder}/", what, _archive_names(folder), folder, member, folder, required)


def _ntu_items(dataset: str) -> tuple[ManualItem, ...]:
    """One archive per setup (NTU60 is setups S001-S017, NTU120 adds S018-S032)."""
    info = get_dataset(dataset)
    return tuple(
        ManualItem(
            name=f"nturgbd_rgb_s{s:03d}.zip",
            what=f"NTU RGB+D RGB videos, setup {s}",
            archives=(f"nturgbd_rgb_s{s:03d}.zip",),
            folder=info.video_folder,
            member=rf"S{s:03d}C\d{{3}}P\d{{3}}R\d{{3}}A\d{{3}}{re.escape(info.video_suffix)}",
            dest=info.video_folder,
        )
        for s in range(1, ntu.MAX_SETUP[dataset] + 1)
    )


_PKU = get_dataset("pku")
_PKU_ITEMS = (
    _folder_item(_PKU.video_folder, "PKU-MMD RGB videos", rf"\d{{4}}-[LMR]{re.escape(_PKU.video_suffix)}"),
    _folder_item(
        pku.LABEL_FOLDER,
        "PKU-MMD label files <dddd>-<L|M|R>.txt, from the dataset's label archive",
        r"\d{4}-[LMR]\.txt",
    ),
    _folder_item(
        pku.SPLIT_FOLDER,
        f"PKU-MMD protocol files {', '.join(pku.SPLIT_FILES.values())}",
        r"cross-(?:subject|view)\.txt",
        required=tuple(pku.SPLIT_FILES.values()),
    ),
)

_TOYOTA = get_dataset("toyota")
_TOYOTA_ITEMS = (
    ManualItem(
        name="toyota_smarthome_mp4.tar.gz",
        what="Toyota Smarthome trimmed mp4 clips",
        archives=("toyota_smarthome_mp4.tar.gz", "toyota_smarthome_mp4.tar", "toyota_smarthome_mp4.zip"),
        folder=_TOYOTA.video_folder,
        member=rf"[A-Za-z]+(?:\.[A-Za-z]+)*_p\d{{2}}_r\d{{2}}_v\d{{2}}_c\d{{2}}{re.escape(_TOYOTA.video_suffix)}",
        dest=_TOYOTA.video_folder,
    ),
)

#: The real datasets, by name.
SOURCES: dict[str, DatasetSource] = {
    source.dataset: source
    for source in (
        DatasetSource("ntu60", "ntu", NTU_PAGE, _ntu_items("ntu60")),
        DatasetSource("ntu120", "ntu", NTU_PAGE, _ntu_items("ntu120")),
        DatasetSource("pku", "pku", PKU_PAGE, _PKU_ITEMS),
        DatasetSource("toyota", "toyota", TOYOTA_PAGE, _TOYOTA_ITEMS),
    )
}


def _source(dataset: str) -> DatasetSource:
    try:
        return SOURCES[dataset]
    except KeyError:
        raise EpamnetError(
            f"acquire: unknown real dataset {dataset!r}; pick one of {', '.join(SOURCES)}"
        ) from None


# --------------------------------------------------------------------------- hashing
def record_path(dest: str | os.PathLike[str]) -> Path:
    """Where the measured hash of an unpinned download is recorded: ``<dest>.sha256``."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".sha256")


def read_record(dest: str | os.PathLike[str]) -> str | None:
    """The hash recorded for ``dest`` (``sha256sum`` format), or None if there is no record."""
    record = record_path(dest)
    if not record.exists():
        return None
    text = record.read_text(encoding="utf-8").split()
    if not text or not _HEX64.fullmatch(text[0].lower()):
        raise file_error(record, "is not a SHA-256 record (<64 hex digits>  <name>)", f"delete it; the next run re-measures {Path(dest).name}")
    return text[0].lower()


def _write_record(dest: Path, digest: str) -> None:
    write_text(record_path(dest), f"{digest}  {dest.name}\n")


def _check_pin(sha256: str | None, what: str) -> str | None:
    if sha256 is None:
        return None
    pin = sha256.strip().lower()
    if not _HEX64.fullmatch(pin):
        raise EpamnetError(f"{what}: {sha256!r} is not a SHA-256 (64 hex digits); fix the value or leave it unset")
    return pin


# --------------------------------------------------------------------------- download
class _Interrupted(Exception):
    """A transfer that stopped early; the ``.part`` file keeps what arrived."""


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes 100-199/1000`` -> (100, 1000); ``bytes */1000`` -> (None, 1000)."""
    m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", value or "")
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) is not None else None
    total = int(m.group(2)) if m.group(2) != "*" else None
    return start, total


def _transfer(url: str, part: Path, *, chunk: int, timeout: float, progress: bool) -> None:
    """One HTTP request: append to ``part`` from its current size (or restart at 0)."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "epamnet-acquire/1", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            _, total = _parse_content_range(exc.headers.get("Content-Range"))
            if total == offset:
                logger.info("%s: %s already holds all %d bytes", url, part, total)
                return
            part.unlink()
            raise _Interrupted(f"the server refused to resume at byte {offset}; restarting") from None
        if exc.code == 429 or exc.code >= 500:  # busy or failing for now: worth another try
            raise _Interrupted(f"the server answered HTTP {exc.code} {exc.reason}") from None
        raise EpamnetError(
            f"{url}: the server answered HTTP {exc.code} {exc.reason}; check the URL, your network or proxy, and run again"
        ) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise _Interrupted(f"cannot connect: {getattr(exc, 'reason', exc)}") from None

    with resp:
        length = resp.headers.get("Content-Length")
        expected = int(length) if length is not None and length.isdigit() else None
        if resp.status == 206:
            start, total = _parse_content_range(resp.headers.get("Content-Range"))
            if start != offset:
                part.unlink()
                raise _Interrupted(f"the server resumed at byte {start}, not {offset}; restarting")
            mode = "ab"
            logger.info("%s: resuming at byte %d", url, offset)
        elif resp.status == 200:
            if offset:
                logger.info("%s: the server ignored the resume request; restarting from byte 0", url)
            offset, total, mode = 0, expected, "wb"
        else:
            raise EpamnetError(f"{url}: unexpected HTTP {resp.status}; check the URL and run again")

        received = 0
        bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=part.name.removesuffix(".part"), disable=None if progress else True, leave=False)
        with bar, open(part, mode) as fh:
            while True:
                try:
                    block = resp.read(chunk)
                except (http.client.HTTPException, OSError) as exc:
                    raise _Interrupted(f"connection lost after {offset + received} bytes: {exc!r}") from None
                if not block:
                    break
                fh.write(block)
                received += len(block)
                bar.update(len(block))
            fh.flush()
            os.fsync(fh.fileno())
    if expected is not None and received < expected:
        raise _Interrupted(f"connection closed after {offset + received} of {offset + expected} bytes")


def download(
    url: str,
    dest: str | os.PathLike[str],
    sha256: str | None = None,
    *,
    chunk: int = 1 << 20,
    timeout: float = 60.0,
    retries: int = 3,
    retry_wait: float = 2.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` resumably and verified; return ``dest``.

    Bytes go to ``<dest>.part``; an interrupted transfer is resumed with ``Range:
    bytes=<size>-`` (appending on 206, restarting cleanly if the server answers 200), within
    this call up to ``retries`` times (waiting ``retry_wait`` x attempt seconds) and across
    calls. The complete file is checked against ``sha256`` or, when that is None, against
    the hash recorded by an earlier download (``<dest>.sha256``); a mismatch removes the
    bad bytes and raises. With neither, the measured hash is recorded and logged so it can
    be pinned. ``dest`` appears only complete and verified. An existing ``dest`` is only
    verified (a file without pin or record gets its hash recorded).
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    record = record_path(dest)
    if not url.startswith(("http://", "https://")):
        raise EpamnetError(f"{url}: only http(s) URLs can be downloaded; fix the URL")
    pin = _check_pin(sha256, url)
    expected = pin or read_record(dest)
    origin = "pinned" if pin else f"recorded in {record}"

    if dest.exists():
        actual = sha256_file(dest)
        if expected is None:
            _write_record(dest, actual)
            logger.warning("%s: no published SHA-256; measured %s, recorded in %s", dest, actual, record)
            return dest
        if actual != expected:
            again = f"delete {dest} to download it again from {url}"
            if not pin:
                again += f", or delete {record} if the file on the server legitimately changed"
            raise file_error(dest, f"SHA-256 is {actual}, expected {expected} ({origin})", again)
        logger.info("%s: present, SHA-256 verified", dest)
        return dest

    dest.parent.mkdir(parents=True, exist_ok=True)
    attempt = 0
    while True:
        try:
            _transfer(url, part, chunk=chunk, timeout=timeout, progress=progress)
            break
        except OSError as exc:  # connection errors are _Interrupted: this is writing the .part file
            if is_disk_full(exc):
                have = part.stat().st_size if part.exists() else 0
                raise DiskFullError(
                    f"{part}: disk full after {have} bytes ({exc.strerror}); free space on the file system "
                    f"holding {part.parent} and run again to resume the download"
                ) from None
            raise
        except _Interrupted as exc:
            have = part.stat().st_size if part.exists() else 0
            if attempt >= retries:
                raise EpamnetError(
                    f"{url}: download interrupted ({exc}); {have} bytes kept in {part}: run again to resume"
                ) from None
            attempt += 1
            logger.warning("%s: %s; retry %d/%d", url, exc, attempt, retries)
            time.sleep(retry_wait * attempt)

    actual = sha256_file(part)
    if expected is not None and actual != expected:
        part.unlink()
        fix = "the transfer was corrupted or the file changed on the server: run again to retry"
        fix += "; if it fails again, check the file and update the pin" if pin else f"; if it fails again, check the file and delete {record}"
        raise EpamnetError(f"{url}: SHA-256 mismatch, expected {expected} ({origin}), got {actual}; the bad download was removed; {fix}")
    if expected is None:
        _write_record(dest, actual)
        logger.warning(
            "%s: no published SHA-256; measured %s, recorded in %s (later runs verify against it; pin it to share it)",
            url, actual, record,
        )
    os.replace(part, dest)
    logger.info("%s -> %s (%d bytes, SHA-256 %s)", url, dest, dest.stat().st_size, actual)
    return dest


# --------------------------------------------------------------------------- find
@dataclass
class _Found:
    item: ManualItem
    path: Path
    kind: Literal["dir", "zip", "tar"]
    names: list[str] = field(default_factory=list)  # matching base names (dirs and zips)


def _alt_hint(item: ManualItem) -> str:
    """For a piece named by its folder, the archive form also accepted."""
    return f" (or {item.archives[0]})" if item.name.endswith("/") else ""


@contextlib.contextmanager
def _open_tar(path: Path) -> Iterator[tuple[tarfile.TarFile, BinaryIO]]:
    """Open a (gzip/bz2/xz-compressed) tar for sequential reading; yield (tar, data stream).

    The decompressor is opened here rather than by tarfile, because tarfile reads a
    truncated compressed stream as a short one without complaint; gzip/bz2/lzma raise
    ``EOFError`` instead. The caller drains the data stream after the last member
    (:func:`_check_tar_end`) to catch an archive that stops early.
    """
    with open(path, "rb") as raw:
        magic = raw.read(6)
        raw.seek(0)
        if magic.startswith(b"\x1f\x8b"):
            data: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb")
        elif magic.startswith(b"BZh"):
            data = bz2.BZ2File(raw, "rb")
        elif magic.startswith(b"\xfd7zXZ\x00"):
            data = lzma.LZMAFile(raw, "rb")
        else:
            data = raw
        with data, tarfile.open(fileobj=data, mode="r:") as tf:
            yield tf, data


def _check_tar_end(data: BinaryIO) -> None:
    """After the last member, the rest of a complete tar is its zero end-of-archive block(s).

    tarfile stops silently at a truncated or garbled header; reading the rest to the end
    also makes the decompressor check its end-of-stream marker.
    """
    rest = 0
    for block in iter(lambda: data.read(1 << 16), b""):
        if block.count(0) != len(block):
            raise tarfile.ReadError("data after the last readable member is not a tar header")
        rest += len(block)
    if rest == 0:
        raise tarfile.ReadError("the archive ends without its end-of-archive marker")


def _archive_kind(path: Path) -> Literal["zip", "tar"]:
    return "zip" if path.name.endswith(".zip") else "tar"


def _check_archive(item: ManualItem, path: Path, page: str) -> _Found:
    """Open ``path`` and check it holds files named like ``item.member``."""
    redownload = f"download {path.name} again from {page}"
    if path.stat().st_size == 0:
        raise file_error(path, "is empty", redownload)
    pattern = item.pattern
    kind = _archive_kind(path)
    try:
        if kind == "zip":
            with zipfile.ZipFile(path) as zf:
                names = [posixpath.basename(i.filename) for i in zf.infolist() if not i.is_dir()]
            matching = [n for n in names if pattern.fullmatch(n)]
        else:
            # A compressed tar has no index: read only the first members here; the whole
            # archive is read (and checked) when acquire extracts it.
            matching = []
            with _open_tar(path) as (tf, _data):
                for k, member in enumerate(tf):
                    if member.isfile() and pattern.fullmatch(posixpath.basename(member.name)):
                        matching.append(posixpath.basename(member.name))
                        break
                    if k >= 200:
                        break
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
        raise file_error(path, f"is not a readable {kind} archive ({exc})", redownload) from None
    if not matching:
        raise file_error(path, f"holds no file named like {item.member} ({item.what})", f"it is the wrong file: {redownload}")
    return _Found(item, path, kind, matching if kind == "zip" else [])


def _find(dataset: str, downloads_dir: Path) -> list[_Found]:
    src = _source(dataset)
    group = Path(downloads_dir) / src.group
    listings: dict[str, list[str]] = {}  # folder name -> base names of its files (scanned once)
    found: list[_Found] = []
    missing: list[int] = []
    for idx, item in enumerate(src.items):
        folder = group / item.folder
        if item.folder not in listings:
            listings[item.folder] = sorted(e.name for e in os.scandir(folder) if e.is_file()) if folder.is_dir() else []
        names = [n for n in listings[item.folder] if item.pattern.fullmatch(n)]
        if names:
            absent = [r for r in item.required if r not in names]
            if absent:
                raise file_error(folder, f"lacks {', '.join(absent)} ({item.what})", f"get them from {src.page} and put them there")
            found.append(_Found(item, folder, "dir", names))
            continue
        archive = next((group / a for a in item.archives if (group / a).is_file()), None)
        if archive is None:
            missing.append(idx)
            continue
        got = _check_archive(item, archive, src.page)
        absent = [r for r in item.required if got.names and r not in got.names]
        if absent:
            raise file_error(archive, f"lacks {', '.join(absent)} ({item.what})", f"download it again from {src.page}")
        found.append(got)
    if missing:
        raise EpamnetError(_missing_message(dataset, src, group, missing))
    return found


def _runs(indices: list[int]) -> Iterator[tuple[int, int]]:
    """Consecutive runs in a sorted index list: [1,2,3,7] -> (1,3), (7,7)."""
    start = prev = indices[0]
    for i in indices[1:]:
        if i != prev + 1:
            yield start, prev
            start = i
        prev = i
    yield start, prev


def _missing_message(dataset: str, src: DatasetSource, group: Path, missing: list[int]) -> str:
    parts = []
    for a, b in _runs(missing):
        first, last = src.items[a], src.items[b]
        if b - a >= 2 and first.folder == last.folder:  # a numbered series (NTU setups)
            parts.append(f"{first.name} to {last.name}")
        else:
            parts.extend(f"{src.items[i].name}{_alt_hint(src.items[i])}" for i in range(a, b + 1))
    whats = sorted({re.sub(r", setup \d+$", "", src.items[i].what) for i in missing})
    folders = sorted({src.items[i].folder for i in missing})
    where = group.resolve()
    return (
        f"{where}: {dataset} needs {', '.join(parts)} ({'; '.join(whats)}), which are licence-gated; "
        f"request access and download them from {src.page}, then put them in {where}/ "
        f"(archives as downloaded, or extracted there so the files sit in {', '.join(f'{where}/{f}/' for f in folders)})"
    )


def find_archives(dataset: str, downloads_dir: str | os.PathLike[str]) -> list[Path]:
    """Find and verify the licence-gated files of a real dataset; return the paths used.

    Looks in ``<downloads_dir>/<group>/`` (group ``ntu`` for both NTU sets, ``pku``,
    ``toyota``) for each piece, as its extracted folder (taken if it holds files named by
    the dataset's rule) or as its archive (must be non-empty and readable: a zip's listing,
    a tar's first members, with at least one file of the expected name). Missing pieces
    raise one :class:`EpamnetError` naming every missing file, the page to request them
    from and the folder to put them in. A folder used for several pieces appears once.
    """
    paths: list[Path] = []
    for f in _find(dataset, Path(downloads_dir)):
        if f.path not in paths:
            paths.append(f.path)
    return paths


# --------------------------------------------------------------------------- place files
class _Placer:
    """Puts one source file into the raw folder: hard link, else symlink, or copy."""

    def __init__(self, mode: LinkMode) -> None:
        if mode not in ("auto", "hardlink", "symlink", "copy"):
            raise EpamnetError(f"acquire: link mode {mode!r} is not one of auto, hardlink, symlink, copy; fix the setting")
        self.mode = mode
        self.hardlinks_work = mode in ("auto", "hardlink")

    def place(self, src: Path, dst: Path) -> None:
        if self.hardlinks_work:
            try:
                os.link(src, dst)
                return
            except OSError as exc:
                if self.mode == "hardlink":
                    raise file_error(dst.parent, f"cannot hard-link {src} ({exc.strerror})", "use link mode 'symlink' or 'copy', or keep downloads on the same file system") from None
                logger.info("hard links not possible (%s); using symbolic links", exc.strerror)
                self.hardlinks_work = False
        if self.mode in ("auto", "symlink"):
            os.symlink(src.resolve(), dst)
        else:
            shutil.copy2(src, dst)


def _copy_stream(fin: BinaryIO, dst: Path) -> int:
    """Copy a member's bytes to ``dst``; return how many were copied."""
    size = 0
    with open(dst, "wb") as fout:
        for block in iter(lambda: fin.read(1 << 20), b""):
            fout.write(block)
            size += len(block)
    return size


def _extract(found: _Found, out_dir: Path, page: str, progress: bool) -> int:
    """Extract the matching members of one archive into ``out_dir``; return how many."""
    pattern, count = found.item.pattern, 0
    desc = f"extract {found.path.name}"
    try:
        if found.kind == "zip":
            with zipfile.ZipFile(found.path) as zf:
                members = [
                    i for i in zf.infolist()
                    if not i.is_dir()
                    and (i.external_attr >> 16) & 0o170000 != 0o120000  # skip symlink entries
                    and pattern.fullmatch(posixpath.basename(i.filename))
                ]
                for info in tqdm(members, desc=desc, unit="file", disable=None if progress else True, leave=False):
                    dst = out_dir / posixpath.basename(info.filename)
                    if dst.exists():
                        logger.warning("%s: %s appears twice; keeping the first", found.path, dst.name)
                        continue
                    with zf.open(info) as fin:  # checks the CRC at the end
                        _copy_stream(fin, dst)
                    count += 1
        else:
            bar = tqdm(desc=desc, unit="file", disable=None if progress else True, leave=False)
            with bar, _open_tar(found.path) as (tf, data):
                for member in tf:
                    name = posixpath.basename(member.name)
                    if not member.isfile() or not pattern.fullmatch(name):
                        continue
                    dst = out_dir / name
                    if dst.exists():
                        logger.warning("%s: %s appears twice; keeping the first", found.path, name)
                        continue
                    fin = tf.extractfile(member)
                    assert fin is not None  # a regular file always has content
                    if _copy_stream(fin, dst) != member.size:
                        raise tarfile.ReadError(f"{member.name} is cut short")
                    count += 1
                    bar.update(1)
                _check_tar_end(data)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as exc:
        raise file_error(found.path, f"is corrupt or truncated ({exc})", f"download it again from {page}") from None
    return count


def _check_pickle_bytes(path: Path, fix: str) -> None:
    """Cheap check that ``path`` is a complete pickle (opening byte, final STOP opcode)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(2)
        fh.seek(max(size - 1, 0))
        tail = fh.read(1)
    is_proto2 = len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5
    if size < 3 or not (is_proto2 or head[:1] in (b"(", b"]", b"}")) or tail != b".":
        raise file_error(path, f"is not a complete pickle (starts with {head!r}, ends with {tail!r})", fix)


def _manifest(root: Path, dataset: str, sources: list[dict[str, object]], skeletons: dict[str, object] | None,
              known: dict[str, str], hash_max_bytes: int) -> dict[str, object]:
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            size = path.stat().st_size
            digest = known.get(rel)
            if digest is None and path.suffix.lower() not in VIDEO_SUFFIXES and size <= hash_max_bytes:
                digest = sha256_file(path)
            files.append({"path": rel, "size": size, "sha256": digest})
    return {"dataset": dataset, "source": "real", "files": files, "sources": sources, "skeletons": skeletons}


def acquire_real(
    dataset: str,
    downloads_dir: str | os.PathLike[str],
    raw_dir: str | os.PathLike[str],
    *,
    link: LinkMode = "auto",
    skeleton_url: str | None = None,
    skeleton_sha256: str | None = None,
    timeout: float = 60.0,
    retries: int = 3,
    hash_max_bytes: int = 64 << 20,
    progress: bool = True,
) -> Path:
    """Build ``raw_dir`` (= ``data/raw/<dataset>``) from the downloads folder; return it.

    1. :func:`find_archives` checks every licence-gated piece (fails fast, before any
       download, with what to get from where).
    2. NTU: downloads the skeleton pickle into ``<downloads>/ntu/`` (``skeleton_url``
       overrides the registry URL, e.g. a mirror; ``skeleton_sha256`` pins its hash).
       PKU/Toyota: a hand-supplied ``pku_2d.pkl``/``toyota_2d.pkl`` next to the videos is
       taken if present (the ``pose`` stage needs one when skeletons are "provided").
    3. Assembles the raw layout of docs/pipeline.md in a temporary folder: files of
       extracted folders are linked (``link``: ``auto`` = hard link, falling back to
       symlink; or ``hardlink``/``symlink``/``copy``), archives are extracted member by
       member; then writes ``MANIFEST.json`` (every file with its size; SHA-256 for
       non-video files up to ``hash_max_bytes``, and the skeleton pickle's verified hash)
       and swaps the folder in.
    """
    src = _source(dataset)
    downloads = Path(downloads_dir)
    raw_dir = Path(raw_dir)
    group = downloads / src.group
    found = _find(dataset, downloads)
    logger.info("acquire %s: %d source(s) verified in %s", dataset, len(found), group)

    skeleton_path: Path | None = None
    skeleton_info: dict[str, object] | None = None
    if src.remote is not None:
        url = skeleton_url or src.remote.url
        pin = _check_pin(skeleton_sha256, f"{dataset} skeleton_sha256") or (src.remote.sha256 if skeleton_url is None else None)
        skeleton_path = download(url, group / src.remote.name, pin, timeout=timeout, retries=retries, progress=progress)
        digest = pin or read_record(skeleton_path) or sha256_file(skeleton_path)
        skeleton_info = {"name": src.skeletons, "url": url, "sha256": digest, "sha256_pinned": pin is not None}
        _check_pickle_bytes(skeleton_path, f"delete it (and {record_path(skeleton_path).name}) and run again; if it repeats, check {url}")
    elif (group / src.skeletons).is_file():
        skeleton_path = group / src.skeletons
        _check_pickle_bytes(skeleton_path, "replace it with the dataset's 2D skeleton annotation pickle")
        skeleton_info = {"name": src.skeletons, "url": None, "sha256": sha256_file(skeleton_path), "sha256_pinned": False}
    else:
        logger.info("acquire %s: no %s in %s; the pose stage must extract skeletons", dataset, src.skeletons, group)

    placer = _Placer(link)
    sources: list[dict[str, object]] = []
    with atomic_dir(raw_dir) as tmp:
        for f in found:
            out = tmp / f.item.dest
            out.mkdir(parents=True, exist_ok=True)
            if f.kind == "dir":
                for name in tqdm(f.names, desc=f"link {f.item.folder}", unit="file", disable=None if progress else True, leave=False):
                    dst = out / name
                    if not dst.exists():
                        placer.place(f.path / name, dst)
                count = len(f.names)
            else:
                count = _extract(f, out, src.page, progress)
            if count == 0:
                raise file_error(f.path, f"holds no file named like {f.item.member} ({f.item.what})", f"download it again from {src.page}")
            absent = [r for r in f.item.required if not (out / r).exists()]
            if absent:
                raise file_error(f.path, f"lacks {', '.join(absent)} ({f.item.what})", f"download it again from {src.page}")
            sources.append({"name": f.path.name if f.kind != "dir" else f"{f.path.name}/", "kind": f.kind, "item": f.item.name, "files": count})
            logger.info("acquire %s: %s -> %s (%d files, %s)", dataset, f.path, f.item.dest, count, f.kind)
        known: dict[str, str] = {}
        if skeleton_path is not None and skeleton_info is not None:
            placer.place(skeleton_path, tmp / src.skeletons)
            known[src.skeletons] = str(skeleton_info["sha256"])
        manifest = _manifest(tmp, dataset, sources, skeleton_info, known, hash_max_bytes)
        with atomic_write(tmp / "MANIFEST.json", "w") as fh:
            json.dump(manifest, fh, indent=1)
            fh.write("\n")
    logger.info("acquire %s: %d files in %s", dataset, len(manifest["files"]), raw_dir)  # type: ignore[arg-type]
    return raw_dir


__all__ = [
    "REMOTE_FILES",
    "SOURCES",
    "DatasetSource",
    "ManualItem",
    "RemoteFile",
    "acquire_real",
    "download",
    "find_archives",
    "read_record",
    "record_path",
    "sha256_file",
]
