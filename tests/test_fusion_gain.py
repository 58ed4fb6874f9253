"""The synthetic data is built for fusion: EPAM-Net must beat both of its streams.

Every class of the synthetic datasets is (coarse motion) x (slow or fast whole-body
bounce, told apart only by the pose stream's three-times-longer clip) x (held object,
seen only in RGB), so with 8 classes the pose-only and RGB-only ceilings are 50 % and
chance is 12.5 %, while the fused model can tell all 8 apart
(src/epamnet/prepare/synthetic/design.py).

On a small fixed configuration (its own params.yaml in a temporary folder: NTU-like
data, xsub only) this runs the real stages through the CLI - acquire, pose, crop,
crop-merge, splits, then train + evaluate of pose, rgb and fusion - and checks the
test top-1 of each: every one far above chance, and the fused model above both streams.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from helpers import BIN, cli_env

pytestmark = pytest.mark.pipeline

ROOT = Path(__file__).resolve().parents[1]
# One torch thread per job: the two streams train side by side on a 2-core runner.
ENV = cli_env(OMP_NUM_THREADS="1")

NUM_CLASSES = 8
CHANCE = 1 / NUM_CLASSES

# Fixed here (not read from the repository's defaults) so that the test does not move
# when the defaults do.
SYNTHETIC = {
    "seed": 0,
    "num_classes": NUM_CLASSES,
    "height": 240,
    "width": 320,
    "frames": [48, 72],
    "ntu_subjects": [1, 2, 4, 5, 3, 6],  # 1, 2, 4, 5 train; 3, 6 test (xsub)
    "ntu_cameras": [1, 2, 3],
    "ntu_setups": [1, 2],
    "ntu_replications": [1, 2],
    "fine_cycles": 1.0,  # slow bounce: at most 1 turn per clip; fast: 8 minus that
    "fine_alias": 8.0,  # the RGB clip length: at 8 samples the two bounces look alike
    "fine_radius": 0.07,
    "object_size": 0.3,  # ~5 px at the 64x64 RGB input
}
MODEL = {"preset": "synthetic", "attention": "cbam_nested", "rgb": {}, "pose": {}}
TRAIN_COMMON = {
    "epochs": 10,
    "batch_size": 8,
    "base_lr": 0.05,
    "reference_batch": 8,
    "momentum": 0.9,
    "weight_decay": 0.0003,
    "grad_clip": 40,
    "warmup_epochs": 0,
    "num_workers": 0,
    "seed": 100,
    "device": "cpu",
    "deterministic": True,
}
TRAIN_FUSION = {"base_lr": 0.01}


def run(args: list[str], cwd: Path) -> None:
    cmd = [str(BIN / "epamnet"), "--params", "params.yaml", *args]
    result = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def top1(root: Path, stream: str) -> float:
    return json.loads((root / "results/metrics/ntu60/xsub" / stream / "metrics.json").read_text())["top1"]


@pytest.fixture(scope="module")
def accuracies(tmp_path_factory) -> dict[str, float]:
    root = tmp_path_factory.mktemp("fusion_gain")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["datasets"]["run"] = ["ntu60"]
    params["datasets"]["ntu60"].update({"source": "synthetic", "protocols": ["xsub"], "skeletons": "provided"})
    params["synthetic"] = dict(SYNTHETIC)
    params["model"] = dict(MODEL)
    params["train"] = {"common": {**params["train"]["common"], **TRAIN_COMMON}, "pose": {}, "rgb": {}, "fusion": dict(TRAIN_FUSION)}
    params["prepare"]["shards"] = 1
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    for stage in (["acquire"], ["pose"], ["crop", "--shard", "0"], ["crop-merge"], ["splits"]):
        run([*stage, "--dataset", "ntu60"], root)

    def stream_job(stream: str) -> None:
        run(["train", "--dataset", "ntu60", "--protocol", "xsub", "--stream", stream], root)
        run(["evaluate", "--dataset", "ntu60", "--protocol", "xsub", "--stream", stream], root)

    with ThreadPoolExecutor(max_workers=2) as pool:  # the two streams in parallel, as under --cores 2
        list(pool.map(stream_job, ["pose", "rgb"]))
    stream_job("fusion")
    return {stream: top1(root, stream) for stream in ("pose", "rgb", "fusion")}


def test_every_model_is_far_above_chance(accuracies):
    # Measured on this configuration (2026-11-27): pose 0.396, rgb 0.542, fusion 0.990 (chance 0.125).
    for stream, acc in accuracies.items():
        assert acc >= 2 * CHANCE, f"{stream} test top-1 {acc:.3f} is not twice chance ({CHANCE:.3f}): {accuracies}"


def test_fusion_beats_both_streams(accuracies):
    # Measured: fusion 0.990 against the better stream's 0.542.
    best_stream = max(accuracies["pose"], accuracies["rgb"])
    assert accuracies["fusion"] >= best_stream + 0.10, f"fusion does not clearly beat its streams: {accuracies}"
