"""The `pose-extract` and `pose` stages end to end through the CLI, with networking off.

A tiny NTU-like synthetic dataset with ``skeletons: mmpose``: `epamnet acquire`, then
the two `pose-extract` shards (HRNet-W32 from mmpose's config, random weights:
``pose.random_init``), then `pose` merging them into the skeletons file that `crop`
reads. Where the test runs as root with `unshare`, every command runs in a fresh
network namespace (no interface up), so an attempted download fails the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
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


def _offline() -> list[str]:
    """`unshare -n` where it works (root), else nothing."""
    if shutil.which("unshare") and os.geteuid() == 0:
        if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
            return ["unshare", "-n"]
    return []


def epamnet(root: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [*_offline(), str(BIN / "epamnet"), *args]
    return subprocess.run(cmd, cwd=root, env=ENV, capture_output=True, text=True, timeout=600)


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
