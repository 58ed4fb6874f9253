"""Stage logs say whose they are; progress bars only on a terminal; the pose stack's noise filtered.

- Two ``epamnet train`` processes run at the same time (different datasets), then an
  ``epamnet evaluate``: every line each one writes to stderr, and to its ``--log`` file,
  starts with its own ``[dataset/protocol/stream]``; the epoch lines give the elapsed
  time and an ETA; a pipe gets no progress bar.
- The same training on a pseudo-terminal draws tqdm bars described with the context
  and showing the time left.
- Importing and building the mmpose stack (real subprocess, all warnings shown) gives
  none of the warnings listed in ``epamnet.pose.compat.POSE_WARNINGS``, while an
  unrelated warning, and the same torch deprecation raised by other code, still show.
"""

from __future__ import annotations

import fcntl
import logging
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import textwrap
import types
import warnings
from pathlib import Path

import pytest

from epamnet import logs
from helpers import cli_env
from test_train_stage import make_project

TIME = r"\d\d:\d\d:\d\d"


def _train_argv(params: Path, dataset: str, protocol: str, log: Path | None = None) -> list[str]:
    head = [sys.executable, "-m", "epamnet"] + (["--log", str(log)] if log else [])
    return head + ["--params", str(params), "train", "--dataset", dataset, "--protocol", protocol, "--stream", "pose"]


def _env() -> dict[str, str]:
    env = cli_env(OMP_NUM_THREADS="1")
    for name in ("LOCAL_RANK", "WORLD_SIZE", "RANK"):
        env.pop(name, None)
    return env


def _assert_all_lines_carry(text: str, context: str, where: str) -> list[str]:
    lines = text.splitlines()
    assert lines, f"{where}: nothing logged"
    own = re.compile(rf"^{TIME} \[{re.escape(context)}\] \S+ (DEBUG|INFO|WARNING|ERROR): ")
    stray = [line for line in lines if not own.match(line)]
    assert not stray, f"{where}: lines without [{context}]: {stray[:5]}"
    return lines


def test_two_stages_at_once_prefix_every_line_with_their_own_context(tmp_path: Path) -> None:
    runs = {}
    for dataset in ("toyota", "ntu60"):
        root = tmp_path / dataset
        root.mkdir()
        params, protocol, _, _ = make_project(root, dataset, epochs=2)
        runs[dataset] = (root, params, protocol)
    procs = {
        ds: subprocess.Popen(
            _train_argv(params, ds, protocol, root / "train.log"), cwd=root, env=_env(),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for ds, (root, params, protocol) in runs.items()
    }
    outputs = {ds: proc.communicate(timeout=300) for ds, proc in procs.items()}
    for ds, (root, _, protocol) in runs.items():
        proc, (_, stderr) = procs[ds], outputs[ds]
        assert proc.returncode == 0, stderr[-3000:]
        context = f"{ds}/{protocol}/pose"
        lines = _assert_all_lines_carry(stderr, context, f"{ds} stderr")
        assert _assert_all_lines_carry((root / "train.log").read_text(), context, f"{ds} log") == lines
        # epoch lines: elapsed time and an estimate of the time left
        epochs = [line for line in lines if re.search(r"epamnet\.engine\.trainer INFO: epoch \d/2: ", line)]
        assert len(epochs) == 2, lines
        assert all(re.search(r", elapsed \d+s, ETA \d+s \(selected epoch \d\)$", line) for line in epochs), epochs
        # a pipe: no bar, no carriage returns
        assert "\r" not in stderr and "%|" not in stderr

    # The evaluate stage names its run too.
    root, params, protocol = runs["ntu60"]
    done = subprocess.run(
        [sys.executable, "-m", "epamnet", "--params", str(params), "evaluate", "--dataset", "ntu60",
         "--protocol", protocol, "--stream", "pose"],
        cwd=root, env=_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = _assert_all_lines_carry(done.stderr, f"ntu60/{protocol}/pose", "evaluate stderr")
    assert any("epamnet.stages.evaluate INFO: evaluate ntu60" in line for line in lines), lines


def _run_on_terminal(argv: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``argv`` with stdout and stderr on a 40 x 120 pseudo-terminal; return its status and output."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=_env(), stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    finally:
        os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=300), b"".join(chunks).decode("utf-8", "replace")


def test_a_terminal_gets_progress_bars_with_the_context_and_a_pipe_does_not(tmp_path: Path) -> None:
    params, protocol, _, _ = make_project(tmp_path, "toyota", epochs=2)
    rc, terminal = _run_on_terminal(_train_argv(params, "toyota", protocol) + ["--no-resume"], tmp_path)
    assert rc == 0, terminal[-3000:]
    # tqdm bars: redrawn with \r, described with the context, with elapsed<remaining time
    bars = re.findall(rf"\r\[toyota/{protocol}/pose\] epoch 2/2: +\d+%\|[^\r]*\| \d/2 \[\d\d:\d\d<[?\d:]+", terminal)
    assert bars, terminal[-3000:]
    assert re.search(rf"\r\[toyota/{protocol}/pose\] val 1: ", terminal), terminal[-3000:]
    # the log lines are still there, whole, each on its own line
    assert re.search(rf"(^|[\r\n]){TIME} \[toyota/{protocol}/pose\] epamnet\.engine\.trainer INFO: epoch 2/2: ", terminal)

    piped = subprocess.run(_train_argv(params, "toyota", protocol) + ["--no-resume"], cwd=tmp_path, env=_env(),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert piped.returncode == 0, piped.stderr[-3000:]
    assert "epoch 2/2: " in piped.stderr
    assert "\r" not in piped.stderr and "%|" not in piped.stderr and "batch/s" not in piped.stderr


def test_the_context_gets_the_rank_under_torchrun_and_warnings_keep_one_line(monkeypatch) -> None:
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    try:
        assert logs.set_context("ntu60", "", "xsub", None, "pose") == "ntu60/xsub/pose"
        assert logs.prefix() == "[ntu60/xsub/pose] "
        monkeypatch.setenv("RANK", "1")
        monkeypatch.setenv("WORLD_SIZE", "2")
        assert logs.label() == "ntu60/xsub/pose rank 1"
        monkeypatch.setenv("WORLD_SIZE", "1")
        assert logs.label() == "ntu60/xsub/pose"

        record = logging.LogRecord("py.warnings", logging.WARNING, __file__, 1, "%s",
                                   ("/x/mod.py:3: UserWarning: careful\n  warnings.warn(\n",), None)
        assert logs.ContextFilter().filter(record)
        formatted = logging.Formatter(logs.LOG_FORMAT, logs.DATE_FORMAT).format(record)
        assert re.fullmatch(rf"{TIME} \[ntu60/xsub/pose\] py\.warnings WARNING: /x/mod\.py:3: UserWarning: careful",
                            formatted), formatted
    finally:
        logs.set_context()
    assert logs.label() == "" and logs.prefix() == ""
    assert logs.eta_text(2, 10, 30.0) == "elapsed 30s, ETA 2m00s"
    assert logs.eta_text(0, 10, 0.0) == "elapsed 0s, ETA ?"


POSE_SCRIPT = textwrap.dedent(
    """
    import warnings
    from epamnet.pose.estimator import build_estimator

    build_estimator(None, random_init=True, flip_test=False)
    warnings.warn("an unrelated warning", UserWarning)

    import torch

    def plus_one(x: torch.Tensor) -> torch.Tensor:
        return x + 1

    torch.jit.script(plus_one)  # the same deprecation, from code other than the pose stack
    """
)


@pytest.mark.pose
def test_the_pose_stack_warnings_users_cannot_act_on_are_filtered_and_no_others(
    tmp_path: Path, pose_stack: types.ModuleType
) -> None:
    script = tmp_path / "build_pose.py"
    script.write_text(POSE_SCRIPT)
    done = subprocess.run([sys.executable, "-W", "always", str(script)], cwd=tmp_path, env=_env(),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    err = done.stderr
    for noise in ("pkg_resources is deprecated", "The metainfo config file", "MultiScaleDeformableAttention",
                  "`torch.jit.interface` is deprecated"):
        assert noise not in err, err[-3000:]
    assert "UserWarning: an unrelated warning" in err, err[-3000:]
    assert err.count("`torch.jit.script` is deprecated") == 1, err[-3000:]  # ours, not mmcv's dozens


def test_the_pose_warning_filter_matches_message_and_module_and_nothing_else() -> None:
    """Inside ``quiet_pose_warnings`` a listed warning is hidden only when both its text and the
    module it is attributed to match; every other warning goes through."""
    from epamnet.pose.compat import POSE_WARNINGS, quiet_pose_warnings

    with pytest.warns(Warning) as seen:
        with quiet_pose_warnings():
            for category, _, _ in POSE_WARNINGS:
                warnings.warn_explicit("an unrelated warning", category, "x.py", 1, module="mmpose.x")
            warnings.warn_explicit("pkg_resources is deprecated as an API. See ...", UserWarning, "elsewhere.py", 1,
                                   module="mypackage.setup_helpers")
            warnings.warn_explicit("pkg_resources is deprecated as an API. See ...", UserWarning, "package_utils.py",
                                   48, module="mmengine.utils.package_utils")
            warnings.warn_explicit("`torch.jit.script` is deprecated. Please switch to `torch.compile`",
                                   DeprecationWarning, "_script.py", 1488, module="torch.jit._script")
        warnings.warn_explicit("`torch.jit.script` is deprecated. Please switch to `torch.compile`",
                               DeprecationWarning, "_script.py", 1488, module="torch.jit._script")
    got = [(w.category, str(w.message)[:22], w.filename) for w in seen]
    assert got == [(category, "an unrelated warning", "x.py") for category, _, _ in POSE_WARNINGS] + [
        (UserWarning, "pkg_resources is depre", "elsewhere.py"),
        (DeprecationWarning, "`torch.jit.script` is ", "_script.py"),  # after the block: shown again
    ]


def test_the_torchrun_launcher_gives_torchrun_s_own_lines_its_context(monkeypatch, capfd) -> None:
    """Workers' lines already carry ``[context rank R]`` and are copied as they are; the lines
    torchrun itself prints get the launcher's context."""
    from epamnet.engine import launch

    worker = "06:00:00 [ntu60/xsub/pose rank 1] epamnet.engine.trainer INFO: epoch 1/2: ..."
    own = "W1130 06:00:00.000000 123 torch/distributed/run.py:766] Setting OMP_NUM_THREADS"
    script = f"print({worker!r}); print({own!r})"
    monkeypatch.setattr(launch, "torchrun_command", lambda argv, nproc: [sys.executable, "-c", script])
    for name in ("LOCAL_RANK", "WORLD_SIZE", "RANK"):
        monkeypatch.delenv(name, raising=False)
    logs.set_context("ntu60", "xsub", "pose")
    try:
        assert launch.maybe_relaunch(["train"], 2) == 0
    finally:
        logs.set_context()
    err = capfd.readouterr().err.splitlines()
    assert err[-2:] == [worker, f"[ntu60/xsub/pose] {own}"], err


def test_an_in_process_command_configures_logging_and_a_context() -> None:
    """First of a pair: leaves what an in-process ``epamnet`` call leaves (conftest clears it)."""
    logs.configure(logging.INFO)
    logs.set_context("report")
    assert logs.label() == "report"


def test_the_next_test_starts_without_them() -> None:
    """Second of the pair: no handler, level or context of the previous test is left."""
    assert not [h for h in logging.getLogger().handlers if isinstance(h, logs.TqdmHandler)]
    assert logs.label() == ""
