"""The training engine on tiny CPU models: resume equality, selection, checkpoints, config errors."""

from __future__ import annotations

import csv
import json
import logging
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from epamnet.engine import checkpoint as ckpt_mod
from epamnet.engine.checkpoint import (
    FORMAT,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    rng_state,
    set_rng_state,
)
from epamnet.engine.tasks import FusionTask, SingleStreamTask
from epamnet.config.train import TrainConfig
from epamnet.engine.trainer import seed_everything, train
from epamnet.errors import EpamnetError

TASK = SingleStreamTask(input_key=0, label_key=1)
N_TRAIN, N_VAL, BATCH = 29, 11, 6
ITERS = math.ceil(N_TRAIN / BATCH)


def make_model(seed: int = 0) -> nn.Module:
    seed_everything(seed)
    # BatchNorm (buffers) and Dropout (RNG) make resumption non-trivial.
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 4))


def make_data(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    x = torch.randn(n, 8, generator=g) + nn.functional.one_hot(y, 8).float() * 2.0
    return TensorDataset(x, y)


TRAIN, VAL = make_data(N_TRAIN, 1), make_data(N_VAL, 2)


def cfg(**kw) -> TrainConfig:
    base = dict(epochs=3, batch_size=BATCH, base_lr=0.2, reference_batch=BATCH, keep_checkpoints=2)
    base.update(kw)
    return TrainConfig(**base)


class CrashAfter(Dataset):
    """Raises after ``limit`` item reads: a run killed in the middle of training."""

    def __init__(self, inner: Dataset, limit: int) -> None:
        self.inner, self.limit, self.reads = inner, limit, 0

    def __len__(self) -> int:
        return len(self.inner)  # type: ignore[arg-type]

    def __getitem__(self, i: int):
        self.reads += 1
        if self.reads > self.limit:
            raise RuntimeError("simulated crash")
        return self.inner[i]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def without_time(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k != "time"} for r in rows]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("warmup_epochs", [0.0, 1.0])
def test_resume_is_bit_identical(tmp_path: Path, warmup_epochs: float) -> None:
    c = cfg(warmup_epochs=warmup_epochs)
    straight = train(TASK, make_model(), TRAIN, VAL, c, tmp_path / "a")

    # Killed during epoch 3 (after 2 full epochs of reads), then resumed with a fresh model.
    crashing = CrashAfter(TRAIN, 2 * N_TRAIN)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(TASK, make_model(), crashing, VAL, c, tmp_path / "b")
    assert len(read_csv(tmp_path / "b" / "metrics.csv")) == 2
    assert load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["epoch"] == 2
    resumed = train(TASK, make_model(seed=123), TRAIN, VAL, c, tmp_path / "b")

    assert resumed.resumed_from == 2 and straight.resumed_from == 0
    assert_same_weights(straight.model.state_dict(), resumed.model.state_dict())
    for name in ("model.pt", "checkpoints/last.pt"):
        a = torch.load(tmp_path / "a" / name, weights_only=True)
        b = torch.load(tmp_path / "b" / name, weights_only=True)
        assert_same_weights(a if name == "model.pt" else a["model"], b if name == "model.pt" else b["model"])
    assert without_time(read_csv(tmp_path / "a" / "metrics.csv")) == without_time(read_csv(tmp_path / "b" / "metrics.csv"))
    assert (tmp_path / "a" / "metrics.json").read_text() == (tmp_path / "b" / "metrics.json").read_text()
    # The run actually learned something (the data are separable).
    rows = read_csv(tmp_path / "a" / "metrics.csv")
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])


def test_finished_run_is_not_retrained(tmp_path: Path) -> None:
    first = train(TASK, make_model(), TRAIN, None, cfg(epochs=2), tmp_path)
    again = train(TASK, make_model(seed=5), TRAIN, None, cfg(epochs=2), tmp_path)
    assert again.resumed_from == 2 and again.history == first.history
    assert_same_weights(first.model.state_dict(), again.model.state_dict())


def test_lr_schedule_and_scaling(tmp_path: Path) -> None:
    c = cfg(epochs=4, base_lr=0.0015, reference_batch=24, batch_size=12)
    assert c.lr(2) == pytest.approx(0.0015)  # the official 12 x 2 GPUs
    assert c.lr(1) == pytest.approx(0.00075) and c.lr(4) == pytest.approx(0.003)
    res = train(TASK, make_model(), TRAIN, None, c, tmp_path)
    iters = math.ceil(N_TRAIN / 12)
    total = iters * 4
    lrs = [float(r["lr"]) for r in read_csv(tmp_path / "metrics.csv")]
    expected = [0.00075 * 0.5 * (1 + math.cos(math.pi * (e * iters) / total)) for e in range(4)]
    assert lrs == pytest.approx(expected, rel=1e-9)
    assert res.lr == pytest.approx(0.00075)
    assert res.metrics["lr_peak"] == pytest.approx(0.00075) and res.metrics["global_batch_size"] == 12


def test_no_validation_selects_last_epoch(tmp_path: Path) -> None:
    res = train(TASK, make_model(), TRAIN, None, cfg(), tmp_path)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["selection"] == "last_epoch" and m["selected_epoch"] == 3 and res.selected_epoch == 3
    rows = read_csv(tmp_path / "metrics.csv")
    assert list(rows[0]) == ["epoch", "lr", "train_loss", "train_top1", "time"]
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert_same_weights(torch.load(tmp_path / "model.pt", weights_only=True), res.model.state_dict())


@pytest.mark.parametrize("selection", ["val_top1", "val_mean_class_acc"])
def test_selection_on_validation_and_pruning(tmp_path: Path, selection: str) -> None:
    res = train(TASK, make_model(), TRAIN, VAL, cfg(epochs=4, keep_checkpoints=1, selection=selection), tmp_path)
    rows = read_csv(tmp_path / "metrics.csv")
    values = [float(r[selection]) for r in rows]
    best = 1 + values.index(max(values))  # earliest best epoch
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["selection"] == selection and m["selected_epoch"] == best == res.selected_epoch
    assert m[selection] == values[best - 1]
    kept = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert kept == sorted({f"epoch_{best:03d}.pt", "epoch_004.pt", "last.pt"})
    sel = load_checkpoint(tmp_path / "checkpoints" / f"epoch_{best:03d}.pt")
    assert_same_weights(torch.load(tmp_path / "model.pt", weights_only=True), sel["model"])
    assert sel["best"]["selection"] == selection and len(sel["history"]) == best


def test_corrupt_checkpoint_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(TASK, make_model(), CrashAfter(TRAIN, 2 * N_TRAIN), None, cfg(), tmp_path)
    last = tmp_path / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:100])  # truncated
    with pytest.raises(EpamnetError) as info:
        train(TASK, make_model(), TRAIN, None, cfg(), tmp_path)
    msg = str(info.value)
    assert "\n" not in msg and str(last) in msg and "delete it" in msg
    # Following the advice resumes from the newest epoch file.
    last.unlink()
    res = train(TASK, make_model(), TRAIN, None, cfg(), tmp_path)
    assert res.resumed_from == 2 and [int(r["epoch"]) for r in read_csv(tmp_path / "metrics.csv")] == [1, 2, 3]


def test_resume_with_changed_settings_is_refused(tmp_path: Path) -> None:
    train(TASK, make_model(), TRAIN, None, cfg(epochs=2), tmp_path)
    with pytest.raises(EpamnetError, match=r"train\.epochs=2 .* 3"):
        train(TASK, make_model(), TRAIN, None, cfg(epochs=3), tmp_path)
    # resume=False starts over and removes the old run's files first.
    res = train(TASK, make_model(), TRAIN, None, cfg(epochs=3), tmp_path, resume=False)
    assert res.resumed_from == 0 and len(read_csv(tmp_path / "metrics.csv")) == 3


def test_non_checkpoint_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    torch.save({"weights": torch.zeros(2)}, tmp_path / "checkpoints" / "last.pt")
    with pytest.raises(EpamnetError, match="not an epamnet training checkpoint"):
        train(TASK, make_model(), TRAIN, None, cfg(), tmp_path)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("epochs", -1),
        ("epochs", 0),
        ("batch_size", 0),
        ("base_lr", 0.0),
        ("base_lr", float("nan")),
        ("weight_decay", -1e-4),
        ("momentum", 1.0),
        ("grad_clip", 0.0),
        ("num_workers", -2),
        ("warmup_epochs", 3.0),
        ("selection", "best"),
        ("seed", -1),
        ("amp", "yes"),
        ("keep_checkpoints", 0),
    ],
)
def test_bad_config_names_the_key(key: str, value) -> None:
    with pytest.raises(EpamnetError, match=rf"^train\.{key}: ") as info:
        cfg(**{key: value})
    assert "\n" not in str(info.value)


def test_config_from_dict() -> None:
    assert TrainConfig.from_dict({"epochs": 5}).epochs == 5
    with pytest.raises(EpamnetError, match=r"train\.epoch: unknown setting"):
        TrainConfig.from_dict({"epoch": 5})


def test_amp_on_cpu_is_ignored_with_a_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="epamnet.engine.trainer")
    plain = train(TASK, make_model(), TRAIN, None, cfg(epochs=1), tmp_path / "plain")
    amp = train(TASK, make_model(), TRAIN, None, cfg(epochs=1, amp=True), tmp_path / "amp")
    assert any("mixed precision is ignored" in r.getMessage() for r in caplog.records)
    assert_same_weights(plain.model.state_dict(), amp.model.state_dict())


def test_empty_and_diverging_inputs(tmp_path: Path) -> None:
    empty = TensorDataset(torch.zeros(0, 8), torch.zeros(0, dtype=torch.long))
    with pytest.raises(EpamnetError, match="training set is empty"):
        train(TASK, make_model(), empty, None, cfg(), tmp_path / "e")
    x, y = TRAIN.tensors
    bad = TensorDataset(torch.full_like(x, float("nan")), y)
    with pytest.raises(EpamnetError, match="diverged in epoch 1"):
        train(TASK, make_model(), bad, None, cfg(grad_clip=None), tmp_path / "d")
    assert not (tmp_path / "d" / "checkpoints").exists() or not any((tmp_path / "d" / "checkpoints").iterdir())


class DictPairs(Dataset):
    """Dict samples like the epamnet RGB+pose datasets, but tiny."""

    def __init__(self, n: int) -> None:
        g = torch.Generator().manual_seed(3)
        self.label = torch.randint(0, 3, (n,), generator=g)
        self.imgs = torch.randn(n, 3, 2, 4, 4, generator=g) + self.label.view(-1, 1, 1, 1, 1)
        self.heatmaps = torch.randn(n, 17, 6, 2, 2, generator=g)

    def __len__(self) -> int:
        return len(self.label)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"imgs": self.imgs[i], "heatmaps": self.heatmaps[i], "label": self.label[i]}


class TwoStream(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rgb = nn.Sequential(nn.Flatten(), nn.Linear(3 * 2 * 4 * 4, 3))
        self.pose = nn.Sequential(nn.Flatten(), nn.Linear(17 * 6 * 2 * 2, 3))

    def forward(self, imgs: torch.Tensor, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.rgb(imgs), self.pose(heatmaps)


def test_fusion_task_loss_and_scores() -> None:
    seed_everything(0)
    model, ds = TwoStream(), DictPairs(5)
    batch = {k: torch.stack([ds[i][k] for i in range(5)]) for k in ("imgs", "heatmaps", "label")}
    out = FusionTask().step(model, batch, torch.device("cpu"))
    rgb, pose = model(batch["imgs"], batch["heatmaps"])
    ce = nn.functional.cross_entropy
    assert torch.allclose(out.loss, ce(rgb, batch["label"]) + ce(pose, batch["label"]))
    assert torch.allclose(out.scores, rgb + pose) and torch.equal(out.labels, batch["label"])
    with pytest.raises(KeyError, match="heatmaps"):
        FusionTask().step(model, {"imgs": batch["imgs"], "label": batch["label"]}, torch.device("cpu"))


def test_fusion_training_on_dict_samples(tmp_path: Path) -> None:
    seed_everything(0)
    res = train(FusionTask(), TwoStream(), DictPairs(20), DictPairs(7), cfg(epochs=2, batch_size=4, reference_batch=4), tmp_path)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["selection"] == "val_top1" and 0.0 <= m["val_top1"] <= 1.0 and res.selected_epoch in (1, 2)
    assert set(read_csv(tmp_path / "metrics.csv")[0]) == {
        "epoch", "lr", "train_loss", "train_top1", "val_top1", "val_mean_class_acc", "time",
    }


# ---------------------------------------------------------------- checkpoint module, exact behaviour


def test_load_checkpoint_errors_are_exact_one_liners(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pt"
    with pytest.raises(EpamnetError) as info:
        load_checkpoint(missing)
    assert str(info.value) == f"{missing}: checkpoint not found; check the path"
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(EpamnetError) as info:
        load_checkpoint(str(other))
    assert str(info.value) == f"{other}: not an epamnet training checkpoint; delete it or point to the right folder"
    torch.save([FORMAT], other)  # not a dict
    with pytest.raises(EpamnetError, match="not an epamnet training checkpoint"):
        load_checkpoint(other)


class _Payload:
    """Any class: unpickling it would run arbitrary code, which weights_only refuses."""


def test_load_checkpoint_refuses_arbitrary_objects_even_if_env_says_otherwise(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "epoch": 1, "x": _Payload()}, path)
    # torch honours this variable only when the caller leaves weights_only unset.
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(EpamnetError) as info:
        load_checkpoint(path)
    assert str(info.value) == (
        f"{path}: not a readable PyTorch checkpoint: it holds objects other than tensors and plain values, "
        "which the safe (weights-only) load refuses (Unsupported global: GLOBAL test_trainer._Payload was not "
        "an allowed global by default); delete it to resume from the previous epoch's checkpoint"
    )


def _relocate(src: Path, dst: Path, device: bytes) -> None:
    """Copy a torch zip checkpoint with its storages' recorded device replaced (as if saved there)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("data.pkl"):
                old = b"X\x03\x00\x00\x00cpu"  # pickle protocol 2 BINUNICODE 'cpu'
                assert data.count(old) == 1
                data = data.replace(old, b"X" + len(device).to_bytes(4, "little") + device)
            zout.writestr(item, data)


def test_checkpoint_saved_on_gpu_loads_on_cpu(tmp_path: Path) -> None:
    src = tmp_path / "cpu.pt"
    torch.save({"format": FORMAT, "epoch": 3, "w": torch.arange(4.0)}, src)
    gpu = tmp_path / "gpu.pt"
    _relocate(src, gpu, b"cuda:0")
    if torch.cuda.is_available():  # the file really names a CUDA device
        assert torch.load(gpu, weights_only=True)["w"].device.type == "cuda"
    else:
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(gpu, weights_only=True)
    state = load_checkpoint(gpu)
    assert state["epoch"] == 3 and state["w"].device.type == "cpu"
    assert torch.equal(state["w"], torch.arange(4.0))


def test_latest_checkpoint_is_the_highest_epoch(tmp_path: Path) -> None:
    d = tmp_path / "checkpoints"
    assert latest_checkpoint(d) is None
    d.mkdir()
    assert latest_checkpoint(d) is None
    for e in (2, 10, 1):
        (d / f"epoch_{e:03d}.pt").write_bytes(b"")
    (d / "epoch_7.pt").write_bytes(b"")  # not the naming scheme (3 digits)
    assert latest_checkpoint(d) == d / "epoch_010.pt"
    (d / "last.pt").write_bytes(b"")
    assert latest_checkpoint(d) == d / "last.pt"


def test_prune_returns_removed_and_tolerates_vanished_files(tmp_path: Path, monkeypatch) -> None:
    d = tmp_path / "checkpoints"
    d.mkdir()
    for e in (1, 2, 3, 4, 5):
        (d / f"epoch_{e:03d}.pt").write_bytes(b"x")
    removed = prune_checkpoints(d, keep_last=2, keep=[2])
    assert removed == [d / "epoch_001.pt", d / "epoch_003.pt"]
    assert sorted(p.name for p in d.iterdir()) == ["epoch_002.pt", "epoch_004.pt", "epoch_005.pt"]
    # A file listed but deleted meanwhile (another process pruning) is not an error.
    listed = ckpt_mod.epoch_checkpoints(d) + [(0, d / "epoch_000.pt")]
    monkeypatch.setattr(ckpt_mod, "epoch_checkpoints", lambda _d: sorted(listed))
    assert prune_checkpoints(d, keep_last=1) == [d / "epoch_000.pt", d / "epoch_002.pt", d / "epoch_004.pt"]


def test_rng_state_fields_and_numpy_gauss_round_trip() -> None:
    np.random.seed(123)
    np.random.randn(1)  # the legacy normal generator caches its second value: has_gauss = 1
    st = rng_state()
    ref = np.random.get_state(legacy=False)
    assert ref["has_gauss"] == 1
    assert st["numpy"]["key"].dtype == torch.int64
    assert torch.equal(st["numpy"]["key"], torch.from_numpy(ref["state"]["key"].astype(np.int64)))
    assert st["numpy"]["pos"] == ref["state"]["pos"] and st["numpy"]["has_gauss"] == 1
    assert st["numpy"]["gauss"] == ref["gauss"] != 0.0
    expected = np.random.randn(3)
    np.random.seed(0)
    np.random.randn(4)
    set_rng_state(st)
    assert np.random.get_state(legacy=False)["has_gauss"] == 1
    assert np.array_equal(np.random.randn(3), expected)


class _FakeCuda:
    def __init__(self, monkeypatch, available: bool, count: int) -> None:
        self.saved = [torch.tensor([i, i + 1], dtype=torch.uint8) for i in range(count)]
        self.restored = None
        monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
        monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: list(self.saved))
        monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: setattr(self, "restored", states))


def test_cuda_rng_states_captured_and_restored_only_when_they_fit(monkeypatch) -> None:
    base = rng_state()
    fake = _FakeCuda(monkeypatch, available=True, count=2)
    st = rng_state()
    assert st["cuda"] == fake.saved
    set_rng_state(st)
    assert fake.restored is not None and [t.tolist() for t in fake.restored] == [[0, 1], [1, 2]]
    # A checkpoint from a machine with another GPU count: the CUDA states are skipped.
    fake = _FakeCuda(monkeypatch, available=True, count=1)
    set_rng_state(st)
    assert fake.restored is None
    # Nothing recorded (a CPU run) is nothing to restore, even where the counts match (0 == 0).
    fake = _FakeCuda(monkeypatch, available=True, count=0)
    set_rng_state({**base, "cuda": []})
    assert fake.restored is None
    # Without CUDA nothing is captured or restored.
    fake = _FakeCuda(monkeypatch, available=False, count=2)
    assert rng_state()["cuda"] == []
    set_rng_state(st)
    assert fake.restored is None


def test_training_is_deterministic_without_filling_new_memory(tmp_path: Path) -> None:
    """Deterministic kernels during training, without torch's NaN fill of new tensors
    (its cost is a write over every new tensor; test_models checks that no kernel needs
    it); both settings as they were afterwards."""
    seen = []

    class Probe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = make_model()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append((torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory))
            return self.inner(x)

    before = torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory
    train(TASK, Probe(), TRAIN, None, cfg(epochs=1), tmp_path)
    assert seen and set(seen) == {(True, False)}
    assert (torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory) == before
