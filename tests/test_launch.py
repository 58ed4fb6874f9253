"""`train.nproc_per_node`: a training stage re-launches itself as torchrun processes.

The end-to-end test trains the pose stream of a tiny hand-made prepared dataset with
two CPU processes (Gloo) through :func:`epamnet.engine.launch.maybe_relaunch`, which
runs ``python -m torch.distributed.run --standalone --nproc_per_node 2 -m epamnet
train ...``; each worker is the ordinary ``epamnet train`` command under torchrun.
It checks that the stage's outputs are published once (by rank 0), that two
processes trained (world size and the scaled learning rate in metrics.json), and
that the stage log holds the workers' output.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from epamnet.engine.distributed import resolve_device
from epamnet.engine.launch import maybe_relaunch, split_log_arg, torchrun_command, train_argv, under_torchrun
from epamnet.config.train import TrainConfig
from epamnet.errors import EpamnetError
from epamnet.io.skeleton import save_annotations

ROOT = Path(__file__).resolve().parents[1]

# NTU-60 names: xsub trains on performers 1, 2, 4, 5, ... and tests on 3, 6, ...
TRAIN = [f"S001C001P{p:03d}R001A{a:03d}" for p in (1, 2, 4, 5) for a in (1, 2)]
TEST = [f"S001C001P{p:03d}R001A{a:03d}" for p in (3, 6) for a in (1, 2)]
FRAMES = 12


def _annotation(name: str, label: int, rng: np.random.Generator) -> dict:
    t = np.arange(FRAMES, dtype=np.float32)[:, None]
    base = rng.uniform(16, 48, size=(1, 1, 17, 2)).astype(np.float32)
    wave = (6 * np.sin(t / 2 + label * np.pi))[None, :, :, None].astype(np.float32)
    keypoint = (base + wave * (np.arange(17) % 2)[None, None, :, None]).astype(np.float32)
    return {
        "frame_dir": name,
        "label": label,
        "img_shape": (64, 64),
        "original_shape": (64, 64),
        "total_frames": FRAMES,
        "keypoint": keypoint,
        "keypoint_score": np.ones((1, FRAMES, 17), dtype=np.float32),
    }


def _tiny_project(root: Path, nproc: int) -> Path:
    """params.yaml (tiny pose model, 2 epochs on CPU) and ntu60's prepared annotations and xsub split."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["paths"] = {k: str(root / k) for k in ("data", "downloads", "models", "results")}
    params["datasets"]["run"] = ["ntu60"]
    params["datasets"]["ntu60"]["protocols"] = ["xsub"]
    params["model"]["pose"] = {"base_channels": 4, "stage_blocks": [1, 1, 1], "clip_len": 8, "input_size": 32}
    params["train"]["common"].update(
        epochs=2, batch_size=2, base_lr=0.05, reference_batch=2, device="cpu", num_workers=0, nproc_per_node=nproc
    )
    params["train"]["pose"] = {}
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))

    rng = np.random.default_rng(0)
    label = lambda name: int(name[-3:]) - 1  # noqa: E731 - A001 -> 0, A002 -> 1
    prepared = root / "data" / "prepared" / "ntu60"
    save_annotations(prepared / "annotations.pkl", [_annotation(n, label(n), rng) for n in TRAIN + TEST])
    split = {
        "dataset": "ntu60", "protocol": "xsub", "source": "synthetic", "classes": ["a", "b"], "num_classes": 2,
        "train": [[n, label(n)] for n in TRAIN], "val": [], "test": [[n, label(n)] for n in TEST],
    }
    (prepared / "splits").mkdir(parents=True)
    (prepared / "splits" / "xsub.json").write_text(json.dumps(split))
    return path


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built")
def test_two_process_training_through_relaunch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = _tiny_project(tmp_path, nproc=2)
    monkeypatch.chdir(tmp_path)
    for name in ("LOCAL_RANK", "WORLD_SIZE", "RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    log = tmp_path / "logs" / "train.log"
    argv = ["--log", str(log), "--params", str(params),
            "train", "--dataset", "ntu60", "--protocol", "xsub", "--stream", "pose"]

    rc = maybe_relaunch(argv, 2)

    text = log.read_text() if log.exists() else "(no log)"
    assert rc == 0, text[-4000:]
    out = tmp_path / "models" / "ntu60" / "xsub" / "pose"
    assert sorted(p.name for p in out.iterdir()) == ["metrics.csv", "metrics.json", "model.pt", "provenance.json"]
    metrics = json.loads((out / "metrics.json").read_text())
    # two processes: world size 2, global batch 2 x 2, lr = 0.05 * (2 * 2) / 2
    assert metrics["world_size"] == 2 and metrics["global_batch_size"] == 4
    assert metrics["lr_peak"] == pytest.approx(0.1)
    assert metrics["selection"] == "last_epoch" and metrics["epochs_done"] == 2
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and float(rows[0]["lr"]) == pytest.approx(0.1)
    state = torch.load(out / "model.pt", weights_only=True)
    assert state and not any(k.startswith("module.") for k in state)  # a plain state dict, no DDP prefix
    # the workers' output reached the stage log, and only rank 0 published
    assert "joined process group: rank 1 of 2" in text, text[-4000:]
    assert text.count("published ") == 1, text[-4000:]


def test_one_process_or_already_launched_runs_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert maybe_relaunch(["train"], 1) is None
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert under_torchrun()
    assert maybe_relaunch(["train"], 4) is None  # a worker never launches workers
    assert not under_torchrun({"LOCAL_RANK": ""}) and under_torchrun({"WORLD_SIZE": "2"})


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_process_count_is_an_error(bad) -> None:
    with pytest.raises(EpamnetError, match="nproc_per_node"):
        maybe_relaunch(["train"], bad)
    with pytest.raises(EpamnetError, match="train.nproc_per_node"):
        TrainConfig(nproc_per_node=bad)


def test_command_lines() -> None:
    argv = ["--log", "logs/x.log", "--params", "p.yaml", "train", "--dataset", "ntu60"]
    assert split_log_arg(argv) == (["--params", "p.yaml", "train", "--dataset", "ntu60"], "logs/x.log")
    assert split_log_arg(["--log=a.log", "train"]) == (["train"], "a.log")
    assert split_log_arg(["train"]) == (["train"], None)
    assert torchrun_command(["train", "--stream", "rgb"], 4) == [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "4",
        "-m", "epamnet", "train", "--stream", "rgb",
    ]
    args = argparse.Namespace(
        params="params.yaml", verbose=True, log="l.log", dataset="pku", protocol="xview", stream="fusion", no_resume=True
    )
    assert train_argv(args) == [
        "--log", "l.log", "--params", "params.yaml", "-v", "train", "--dataset", "pku", "--protocol", "xview", "--stream", "fusion",
        "--no-resume",
    ]


def test_more_processes_than_gpus_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda", 0) == torch.device("cuda:0")
    with pytest.raises(EpamnetError, match="nproc_per_node"):
        resolve_device("auto", 1)
