"""What ``runtime.portable_cpu: true`` costs: training speed with the CPU code paths pinned to AVX2.

Prepares a small synthetic NTU-60 set (the synthetic model preset, the default clip
sizes), then trains the pose, RGB and fused streams for a few epochs twice, with
``runtime.portable_cpu`` off (the reference) and on, alternating the order, each through
the ``epamnet train`` command (the setting re-executes the process with the pins set).
Prints the summed epoch times of each setting, the ratio, and whether the two settings
gave the same weights on this machine.

    python benchmarks/bench_portable.py [--epochs 3] [--repeats 2]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(args: list[str], cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MKL_CBWR", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")}
    subprocess.run([str(BIN / "epamnet"), *args], cwd=cwd, env=env, check=True, capture_output=True)


def _epoch_seconds(path: Path) -> float:
    with path.open() as fh:
        return sum(float(row["time"]) for row in csv.DictReader(fh))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        params["datasets"]["run"] = ["ntu60"]
        params["datasets"]["ntu60"]["protocols"] = ["xsub"]
        params["prepare"]["shards"] = 1
        params["train"]["common"]["epochs"] = args.epochs
        params["train"]["fusion"]["epochs"] = args.epochs
        base = root / "params.yaml"
        base.write_text(yaml.safe_dump(params))
        for stage in (["acquire"], ["pose"], ["crop", "--shard", "0"], ["crop-merge"], ["splits"]):
            _run(["--params", str(base), stage[0], "--dataset", "ntu60", *stage[1:]], root)
        seconds = {False: 0.0, True: 0.0}
        weights: dict[bool, dict[str, torch.Tensor]] = {}
        for rep in range(args.repeats):
            for portable in ((False, True) if rep % 2 == 0 else (True, False)):
                p = dict(params, runtime={"threads": 1, "portable_cpu": portable})
                p["paths"] = {**params["paths"], "models": f"models-{int(portable)}-{rep}"}
                path = root / f"params-{int(portable)}-{rep}.yaml"
                path.write_text(yaml.safe_dump(p))
                for stream in ("pose", "rgb", "fusion"):
                    _run(["--params", str(path), "train", "--dataset", "ntu60", "--protocol", "xsub", "--stream", stream], root)
                    seconds[portable] += _epoch_seconds(root / p["paths"]["models"] / "ntu60/xsub" / stream / "metrics.csv")
                weights[portable] = torch.load(root / p["paths"]["models"] / "ntu60/xsub/fusion/model.pt", weights_only=True)
        same = all(torch.equal(weights[False][k], weights[True][k]) for k in weights[False])
        print(f"training time, {args.repeats} x 3 streams x {args.epochs} epochs (1 thread):")
        print(f"  native code paths (reference): {seconds[False]:.1f} s")
        print(f"  portable_cpu (AVX2 pinned):    {seconds[True]:.1f} s")
        print(f"  ratio portable / native: {seconds[True] / seconds[False]:.2f}")
        print(f"  same fused weights with and without pinning on this CPU: {same}")


if __name__ == "__main__":
    main()
