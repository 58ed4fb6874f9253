"""User mistakes get one line that names the file and says the fix, with the closest valid
name for a typo:

- ``params.yaml``: an unknown key suggests the closest key the section declares (or lists
  them); a value outside a fixed set suggests the closest allowed value
  (``epamnet.config.base``); bad YAML names the line. (The same lines stop Snakemake:
  ``test_orchestration.py::test_snakemake_stops_on_bad_params_with_the_check_line``.)
- ``--dataset`` / ``--protocol``: a name the dataset does not have is not told to "add it"
  to params.yaml; it gets the valid names and the closest one (``epamnet.stages.checks``).
- checkpoints: a file that is not one (text, empty, truncated zip or legacy pickle, other
  objects) says what it is instead of torch's "pop from empty list" or "KeyError: 101"
  (``epamnet.models.convert``, and the training checkpoints of ``epamnet.engine.checkpoint``).
- fusion before its streams: says which stream stage to run, with the commands.
"""

from __future__ import annotations

import copy
import datetime
import json
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

from epamnet.config import TrainConfig, load_params, spec_from_dict, synthetic_spec, validate_params
from epamnet.config.synthetic import SyntheticSpec
from epamnet.engine.checkpoint import load_checkpoint
from epamnet.errors import EpamnetError, did_you_mean
from epamnet.models.convert import read_checkpoint
from epamnet.models.epam import build_model
from epamnet.stages.checks import dataset_arg, protocol_arg
from helpers import one_error_line, run_cli

ROOT = Path(__file__).resolve().parents[1]


def _params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))


def _error(data: dict) -> str:
    with pytest.raises(EpamnetError) as err:
        validate_params(data, "params.yaml")
    message = str(err.value)
    assert "\n" not in message
    return message


def _set(data: dict, path: list[str], value) -> dict:
    data = copy.deepcopy(data)
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return data


def _rename(data: dict, path: list[str], new: str) -> dict:
    data = copy.deepcopy(data)
    node = data
    for part in path[:-1]:
        node = node[part]
    node[new] = node.pop(path[-1])
    return data


# ----------------------------------------------------------------------------- params.yaml


@pytest.mark.parametrize("path,typo,key,close", [
    (["train"], "trian", "trian", "train"),
    (["train", "common", "device"], "devcie", "train.common.devcie", "device"),  # keys params.yaml writes
    (["train", "fusion", "epochs"], "epocs", "train.fusion.epocs", "epochs"),
    (["prepare", "crop", "padding"], "pading", "prepare.crop.pading", "padding"),
    (["synthetic", "num_classes"], "num_class", "synthetic.num_class", "num_classes"),
], ids=["top-level", "train.common", "train.fusion", "prepare.crop", "synthetic"])
def test_a_misspelt_key_suggests_the_closest_key_of_its_section(path, typo, key, close):
    line = f"params.yaml: {key}: unknown setting; did you mean {close!r}? (or remove the unknown key)"
    assert _error(_rename(_params(), path, typo)) == line


def test_a_key_like_none_lists_the_keys_of_a_small_section():
    message = _error(_set(_params(), ["train", "zzzz"], 1))
    assert message == (
        "params.yaml: train.zzzz: unknown setting; remove the unknown key or fix its spelling "
        "(known keys here: common, pose, rgb, fusion)"
    )
    # model.rgb: a key of another section's model (not of train.*) is suggested
    assert _error(_set(_params(), ["model", "rgb"], {"clip_lenn": 8})).endswith(
        "model.rgb.clip_lenn: unknown setting; did you mean 'clip_len'? (or remove the unknown key)"
    )


@pytest.mark.parametrize("path,value,hint", [
    (["model", "attention"], "spatail", "(got 'spatail'); did you mean 'spatial_temporal'?"),
    (["model", "preset"], "papr", "(got 'papr'); did you mean 'paper'?"),
    (["datasets", "run"], ["ntu60", "pkuu"], "(got 'pkuu'); did you mean 'pku'?"),
    (["datasets", "toyota", "protocols"], ["cv3"], "(got 'cv3'); did you mean 'cv2'?"),
    (["acquire", "link"], "hardlnk", "(got 'hardlnk'); did you mean 'hardlink'?"),
])
def test_a_misspelt_value_suggests_the_closest_allowed_value(path, value, hint):
    message = _error(_set(_params(), path, value))
    assert message.startswith("params.yaml: ") and message.endswith(hint)
    assert "input should be" in message  # the allowed values stay listed


def test_a_value_like_none_gets_no_suggestion():
    message = _error(_set(_params(), ["model", "attention"], "transformer"))
    assert message == (
        "params.yaml: model.attention: input should be 'cbam_nested' or 'spatial_temporal' (got 'transformer')"
    )


def test_settings_built_in_code_suggest_too():
    tail = r" unknown setting; did you mean '{}'\? \(or remove the unknown key\)$"
    with pytest.raises(EpamnetError, match=r"^train\.epoch:" + tail.format("epochs")):
        TrainConfig(epoch=3)
    with pytest.raises(EpamnetError, match=r"^synthetic\.num_clases:" + tail.format("num_classes")):
        SyntheticSpec.from_dict({"num_clases": 4})
    with pytest.raises(EpamnetError, match=r"^params\.yaml: model\.pose\.se_styl is an" + tail.format("se_style")):
        spec_from_dict({"pose": {"se_styl": "all"}})


def test_bad_yaml_names_the_line_and_the_problem(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("train:\n  common\n    epochs: 3\n", encoding="utf-8")
    with pytest.raises(EpamnetError) as err:
        load_params(bad)
    assert str(err.value) == f"{bad}: not valid YAML at line 3 (mapping values are not allowed here); fix the syntax"


def test_did_you_mean():
    assert did_you_mean("ntu6", ["ntu60", "ntu120", "pku", "toyota"]) == "; did you mean 'ntu60'?"
    assert did_you_mean("cbam", ["cbam_nested", "spatial_temporal"]) == "; did you mean 'cbam_nested'?"
    assert did_you_mean("kinetics", ["ntu60", "ntu120", "pku", "toyota"]) == ""
    assert did_you_mean("ab", ["abcdef"]) == ""  # under three characters: whole names only
    assert did_you_mean(3, ["epochs"]) == ""


# ----------------------------------------------------------------------------- --dataset, --protocol


@pytest.fixture(scope="module")
def params():
    return validate_params(_params())


def _arg_error(fn, *args) -> str:
    with pytest.raises(EpamnetError) as err:
        fn(*args)
    return str(err.value)


def test_a_protocol_the_dataset_does_not_have_is_not_told_to_add_it(params):
    message = _arg_error(protocol_arg, params, "ntu60", "xset")
    assert message == (
        "ntu60 has no protocol 'xset' (ntu120 has it); use one of xsub, xview (datasets.ntu60.protocols in params.yaml)"
    )
    assert "add it" not in message
    assert _arg_error(protocol_arg, params, "ntu60", "xveiw").endswith("; did you mean 'xview'?")
    assert _arg_error(protocol_arg, params, "toyota", "cv3") == (
        "toyota has no protocol 'cv3'; use one of cs, cv2 (datasets.toyota.protocols in params.yaml); "
        "did you mean 'cv2'?"
    )


def test_a_protocol_the_dataset_has_but_params_leaves_out_is_told_where_to_add_it(params):
    assert _arg_error(protocol_arg, params, "toyota", "cv1") == (
        "params.yaml: protocol 'cv1' is not in datasets.toyota.protocols [cs, cv2]; "
        "add it to datasets.toyota.protocols or pick one of them"
    )
    assert protocol_arg(params, "toyota", "cv2") == "cv2"


def test_dataset_names(params):
    assert _arg_error(dataset_arg, params, "ntu6") == (
        "unknown dataset 'ntu6'; use one of ntu60, pku, toyota (datasets.run in params.yaml); did you mean 'ntu60'?"
    )
    assert _arg_error(dataset_arg, params, "ntu120") == (
        "params.yaml: dataset 'ntu120' is not in datasets.run [ntu60, pku, toyota]; "
        "add it to datasets.run or pick one of them"
    )
    assert dataset_arg(params, "pku") == "pku"


# ----------------------------------------------------------------------------- checkpoints


def _zip_checkpoint(path: Path) -> bytes:
    torch.save({"w": torch.arange(4096, dtype=torch.float32)}, path)
    return path.read_bytes()


def _legacy_checkpoint(path: Path) -> bytes:
    torch.save({"w": torch.arange(4096, dtype=torch.float32)}, path, _use_new_zipfile_serialization=False)
    return path.read_bytes()


NOT_READABLE = "not a readable PyTorch checkpoint"

#: Bad files, written the way they come about, and what the message says they are.
BAD_FILES = {
    "text": (lambda p: p.write_text("epochs: 10\nlr: 0.01\n"),
             "a text file, not a zip archive or legacy pickle as torch.save writes (it starts 'epochs: 10')"),
    "notes": (lambda p: p.write_text("some notes\n"),  # torch: "pop from empty list"
              "a text file, not a zip archive or legacy pickle as torch.save writes (it starts 'some notes')"),
    "empty": (lambda p: p.write_bytes(b""), "the file is empty (0 bytes)"),
    "truncated-zip": (lambda p: p.write_bytes(_zip_checkpoint(p)[:5000]),
                      "truncated or damaged (the end of its zip archive, the directory, is missing)"),
    "truncated-legacy": (lambda p: p.write_bytes(_legacy_checkpoint(p)[:5000]),
                         "truncated (a legacy pickle checkpoint that ends early)"),
    "other-zip": (lambda p: zipfile.ZipFile(p, "w").writestr("notes.txt", "hi"),
                  "a zip archive without data.pkl, not one torch.save wrote"),
    "plain-pickle": (lambda p: p.write_bytes(pickle.dumps({"w": [1.0, 2.0]})),
                     "a pickle that torch.save did not write (or a damaged legacy checkpoint)"),
    "binary": (lambda p: p.write_bytes(bytes(range(256))),
               "the file is neither a zip archive nor a legacy pickle, the two formats torch.save writes"),
    "objects": (lambda p: torch.save({"w": torch.zeros(1), "t": datetime.timedelta(days=1)}, p),
                "it holds objects other than tensors and plain values, which the safe (weights-only) load refuses "
                "(Unsupported global: GLOBAL datetime.timedelta was not an allowed global by default)"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_file_that_is_not_a_checkpoint_says_what_it_is(tmp_path, case):
    write, says = BAD_FILES[case]
    path = tmp_path / "model.pt"
    write(path)
    with pytest.raises(EpamnetError) as err:
        read_checkpoint(path, "train it again")
    assert str(err.value) == f"{path}: {NOT_READABLE}: {says}; train it again"
    with pytest.raises(EpamnetError) as err:  # a training checkpoint: the same words, its own fix
        load_checkpoint(path)
    assert str(err.value) == f"{path}: {NOT_READABLE}: {says}; delete it to resume from the previous epoch's checkpoint"


def test_a_text_file_given_to_convert_official_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("{}\n")
    notes = tmp_path / "notes.txt"
    notes.write_text("some notes\n")
    argv = ["convert-official", "--src", str(notes), "--dst", str(tmp_path / "out.pt"), "--num-classes", "60"]
    rc, err = run_cli(argv, capsys)
    assert rc == 1 and "pop from empty list" not in err
    assert one_error_line(err) == (
        f"error: {notes}: {NOT_READABLE}: a text file, not a zip archive or legacy pickle as torch.save writes "
        "(it starts 'some notes'); pass a file that torch.save wrote (a model.pt of `epamnet train`, or a released "
        "EPAM-Net checkpoint); fetch it again if it was cut short"
    )
    assert not (tmp_path / "out.pt").exists()


# ----------------------------------------------------------------------------- fusion before its streams


@pytest.fixture
def fusion_project(tmp_path, monkeypatch) -> Path:
    """params.yaml and the ntu60 xsub split the train stage reads before it looks for the streams."""
    monkeypatch.chdir(tmp_path)
    params = {"datasets": {"run": ["ntu60"], "ntu60": {"protocols": ["xsub"]}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    splits = tmp_path / "data/prepared/ntu60/splits"
    splits.mkdir(parents=True)
    split = {"dataset": "ntu60", "protocol": "xsub", "source": "synthetic", "classes": ["a", "b", "c"],
             "num_classes": 3, "train": [["S001C001P001R001A001", 0]], "val": [], "test": [["S001C001P003R001A001", 0]]}
    (splits / "xsub.json").write_text(json.dumps(split))
    return tmp_path


FUSION = ["train", "--dataset", "ntu60", "--protocol", "xsub", "--stream", "fusion"]


def test_fusion_before_its_streams_says_which_stream_stage_to_run(fusion_project, capsys):
    rc, err = run_cli(FUSION, capsys)
    assert rc == 1
    assert one_error_line(err) == (
        "error: models/ntu60/xsub/pose/model.pt: not found: fusion starts from the trained pose and rgb streams, "
        "and pose and rgb are not trained yet; train them first: "
        "`snakemake --cores all models/ntu60/xsub/pose/model.pt models/ntu60/xsub/rgb/model.pt` "
        "(or `epamnet train --dataset ntu60 --protocol xsub --stream pose` then "
        "`epamnet train --dataset ntu60 --protocol xsub --stream rgb`)"
    )

    pose = fusion_project / "models/ntu60/xsub/pose/model.pt"  # the pose stream, as `epamnet train` publishes it
    pose.parent.mkdir(parents=True)
    torch.save(build_model(synthetic_spec(), 3, "pose").state_dict(), pose)
    rc, err = run_cli(FUSION, capsys)
    assert rc == 1
    assert one_error_line(err) == (
        "error: models/ntu60/xsub/rgb/model.pt: not found: fusion starts from the trained pose and rgb streams, "
        "and rgb is not trained yet; train it first: `snakemake --cores all models/ntu60/xsub/rgb/model.pt` "
        "(or `epamnet train --dataset ntu60 --protocol xsub --stream rgb`)"
    )
    assert not (fusion_project / "models/ntu60/xsub/fusion").exists()


@pytest.mark.parametrize("case", ["notes", "truncated-zip"])
def test_fusion_from_a_stream_file_that_is_not_a_checkpoint_says_to_train_it_again(fusion_project, capsys, case):
    for stream in ("pose", "rgb"):
        path = fusion_project / f"models/ntu60/xsub/{stream}/model.pt"
        path.parent.mkdir(parents=True)
        torch.save(build_model(synthetic_spec(), 3, stream).state_dict(), path)
    write, says = BAD_FILES[case]
    write(fusion_project / "models/ntu60/xsub/rgb/model.pt")
    rc, err = run_cli(FUSION, capsys)
    assert rc == 1
    assert one_error_line(err) == (
        f"error: models/ntu60/xsub/rgb/model.pt: {NOT_READABLE}: {says}; delete it and train the rgb stream again: "
        "`epamnet train --dataset ntu60 --protocol xsub --stream rgb`"
    )
