"""``recipe: synthetic | paper``: the effective settings of each training, their precedence,
the stage params that make a recipe change re-run the stages, and `epamnet check`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from epamnet import cli
from epamnet.config import param_values, validate_params
from epamnet.config.model import paper_spec
from epamnet.dag import stages
from epamnet.dvcfile import render_dvc_yaml

ROOT = Path(__file__).resolve().parents[1]
STREAMS = ("pose", "rgb", "fusion")


def _shipped() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def _with(recipe: str, **sections) -> dict:
    data = _shipped()
    data["recipe"] = recipe
    for path, value in sections.items():  # "train__fusion" -> data["train"]["fusion"]
        *parents, last = path.split("__")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return data


def _train(params, stream: str) -> dict:
    values = params.train_config(stream).as_dict()
    values.pop("selection")  # the project's own setting, not the recipe's
    return values


# The effective settings of the shipped params.yaml before recipes existed (frozen: the
# default run's numbers must not change).
TODAY_COMMON = {
    "epochs": 10, "batch_size": 8, "base_lr": 0.05, "reference_batch": 8, "momentum": 0.9, "weight_decay": 0.0003,
    "grad_clip": 40.0, "warmup_epochs": 0.0, "num_workers": 0, "seed": 100, "amp": False, "device": "auto",
    "sync_bn": None, "keep_checkpoints": 2, "eval_batch_size": None, "deterministic": True, "nproc_per_node": 1,
    "pose_pipeline": "fusion", "init": None,
}  # fmt: skip
TODAY_TRAIN = {"pose": TODAY_COMMON, "rgb": TODAY_COMMON, "fusion": {**TODAY_COMMON, "base_lr": 0.01}}
TODAY_MODEL = {
    "rgb": {"in_channels": 3, "base_channels": 8, "stage_blocks": [1, 2, 2, 1], "spatial_strides": [2, 2, 2, 1],
            "stem_stride": 2, "widen_factor": 2.25, "fold_div": 8, "se_ratio": 0.0625, "se_style": "half",
            "clip_len": 8, "input_size": 64},
    "pose": {"in_channels": 17, "base_channels": 8, "stage_blocks": [1, 2, 1], "spatial_strides": [2, 2, 2],
             "stem_stride": 1, "widen_factor": 2.25, "fold_div": 4, "se_ratio": 0.0625, "se_style": "half",
             "clip_len": 24, "input_size": 32},
    "attention": "cbam_nested", "dropout": 0.5, "name": "custom",
}  # fmt: skip
TODAY_DATA = {"sigma": 0.6, "use_score": True, "compact_padding": 0.25, "compact_threshold": 10.0,
              "allow_imgpad": False, "flip_ratio": 0.5}  # fmt: skip


def test_synthetic_recipe_gives_todays_settings():
    params = validate_params(_shipped())
    assert params.recipe == "synthetic"
    for stream in STREAMS:
        assert _train(params, stream) == TODAY_TRAIN[stream], stream
    assert params.model.preset == "synthetic"
    assert params.model_spec().model_dump(mode="json") == TODAY_MODEL
    assert params.model_dump(mode="json")["data"] == TODAY_DATA
    # an empty file runs the same recipe
    assert all(_train(validate_params({}), s) == TODAY_TRAIN[s] for s in STREAMS)


# The official values (ddp_train_MMActionRecognition_model_pytorch.py, ddp/trainer.py, the
# X-ShiftNet backbones, dataPrep*.py); stream pre-training epochs are the spec's (no official script).
PAPER_COMMON = {
    "epochs": 300, "batch_size": 12, "base_lr": 0.0015, "reference_batch": 24, "momentum": 0.9,
    "weight_decay": 0.0003, "grad_clip": 40.0, "warmup_epochs": 0.0, "seed": 100, "sync_bn": True,
    "deterministic": True, "pose_pipeline": "fusion",
}  # fmt: skip
PAPER_TRAIN = {
    "pose": {**PAPER_COMMON, "pose_pipeline": "official_pose"},
    "rgb": PAPER_COMMON,
    "fusion": {**PAPER_COMMON, "epochs": 10},
}


def test_paper_recipe_gives_the_official_values():
    data = _with("paper")
    data["train"]["fusion"].pop("epochs")  # the shipped file spells it out (the same 10)
    params = validate_params(data)
    for stream in STREAMS:
        got = _train(params, stream)
        assert {k: got[k] for k in PAPER_TRAIN[stream]} == PAPER_TRAIN[stream], stream
    fusion = params.train_config("fusion")
    assert fusion.lr(2) == pytest.approx(0.0015)  # 12 clips x 2 GPUs, as the official run
    assert fusion.lr(1) == pytest.approx(0.00075)  # scaled by the real number of processes
    spec = params.model_spec()
    assert params.model.preset == "paper"
    assert spec.model_dump(exclude={"name"}) == paper_spec().model_dump(exclude={"name"})
    assert (spec.rgb.clip_len, spec.rgb.input_size, spec.pose.clip_len, spec.pose.input_size) == (16, 224, 48, 56)
    assert params.model_dump(mode="json")["data"] == TODAY_DATA  # the official fusion pipeline's values


def test_written_keys_override_the_recipe():
    params = validate_params(_with("paper", train__common={"epochs": 5, "device": "cpu"}, train__fusion={},
                                   train__rgb={"batch_size": 4}, model={"preset": "synthetic"}))  # fmt: skip
    # train.common beats the recipe's value for every stream, also a per-stream recipe value
    assert [params.train_config(s).epochs for s in STREAMS] == [5, 5, 5]
    assert params.train_config("rgb").batch_size == 4 and params.train_config("pose").batch_size == 12
    assert params.train_config("pose").pose_pipeline == "official_pose"  # the recipe's, not overridden
    assert params.model.preset == "synthetic" and params.model_spec().rgb.clip_len == 8
    assert params.origin("train.fusion.epochs") == "params.yaml"
    assert params.origin("train.rgb.batch_size") == "params.yaml"
    assert params.origin("train.pose.batch_size") == "recipe paper"
    assert params.origin("train.pose.pose_pipeline") == "recipe paper"
    assert params.origin("train.pose.keep_checkpoints") == "default"
    assert params.origin("model.preset") == "params.yaml"


def test_a_bad_recipe_is_one_line_naming_the_key():
    from epamnet.errors import EpamnetError

    with pytest.raises(EpamnetError) as err:
        validate_params(_with("papr"), "params.yaml")
    message = str(err.value)
    assert message.startswith("params.yaml: recipe:") and "paper" in message and "\n" not in message


def test_the_recipe_is_a_param_of_every_stage_it_changes():
    synthetic, paper = validate_params(_shipped()), validate_params(_with("paper"))
    graph = stages(synthetic)
    changed = {"train_unimodal", "train_fusion", "evaluate", "report"}
    for stage in graph:
        # DVC reads params.yaml as written: the recipe key itself must be a dependency ...
        assert ("recipe" in stage.params) == (stage.rule in changed or stage.rule == "evaluate_released"), stage
        if stage.rule in changed:
            # ... and Snakemake's rule params (the effective values) change with it
            assert param_values(synthetic, stage.params) != param_values(paper, stage.params), stage
    assert "- recipe" in render_dvc_yaml(synthetic)


def test_check_prints_each_trainings_effective_settings_and_origin(tmp_path, capsys):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(_with("paper", train__fusion={"base_lr": 0.003})))
    assert cli.main(["--params", str(path), "check"]) == 0
    out = capsys.readouterr().out
    blocks = dict.fromkeys(STREAMS, "")
    current = None
    for line in out.splitlines():
        if line.startswith("train "):
            current = line.split()[1].rstrip(":")
        elif current and line.startswith("  "):
            blocks[current] += line + "\n"
    rows = {s: {line.split()[0]: line.split(None, 1)[1] for line in blocks[s].splitlines()} for s in STREAMS}
    assert "recipe: paper" in out
    assert rows["pose"]["epochs"].split() == ["300", "[recipe", "paper]"]
    assert rows["pose"]["pose_pipeline"].split() == ["official_pose", "[recipe", "paper]"]
    assert rows["rgb"]["rgb.clip_len"].split() == ["16", "[recipe", "paper]"]
    assert rows["fusion"]["base_lr"].split() == ["0.003", "[params.yaml]"]
    assert rows["fusion"]["epochs"].split() == ["10", "[recipe", "paper]"]
    assert rows["rgb"]["nproc_per_node"].split() == ["1", "[params.yaml]"]
    assert rows["fusion"]["lr"].startswith("0.0015 = 0.003 x 12 x 1 / 24")
    assert rows["fusion"]["sync_bn"].split() == ["True", "[recipe", "paper]"]

