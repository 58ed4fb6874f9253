"""Snakemake and DVC run the same stages: same commands, inputs, outputs and params.

The Snakefile is written by hand; dvc.yaml is generated from src/epamnet/layout.py.
These tests build both graphs with the tools' own parsers and compare them job by
job, check that the committed generated files are current, and that the JSON schema
(Snakemake's validate()) and the typed config (every `epamnet` command) accept and
reject the same parameter files.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from epamnet.config import json_schema, validate_params
from epamnet.dvcfile import render_dvc_yaml, stage_name
from epamnet.errors import EpamnetError
from helpers import BIN

ROOT = Path(__file__).resolve().parents[1]


def _params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def _snakemake_jobs(workdir: Path, configfile: Path | None = None) -> dict[str, dict]:
    """Jobs of the Snakemake DAG, keyed like DVC stages (rule-wildcards)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        OutputSettings,
        Quietness,
        ResourceSettings,
    )

    config = ConfigSettings(configfiles=[configfile] if configfile else [])
    jobs = {}
    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        wf_api = api.workflow(
            snakefile=workdir / "Snakefile",
            resource_settings=ResourceSettings(cores=1),
            config_settings=config,
            workdir=workdir,
        )
        wf_api.dag(DAGSettings(forceall=True))
        wf = wf_api._workflow  # Snakemake's own DAG (API pinned to snakemake 9.x)
        wf._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True)
        wf._build_dag()
        for job in wf.dag.jobs:
            if job.rule.name == "all":
                continue
            key = Path(job.log[0]).stem  # logs/<rule>/<key>.log, as in dvc.yaml's commands
            jobs[stage_name(job.rule.name, key)] = {
                "cmd": job.shellcmd.strip(),
                "deps": sorted(map(str, job.input)),
                "outs": sorted(map(str, job.output)),
                "params": sorted(job.params.values.keys()) if "values" in job.params.keys() else [],
            }
    return jobs


def _dvc_stages(workdir: Path) -> dict[str, dict]:
    """Stages of dvc.yaml as DVC itself parses them."""
    from dvc.repo import Repo

    stages = {}
    with Repo(str(workdir)) as repo:
        for st in repo.index.stages:
            params = []
            for dep in st.deps:
                if hasattr(dep, "params"):
                    params.extend(dep.params)
            stages[st.name] = {
                "cmd": st.cmd,
                "deps": sorted(str(Path(d.def_path)) for d in st.deps if not hasattr(d, "params")),
                "outs": sorted(str(Path(o.def_path)) for o in st.outs),
                "params": sorted(params),
            }
    return stages


def test_committed_dvc_yaml_is_current():
    params = validate_params(_params())
    assert (ROOT / "dvc.yaml").read_text() == render_dvc_yaml(params), "run `epamnet dvc-yaml`"


def test_committed_schema_is_current():
    committed = json.loads((ROOT / "workflow/schemas/params.schema.json").read_text())
    assert committed == json_schema(), "run `epamnet schema`"


def test_snakemake_and_dvc_graphs_agree():
    smk = _snakemake_jobs(ROOT)
    dvc = _dvc_stages(ROOT)
    assert sorted(smk) == sorted(dvc)
    for name in dvc:
        assert smk[name] == dvc[name], name
    # the graph covers every stage of every dataset
    rules = {name.split("-")[0] for name in dvc}
    assert rules == {"acquire", "pose", "clips", "crop", "crop_merge", "splits", "train_unimodal", "train_fusion", "evaluate", "profile", "report"}


def test_graphs_agree_for_another_configuration(tmp_path):
    """Other datasets and shard counts: both graphs change the same way."""
    for item in ("Snakefile", "workflow", "src"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / item)
    params = _params()
    params["datasets"]["run"] = ["toyota", "ntu120"]
    params["prepare"]["shards"] = 3
    params["datasets"]["toyota"]["skeletons"] = "mmpose"  # extracted: sharded pose_extract jobs
    params["pose"]["shards"] = 4
    checkpoint = tmp_path / params["pose"]["checkpoint"]  # a user-supplied file (DVC-tracked)
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"weights")
    # Released checkpoints (bare names: under downloads/): the pose streams start from one, and
    # Toyota CS's released EPAM-Net weights are evaluated as their own row.
    params["train"]["pose"] = {"init": "pose_released.pth"}
    params["datasets"]["toyota"]["released"] = {"cs": "epamnet_toyota_cs.pth"}
    (tmp_path / "downloads").mkdir()
    for name in ("pose_released.pth", "epamnet_toyota_cs.pth"):
        (tmp_path / "downloads" / name).write_bytes(b"weights")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "dvc.yaml").write_text(render_dvc_yaml(validate_params(params)))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([BIN / "dvc", "init", "-q"], cwd=tmp_path, check=True)
    smk, dvc = _snakemake_jobs(tmp_path), _dvc_stages(tmp_path)
    assert smk == dvc
    assert sum(name.startswith("crop-") for name in dvc) == 6
    assert not any(name.startswith("clips") for name in dvc)
    assert sorted(n for n in dvc if n.startswith("pose_extract")) == [f"pose_extract-toyota-{i:03d}" for i in range(4)]
    assert "downloads/pose_released.pth" in dvc["train_unimodal-toyota-cs-pose"]["deps"]
    assert "downloads/pose_released.pth" not in dvc["train_unimodal-toyota-cs-rgb"]["deps"]
    assert [n for n in dvc if n.startswith("evaluate_released")] == ["evaluate_released-toyota-cs"]
    assert "downloads/epamnet_toyota_cs.pth" in dvc["evaluate_released-toyota-cs"]["deps"]
    assert "results/metrics/toyota/cs/released/metrics.json" in dvc["report-all"]["deps"]


def test_snakemake_lint_is_clean():
    result = subprocess.run(
        [BIN / "snakemake", "--lint"], cwd=ROOT, capture_output=True, text=True, env={"PATH": f"{BIN}:/usr/bin:/bin"}
    )
    assert result.returncode == 0, result.stdout + result.stderr


BAD_PARAMS = [
    (["datasets", "run"], ["ntu60", "kinetics"], "datasets.run.1"),
    (["datasets", "ntu60", "protocols"], ["xset"], "datasets.ntu60.protocols.0"),
    (["datasets", "toyota", "protocols"], ["xsub"], "datasets.toyota.protocols.0"),
    (["datasets", "pku", "source"], "downloaded", "datasets.pku.source"),
    (["prepare", "shards"], -2, "prepare.shards"),
    (["prepare", "shards"], "four", "prepare.shards"),
    (["prepare", "crop", "size"], 0, "prepare.crop.size"),
    (["prepare", "crop", "colour"], "red", "prepare.crop.colour"),
]


@pytest.mark.parametrize("path,value,key", BAD_PARAMS, ids=[b[2] for b in BAD_PARAMS])
def test_schema_and_typed_config_reject_the_same_values(path, value, key):
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    data = copy.deepcopy(_params())
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(EpamnetError) as err:
        validate_params(data, "params.yaml")
    message = str(err.value)
    assert message.startswith(f"params.yaml: {key}:") and "\n" not in message
    with pytest.raises(WorkflowError):
        validate(copy.deepcopy(data), str(ROOT / "workflow/schemas/params.schema.json"))


def test_schema_and_typed_config_accept_the_defaults():
    from snakemake.utils import validate

    data = _params()
    validate_params(data)
    validate(copy.deepcopy(data), str(ROOT / "workflow/schemas/params.schema.json"))


def test_bad_params_fail_at_start_up_with_one_line(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("datasets:\n  ntu60:\n    protocols: [xset]\n")
    result = subprocess.run(
        [BIN / "epamnet", "--params", str(bad), "check"], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "datasets.ntu60.protocols.0" in lines[0] and "'xsub' or 'xview'" in lines[0]


@pytest.mark.parametrize("edit,says", [
    (("  sigma: 0.6", "  sigmaa: 0.6"), "data.sigmaa: unknown setting; did you mean 'sigma'?"),  # a section's key
    (("    device: auto", "    devcie: auto"), "train.common.devcie: unknown setting; did you mean 'device'?"),  # nested
    (("paths:", "pahts:"), "pahts: unknown setting; did you mean 'paths'?"),  # a top-level key
    (("  shards: 2", "  shards: -2"), "pose.shards: input should be greater than 0 (got -2)"),  # a bad value
    (("  attention: cbam_nested", "  attention: cbam_nestd"), "did you mean 'cbam_nested'?"),  # a value's typo
    (("  common:", "  common"), "not valid YAML at line"),  # syntax
], ids=["section-key", "nested-key", "top-level-key", "value", "value-typo", "yaml-syntax"])
def test_snakemake_stops_on_bad_params_with_the_check_line(tmp_path, edit, says):
    """`snakemake -n` on a broken params.yaml prints the one line `epamnet check` prints, nothing else:
    no page of JSON schema (Snakemake's validate() on its own prints the whole schema of the section)."""
    for name in ("Snakefile", "workflow"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    text = (ROOT / "params.yaml").read_text(encoding="utf-8")
    assert edit[0] in text
    (tmp_path / "params.yaml").write_text(text.replace(edit[0], edit[1], 1), encoding="utf-8")
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    smk = subprocess.run([BIN / "snakemake", "-n", "--cores", "1"], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=300)
    check = subprocess.run([BIN / "epamnet", "check"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert smk.returncode == check.returncode == 1
    line = check.stderr.strip()
    assert len(line.splitlines()) == 1 and line.startswith("error: params.yaml: ") and says in line
    assert "properties" not in smk.stdout + smk.stderr  # the schema's keyword
    assert (smk.stdout + smk.stderr).strip() == line
