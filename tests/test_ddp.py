"""Two-process DDP on CPU (gloo) through torchrun: training, rank-0 writes, lr scaling, evaluation.

The worker script is written to tmp_path and launched with
``python -m torch.distributed.run --standalone --nproc_per_node 2`` (the standalone
rendezvous picks a free port). Each rank reports what it saw as JSON; the test then
compares the distributed evaluation with a single-process one of the same weights.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from epamnet.engine.evaluate import evaluate
from epamnet.engine.tasks import SingleStreamTask

SCRIPT = r'''
import json, os, sys, tempfile
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

N_TRAIN, N_EVAL = 21, 11  # the eval set is odd: a DistributedSampler would pad it to 12


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 3))


def make_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    return TensorDataset(torch.randn(n, 6, generator=g) + y.view(-1, 1).float(), y)


class Recording(Dataset):
    """Remembers which indices this process read."""

    def __init__(self, inner):
        self.inner, self.seen = inner, []

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        self.seen.append(int(i))
        return self.inner[i]


def main(out_dir, report_dir):
    # Record every atomic write (temp file creation and rename) under out_dir, per rank.
    import os as _os
    writes = []
    real_replace, real_mkstemp = _os.replace, tempfile.mkstemp

    def replace(src, dst, *a, **k):
        if str(dst).startswith(out_dir):
            writes.append(str(dst))
        return real_replace(src, dst, *a, **k)

    def mkstemp(*a, **k):
        if str(k.get("dir", "")).startswith(out_dir):
            writes.append("tmp:" + str(k.get("dir")))
        return real_mkstemp(*a, **k)

    _os.replace, tempfile.mkstemp = replace, mkstemp

    from epamnet.engine.distributed import distributed
    from epamnet.engine.evaluate import evaluate
    from epamnet.engine.tasks import SingleStreamTask
    from epamnet.config.train import TrainConfig
    from epamnet.engine.trainer import train

    task = SingleStreamTask(0, 1)
    cfg = TrainConfig(epochs=2, batch_size=4, base_lr=0.05, reference_batch=4, device="cpu")
    with distributed("cpu") as ctx:
        result = train(task, make_model(), make_data(N_TRAIN, 1), make_data(7, 2), cfg, out_dir)
        model = make_model()
        model.load_state_dict(torch.load(Path(out_dir) / "model.pt", weights_only=True))
        data = Recording(make_data(N_EVAL, 3))
        ev = evaluate(task, model, data, batch_size=3, device="cpu", ctx=ctx)
        report = {
            "rank": ctx.rank, "world_size": ctx.world_size, "lr": result.lr,
            "writes": writes, "seen": data.seen, "num_samples": ev.num_samples,
            "scores": ev.scores.tolist(), "labels": ev.labels.tolist(),
            "top1": ev.top1, "mean_class_acc": ev.mean_class_acc,
            "final_weights": [v.double().sum().item() for v in result.model.state_dict().values()],
        }
    Path(report_dir, f"rank{ctx.rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
'''


def _load_script(path: Path):
    spec = importlib.util.spec_from_file_location("ddp_worker", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built")
def test_two_process_ddp_on_cpu(tmp_path: Path) -> None:
    script = tmp_path / "ddp_worker.py"
    script.write_text(SCRIPT)
    out_dir, reports = tmp_path / "run", tmp_path / "reports"
    reports.mkdir()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(script), str(out_dir), str(reports),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    r0, r1 = (json.loads((reports / f"rank{r}.json").read_text()) for r in (0, 1))
    assert (r0["world_size"], r1["world_size"]) == (2, 2) and {r0["rank"], r1["rank"]} == {0, 1}

    # Gradients were synchronised: both ranks end with the same weights.
    assert r0["final_weights"] == r1["final_weights"]

    # lr scaled by the real world size: 0.05 * (4 * 2) / 4.
    assert r0["lr"] == pytest.approx(0.1) and r1["lr"] == pytest.approx(0.1)
    rows = list(csv.DictReader((out_dir / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and float(rows[0]["lr"]) == pytest.approx(0.1)
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["global_batch_size"] == 8

    # Only rank 0 wrote under out_dir.
    assert r1["writes"] == []
    assert str(out_dir / "metrics.json") in r0["writes"] and str(out_dir / "model.pt") in r0["writes"]
    assert sorted(p.name for p in out_dir.iterdir()) == ["checkpoints", "metrics.csv", "metrics.json", "model.pt"]

    # Each of the 11 eval samples was scored exactly once, by one rank.
    assert sorted(r0["seen"] + r1["seen"]) == list(range(11))
    assert len(r0["seen"]) == 6 and len(r1["seen"]) == 5
    assert r0["num_samples"] == r1["num_samples"] == 11
    assert r0["scores"] == r1["scores"] and r0["labels"] == r1["labels"]

    # Same as a single-process evaluation of the same weights.
    worker = _load_script(script)
    model = worker.make_model()
    model.load_state_dict(torch.load(out_dir / "model.pt", weights_only=True))
    single = evaluate(SingleStreamTask(0, 1), model, worker.make_data(11, 3), batch_size=4, device="cpu")
    np.testing.assert_allclose(np.asarray(r0["scores"], dtype=np.float32), single.scores, rtol=1e-6, atol=1e-6)
    assert r0["labels"] == single.labels.tolist()
    assert r0["top1"] == single.top1 and r0["mean_class_acc"] == single.mean_class_acc
