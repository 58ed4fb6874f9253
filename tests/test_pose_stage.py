"""The `pose-extract` and `pose` stages end to end through the CLI, with networking off.

A tiny NTU-like synthetic dataset with ``skeletons: mmpose``: `epamnet acquire`, then
the two `pose-extract` shards (HRNet-W32 from mmpose's config, random weights:
``pose.random_init``), then `pose` merging them into the skeletons file that `crop`
reads. Every command runs in a fresh network namespace (`unshare -n`, or `unshare -rn`
without root) where that works, and always with a socket guard on PYTHONPATH that refuses
IP connections, so an attempted download fails the test whoever runs it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from epamnet.io.skeleton import load_annotations
from epamnet.io.video import video_info
from helpers import BIN, cli_env

pytestmark = pytest.mark.pose

ENV = cli_env()

TINY = {
    "num_classes": 2,
    "height": 72,
    "width": 96,
    "frames": [8, 8],
    "pku_overlap": [2, 3],
    "ntu_subjects": [1],
    "ntu_cameras": [1],
    "ntu_setups": [1],
    "ntu_replications": [1],
}


#: Loaded by every Python subprocess of these tests (PYTHONPATH): refuses IP connections.
SOCKET_GUARD = """\
import socket

_connect = socket.socket.connect


def _refuse(self, address, *args, **kwargs):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        raise OSError(f"network disabled in tests (tried {address!r})")
    return _connect(self, address, *args, **kwargs)


socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
"""


def _offline() -> list[str]:
    """A fresh network namespace (no interface up): `unshare -n` as root, `unshare -rn` otherwise.

    Where neither works (no user namespaces), the socket guard on PYTHONPATH still refuses
    every IP connection of the commands, so the tests are offline either way.
    """
    if shutil.which("unshare"):
        for cmd in (["unshare", "-n"], ["unshare", "-rn"]) if os.geteuid() == 0 else (["unshare", "-rn"],):
            if subprocess.run([*cmd, "true"], capture_output=True).returncode == 0:
                return cmd
    return []


def _guarded_env(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SOCKET_GUARD, encoding="utf-8")
    path = os.pathsep.join(p for p in (str(folder), ENV.get("PYTHONPATH", "")) if p)
    return {**ENV, "PYTHONPATH": path}


OFFLINE_ENV = _guarded_env(Path(tempfile.mkdtemp(prefix="epamnet-socket-guard-")))


def epamnet(root: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [*_offline(), str(BIN / "epamnet"), *args]
    return subprocess.run(cmd, cwd=root, env=OFFLINE_ENV, capture_output=True, text=True, timeout=600)


def test_the_commands_really_run_without_network() -> None:
    """The way `epamnet` runs here, a connection to a server that is listening fails."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        probe = (
            "import socket, sys\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=5).close()\n"
            "except OSError as exc:\n"
            "    print('refused:', exc)\n"
            "else:\n"
            "    sys.exit('connected')\n"
        )
        result = subprocess.run([*_offline(), sys.executable, "-c", probe], env=OFFLINE_ENV,
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("refused:")


@pytest.fixture(scope="module")
def project(tmp_path_factory, pose_stack) -> Path:
    root = tmp_path_factory.mktemp("pose-stage")
    params = {
        "datasets": {"run": ["ntu60"], "ntu60": {"source": "synthetic", "protocols": ["xsub"], "skeletons": "mmpose"}},
        "synthetic": TINY,
        "pose": {"random_init": True, "shards": 2, "flip_test": False, "batch_size": 4, "box_source": "skeleton"},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    result = epamnet(root, "acquire", "--dataset", "ntu60")
    assert result.returncode == 0, result.stderr
    return root


def test_extracted_skeletons_match_the_videos(project):
    for shard in ("000", "001"):
        result = epamnet(project, "pose-extract", "--dataset", "ntu60", "--shard", shard)
        assert result.returncode == 0, result.stderr[-3000:]
        assert (project / f"data/interim/ntu60/pose/shard-{shard}.pkl").is_file()
    result = epamnet(project, "pose", "--dataset", "ntu60")
    assert result.returncode == 0, result.stderr[-3000:]

    annotations = load_annotations(project / "data/interim/ntu60/skeletons.pkl")
    videos = sorted((project / "data/raw/ntu60/nturgb+d_rgb").glob("*_rgb.avi"))
    assert [a["frame_dir"] for a in annotations] == [v.name.removesuffix("_rgb.avi") for v in videos]
    for ann, video in zip(annotations, videos):
        info = video_info(video, count_frames=True)
        m, t, v, c = ann["keypoint"].shape
        assert (t, v, c) == (info.frames, 17, 2) and 1 <= m <= 2
        assert ann["keypoint_score"].shape == (m, t, 17)
        assert ann["total_frames"] == info.frames
        assert tuple(ann["img_shape"]) == tuple(ann["original_shape"]) == (info.height, info.width)
        assert ann["label"] == int(ann["frame_dir"][-3:]) - 1  # A### in the NTU name
        kp = ann["keypoint"][ann["keypoint_score"] > 0]
        assert np.all(np.isfinite(kp))


def test_pose_extract_refuses_a_dataset_with_provided_skeletons(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"datasets": {"run": ["ntu60"]}}))
    result = epamnet(tmp_path, "pose-extract", "--dataset", "ntu60", "--shard", "0")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: params.yaml: datasets.ntu60.skeletons")


def test_a_missing_checkpoint_is_one_line_naming_it(project, tmp_path):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["pose"] = {"checkpoint": "nowhere/hrnet.pth", "shards": 1}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copytree(project / "data/raw", tmp_path / "data/raw")
    result = epamnet(tmp_path, "pose-extract", "--dataset", "ntu60", "--shard", "0")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "nowhere/hrnet.pth" in lines[-1], result.stderr
    assert not (tmp_path / "data/interim/ntu60/pose").exists() or not any((tmp_path / "data/interim/ntu60/pose").iterdir())
