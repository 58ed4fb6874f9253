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
