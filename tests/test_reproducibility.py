"""Reproducible by construction: one stage gives the same bytes however it is launched.

- Snakemake runs a training job with the thread variables it sets (``OMP_NUM_THREADS``
  = the rule's threads); a shell or ``dvc repro`` sets none, so torch would take every
  core. The stage sets ``runtime.threads`` itself: the weights must be bit-identical.
- ``runtime.portable_cpu`` pins the CPU code paths before numpy and torch load (the
  command re-executes itself), and provenance.json says so.
- A stage's code dependencies are its import closure: the crop box code is crop's,
  the figures are the report's alone, and compiled caches are nobody's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from epamnet.codedeps import STAGE_MODULES, stage_code
from epamnet.config import validate_params
from epamnet.dag import stages
from helpers import BIN, cli_env, copy_tiny_ntu_project

ROOT = Path(__file__).resolve().parents[1]
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _env(**extra: str) -> dict[str, str]:
    env = cli_env(**extra)
    for name in (*THREAD_VARS, "MKL_CBWR", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "NPY_DISABLE_CPU_FEATURES"):
        if name not in extra:
            env.pop(name, None)
    return env


def _run(cmd: list, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{cmd}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the project (tiny NTU-60, xsub only, 2 pose epochs): Snakemake trained its pose stream."""
    root = tmp_path_factory.mktemp("repro")
    copy_tiny_ntu_project(root)
    _run([BIN / "snakemake", "--cores", "2", "models/ntu60/xsub/pose/model.pt"], root, _env())
    return root


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)


def test_same_weights_from_snakemake_and_by_hand(project: Path) -> None:
    """The pose stream trained by Snakemake (1 thread in its environment) and by hand (none set)."""
    model = project / "models/ntu60/xsub/pose"
    by_snakemake = {n: (model / n).read_bytes() for n in ("metrics.json", "provenance.json")}
    snakemake_weights = _weights(model / "model.pt")
    log = (project / "logs/train_unimodal/ntu60-xsub-pose.log").read_text()
    assert "training 2 epochs" in log

    # By hand, as `dvc repro` or a shell runs it: no thread variables, so torch would use every core,
    # then with a launcher that asks for more threads than the setting.
    for env in (_env(), _env(OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")):
        _run([BIN / "epamnet", "train", "--dataset", "ntu60", "--protocol", "xsub", "--stream", "pose", "--no-resume"], project, env)
        a, b = _weights(model / "model.pt"), snakemake_weights
        assert a.keys() == b.keys()
        assert [k for k in a if not torch.equal(a[k], b[k])] == []
        for name in ("metrics.json", "provenance.json"):
            assert (model / name).read_bytes() == by_snakemake[name], name
    prov = json.loads((model / "provenance.json").read_text())
    assert prov["machine"]["threads"] == 1 and prov["machine"]["cpu_pinning"] == {}


def test_portable_cpu_pins_the_code_paths(project: Path, tmp_path: Path) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["runtime"]["portable_cpu"] = True
    params["train"]["common"]["epochs"] = 1
    for k in ("models", "results"):
        params["paths"][k] = str(tmp_path / k)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    args = ["--params", tmp_path / "params.yaml", "train", "--dataset", "ntu60", "--protocol", "xsub", "--stream", "pose"]
    _run([BIN / "epamnet", *args], project, _env())
    prov = json.loads((tmp_path / "models/ntu60/xsub/pose/provenance.json").read_text())
    pins = prov["machine"]["cpu_pinning"]
    assert pins["ATEN_CPU_CAPABILITY"] == "avx2" and pins["MKL_CBWR"].startswith("AVX2")
    assert prov["machine"]["torch_cpu_capability"] == "AVX2"
    assert not {"X86_V4", "AVX512_ICL", "AVX512_SPR"} & set(prov["machine"]["numpy_cpu_dispatch"])  # dispatch stops at AVX2

    # In-process, the pins cannot be applied any more: one line saying so, nothing run.
    from epamnet.cli import main

    cwd = os.getcwd()
    os.chdir(project)
    try:
        assert main([str(a) for a in args]) == 1
    finally:
        os.chdir(cwd)


def test_stage_code_is_the_import_closure() -> None:
    crop = set(stage_code("crop"))
    for needed in ("prepare/crop.py", "prepare/global_box.py", "io/video.py", "io/skeleton.py", "stages/crop.py", "io/__init__.py"):
        assert f"src/epamnet/{needed}" in crop, needed
    users_of_figures = {rule for rule in STAGE_MODULES if "src/epamnet/report/figures.py" in stage_code(rule)}
    assert users_of_figures == {"report"}
    users_of_box = {rule for rule in STAGE_MODULES if "src/epamnet/prepare/global_box.py" in stage_code(rule)}
    assert users_of_box == {"crop", "crop_merge"}  # merge_shards lives beside crop_shard
    trained = set(stage_code("train_unimodal"))
    assert {"src/epamnet/engine/trainer.py", "src/epamnet/loader/heatmaps.py", "src/epamnet/runtime.py"} <= trained
    for rule in STAGE_MODULES:
        files = stage_code(rule)
        assert all(f.endswith(".py") and (ROOT / f).is_file() for f in files), rule
        assert "src/epamnet/cli.py" not in files


def test_both_graphs_list_only_source_files_as_code() -> None:
    """No stage depends on a source folder (whose __pycache__ would count) in either tool."""
    params = validate_params(yaml.safe_load((ROOT / "params.yaml").read_text()))
    for st in stages(params):
        code = [d for d in st.deps if d.startswith("src/")]
        assert code, st.rule
        assert all(d.endswith(".py") for d in code), (st.rule, [d for d in code if not d.endswith(".py")])
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    for name, stage in dvc["stages"].items():
        assert all(d.endswith(".py") for d in stage["deps"] if d.startswith("src/")), name


def test_training_code_fingerprint_follows_its_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """run_info carries a hash of the training code: an edit there must not resume the old run."""
    from epamnet import codedeps

    package = tmp_path / "epamnet"
    shutil.copytree(ROOT / "src/epamnet", package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(codedeps, "_package_dir", lambda: package)
    before = codedeps.code_sha256("train_unimodal")
    (package / "report/figures.py").write_text((package / "report/figures.py").read_text() + "# not training code\n")
    assert codedeps.code_sha256("train_unimodal") == before
    (package / "engine/schedule.py").write_text((package / "engine/schedule.py").read_text() + "# an edit\n")
    assert codedeps.code_sha256("train_unimodal") != before
