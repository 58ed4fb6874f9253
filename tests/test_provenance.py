"""Provenance records: reproducible bytes, input hashes that see every change, git state."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from epamnet import provenance as prov
from epamnet.errors import EpamnetError

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(repo: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false", *args]
    return subprocess.run(cmd, cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def no_repo_above(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path, with git kept from finding a repository in a folder above it."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def make_inputs(root: Path) -> Path:
    data = root / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_bytes(b"alpha\n")
    (data / "sub" / "b.bin").write_bytes(bytes(range(256)) * 10)
    return data


def test_written_provenance_is_byte_identical(no_repo_above: Path) -> None:
    data = make_inputs(no_repo_above)
    values = {"model": {"depth": 2}, "train": {"lr": 0.1, "epochs": 3}}
    inputs = {"data": data, "one": data / "a.txt"}
    # root: a folder outside any repository, so a concurrent edit of this checkout cannot flip 'dirty'.
    records = [prov.stage_provenance(params_values=values, inputs=inputs, root=no_repo_above) for _ in (1, 2)]
    paths = [prov.write_provenance(no_repo_above / f"out{i}", r) for i, r in enumerate(records, 1)]
    assert paths[0].name == "provenance.json" and paths[0].read_bytes() == paths[1].read_bytes()
    text = paths[0].read_text()
    assert text.endswith("}\n")
    got = prov.read_provenance(paths[0])
    assert got is not None
    assert set(got) == {"git", "params_sha256", "params_keys", "inputs", "software", "machine"}
    assert got["params_keys"] == ["model", "train"] and got["params_sha256"] == prov.params_sha256(values)
    assert got["inputs"]["one"] == {"path": str(data / "a.txt"), "sha256": prov.input_sha256(data / "a.txt")}
    assert got["git"] == {"commit": "unknown", "dirty": None}
    assert {"python", "epamnet", "torch", "numpy", "opencv", "platform"} <= set(got["software"])
    assert got["machine"]["device"] == "cpu" and got["machine"]["threads"] >= 1
    assert isinstance(got["machine"]["numpy_cpu_dispatch"], list)
    assert list(got) == sorted(got)  # sorted keys: a stable byte order
    no_repo_above.joinpath("out1", "provenance.json").write_text("{broken")
    with pytest.raises(EpamnetError, match="provenance.json: not valid JSON"):
        prov.read_provenance(paths[0])
    assert prov.read_provenance(no_repo_above / "absent.json") is None


def test_directory_hash_sees_bytes_and_names_not_caches(tmp_path: Path) -> None:
    data = make_inputs(tmp_path)
    base = prov.input_sha256(data)
    assert base == prov.input_sha256(data)

    (data / "__pycache__").mkdir()
    (data / "__pycache__" / "x.pyc").write_bytes(b"cache")
    (data / "sub" / "y.pyc").write_bytes(b"cache")
    (data / ".snakemake_timestamp").write_text("1")
    assert prov.input_sha256(data) == base

    blob = bytearray((data / "sub" / "b.bin").read_bytes())
    blob[100] ^= 1  # one bit of one byte
    (data / "sub" / "b.bin").write_bytes(bytes(blob))
    changed = prov.input_sha256(data)
    assert changed != base
    blob[100] ^= 1
    (data / "sub" / "b.bin").write_bytes(bytes(blob))
    assert prov.input_sha256(data) == base

    (data / "a.txt").rename(data / "c.txt")  # same bytes, new name
    assert prov.input_sha256(data) not in (base, changed)

    with pytest.raises(EpamnetError, match="input not found"):
        prov.input_sha256(tmp_path / "absent")


@needs_git
def test_git_state_of_a_repository(no_repo_above: Path) -> None:
    repo = no_repo_above / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "f.txt").write_text("one\n")
    git(repo, "add", "f.txt")
    git(repo, "commit", "-q", "-m", "first")
    (repo / "untracked.txt").write_text("not tracked\n")  # untracked files do not make it dirty

    state = prov.git_state(repo)
    assert state == {"commit": git(repo, "rev-parse", "HEAD"), "dirty": False}
    assert len(state["commit"]) == 40

    # The pipeline's own tracked outputs (results, dvc.lock) do not make the code dirty.
    (repo / "results").mkdir()
    (repo / "results" / "m.json").write_text("{}\n")
    git(repo, "add", "results")
    git(repo, "commit", "-q", "-m", "results")
    (repo / "results" / "m.json").write_text('{"top1": 1}\n')
    state = prov.git_state(repo, outputs=("results", "dvc.lock"))
    assert state["dirty"] is False
    assert prov.git_state(repo)["dirty"] is True

    (repo / "f.txt").write_text("two\n")
    assert prov.git_state(repo, outputs=("results", "dvc.lock")) == {"commit": state["commit"], "dirty": True}


def test_git_state_outside_a_repository(no_repo_above: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert prov.git_state(no_repo_above) == {"commit": "unknown", "dirty": None}
    assert prov.git_state(no_repo_above / "missing") == {"commit": "unknown", "dirty": None}
    monkeypatch.setenv("PATH", str(no_repo_above))  # no git at all
    assert prov.git_state(no_repo_above) == {"commit": "unknown", "dirty": None}


def test_params_hash_ignores_key_order_not_values() -> None:
    a = {"train": {"lr": 0.1, "epochs": 3}, "model": "paper"}
    b = {"model": "paper", "train": {"epochs": 3, "lr": 0.1}}
    assert prov.params_sha256(a) == prov.params_sha256(b)
    assert len(prov.params_sha256(a)) == 64
    assert prov.params_sha256({**a, "train": {"lr": 0.1, "epochs": 4}}) != prov.params_sha256(a)
    assert prov.params_sha256({**a, "model": "synthetic"}) != prov.params_sha256(a)


def test_machine_records_cpu_pinning(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in prov.CPU_PINNING_VARS:
        monkeypatch.delenv(var, raising=False)
    assert prov.machine()["cpu_pinning"] == {}
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    assert prov.machine("cpu")["cpu_pinning"] == {"MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "default"}


def record(cpu: str = "Test CPU 9000", threads: int = 1, commit: str = "abcdef1234567890", dirty: bool = False,
           pinning: dict | None = None) -> dict:  # fmt: skip
    return {
        "git": {"commit": commit, "dirty": dirty},
        "software": {"torch": "2.13.0", "numpy": "2.4.6", "opencv": "4.10.0"},
        "machine": {"cpu_model": cpu, "arch": "x86_64", "torch_cpu_capability": "AVX2", "threads": threads,
                    "device": "cpu", "cpu_pinning": pinning or {}},
    }  # fmt: skip


def test_machine_label() -> None:
    assert prov.machine_label(record()) == (
        "Test CPU 9000 (x86_64, torch CPU capability AVX2, 1 thread, cpu); torch 2.13.0, numpy 2.4.6, "
        "OpenCV 4.10.0; commit abcdef1"
    )
    label = prov.machine_label(record(threads=4, dirty=True, pinning={"MKL_CBWR": "COMPATIBLE"}))
    assert "4 threads" in label and label.endswith("commit abcdef1 (dirty), CPU paths pinned")
    assert prov.machine_label(record(commit="unknown")).endswith("commit unknown")
    assert "\n" not in prov.machine_label({})  # a record of another version: still one line
    written = json.loads(json.dumps(prov.stage_provenance(params_values={}, inputs={}, root=Path("/"))))
    real = prov.machine_label(written)
    assert "torch CPU capability" in real and "\n" not in real
