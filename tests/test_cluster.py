"""Cluster setup: the SLURM profile's resources, and the conda environments of the rules.

`snakemake -n --profile workflow/profiles/slurm` runs the SLURM executor plugin's dry
run, which needs no SLURM tools: it prints every job with the resources the plugin
would submit it with. The test runs it on a copy of the project and checks that every
job has a partition, memory, a runtime and CPUs, and that the GPU stages (and only
they) ask for a GPU. The plugin's own sbatch-argument builder then turns each rule's
resources into the flags it would submit (`--gpus=1`, `--mem`, `-t`, ...), which
catches resource names the plugin does not know (it ignores them silently).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from helpers import BIN

ROOT = Path(__file__).resolve().parents[1]
SLURM_PROFILE = ROOT / "workflow" / "profiles" / "slurm" / "config.yaml"
LOCAL_PROFILE = ROOT / "workflow" / "profiles" / "local" / "config.yaml"
#: Rules whose jobs run on a GPU: pose extraction (mmpose), training, evaluation.
GPU_RULES = {"pose_extract", "train_unimodal", "train_fusion", "evaluate", "evaluate_released"}
REQUIRED = ("slurm_partition", "mem_mb", "runtime", "cpus_per_task")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["PATH"] = f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


def _rules() -> set[str]:
    """Rule names declared in the Snakefile and workflow/rules/*.smk."""
    files = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]
    return {m for f in files for m in re.findall(r"^rule (\w+):", f.read_text(), flags=re.M)}


def _value(text: str):
    try:
        return int(text)
    except ValueError:
        return text


def dry_run_jobs(text: str) -> list[tuple[str, dict]]:
    """(rule, resources) of every job a `snakemake -n` printed."""
    jobs: list[tuple[str, dict]] = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", text):
        head = re.match(r"(?:local)?rule (\w+):", block)
        res = re.search(r"^\s+resources: (.*)$", block, flags=re.M)
        if head:
            pairs = (item.split("=", 1) for item in res.group(1).split(", ")) if res else ()
            jobs.append((head.group(1), {k: _value(v) for k, v in pairs}))
    return jobs


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the workflow (no data): dry runs write only .snakemake/ metadata there."""
    root = tmp_path_factory.mktemp("cluster")
    for item in ("Snakefile", "params.yaml", "workflow", "src", "envs"):
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, root / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, root / item)
    return root


def _snakemake(project: Path, *args: str) -> str:
    cmd = [str(BIN / "snakemake"), "-n", *args]
    result = subprocess.run(cmd, cwd=project, env=_env(), capture_output=True, text=True, timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    return out


def test_slurm_dry_run_shows_every_jobs_resources(project: Path) -> None:
    out = _snakemake(project, "--profile", "workflow/profiles/slurm")
    jobs = [(rule, res) for rule, res in dry_run_jobs(out) if rule != "all"]
    rules = {rule for rule, _ in jobs}
    assert {"acquire", "crop", "train_unimodal", "train_fusion", "evaluate"} <= rules, sorted(rules)
    profile = yaml.safe_load(SLURM_PROFILE.read_text())
    for rule, res in jobs:
        missing = [k for k in REQUIRED if k not in res]
        assert not missing, f"{rule}: no {missing} in {res}"
        assert isinstance(res["mem_mb"], int) and isinstance(res["runtime"], int), (rule, res)
        want = profile["set-resources"].get(rule, {})
        assert res["mem_mb"] == want.get("mem_mb", profile["default-resources"]["mem_mb"]), rule
        if rule in GPU_RULES:
            assert res.get("gpu", 0) >= 1 and res["slurm_partition"] != profile["default-resources"]["slurm_partition"], (rule, res)
        else:
            assert "gpu" not in res and "gres" not in res, (rule, res)


def test_profile_names_real_rules_and_the_gpu_stages() -> None:
    profile = yaml.safe_load(SLURM_PROFILE.read_text())
    assert profile["executor"] == "slurm"
    assert profile["retries"] >= 1 and profile["latency-wait"] >= 30 and profile["jobs"] >= 1
    sized = set(profile["set-resources"])
    unknown = sized - _rules()
    assert not unknown, f"set-resources for rules that do not exist (ignored by Snakemake): {sorted(unknown)}"
    assert _rules() - {"all"} <= sized, f"rules without sizes: {sorted(_rules() - {'all'} - sized)}"
    assert {r for r, res in profile["set-resources"].items() if res.get("gpu")} == GPU_RULES


def test_plugin_turns_resources_into_sbatch_flags() -> None:
    submit = pytest.importorskip("snakemake_executor_plugin_slurm.submit_string")
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    class Resources(dict):
        __getattr__ = dict.__getitem__

    profile = yaml.safe_load(SLURM_PROFILE.read_text())
    params = {"run_uuid": "r", "slurm_logfile": "l", "comment_str": "c", "account": "", "partition": "", "workdir": ""}
    for rule, sized in profile["set-resources"].items():
        res = Resources({**profile["default-resources"], **sized})
        job = SimpleNamespace(resources=res, threads=1, name=rule)
        flags = submit.get_submit_command(job, params) + set_gres_string(job)
        assert f"--mem {res['mem_mb']}" in flags and f"-t {res['runtime']}" in flags, (rule, flags)
        assert f"--cpus-per-task={res['cpus_per_task']}" in flags, (rule, flags)
        if rule in GPU_RULES:
            assert f"--gpus={res['gpu']}" in flags, (rule, flags)
        else:
            assert "--gpus" not in flags and "--gres" not in flags, (rule, flags)


def test_local_profile_dry_run(project: Path) -> None:
    out = _snakemake(project, "--profile", "workflow/profiles/local")
    assert "train_unimodal" in out and "This was a dry-run" in out


def test_conda_environments_exist_and_follow_the_lock() -> None:
    """Every `conda:` file a rule names exists, is current, and pins the lock's versions."""
    referenced = set()
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        for rel in re.findall(r"conda:\s*\n\s*\"([^\"]+)\"", smk.read_text()):
            referenced.add((smk.parent / rel).resolve())
    assert referenced and all(p.is_file() for p in referenced), sorted(map(str, referenced))
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_conda_envs.py"), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    lock = {}
    for line in (ROOT / "envs" / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            lock[name.lower().replace("_", "-")] = version
    for env_file in referenced | set((ROOT / "envs").glob("*.yaml")):
        env = yaml.safe_load(env_file.read_text())
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
        assert "torch==2.13.0" in pip, env_file
        for pin in pip:
            name, version = pin.split("==")
            assert lock[name.lower().replace("_", "-")] == version, (env_file.name, pin)
        assert env_file.with_suffix(".post-deploy.sh").is_file(), f"{env_file.name}: no post-deploy script"
