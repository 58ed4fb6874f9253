"""Released checkpoints in the pipeline: ``train.<stream>.init`` and the "released weights" rows.

The released files are written here from the project's own models in the two official
formats (:mod:`test_convert`: mmcv's ``{'meta', 'state_dict', 'optimizer'}`` with
``backbone.*``/``cls_head.*`` keys, and the official trainer's ``{'epoch',
'model_state_dict', 'optimizer_state_dict'}`` with DDP's ``module.``).

- ``init``: a stream trained from a released file ends exactly where a run whose model was
  loaded with those weights by hand ends (same metrics per epoch, same weights), and not
  where training from scratch ends; a bare file name is looked for under ``paths.downloads``;
  a missing file and a file that does not fit are one-line errors naming the file and the fix.
  ``train.fusion.init`` starts EPAM-Net from a released fusion file without trained streams.
- ``datasets.<d>.released``: on a tiny synthetic NTU-60 prepared up to its splits (nothing
  trained), ``evaluate-released`` says where to get a missing file, then evaluates the file
  into the "released" evaluation folder, and ``report`` shows it as its own row of
  ``results.csv``/``results.md`` ("EPAM-Net, released weights", the paper's number beside).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml
from test_convert import official_stream_state, save_mmcv, save_trainer
from test_train_stage import make_project

import epamnet.stages.train as train_module
from epamnet.config import load_params
from epamnet.errors import EpamnetError
from epamnet.models.convert import RELEASE_PAGE
from epamnet.models.epam import build_model
from epamnet.stages.train import run as train_stage


def _set(params: Path, section: str, key: str, value) -> None:
    settings = yaml.safe_load(params.read_text())
    settings["train"].setdefault(section, {})[key] = value
    params.write_text(yaml.safe_dump(settings, sort_keys=False))


def _released_pose(params: Path, num_classes: int = 2, seed: int = 7) -> dict[str, torch.Tensor]:
    """Weights of a pose model of the project's sizes, as our own names."""
    torch.manual_seed(seed)
    return build_model(load_params(params).model_spec(), num_classes, "pose").state_dict()


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _result(root: Path, protocol: str) -> tuple[list[dict[str, str]], dict[str, torch.Tensor]]:
    out = root / "models" / "ntu60" / protocol / "pose"
    return _rows(out / "metrics.csv"), torch.load(out / "model.pt", weights_only=True)


def _strip_times(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if "time" not in k and not k.endswith("_s")} for r in rows]


def _build_with_weights(monkeypatch, weights: dict) -> None:
    """The train stage builds its model with ``weights`` loaded by hand (the run ``init`` must equal)."""
    build = train_module.build_model

    def build_and_load(spec, num_classes, stream):
        built = build(spec, num_classes, stream)
        built.load_state_dict(weights)
        return built

    monkeypatch.setattr(train_module, "build_model", build_and_load)


@pytest.mark.parametrize("save", [save_mmcv, save_trainer])
def test_a_stream_starts_from_a_released_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, save) -> None:
    # (1) init: a bare file name, found under paths.downloads.
    (tmp_path / "init" / "downloads").mkdir(parents=True)
    params, protocol, _, _ = make_project(tmp_path / "init", "ntu60", epochs=1)
    weights = _released_pose(params)
    model = build_model(load_params(params).model_spec(), 2, "pose")
    model.load_state_dict(weights)
    save(tmp_path / "init" / "downloads" / "pose_released.pth", official_stream_state(model, "pose"), 235)
    _set(params, "pose", "init", "pose_released.pth")
    train_stage(load_params(params), "ntu60", protocol, "pose")
    with_init = _result(tmp_path / "init", protocol)

    # (2) the same run, its model loaded with the weights by hand.
    (tmp_path / "hand").mkdir()
    by_hand_params, _, _, _ = make_project(tmp_path / "hand", "ntu60", epochs=1)
    _build_with_weights(monkeypatch, weights)
    train_stage(load_params(by_hand_params), "ntu60", protocol, "pose")
    monkeypatch.undo()
    by_hand = _result(tmp_path / "hand", protocol)

    # (3) from scratch, for contrast.
    (tmp_path / "scratch").mkdir()
    scratch_params, _, _, _ = make_project(tmp_path / "scratch", "ntu60", epochs=1)
    train_stage(load_params(scratch_params), "ntu60", protocol, "pose")
    scratch = _result(tmp_path / "scratch", protocol)

    assert _strip_times(with_init[0]) == _strip_times(by_hand[0])
    assert with_init[1].keys() == by_hand[1].keys()
    assert all(torch.equal(with_init[1][k], by_hand[1][k]) for k in by_hand[1])
    assert with_init[0][0]["train_loss"] != scratch[0][0]["train_loss"]
    assert not all(torch.equal(with_init[1][k], scratch[1][k]) for k in scratch[1])


def _one_line(params: Path, protocol: str) -> str:
    with pytest.raises(EpamnetError) as err:
        train_stage(load_params(params), "ntu60", protocol, "pose")
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_a_missing_released_checkpoint_says_where_to_get_it(tmp_path: Path) -> None:
    params, protocol, _, _ = make_project(tmp_path, "ntu60", epochs=1)
    _set(params, "pose", "init", "pose_released.pth")
    msg = _one_line(params, protocol)
    downloads = tmp_path / "downloads"
    assert msg.startswith(f"{downloads / 'pose_released.pth'}: not found (train.pose.init); ")
    assert RELEASE_PAGE in msg and f"into {downloads}/" in msg
    assert not (tmp_path / "models" / "ntu60").exists()  # nothing trained

    _set(params, "pose", "init", str(tmp_path / "elsewhere" / "pose.pth"))  # a path is taken as written
    assert _one_line(params, protocol).startswith(f"{tmp_path / 'elsewhere' / 'pose.pth'}: not found (train.pose.init)")


def test_a_released_checkpoint_that_does_not_fit_is_refused_in_one_line(tmp_path: Path) -> None:
    params, protocol, _, _ = make_project(tmp_path, "ntu60", epochs=1)
    model = build_model(load_params(params).model_spec(), 2, "pose")
    state = {k: v for k, v in official_stream_state(model, "pose").items() if not k.startswith("cls_head.")}
    src = tmp_path / "headless.pth"
    save_mmcv(src, state, 10)
    _set(params, "pose", "init", str(src))
    msg = _one_line(params, protocol)
    assert msg.startswith(f"{src}: weights do not match the model: missing keys 2 (pose_cls_head.fc_cls.bias, ")
    assert "set train.pose.init to a pose checkpoint of the same model sizes (model.preset) and class count (2)" in msg


# ------------------------------------------------------------------ released weights as their own rows
def _prepared_tiny_ntu(root: Path, released: dict[str, str]) -> Path:
    """params.yaml of a tiny synthetic NTU-60 (xsub), prepared up to its splits; nothing trained."""
    from helpers import TINY_NTU

    from epamnet.cli import main

    params = {
        "paths": {k: str(root / k) for k in ("data", "downloads", "models", "results")},
        "datasets": {"run": ["ntu60"], "ntu60": {"protocols": ["xsub"], "released": released}},
        "synthetic": dict(TINY_NTU),
        "prepare": {"shards": 1, "crop": {"size": 48}},
        "train": {"common": {"device": "cpu", "batch_size": 4}},
    }
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    for args in (["acquire"], ["pose"], ["crop", "--shard", "0"], ["crop-merge"], ["splits"]):
        extra = args[1:]
        assert main(["--params", str(path), args[0], "--dataset", "ntu60", *extra]) == 0, args
    return path


def test_released_fusion_weights_are_evaluated_and_reported_as_their_own_row(tmp_path: Path, capsys) -> None:
    from epamnet.cli import main
    from epamnet.engine.evaluate import EVALUATION_FILE

    params = _prepared_tiny_ntu(tmp_path, {"xsub": "epamnet_ntu60_xsub.pth"})
    evaluate = ["--params", str(params), "evaluate-released", "--dataset", "ntu60", "--protocol", "xsub"]

    # Not downloaded yet: one line saying where from and where to.
    capsys.readouterr()
    assert main(evaluate) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line.lower()]
    assert len(err) == 1
    err = err[0]
    released = tmp_path / "downloads" / "epamnet_ntu60_xsub.pth"
    assert err.startswith(f"error: {released}: not found (datasets.ntu60.released.xsub); ")
    assert RELEASE_PAGE in err

    # The official trainer's format, written from our own EPAM-Net (the classes of the split).
    split = json.loads((tmp_path / "data/prepared/ntu60/splits/xsub.json").read_text())
    torch.manual_seed(11)
    model = build_model(load_params(params).model_spec(), split["num_classes"], "fusion")
    released.parent.mkdir()
    save_trainer(released, model.state_dict(), 8)
    assert main(evaluate) == 0

    out = tmp_path / "results/metrics/ntu60/xsub/released"
    facts = json.loads((out / EVALUATION_FILE).read_text())
    assert facts["stream"] == "released" and facts["selection"] == "released_weights" and facts["selected_epoch"] == 8
    top1 = json.loads((out / "metrics.json").read_text())["top1"]

    assert main(["--params", str(params), "report", "--attention-clips", "0"]) == 0
    rows = _rows(tmp_path / "results/tables/results.csv")
    mine = [r for r in rows if (r["dataset"], r["protocol"]) == ("ntu60", "xsub")]
    assert [r["stream"] for r in mine] == ["pose", "rgb", "fusion", "released"]
    row = mine[-1]
    assert row["ours"] == f"{100 * top1:.2f}" and row["status"] == "ok" and row["paper"] == "96.1"
    assert row["selection"] == "released weights (epoch 8)" and row["data"] == "synthetic"
    assert [r["status"] for r in mine[:3]] == ["not run"] * 3  # nothing was trained
    assert not any(r["stream"] == "released" for r in rows if r["dataset"] != "ntu60" or r["protocol"] != "xsub")
    md = (tmp_path / "results/tables/results.md").read_text()
    assert "| NTU-60 | XSub | EPAM-Net, released weights | top-1 |" in md


def test_fusion_starts_from_released_epamnet_weights_without_trained_streams(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = _prepared_tiny_ntu(tmp_path, {})
    settings = yaml.safe_load(params.read_text())
    settings["train"]["fusion"] = {"epochs": 1, "init": "epamnet_ntu60_xsub.pth"}
    params.write_text(yaml.safe_dump(settings, sort_keys=False))
    split = json.loads((tmp_path / "data/prepared/ntu60/splits/xsub.json").read_text())
    torch.manual_seed(11)
    weights = build_model(load_params(params).model_spec(), split["num_classes"], "fusion").state_dict()
    (tmp_path / "downloads").mkdir()
    save_trainer(tmp_path / "downloads" / "epamnet_ntu60_xsub.pth", weights, 8)

    train_stage(load_params(params), "ntu60", "xsub", "fusion")  # no pose or rgb model.pt exists
    out = tmp_path / "models/ntu60/xsub/fusion"
    with_init = _rows(out / "metrics.csv"), torch.load(out / "model.pt", weights_only=True)

    # The same run without init, its model loaded with the weights by hand.
    settings["train"]["fusion"] = {"epochs": 1}
    params.write_text(yaml.safe_dump(settings, sort_keys=False))
    _build_with_weights(monkeypatch, weights)
    for stream in ("pose", "rgb"):  # the streams it then loads: the same weights' parts
        part = {k: v for k, v in weights.items() if k.startswith((f"{stream}_backbone.", f"{stream}_cls_head."))}
        (tmp_path / f"models/ntu60/xsub/{stream}").mkdir(parents=True)
        torch.save(part, tmp_path / f"models/ntu60/xsub/{stream}/model.pt")
    train_stage(load_params(params), "ntu60", "xsub", "fusion", resume=False)
    by_hand = _rows(out / "metrics.csv"), torch.load(out / "model.pt", weights_only=True)

    assert _strip_times(with_init[0]) == _strip_times(by_hand[0])
    assert all(torch.equal(with_init[1][k], by_hand[1][k]) for k in by_hand[1])
