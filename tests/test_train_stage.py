"""The ``train`` stage's model selection, and which setting changes stop a resume.

Model selection (``epamnet.stages.train.run``, in-process, 3 epochs of the pose stream
on a tiny hand-made prepared dataset with distinct train, val and test lists):

- validation reads the split's ``val`` list, never ``test``;
- Toyota Smarthome selects on validation mean class accuracy, NTU and PKU-MMD on top-1
  (their reported metrics; NTU and PKU have no validation list in reality, where the
  last epoch is selected: test_launch.py).

To make "which metric selected" observable, the trainer's validation calls the real
``evaluate`` on the real val clips, but then swaps in scripted predictions per epoch
(``PREDS``); the metrics are computed from them and the labels the val clips carry by
the real :class:`EvalResult`. The predictions are chosen (by hand, ``EXPECTED_*``) so
that the best top-1 epoch (1) is not the best mean-class epoch (2).

Resume: every ``train.*`` setting that changes the weights must stop a resume: the
engine refuses (one-line error), the stage starts over (``stale_checkpoint``). The
settings that must refuse are listed here (``MUST_REFUSE``), independently of
``RESUME_FREE_KEYS``/``RESUME_WARN_KEYS`` in the code, and checked against them.

Resume under DDP (``pipeline``, ~45 s): ``epamnet train`` with ``nproc_per_node: 2``
(torchrun, gloo on CPU) SIGKILLed, every process, in epoch 2 resumes after epoch 1 and ends
equal to an uninterrupted two-process run.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn
from torch.utils.data import TensorDataset

import epamnet.engine.trainer as trainer_module
from epamnet.config import load_params
from epamnet.config.train import RESUME_FREE_KEYS, RESUME_WARN_KEYS, TrainConfig
from epamnet.datasets import toyota
from epamnet.datasets.registry import get_dataset
from epamnet.engine.checkpoint import epoch_path, load_checkpoint
from epamnet.engine.evaluate import EvalResult
from epamnet.engine.tasks import SingleStreamTask
from epamnet.engine.trainer import seed_everything, stale_checkpoint, train
from epamnet.errors import EpamnetError
from epamnet.io.skeleton import save_annotations
from epamnet.stages.train import run as train_stage

FRAMES = 12
EPOCHS = 3

# ----------------------------------------------------------------------------- tiny projects

#: Val labels [0, 0, 0, 1]; test labels [0, 1, 1, 1] (so metrics of the test list differ).
VAL_LABELS = [0, 0, 0, 1]
TEST_LABELS = [0, 1, 1, 1]
#: Scripted val predictions of epochs 1, 2, 3, and what they score on VAL_LABELS (by hand):
#: epoch 1: all 0             -> top-1 3/4, mean class (1 + 0) / 2
#: epoch 2: [1, 1, 0, 1]      -> top-1 2/4, mean class (1/3 + 1) / 2
#: epoch 3: [0, 1, 1, 0]      -> top-1 1/4, mean class (1/3 + 0) / 2
PREDS = ([0, 0, 0, 0], [1, 1, 0, 1], [0, 1, 1, 0])
EXPECTED_TOP1 = [0.75, 0.5, 0.25]
EXPECTED_MEAN_CLASS = [0.5, 2 / 3, 1 / 6]
BEST_TOP1_EPOCH, BEST_MEAN_CLASS_EPOCH = 1, 2


def _toyota_lists() -> tuple[str, list, list, list]:
    classes = get_dataset("toyota", num_classes=2).class_names("cs")
    name = lambda label, subject, take: toyota.format_name(classes[label], subject, take, 1, 1)
    train_ = [(name(c, s, r), c) for s in (3, 4) for c in (0, 1) for r in (0, 1)]  # CS train subjects 3, 4, 6
    val = [(name(c, 19, r), c) for r, c in enumerate(VAL_LABELS)]  # CS validation subject 19
    test = [(name(c, 2, r), c) for r, c in enumerate(TEST_LABELS)]  # CS test subjects 2, 10
    return "cs", train_, val, test


def _ntu_lists() -> tuple[str, list, list, list]:
    name = lambda label, subject, camera: f"S001C{camera:03d}P{subject:03d}R001A{label + 1:03d}"
    train_ = [(name(c, p, cam), c) for p in (1, 2) for c in (0, 1) for cam in (1, 2)]  # xsub train subjects
    val = [(name(c, 4, cam), c) for cam, c in enumerate(VAL_LABELS, 1)]  # a hypothetical val list
    test = [(name(c, 3, cam), c) for cam, c in enumerate(TEST_LABELS, 1)]  # xsub test subject 3
    return "xsub", train_, val, test


def _pku_lists() -> tuple[str, list, list, list]:
    name = lambda label, video, k: f"{video:04d}-L-A{label + 1:02d}-N{k:02d}"
    train_ = [(name(c, v, k), c) for v in (2, 3) for c in (0, 1) for k in (1, 2)]
    val = [(name(c, 5, k), c) for k, c in enumerate(VAL_LABELS, 1)]
    test = [(name(c, 7, k), c) for k, c in enumerate(TEST_LABELS, 1)]
    return "xsub", train_, val, test


LISTS = {"toyota": _toyota_lists, "ntu60": _ntu_lists, "pku": _pku_lists}


def _annotation(name: str, label: int, rng: np.random.Generator) -> dict:
    t = np.arange(FRAMES, dtype=np.float32)[:, None]
    base = rng.uniform(16, 48, size=(1, 1, 17, 2)).astype(np.float32)
    wave = (6 * np.sin(t / 2 + label * np.pi))[None, :, :, None].astype(np.float32)
    keypoint = (base + wave * (np.arange(17) % 2)[None, None, :, None]).astype(np.float32)
    return {
        "frame_dir": name, "label": label, "img_shape": (64, 64), "original_shape": (64, 64),
        "total_frames": FRAMES, "keypoint": keypoint, "keypoint_score": np.ones((1, FRAMES, 17), dtype=np.float32),
    }


def make_project(root: Path, dataset: str, **train_common) -> tuple[Path, str, list, list]:
    """params.yaml (tiny pose model on CPU) and the dataset's prepared annotations and split.

    Returns (params path, protocol, val rows, test rows)."""
    protocol, train_, val, test = LISTS[dataset]()
    assert len({n for n, _ in train_ + val + test}) == len(train_ + val + test)  # three disjoint lists
    common = {"epochs": EPOCHS, "batch_size": 4, "base_lr": 0.05, "reference_batch": 4, "device": "cpu",
              "num_workers": 0}
    common.update(train_common)
    params = {
        "paths": {k: str(root / k) for k in ("data", "downloads", "models", "results")},
        "datasets": {"run": [dataset], dataset: {"protocols": [protocol]}},
        "model": {"pose": {"base_channels": 4, "stage_blocks": [1, 1, 1], "clip_len": 8, "input_size": 32}},
        "train": {"common": common, "pose": {}},
    }
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    rng = np.random.default_rng(0)
    prepared = root / "data" / "prepared" / dataset
    save_annotations(prepared / "annotations.pkl", [_annotation(n, c, rng) for n, c in train_ + val + test])
    split = {
        "dataset": dataset, "protocol": protocol, "source": "synthetic", "classes": ["a", "b"], "num_classes": 2,
        "train": [list(r) for r in train_], "val": [list(r) for r in val], "test": [list(r) for r in test],
    }
    (prepared / "splits").mkdir(parents=True)
    (prepared / "splits" / f"{protocol}.json").write_text(json.dumps(split))
    return path, protocol, val, test


@pytest.fixture
def scripted_validation(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The trainer's validation with PREDS as predictions; returns the val sample names of each call."""
    real_evaluate = trainer_module.evaluate
    calls: list[list[str]] = []

    def evaluate(task, model, dataset, **kwargs):
        real = real_evaluate(task, model, dataset, **kwargs)  # the real clips, through the real model
        calls.append([name for name, _ in dataset.samples])
        preds = np.asarray(PREDS[(len(calls) - 1) % EPOCHS])
        scores = np.eye(real.num_classes, dtype=np.float32)[preds]
        return EvalResult(scores=scores, labels=real.labels, loss=real.loss, num_classes=real.num_classes,
                          mean_class_definition=real.mean_class_definition)

    monkeypatch.setattr(trainer_module, "evaluate", evaluate)
    return calls


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- selection


@pytest.mark.parametrize(
    ("dataset", "selection", "selected"),
    [
        ("toyota", "val_mean_class_acc", BEST_MEAN_CLASS_EPOCH),  # Toyota reports mean class accuracy
        ("ntu60", "val_top1", BEST_TOP1_EPOCH),
        ("pku", "val_top1", BEST_TOP1_EPOCH),
    ],
)
def test_train_stage_validates_on_the_val_list_and_selects_on_the_reported_metric(
    tmp_path: Path, scripted_validation: list[list[str]], dataset: str, selection: str, selected: int
) -> None:
    params, protocol, val, test = make_project(tmp_path, dataset)
    if dataset == "toyota":  # the lists are the ones the official CS rule assigns
        rules = get_dataset("toyota", num_classes=2)
        assert {rules.assign(n, "cs") for n, _ in val} == {"val"}
        assert {rules.assign(n, "cs") for n, _ in test} == {"test"}

    metrics = train_stage(load_params(params), dataset, protocol, "pose")

    # (a) Every epoch validated on the val list, in its order; the test list was never read.
    assert scripted_validation == [[n for n, _ in val]] * EPOCHS
    rows = read_rows(tmp_path / "models" / dataset / protocol / "pose" / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    # the val labels were the val list's (the test list's labels would score otherwise)
    assert [float(r["val_top1"]) for r in rows] == pytest.approx(EXPECTED_TOP1)
    assert [float(r["val_mean_class_acc"]) for r in rows] == pytest.approx(EXPECTED_MEAN_CLASS)

    # (b) The dataset's reported metric selected the epoch, and model.pt holds that epoch's weights.
    out = tmp_path / "models" / dataset / protocol / "pose"
    published = json.loads((out / "metrics.json").read_text())
    assert published == metrics
    assert published["selection"] == selection and published["selected_epoch"] == selected
    assert published["epochs_done"] == EPOCHS
    assert published["val_top1"] == pytest.approx(EXPECTED_TOP1[selected - 1])
    assert published["val_mean_class_acc"] == pytest.approx(EXPECTED_MEAN_CLASS[selected - 1])
    checkpoints = tmp_path / "models" / ".work" / dataset / protocol / "pose" / "checkpoints"
    model = torch.load(out / "model.pt", weights_only=True)
    assert same_weights(model, load_checkpoint(epoch_path(checkpoints, selected))["model"])
    assert not same_weights(model, load_checkpoint(epoch_path(checkpoints, EPOCHS))["model"])  # not just the last


# ----------------------------------------------------------------------------- resume

#: Every train.* setting that changes the weights (or what is selected), with another
#: valid value: a run must not resume across a change of any of them.
MUST_REFUSE = {
    "epochs": 3,
    "batch_size": 4,
    "base_lr": 0.1,
    "reference_batch": 12,
    "momentum": 0.5,
    "weight_decay": 0.0,
    "grad_clip": None,
    "warmup_epochs": 1.0,
    "seed": 101,
    "amp": True,
    "sync_bn": False,
    "deterministic": False,
    "init": "pose_released.pth",  # another starting point: other weights
    "pose_pipeline": "official_pose",  # other clip transforms: other weights
    "selection": "val_mean_class_acc",
}
#: Settings that may change on resume: silently / with a warning (they may change the numbers slightly).
MAY_CHANGE = {"keep_checkpoints": 3, "eval_batch_size": 3, "nproc_per_node": 2}
MAY_CHANGE_WITH_WARNING = {"num_workers": 1, "device": "auto"}

#: The run the resume tests continue: every setting spelled out (the default device "auto"
#: is not used: MAY_CHANGE_WITH_WARNING switches to it).
BASE = {
    "epochs": 2, "batch_size": 6, "base_lr": 0.2, "reference_batch": 6, "momentum": 0.9, "weight_decay": 3e-4,
    "grad_clip": 40.0, "warmup_epochs": 0.0, "seed": 100, "amp": False, "sync_bn": None, "deterministic": True,
    "selection": "val_top1", "keep_checkpoints": 2, "eval_batch_size": None, "nproc_per_node": 1, "num_workers": 0,
    "device": "cpu", "init": None, "pose_pipeline": "fusion",
}  # fmt: skip
TASK = SingleStreamTask(input_key=0, label_key=1)
RUN_INFO = {"model": {"hidden": 16}, "split_sha256": "abc"}


def _model() -> nn.Module:
    seed_everything(0)
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 4))


def _data(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    return TensorDataset(torch.randn(n, 8, generator=g) + nn.functional.one_hot(y, 8).float() * 2.0, y)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished 2-epoch run (with validation) of BASE: checkpoints of epochs 1 and 2."""
    work = tmp_path_factory.mktemp("finished")
    train(TASK, _model(), _data(20, 1), _data(8, 2), TrainConfig(**BASE), work, run_info=RUN_INFO)
    return work


def _copy(run: Path, tmp_path: Path) -> Path:
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


def test_every_training_setting_is_classified_for_resume() -> None:
    classified = [*MUST_REFUSE, *MAY_CHANGE, *MAY_CHANGE_WITH_WARNING]
    assert len(classified) == len(set(classified)) and set(classified) == set(TrainConfig.model_fields) == set(BASE)
    assert RESUME_FREE_KEYS == set(MAY_CHANGE)
    assert RESUME_WARN_KEYS == set(MAY_CHANGE_WITH_WARNING)
    assert set(TrainConfig.model_fields) - RESUME_FREE_KEYS - RESUME_WARN_KEYS == set(MUST_REFUSE)


@pytest.mark.parametrize("key", sorted(MUST_REFUSE))
def test_resume_after_a_weight_changing_setting_is_refused_and_the_stage_starts_over(
    finished_run: Path, tmp_path: Path, key: str
) -> None:
    work = _copy(finished_run, tmp_path)
    before = {p.name: p.read_bytes() for p in (work / "checkpoints").iterdir()}
    old, new = BASE[key], MUST_REFUSE[key]
    assert old != new
    changed = TrainConfig(**{**BASE, key: new})
    expected = f"written with train.{key}={old!r} but the config now says {new!r}"

    # The engine refuses to resume (one line, naming the key, saying how to start over) ...
    with pytest.raises(EpamnetError) as err:
        train(TASK, _model(), _data(20, 1), _data(8, 2), changed, work, run_info=RUN_INFO)
    msg = str(err.value)
    assert "\n" not in msg and expected in msg and f"delete {work / 'checkpoints'}" in msg
    assert {p.name: p.read_bytes() for p in (work / "checkpoints").iterdir()} == before  # nothing touched
    # ... and the check the train stage makes before training says why it starts over.
    assert stale_checkpoint(work, changed, 1, RUN_INFO) == expected
    # Control: the unchanged settings resume the finished run.
    assert stale_checkpoint(work, TrainConfig(**BASE), 1, RUN_INFO) is None


@pytest.mark.parametrize("key", sorted({**MAY_CHANGE, **MAY_CHANGE_WITH_WARNING}))
def test_resume_across_a_bookkeeping_setting_continues_the_run(
    finished_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, key: str
) -> None:
    work = _copy(finished_run, tmp_path)
    new = {**MAY_CHANGE, **MAY_CHANGE_WITH_WARNING}[key]
    changed = TrainConfig(**{**BASE, key: new})
    assert stale_checkpoint(work, changed, 1, RUN_INFO) is None
    caplog.set_level(logging.WARNING, logger="epamnet.engine.trainer")
    res = train(TASK, _model(), _data(20, 1), _data(8, 2), changed, work, run_info=RUN_INFO)
    assert res.resumed_from == 2  # the finished run, not retrained
    warned = [r.getMessage() for r in caplog.records if f"train.{key}=" in r.getMessage()]
    assert bool(warned) == (key in MAY_CHANGE_WITH_WARNING), warned


def test_train_stage_starts_over_after_a_learning_rate_or_seed_change(
    tmp_path: Path, scripted_validation: list[list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    params, protocol, _, _ = make_project(tmp_path, "toyota", epochs=2)
    out = tmp_path / "models" / "toyota" / protocol / "pose"
    caplog.set_level(logging.INFO, logger="epamnet")
    train_stage(load_params(params), "toyota", protocol, "pose")
    first = read_rows(out / "metrics.csv")
    assert float(first[0]["lr"]) == pytest.approx(0.05)

    # Unchanged: the finished run is resumed, nothing is trained again.
    caplog.clear()
    train_stage(load_params(params), "toyota", protocol, "pose")
    assert "starting over" not in caplog.text and "epoch 1/2" not in caplog.text

    for key, value, lr in [("base_lr", 0.02, 0.02), ("seed", 7, 0.02)]:
        settings = yaml.safe_load(params.read_text())
        settings["train"]["common"][key] = value
        params.write_text(yaml.safe_dump(settings, sort_keys=False))
        caplog.clear()
        train_stage(load_params(params), "toyota", protocol, "pose")
        assert f"not resuming: written with train.{key}=" in caplog.text and "starting over" in caplog.text
        assert "epoch 1/2" in caplog.text  # trained from the first epoch
        rows = read_rows(out / "metrics.csv")
        assert float(rows[0]["lr"]) == pytest.approx(lr)
        assert load_checkpoint(out.parents[2] / ".work" / "toyota" / protocol / "pose" / "checkpoints" / "last.pt")[
            "config"][key] == value


# ----------------------------------------------------------------------------- resume under DDP

#: Put first on the workers' PYTHONPATH: every torchrun worker records its pid (so the test
#: can SIGKILL it: torchrun starts its workers in sessions of their own), and rank 0 pauses
#: for good in its PAUSE_AT-th training step, with a marker file written.
SITECUSTOMIZE = '''
import os
d = os.environ.get("EPAMNET_TEST_DDP_DIR")
if d and os.environ.get("LOCAL_RANK"):
    rank = os.environ["RANK"]
    with open(os.path.join(d, "pid-" + rank), "w") as fh:
        fh.write(str(os.getpid()))
    pause_at = int(os.environ.get("EPAMNET_TEST_PAUSE_AT", "0"))
    if pause_at and rank == "0":
        import time
        from epamnet.engine.tasks import SingleStreamTask
        step, calls = SingleStreamTask.step, [0]

        def paused_step(self, model, *args, **kwargs):
            out = step(self, model, *args, **kwargs)
            if model.training:
                calls[0] += 1
                if calls[0] == pause_at:
                    open(os.path.join(d, "paused"), "w").close()
                    time.sleep(600)
            return out

        SingleStreamTask.step = paused_step
'''


def _launch(root: Path, params: Path, log: Path, env: dict[str, str]) -> subprocess.Popen:
    argv = [sys.executable, "-m", "epamnet", "--log", str(log), "--params", str(params),
            "train", "--dataset", "toyota", "--protocol", "cs", "--stream", "pose"]
    return subprocess.Popen(argv, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _finish(proc: subprocess.Popen, log: Path) -> str:
    try:
        rc = proc.wait(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text() if log.exists() else "(no log)"
    assert rc == 0, text[-4000:]
    return text


@pytest.mark.pipeline
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built")
def test_two_process_training_killed_after_an_epoch_resumes_to_the_same_weights(tmp_path: Path) -> None:
    """`epamnet train` with nproc_per_node 2 (torchrun, gloo on CPU), every process SIGKILLed in
    epoch 2 (epoch 1 checkpointed), run again: resumes after epoch 1 and ends with the metrics
    and weights of an uninterrupted two-process run."""
    params, _, _, _ = make_project(tmp_path, "toyota", batch_size=2, reference_batch=2, nproc_per_node=2)
    settings = yaml.safe_load(params.read_text())
    settings["paths"]["models"] = str(tmp_path / "models_straight")
    straight_params = tmp_path / "params_straight.yaml"
    straight_params.write_text(yaml.safe_dump(settings, sort_keys=False))
    site, ddp = tmp_path / "site", tmp_path / "ddp"
    site.mkdir(), ddp.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    src = Path(trainer_module.__file__).resolve().parents[2]  # the epamnet this test imported
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EPAMNET_TEST_DDP_DIR": str(ddp),
           "PYTHONPATH": os.pathsep.join([str(site), str(src), os.environ.get("PYTHONPATH", "")])}
    for name in ("LOCAL_RANK", "WORLD_SIZE", "RANK"):
        env.pop(name, None)

    # The reference: uninterrupted, two processes.
    _finish(_launch(tmp_path, straight_params, tmp_path / "straight.log", env), tmp_path / "straight.log")
    straight = tmp_path / "models_straight" / "toyota" / "cs" / "pose"
    assert json.loads((straight / "metrics.json").read_text())["world_size"] == 2

    # 8 training clips, 4 per process, 2 per batch: 2 iterations an epoch; rank 0 stops in
    # the 1st iteration of epoch 2 (rank 1 then waits for it in the gradient all-reduce).
    work = tmp_path / "models" / ".work" / "toyota" / "cs" / "pose"
    proc = _launch(tmp_path, params, tmp_path / "killed.log", {**env, "EPAMNET_TEST_PAUSE_AT": "3"})
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 180
        while not (ddp / "paused").exists():
            assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "rank 0 never reached epoch 2"
            time.sleep(0.05)
        pids = [int((ddp / f"pid-{r}").read_text()) for r in (0, 1)]
        assert load_checkpoint(work / "checkpoints" / "last.pt")["epoch"] == 1
    finally:  # the whole job dies at once: launcher, torchrun, both workers
        os.killpg(proc.pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert len(read_rows(work / "metrics.csv")) == 1
    assert not epoch_path(work / "checkpoints", 2).exists()
    assert not (tmp_path / "models" / "toyota").exists()  # nothing published

    resumed = _finish(_launch(tmp_path, params, tmp_path / "resumed.log", env), tmp_path / "resumed.log")
    assert "after epoch 1 of 3" in resumed and "epoch 1/3" not in resumed, resumed[-4000:]
    assert "joined process group: rank 1 of 2" in resumed, resumed[-4000:]

    ours = tmp_path / "models" / "toyota" / "cs" / "pose"
    assert (ours / "metrics.json").read_text() == (straight / "metrics.json").read_text()
    no_time = lambda rows: [{k: v for k, v in r.items() if k != "time"} for r in rows]
    assert no_time(read_rows(ours / "metrics.csv")) == no_time(read_rows(straight / "metrics.csv"))
    assert same_weights(torch.load(ours / "model.pt", weights_only=True),
                        torch.load(straight / "model.pt", weights_only=True))
    assert same_weights(load_checkpoint(work / "checkpoints" / "last.pt")["model"],
                        load_checkpoint(tmp_path / "models_straight" / ".work" / "toyota" / "cs" / "pose"
                                        / "checkpoints" / "last.pt")["model"])
