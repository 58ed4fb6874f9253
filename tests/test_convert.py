"""Converter for the official checkpoints: key layout, strict loading, clear errors."""

from __future__ import annotations

import datetime

import pytest
import torch

from epamnet.errors import EpamnetError
from epamnet.models.convert import convert_official_checkpoint, load_official_checkpoint
from epamnet.models.epam import EPAMNet
from epamnet.config.model import paper_spec, synthetic_spec

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _conv_bn(prefix: str, cin: int, cout: int, k: tuple[int, int, int], groups: int = 1) -> dict[str, tuple]:
    """Official ConvModule keys: ``<prefix>.conv.weight`` and the five BN entries."""
    keys = {f"{prefix}.conv.weight": (cout, cin // groups, *k)}
    keys.update({f"{prefix}.bn.{b}": () if b == "num_batches_tracked" else (cout,) for b in BN})
    return keys


def _se_width(c: int) -> int:
    w = c / 16
    out = max(8, int(w + 4) // 8 * 8)
    return out + 8 if out < 0.9 * w else out


def official_layout(spec, num_classes: int) -> dict[str, tuple]:
    """Key -> shape of an official EPAM-Net state dict, written from the spec's key patterns."""
    keys: dict[str, tuple] = {}
    for stream, s in (("rgb", spec.rgb), ("pose", spec.pose)):
        p = f"{stream}_backbone"
        keys.update(_conv_bn(f"{p}.conv1_s", s.in_channels, s.base_channels, (1, 3, 3)))
        inplanes = s.base_channels
        for i, blocks in enumerate(s.stage_blocks):
            width = s.base_channels * 2**i
            planes = int(width * 2.25)
            for j in range(blocks):
                b = f"{p}.layer{i + 1}.{j}"
                cin = inplanes if j == 0 else width
                keys.update(_conv_bn(f"{b}.conv1", cin, planes, (1, 1, 1)))
                keys.update(_conv_bn(f"{b}.conv2", planes, planes, (1, 3, 3), groups=planes))
                keys.update(_conv_bn(f"{b}.conv3", planes, width, (1, 1, 1)))
                if j % 2 == 0:  # se_style 'half'
                    r = _se_width(planes)
                    keys[f"{b}.se_module.fc1.weight"] = (r, planes, 1, 1, 1)
                    keys[f"{b}.se_module.fc1.bias"] = (r,)
                    keys[f"{b}.se_module.fc2.weight"] = (planes, r, 1, 1, 1)
                    keys[f"{b}.se_module.fc2.bias"] = (planes,)
                if j == 0:
                    keys.update(_conv_bn(f"{b}.downsample", cin, width, (1, 1, 1)))
            inplanes = width
        keys.update(_conv_bn(f"{p}.conv5", inplanes, int(inplanes * 2.25), (1, 1, 1)))
        keys[f"{stream}_cls_head.fc_cls.weight"] = (num_classes, int(inplanes * 2.25))
        keys[f"{stream}_cls_head.fc_cls.bias"] = (num_classes,)
    keys["attention_module.spatial.conv.weight"] = (1, 2, 1, 7, 7)
    keys.update({f"attention_module.spatial.bn.{b}": () if b == "num_batches_tracked" else (1,) for b in BN})
    keys["attention_module.conv_temporal_attention.weight"] = (1, 1, 7)
    return keys


def _random_state(layout: dict[str, tuple]) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        k: torch.randint(0, 1000, shape, generator=g) if k.endswith("num_batches_tracked") else torch.randn(shape, generator=g)
        for k, shape in layout.items()
    }


def _save_official(path, state, epoch=8):
    ckpt = {
        "epoch": epoch,
        "model_state_dict": {f"module.{k}": v for k, v in state.items()},
        "optimizer_state_dict": {"state": {}, "param_groups": [{"lr": 0.0015, "momentum": 0.9, "params": [0, 1]}]},
    }
    torch.save(ckpt, path)


@pytest.mark.parametrize(("spec", "num_classes"), [(paper_spec(), 60), (synthetic_spec(), 7)])
def test_official_checkpoint_loads_strictly(tmp_path, spec, num_classes):
    layout = official_layout(spec, num_classes)
    state = _random_state(layout)
    src = tmp_path / "best_top1_acc_epoch_8.pth"
    _save_official(src, state)
    model = EPAMNet(spec, num_classes)
    assert set(model.state_dict()) == set(layout)  # our names are the official ones
    assert load_official_checkpoint(model, src) == 8
    ours = model.state_dict()
    for key, value in state.items():
        assert torch.equal(ours[key], value), key

    dst = tmp_path / "converted" / "epamnet.pt"
    assert convert_official_checkpoint(src, dst, EPAMNet(spec, num_classes)) == 8
    saved = torch.load(dst, weights_only=True)
    assert saved["epoch"] == 8 and saved["source"] == str(src)
    assert all(torch.equal(saved["model_state_dict"][k], v) for k, v in state.items())


def _one_line_error(fn, *args) -> str:
    with pytest.raises(EpamnetError) as err:
        fn(*args)
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_mismatched_checkpoints_give_clear_errors(tmp_path):
    spec = synthetic_spec()
    state = _random_state(official_layout(spec, 7))

    missing = {k: v for k, v in state.items() if not k.startswith("attention_module.spatial.bn")}
    _save_official(tmp_path / "missing.pth", missing)
    msg = _one_line_error(load_official_checkpoint, EPAMNet(spec, 7), tmp_path / "missing.pth")
    assert msg.startswith(str(tmp_path / "missing.pth"))
    assert "missing keys 5 (attention_module.spatial.bn.bias, attention_module.spatial.bn.num_batches_tracked," in msg
    assert ", ...)" in msg

    extra = {**state, "attention_module.fc1.weight": torch.zeros(16, 16)}
    _save_official(tmp_path / "extra.pth", extra)
    msg = _one_line_error(load_official_checkpoint, EPAMNet(spec, 7), tmp_path / "extra.pth")
    assert "unexpected keys 1 (attention_module.fc1.weight)" in msg

    # A checkpoint for another class count: the heads have the wrong shape.
    _save_official(tmp_path / "classes.pth", state)
    msg = _one_line_error(load_official_checkpoint, EPAMNet(spec, 9), tmp_path / "classes.pth")
    assert "wrong shapes 4 (pose_cls_head.fc_cls.bias (7,) vs (9,)" in msg and "num_classes" in msg

    dst = tmp_path / "out.pt"
    _one_line_error(convert_official_checkpoint, tmp_path / "classes.pth", dst, EPAMNet(spec, 9))
    assert not dst.exists() and list(tmp_path.glob(".out.pt*")) == []


def test_unreadable_checkpoints(tmp_path):
    model = EPAMNet(synthetic_spec(), 7)
    assert "checkpoint not found" in _one_line_error(load_official_checkpoint, model, tmp_path / "nope.pth")

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    assert "not a readable PyTorch checkpoint" in _one_line_error(load_official_checkpoint, model, garbage)

    unsafe = tmp_path / "unsafe.pth"  # weights_only=True refuses objects outside its allow-list
    torch.save({"model_state_dict": {"w": torch.zeros(1)}, "extra": datetime.timedelta(days=1)}, unsafe)
    assert "not a readable PyTorch checkpoint" in _one_line_error(load_official_checkpoint, model, unsafe)

    no_state = tmp_path / "nostate.pth"
    torch.save({"model_state_dict": {"w": "text"}}, no_state)
    assert "no model state dict" in _one_line_error(load_official_checkpoint, model, no_state)


# ------------------------------------------------------------------ released unimodal checkpoints
# The official streams are mmaction2 recognizers (``backbone.*``, ``cls_head.*``), saved by mmcv's
# runner ({'meta': {..., 'epoch'}, 'state_dict', 'optimizer'}) or by the official trainer
# ({'epoch', 'model_state_dict' with DDP's ``module.``, 'optimizer_state_dict'}). The files below
# are written that way from our own randomly initialised stream models.

SHAPES = {"pose": (2, 17, 24, 32, 32), "rgb": (2, 3, 8, 64, 64)}


def official_stream_state(model, stream: str) -> dict[str, torch.Tensor]:
    """Our stream model's weights under the official recognizer's names (``backbone.``, ``cls_head.``)."""
    state = {}
    for key, value in model.state_dict().items():
        assert key.startswith((f"{stream}_backbone.", f"{stream}_cls_head.")), key
        state[key[len(stream) + 1 :]] = value.clone()
    return state


def save_mmcv(path, state, epoch: int) -> None:
    """A checkpoint as mmcv's runner (``save_checkpoint``) writes it: meta with the epoch, then weights."""
    meta = {"mmcv_version": "1.7.0", "time": "Mon Jan  8 10:00:00 2024", "epoch": epoch, "iter": 12 * epoch,
            "config": "model = dict(type='Recognizer3D', backbone=dict(type='X3DTemporalShiftPose'))"}
    optimizer = {"state": {}, "param_groups": [{"lr": 0.2, "momentum": 0.9, "weight_decay": 3e-4, "params": [0, 1]}]}
    torch.save({"meta": meta, "state_dict": dict(state), "optimizer": optimizer}, path)


def save_trainer(path, state, epoch: int) -> None:
    """A checkpoint as the official trainer (``ddp/trainer.py``) writes it: DDP-wrapped keys."""
    _save_official(path, state, epoch=epoch)


def stream_model(stream: str, num_classes: int = 7, seed: int = 0):
    from epamnet.models.epam import build_model

    torch.manual_seed(seed)
    return build_model(synthetic_spec(), num_classes, stream).eval()


@pytest.mark.parametrize("stream", ["pose", "rgb"])
@pytest.mark.parametrize(("save", "epoch"), [(save_mmcv, 235), (save_trainer, 80)])
def test_released_stream_checkpoints_convert_to_equal_logits(tmp_path, stream, save, epoch):
    source = stream_model(stream, seed=1)
    src = tmp_path / f"{stream}_best_top1_acc_epoch_{epoch}.pth"
    save(src, official_stream_state(source, stream), epoch)

    target = stream_model(stream, seed=2)
    assert load_official_checkpoint(target, src) == epoch  # mmcv: read from meta
    x = torch.randn(SHAPES[stream], generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(target(x), source(x))

    dst = tmp_path / "converted.pt"
    assert convert_official_checkpoint(src, dst, stream_model(stream, seed=4)) == epoch
    saved = torch.load(dst, weights_only=True)
    assert saved["epoch"] == epoch and saved["stream"] == stream
    again = stream_model(stream, seed=5)
    again.load_state_dict(saved["model_state_dict"])  # our names, strict
    with torch.no_grad():
        assert torch.equal(again(x), source(x))


def test_convert_official_command_takes_a_stream_and_reports_the_meta_epoch(tmp_path, capsys):
    from epamnet.cli import main

    src = tmp_path / "pose.pth"
    save_mmcv(src, official_stream_state(stream_model("pose"), "pose"), 235)
    dst = tmp_path / "pose.pt"
    args = ["convert-official", "--src", str(src), "--dst", str(dst), "--num-classes", "7", "--model-preset", "synthetic"]
    assert main([*args, "--stream", "pose"]) == 0
    assert "epoch 235" in capsys.readouterr().out
    assert dst.is_file()

    # The same file taken for EPAM-Net (the default): one line naming the file, saying what it holds.
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"error: {src}: weights do not match the model: missing keys")
    assert "unexpected keys" in err and "convert it as the pose or rgb stream" in err


def test_a_stream_checkpoint_of_the_other_stream_or_class_count_is_refused(tmp_path):
    src = tmp_path / "rgb.pth"
    save_mmcv(src, official_stream_state(stream_model("rgb"), "rgb"), 3)
    msg = _one_line_error(load_official_checkpoint, stream_model("pose"), src)
    assert "weights do not match the model" in msg and "wrong shapes" in msg and "pose_backbone." in msg
    msg = _one_line_error(load_official_checkpoint, stream_model("rgb", num_classes=9), src)
    assert "wrong shapes 2 (rgb_cls_head.fc_cls.bias (7,) vs (9,)" in msg


def test_epoch_from_the_top_level_or_meta():
    from epamnet.models.convert import checkpoint_epoch

    assert checkpoint_epoch({"epoch": 8, "model_state_dict": {}}) == 8
    assert checkpoint_epoch({"meta": {"epoch": 235}, "state_dict": {}}) == 235
    assert checkpoint_epoch({"state_dict": {}}) is None
    assert checkpoint_epoch({"meta": {"epoch": True}}) is None
