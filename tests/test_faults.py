"""Faults: stages killed with SIGKILL, through the real ``epamnet`` command, in a temporary project.

- A training stage killed in the middle of its second epoch resumes from the epoch-1
  checkpoint when run again and ends with the same metrics and weights as a run that
  was never interrupted.
- A data stage killed in the middle of writing (acquire's generator, a crop shard, the
  split lists) leaves none of its declared outputs (``epamnet.dag.stages``), so
  neither Snakemake nor DVC can take the stage as done; what it leaves are hidden
  temporary names, and running the stage again succeeds.

A download cut mid-transfer resumes from its ``.part`` file: tests/test_acquire.py
(``test_interrupted_download_resumes_on_next_call`` and the three after it).

Everything runs on the tiny synthetic NTU-60 of ``TINY`` (16 videos of 72x96), prepared
once per module by the real stages.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml
from helpers import BIN, TINY_NTU, cli_env
from torch import nn
from torch.utils.data import TensorDataset

from epamnet.config import load_params
from epamnet.dag import stages
from epamnet.engine.checkpoint import epoch_path, load_checkpoint
from epamnet.engine.tasks import SingleStreamTask
from epamnet.config.train import TrainConfig
from epamnet.engine.trainer import train
from epamnet.errors import EpamnetError
from epamnet.io.skeleton import load_annotations, save_annotations
from epamnet.stages.streams import run_info

EPAMNET = BIN / "epamnet"
ENV = cli_env()
TINY = TINY_NTU
PARAMS = {
    "datasets": {"run": ["ntu60"], "ntu60": {"protocols": ["xsub"]}},
    "synthetic": TINY,
    "prepare": {"shards": 2, "crop": {"size": 48}},
    # Smaller clips than the synthetic preset (pose 24 x 32 x 32, RGB 64 x 64): faster epochs.
    "model": {"pose": {"clip_len": 8, "input_size": 16}, "rgb": {"input_size": 32}},
    "train": {"common": {"epochs": 3, "batch_size": 4, "device": "cpu", "num_workers": 0}},
}
TRAIN = ["train", "--dataset", "ntu60", "--protocol", "xsub", "--stream", "pose"]

#: ``python pause.py KIND N MARKER -- <epamnet args>``: the real ``epamnet`` entry point,
#: paused for good right after its N-th KIND (``frame``: a video frame written into a
#: temporary video; ``text``: a Path.write_text; ``step``: a training iteration's
#: forward pass), with MARKER written so the test knows when to kill it. Makes "killed
#: in the middle of it" exact for stages that are over in a blink on the tiny data, and
#: independent of how busy the machine is.
PAUSE = '''
import pathlib, sys, time
kind, n, marker = sys.argv[1], int(sys.argv[2]), sys.argv[3]
calls = 0

def pause(where):
    global calls
    calls += 1
    if calls == n:
        with open(marker, "w") as fh:
            fh.write(str(where))
        time.sleep(600)

if kind == "step":
    from epamnet.engine.tasks import SingleStreamTask
    step = SingleStreamTask.step
    def paused_step(self, *args, **kwargs):
        out = step(self, *args, **kwargs)
        pause("step")
        return out
    SingleStreamTask.step = paused_step
elif kind == "frame":
    from epamnet.io.video import VideoWriter
    write = VideoWriter.write
    def paused_write(self, frame):
        write(self, frame)
        pause(self._tmp)
    VideoWriter.write = paused_write
else:
    write_text = pathlib.Path.write_text
    def paused_write_text(self, *args, **kwargs):
        out = write_text(self, *args, **kwargs)
        pause(self)
        return out
    pathlib.Path.write_text = paused_write_text

from epamnet.cli import main
sys.exit(main(sys.argv[5:]))
'''


def run(cmd: list, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def write_params(root: Path, name: str = "params.yaml", **paths: str) -> Path:
    params = {**PARAMS, "paths": paths} if paths else PARAMS
    (root / name).write_text(yaml.safe_dump(params, sort_keys=False))
    return root / name


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The tiny synthetic NTU-60, prepared by the real stages (one interpreter for all of them)."""
    root = tmp_path_factory.mktemp("faults")
    write_params(root)
    steps = [["acquire"], ["pose"], ["crop", "--shard", "0"], ["crop", "--shard", "1"], ["crop-merge"], ["splits"]]
    argvs = [[s[0], "--dataset", "ntu60", *s[1:]] for s in steps]
    script = f"import sys\nfrom epamnet.cli import main\nfor argv in {argvs!r}:\n    if main(argv):\n        sys.exit(1)\n"
    run([sys.executable, "-c", script], root)
    (root / "pause.py").write_text(PAUSE)
    return root


def declared_outputs(root: Path, rule: str, key: str) -> list[Path]:
    """What Snakemake and DVC take as the stage's result (cached and uncached outputs)."""
    params = load_params(root / "params.yaml")
    (stage,) = [s for s in stages(params) if s.rule == rule and s.key == key]
    return [root / p for p in stage.outs + stage.uncached]


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the stage ended (status {proc.returncode}) before {what}")
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def sigkill(proc: subprocess.Popen) -> None:
    assert proc.poll() is None, "the stage had already finished"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or (p.is_dir() and not any(p.iterdir()))}


def is_temporary(path: Path, root: Path) -> bool:
    """Under a hidden ``.<name>.*.tmp`` name (the atomic writers' temporaries)."""
    return any(part.startswith(".") and ".tmp" in part for part in path.relative_to(root).parts)


def assert_killed_mid_write(root: Path, before: set[Path], outputs: list[Path]) -> None:
    """No declared output exists; whatever the killed stage left is under a temporary name."""
    assert not [p for p in outputs if p.exists()]
    left = files(root) - before
    assert left, "the stage was killed before it wrote anything"
    assert all(is_temporary(p, root) for p in left), sorted(map(str, left))


def kill_paused(root: Path, kind: str, n: int, argv: list[str], while_paused: Callable[[], None] | None = None) -> None:
    """Run ``epamnet <argv>`` until its n-th ``kind`` (see PAUSE), then SIGKILL it there."""
    marker = root / "paused-at"
    with (root / "killed.log").open("w") as log:
        proc = subprocess.Popen([sys.executable, "pause.py", kind, str(n), str(marker), "--", *argv],
                                cwd=root, env=ENV, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(marker.exists, proc, 120, f"{kind} {n}")
            if while_paused is not None:
                while_paused()
            sigkill(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
    marker.unlink()
    (root / "killed.log").unlink()


# ----------------------------------------------------------------------------- training


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return [{k: v for k, v in row.items() if k != "time"} for row in csv.DictReader(fh)]


def test_training_killed_mid_epoch_resumes_to_the_same_metrics_and_weights(project: Path) -> None:
    # The reference: an uninterrupted run into another models folder, on the same data.
    write_params(project, "params_straight.yaml", models="models_straight")
    log = run([EPAMNET, "--params", "params_straight.yaml", *TRAIN], project).stderr
    iterations = int(re.search(r"training 3 epochs x (\d+) iterations", log).group(1))
    straight = project / "models_straight/ntu60/xsub/pose"

    # Killed in the first iteration of epoch 2, once epoch 1's checkpoint and metrics are written.
    work = project / "models/.work/ntu60/xsub/pose"
    outputs = declared_outputs(project, "train_unimodal", "ntu60-xsub-pose")
    assert {p.name for p in outputs} == {"model.pt", "metrics.json", "metrics.csv", "provenance.json"}

    def epoch_1_is_checkpointed() -> None:
        assert load_checkpoint(work / "checkpoints" / "last.pt")["epoch"] == 1
        assert len(read_rows(work / "metrics.csv")) == 1

    kill_paused(project, "step", iterations + 1, TRAIN, while_paused=epoch_1_is_checkpointed)
    epoch_1_is_checkpointed()
    assert not epoch_path(work / "checkpoints", 2).exists()
    assert not [p for p in outputs if p.exists()]  # nothing published: the stage is not done

    resumed = run([EPAMNET, *TRAIN], project).stderr
    assert "after epoch 1 of 3" in resumed and "epoch 1/3" not in resumed  # resumed, not started over

    ours = project / "models/ntu60/xsub/pose"
    assert (ours / "metrics.json").read_text() == (straight / "metrics.json").read_text()
    assert read_rows(ours / "metrics.csv") == read_rows(straight / "metrics.csv")
    a = torch.load(straight / "model.pt", weights_only=True)
    b = torch.load(ours / "model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    # A re-run after a settings change (what Snakemake and DVC do when params.yaml changes)
    # must not resume the old checkpoints, nor republish the finished old run: it starts over.
    changed = yaml.safe_load((project / "params.yaml").read_text())
    changed["data"] = {"sigma": 0.8}
    (project / "params_changed.yaml").write_text(yaml.safe_dump(changed))
    before = (ours / "model.pt").read_bytes()
    again = subprocess.run([str(EPAMNET), "--params", "params_changed.yaml", *TRAIN], cwd=project, env=ENV,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "not resuming: written with data.sigma=0.6 but it is now 0.8; starting over" in again.stderr
    assert "epoch 1/3" in again.stderr  # trained from the start
    assert (ours / "model.pt").read_bytes() != before


def test_run_info_sees_re_prepared_data_and_new_stream_weights(project: Path, tmp_path: Path) -> None:
    params = load_params(project / "params.yaml")
    split = json.loads((project / "data/prepared/ntu60/splits/xsub.json").read_text())
    ann = tmp_path / "annotations.pkl"
    shutil.copy(project / "data/prepared/ntu60/annotations.pkl", ann)
    weights = tmp_path / "pose.pt"
    weights.write_bytes(b"weights 1")
    first = run_info(params, split, 4, ann, {"pose": weights})
    assert first == run_info(params, split, 4, ann, {"pose": weights})
    anns = load_annotations(ann)
    anns[0]["crop_box"] = (0.0, 0.0, 1.0, 1.0)  # re-cropped with other settings: same names and labels
    save_annotations(ann, anns)
    weights.write_bytes(b"weights 2")
    second = run_info(params, split, 4, ann, {"pose": weights})
    assert {k for k in first if first[k] != second[k]} == {"annotations_sha256", "init_sha256"}


def test_resume_with_other_model_or_data_settings_is_refused(tmp_path: Path) -> None:
    task = SingleStreamTask(input_key=0, label_key=1)
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(12, 8, generator=g), torch.randint(0, 4, (12,), generator=g))
    cfg = TrainConfig(epochs=2, batch_size=4, base_lr=0.1, reference_batch=4)
    model = lambda: nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.3), nn.Linear(16, 4))  # noqa: E731
    info = {"model": {"dropout": 0.3, "pose": {"clip_len": 8}}, "split_sha256": "abc"}
    train(task, model(), data, None, cfg, tmp_path, run_info=info)
    again = train(task, model(), data, None, cfg, tmp_path, run_info=info)  # unchanged: a finished run
    assert again.resumed_from == 2
    for key, changed in [("model.dropout", {**info, "model": {"dropout": 0.5, "pose": {"clip_len": 8}}}),
                         ("model.pose.clip_len", {**info, "model": {"dropout": 0.3, "pose": {"clip_len": 16}}}),
                         ("split_sha256", {**info, "split_sha256": "def"})]:
        with pytest.raises(EpamnetError) as err:
            train(task, model(), data, None, cfg, tmp_path, run_info=changed)
        msg = str(err.value)
        assert "\n" not in msg and f"written with {key}=" in msg and f"delete {tmp_path / 'checkpoints'}" in msg
    # Checkpoints written without run_info (older runs) are not checked.
    train(task, model(), data, None, cfg, tmp_path / "old")
    assert train(task, model(), data, None, cfg, tmp_path / "old", run_info=info).resumed_from == 2


# ----------------------------------------------------------------------------- data stages


def fresh_project(project: Path, tmp_path: Path, inputs: list[str]) -> tuple[Path, set[Path]]:
    """A project holding only ``params.yaml`` and the stage's ``inputs`` (copied from ``project``)."""
    root = tmp_path / "p"
    root.mkdir()
    shutil.copy(project / "params.yaml", root / "params.yaml")
    shutil.copy(project / "pause.py", root / "pause.py")
    for rel in inputs:
        src, dst = project / rel, root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    return root, files(root)


def test_acquire_killed_while_generating_leaves_no_raw_folder(project: Path, tmp_path: Path) -> None:
    # The real console script, killed by the clock: three videos done, the rest to come.
    root, before = fresh_project(project, tmp_path, [])
    outputs = declared_outputs(root, "acquire", "ntu60")
    videos = lambda: [p for p in (root / "data/raw").glob(".ntu60.*.tmp/nturgb+d_rgb/*_rgb.avi")]  # noqa: E731
    with (tmp_path / "acquire.log").open("w") as log:
        proc = subprocess.Popen([str(EPAMNET), "acquire", "--dataset", "ntu60"], cwd=root, env=ENV,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: len(videos()) >= 3, proc, 120, "three videos were generated")
            sigkill(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert_killed_mid_write(root, before, outputs)

    run([EPAMNET, "acquire", "--dataset", "ntu60"], root)  # a re-run is not confused by the leftovers
    assert (root / "data/raw/ntu60/MANIFEST.json").is_file()
    assert sorted(os.listdir(root / "data/raw/ntu60/nturgb+d_rgb")) == sorted(
        os.listdir(project / "data/raw/ntu60/nturgb+d_rgb"))


def test_crop_shard_killed_mid_video_leaves_neither_pickle_nor_folder(project: Path, tmp_path: Path) -> None:
    root, before = fresh_project(project, tmp_path, ["data/interim/ntu60/skeletons.pkl", "data/raw/ntu60"])
    outputs = declared_outputs(root, "crop", "ntu60-000")
    names = {p.name for p in outputs}
    assert {"shard-000.pkl", "shard-000"} <= names  # the shard's pickle and its video folder (+ its failures file)
    kill_paused(root, "frame", 40, ["crop", "--dataset", "ntu60", "--shard", "0"])  # in the 2nd or 3rd video
    assert_killed_mid_write(root, before, outputs)

    run([EPAMNET, "crop", "--dataset", "ntu60", "--shard", "0"], root)
    assert all(p.exists() for p in outputs)
    shard = lambda r: [a["frame_dir"] for a in load_annotations(r / "data/interim/ntu60/crop/shard-000.pkl")]  # noqa: E731
    assert shard(root) == shard(project)


def test_splits_killed_between_two_list_files_leaves_no_splits_folder(project: Path, tmp_path: Path) -> None:
    root, before = fresh_project(project, tmp_path, ["data/prepared/ntu60/annotations.pkl"])
    outputs = declared_outputs(root, "splits", "ntu60")
    kill_paused(root, "text", 2, ["splits", "--dataset", "ntu60"])  # xsub.json written, xsub_train.txt too
    assert_killed_mid_write(root, before, outputs)

    run([EPAMNET, "splits", "--dataset", "ntu60"], root)
    split = root / "data/prepared/ntu60/splits"
    assert sorted(os.listdir(split)) == sorted(os.listdir(project / "data/prepared/ntu60/splits"))
    assert (split / "xsub.json").read_text() == (project / "data/prepared/ntu60/splits/xsub.json").read_text()
