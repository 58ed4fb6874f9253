"""The SLURM path for real: the pipeline through the cluster profile, torchrun across tasks, faults.

A throw-away single-node SLURM cluster (``slurm_cluster`` fixture, tests/slurm_cluster.py)
runs the tiny configuration as real ``sbatch`` jobs submitted by Snakemake's SLURM
executor plugin through ``workflow/profiles/slurm``, edited the way a user edits it for
their site (the two partition placeholders). The tests check SLURM's own records of the
jobs (``scontrol show job``: each rule's partition, memory, time, CPUs and GPU; the
job-completion log: every job completed), that the results equal a local ``snakemake
--cores 2`` run's bit for bit, that a two-task allocation trains with one torchrun agent
per task exactly like the two-process local run, that a training job cancelled mid-run
resumes from its checkpoint when the workflow is run again, and that a job failing on the
node shows its SLURM log and its error in Snakemake's output.

The cluster has no accounting database, so the plugin is told to poll ``squeue``
(``--slurm-status-command squeue``; the cluster keeps finished jobs listed for an hour),
and to check every 2 s instead of 40 s at first.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from helpers import BIN, copy_tiny_ntu_project
from slurm_cluster import SlurmCluster

pytestmark = [pytest.mark.slurm, pytest.mark.pipeline]

ROOT = Path(__file__).resolve().parents[1]
PROFILE = "workflow/profiles/slurm"
#: The site options of this test cluster (a user's site puts its own in the profile).
CLUSTER_OPTIONS = ("--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2")
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")
RUN = ("ntu60", "xsub")


def _copy_project(root: Path) -> None:
    """The workflow with the tiny NTU-60 (xsub), and the SLURM profile with this cluster's partitions."""
    params = copy_tiny_ntu_project(root, shards=2)
    params["profile"]["iters"] = 0
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    profile = root / PROFILE / "config.yaml"
    text = profile.read_text().replace('"<cpu-partition>"', '"cpu"').replace('"<gpu-partition>"', '"gpu"')
    assert "<" not in re.sub(r"#.*", "", text), "the profile has placeholders the test did not fill"
    profile.write_text(text)


def _set_params(root: Path, **train: dict) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    for stream, values in train.items():
        params["train"][stream] = {**(params["train"].get(stream) or {}), **values}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _run(cmd: list, cwd: Path, env: dict[str, str], timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"{cmd} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-4000:]}"
    return result


def _env(cluster: SlurmCluster) -> dict[str, str]:
    env = cluster.env()
    env["PATH"] = f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(name, None)
    return env


def _snakemake_slurm(root: Path, cluster: SlurmCluster, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run([BIN / "snakemake", "--profile", PROFILE, *CLUSTER_OPTIONS, *args], root, _env(cluster), check=check)


def _submitted(output: str) -> dict[str, str]:
    """SLURM job id -> the plugin's log file of that job, as Snakemake printed them."""
    return {job: log for job, log in SUBMITTED.findall(output)}


def _rule_of(log: str) -> str:
    return re.search(r"/rule_([a-z_]+?)(?:/|$)", log).group(1)


def _minutes(limit: str) -> int:
    """SLURM's TimeLimit ([D-]HH:MM:SS) in minutes."""
    days, _, hms = limit.rpartition("-")
    h, m, s = (int(x) for x in hms.split(":"))
    return (int(days or 0) * 24 + h) * 60 + m + (s > 0)


def _megabytes(size: str) -> float:
    """SLURM's memory size (``8000M``, ``62.50G``) in MB."""
    return float(size[:-1]) * {"M": 1, "G": 1024, "T": 1024**2}[size[-1]]


def _epochs_csv(path: Path) -> bytes:
    """metrics.csv without its wall-clock column (seconds per epoch)."""
    table = pd.read_csv(path)
    assert "time" in table.columns and len(table) > 0, path
    return table.drop(columns=["time"]).to_csv(index=False).encode()


def _outputs(root: Path) -> dict[str, bytes]:
    """The results that must not depend on the launcher: evaluations, per-epoch metrics, results table."""
    files = sorted((root / "results" / "metrics").rglob("*"))
    files += [root / "results" / "tables" / "results.csv", root / "data" / "prepared" / "ntu60" / "annotations.pkl"]
    files += sorted((root / "data" / "prepared" / "ntu60" / "splits").glob("*.json"))
    out = {str(p.relative_to(root)): p.read_bytes() for p in files if p.is_file()}
    out.update({str(p.relative_to(root)): _epochs_csv(p) for p in sorted((root / "models").glob("*/*/*/metrics.csv"))})
    return out


def _weights(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state)


def _same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), f"{a} vs {b}: {key} differs"


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory, slurm_cluster: SlurmCluster) -> tuple[Path, str]:
    """The tiny pipeline submitted through the SLURM profile; (project, Snakemake's output)."""
    root = tmp_path_factory.mktemp("slurm") / "project"
    _copy_project(root)
    result = _snakemake_slurm(root, slurm_cluster)
    return root, result.stdout + result.stderr


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, slurm_cluster: SlurmCluster) -> Path:
    """The same configuration run locally."""
    root = tmp_path_factory.mktemp("local") / "project"
    _copy_project(root)
    _run([BIN / "snakemake", "--cores", "2"], root, _env(slurm_cluster))
    return root


def test_every_job_ran_as_an_sbatch_job_with_the_profiles_resources(slurm_run, slurm_cluster: SlurmCluster) -> None:
    root, output = slurm_run
    submitted = _submitted(output)
    rules = sorted(_rule_of(log) for log in submitted.values())
    # Every rule of the graph but the target rule `all` (a local rule) went to SLURM, each shard its own job.
    assert rules == sorted(["acquire", "pose", "crop", "crop", "crop_merge", "splits", "train_unimodal", "train_unimodal",
                            "train_fusion", "evaluate", "evaluate", "evaluate", "profile", "report"]), rules
    profile = yaml.safe_load((root / PROFILE / "config.yaml").read_text())
    completed = slurm_cluster.completed_jobs()
    for job, log in submitted.items():
        rule = _rule_of(log)
        want = {**profile["default-resources"], **(profile["set-resources"].get(rule) or {})}
        record = slurm_cluster.job(job)  # what SLURM itself recorded for the job
        assert completed[job]["JobState"] == "COMPLETED", (rule, completed[job])
        assert record["JobState"] == "COMPLETED", (rule, record)
        assert record["Partition"] == want["slurm_partition"], (rule, record["Partition"])
        assert _megabytes(record["MinMemoryNode"]) == want["mem_mb"], (rule, record["MinMemoryNode"])
        assert _minutes(record["TimeLimit"]) == want["runtime"], (rule, record["TimeLimit"])
        assert record["CPUs/Task"] == str(want["cpus_per_task"]), (rule, record["CPUs/Task"])
        gpus = record.get("TresPerJob", "") + record.get("TresPerNode", "")
        assert ("gpu:1" in gpus) == ("gpu" in want), (rule, gpus)
        # The profile's slurm-logdir; the plugin deletes a successful job's log (--slurm-keep-successful-logs keeps it).
        assert record["StdOut"] == log and f"/logs/slurm/rule_{rule}/" in log, (rule, record["StdOut"])
        assert not Path(log).exists(), log


def test_results_equal_a_local_run_bit_for_bit(slurm_run, local_run: Path) -> None:
    root, _ = slurm_run
    on_slurm, local = _outputs(root), _outputs(local_run)
    assert len(on_slurm) > 20 and on_slurm.keys() == local.keys()
    differ = [name for name in on_slurm if on_slurm[name] != local[name]]
    assert not differ, f"differ between the SLURM and the local run: {differ}"
    for stream in ("pose", "rgb", "fusion"):
        _same_weights(root / "models" / "ntu60" / "xsub" / stream / "model.pt",
                      local_run / "models" / "ntu60" / "xsub" / stream / "model.pt")


def _same_run(a: Path, b: Path) -> None:
    """Two trainings' per-epoch metrics (but the seconds) and summary are equal."""
    assert _epochs_csv(a / "metrics.csv") == _epochs_csv(b / "metrics.csv")
    summary_a, summary_b = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    assert summary_a == summary_b


def _ddp_copy(src: Path, dst: Path) -> Path:
    """A copy of a finished project whose pose stream is retrained with two processes."""
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns(".snakemake", "logs"))
    shutil.rmtree(dst / "models" / ".work" / "ntu60" / "xsub" / "pose", ignore_errors=True)
    (dst / "models" / "ntu60" / "xsub" / "pose" / "model.pt").unlink()
    _set_params(dst, pose={"nproc_per_node": 2})
    return dst


def test_torchrun_across_two_slurm_tasks_equals_the_two_process_local_run(slurm_run, slurm_cluster, tmp_path) -> None:
    root, _ = slurm_run
    local = _ddp_copy(root, tmp_path / "local")
    on_slurm = _ddp_copy(root, tmp_path / "slurm")
    env = _env(slurm_cluster)
    # Locally: `epamnet train` re-launches itself as `torchrun --standalone --nproc_per_node 2`.
    _run([BIN / "epamnet", "train", "--dataset", "ntu60", "--protocol", "xsub", "--stream", "pose"], local, env)
    # On SLURM: two tasks, one torchrun agent each (one process per agent), c10d rendezvous on loopback.
    log = on_slurm / "torchrun.log"
    job = _run(["sbatch", "--parsable", "--wait", "--ntasks=2", "--cpus-per-task=1", "--partition=cpu",
                f"--output={log}", "workflow/slurm/train_torchrun.sbatch", "ntu60", "xsub", "pose"],
               on_slurm, env, timeout=600, check=False)
    text = log.read_text() if log.is_file() else ""
    assert job.returncode == 0, f"{job.stderr}\n{text[-4000:]}"
    job_id = job.stdout.strip().split(";")[0]
    record = slurm_cluster.job(job_id)
    assert record["NumTasks"] == "2" and record["JobState"] == "COMPLETED", record
    assert "2 task(s) x 1 process(es)" in text
    assert len(set(re.findall(r"joined process group: rank (\d) of 2", text))) == 2, text[-3000:]
    _same_run(on_slurm / "models/ntu60/xsub/pose", local / "models/ntu60/xsub/pose")
    _same_weights(on_slurm / "models/ntu60/xsub/pose/model.pt", local / "models/ntu60/xsub/pose/model.pt")


def _checkpoints(root: Path, stream: str) -> list[Path]:
    return sorted((root / "models" / ".work" / "ntu60" / "xsub" / stream / "checkpoints").glob("epoch_*.pt"))


def test_a_cancelled_training_job_resumes_when_the_workflow_runs_again(slurm_run, slurm_cluster, tmp_path) -> None:
    root, _ = slurm_run
    env = _env(slurm_cluster)
    target = "models/ntu60/xsub/pose/model.pt"
    projects = {}
    for name in ("cancelled", "reference"):
        projects[name] = tmp_path / name
        shutil.copytree(root, projects[name], symlinks=True, ignore=shutil.ignore_patterns("logs"))
        shutil.rmtree(projects[name] / "models/.work/ntu60/xsub/pose")  # the 2-epoch run's checkpoints
        _set_params(projects[name], pose={"epochs": 40})  # long enough to cancel it mid-run
    work = projects["cancelled"]
    # The profile's retries would resubmit the cancelled job by themselves; here the user re-runs.
    cmd = [BIN / "snakemake", "--profile", PROFILE, *CLUSTER_OPTIONS, "--retries", "0", target]
    first = subprocess.Popen([str(c) for c in cmd], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while not _checkpoints(work, "pose"):
            assert first.poll() is None, f"snakemake ended before a checkpoint was written:\n{first.stdout.read()[-3000:]}"
            assert time.monotonic() < deadline, "no epoch checkpoint after 300 s"
            time.sleep(0.05)
        running = slurm_cluster.run("squeue", "-h", "-t", "RUNNING", "-o", "%i").stdout.split()
        assert len(running) == 1, running
        slurm_cluster.run("scancel", running[0])
        output, _ = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode != 0, output[-3000:]
    assert re.search(rf"SLURM-job '{running[0]}' failed, SLURM status is: 'CANCELLED'", output), output[-3000:]
    assert not (work / target).exists()
    done = json_epochs(_checkpoints(work, "pose"))
    assert 1 <= max(done) < 40, done

    again = _snakemake_slurm(work, slurm_cluster, target)
    train_log = (work / "logs/train_unimodal/ntu60-xsub-pose.log").read_text()
    assert re.search(rf"resuming \S+ after epoch {max(done)} of 40", train_log), train_log[-2000:]
    assert "Job" in again.stdout + again.stderr

    _run([BIN / "epamnet", "train", "--dataset", "ntu60", "--protocol", "xsub", "--stream", "pose"], projects["reference"], env)
    _same_run(work / "models/ntu60/xsub/pose", projects["reference"] / "models/ntu60/xsub/pose")
    _same_weights(work / target, projects["reference"] / target)


def json_epochs(paths: list[Path]) -> list[int]:
    return [int(re.search(r"epoch_(\d+)\.pt$", p.name).group(1)) for p in paths]


def test_a_job_failing_on_the_node_shows_its_log_and_error(slurm_run, slurm_cluster, tmp_path) -> None:
    root, _ = slurm_run
    work = tmp_path / "failing"
    shutil.copytree(root, work, symlinks=True, ignore=shutil.ignore_patterns("logs"))
    # A stream checkpoint that is not one: fusion training fails on the node, not in Snakemake.
    (work / "models/ntu60/xsub/rgb/model.pt").write_text("not a checkpoint\n")
    result = _snakemake_slurm(work, slurm_cluster, "--retries", "0", "--forcerun", "train_fusion",
                              "models/ntu60/xsub/fusion/model.pt", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    submitted = {job: log for job, log in _submitted(output).items() if _rule_of(log) == "train_fusion"}
    assert len(submitted) == 1, output[-3000:]
    (job, log), = submitted.items()
    assert Path(log).is_file()  # a failed job's log stays
    assert f"SLURM-job '{job}' failed" in output and log in output, output[-3000:]
    error = "models/ntu60/xsub/rgb/model.pt: not a readable PyTorch checkpoint"
    assert error in Path(log).read_text()
    assert error in output, output[-3000:]  # the profile's show-failed-logs prints the rule's log
    assert slurm_cluster.job(job)["JobState"] == "FAILED"
