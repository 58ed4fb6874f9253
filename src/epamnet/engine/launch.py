"""Run ``epamnet train`` as ``torchrun`` processes when ``train.<stream>.nproc_per_node`` > 1.

The pipeline calls one command per stage (``epamnet --log ... train --dataset ...``),
the same from Snakemake, DVC and a SLURM job. To train with N processes that command
re-executes itself under torchrun::

    python -m torch.distributed.run --standalone --nproc_per_node N -m epamnet <argv>

and waits for it. The workers see ``LOCAL_RANK``/``WORLD_SIZE`` in their environment
(set by torchrun), so their own :func:`maybe_relaunch` returns ``None`` and they train
in-process as ranks of one DDP job (:mod:`epamnet.engine.distributed`); rank 0 alone
publishes the outputs. ``--standalone`` runs a local rendezvous on a free port: one
node, as one SLURM job with N GPUs (``gpu: N`` in workflow/profiles/slurm).

Logging: the workers get the command line without ``--log FILE``; the launcher copies
their output (all ranks, as it comes) to its own stderr and to ``FILE``, so the stage's
log is written by one process only. The workers' lines carry the stage's context and
their rank (``[ntu60/xsub/pose rank 1]``, :mod:`epamnet.logs`); the lines torchrun
itself prints get the launcher's context, so every line of the stage says whose it is.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from epamnet import logs
from epamnet.errors import EpamnetError

logger = logging.getLogger(__name__)

#: Variables torchrun sets in every worker; either one means "already launched".
TORCHRUN_VARS = ("LOCAL_RANK", "WORLD_SIZE")


def under_torchrun(environ: dict[str, str] | None = None) -> bool:
    """True in a process started by torchrun (or any launcher that sets its variables)."""
    env = os.environ if environ is None else environ
    return any(env.get(name, "") != "" for name in TORCHRUN_VARS)


def split_log_arg(argv: Sequence[str]) -> tuple[list[str], str | None]:
    """``argv`` without the top-level ``--log FILE`` (or ``--log=FILE``), and FILE."""
    out: list[str] = []
    log: str | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            out.extend(argv[i:])
            break
        if arg == "--log" and i + 1 < len(argv):
            log, i = argv[i + 1], i + 2
            continue
        if arg.startswith("--log="):
            log, i = arg[len("--log="):], i + 1
            continue
        out.append(arg)
        i += 1
    return out, log


def train_argv(args: argparse.Namespace) -> list[str]:
    """The ``epamnet`` arguments of a parsed ``train`` command line.

    Rebuilt from the parsed namespace rather than taken from ``sys.argv``, so it is
    right also when :func:`epamnet.cli.main` is called with an explicit argument list.
    """
    argv = ["--log", str(args.log)] if getattr(args, "log", None) else []
    argv += ["--params", str(args.params)]
    if getattr(args, "verbose", False):
        argv.append("-v")
    argv += ["train", "--dataset", args.dataset, "--protocol", args.protocol, "--stream", args.stream]
    if getattr(args, "no_resume", False):
        argv.append("--no-resume")
    return argv


def torchrun_command(argv: Sequence[str], nproc: int) -> list[str]:
    """``python -m torch.distributed.run --standalone --nproc_per_node N -m epamnet <argv>``."""
    return [
        sys.executable, "-m", "torch.distributed.run",
        "--standalone", "--nproc_per_node", str(nproc),
        "-m", "epamnet", *argv,
    ]


def _log_files(path: str | None) -> list[logging.FileHandler]:
    """The root logger's file handlers writing ``path`` (what ``epamnet --log`` set up)."""
    if path is None:
        return []
    target = os.path.abspath(path)
    return [
        h for h in logging.getLogger().handlers
        if isinstance(h, logging.FileHandler) and os.path.abspath(h.baseFilename) == target
    ]


@contextlib.contextmanager
def _forward_signals(proc: subprocess.Popen) -> Iterator[None]:
    """Pass SIGTERM/SIGINT (SLURM's scancel, Snakemake's Ctrl-C) on to torchrun, which stops its workers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def forward(signum, _frame):
        if proc.poll() is None:
            proc.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, forward)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def maybe_relaunch(argv: Sequence[str], nproc: int) -> int | None:
    """Re-run ``epamnet <argv>`` as ``nproc`` torchrun processes; ``None``: run in this process.

    Returns ``None`` when ``nproc`` is 1 or this process is already a torchrun worker;
    otherwise launches the workers, waits for them and returns torchrun's exit status
    (0 when every rank succeeded). ``argv`` is the ``epamnet`` command line without
    the program name; a ``--log FILE`` in it is kept by this process (see the module doc).
    """
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise EpamnetError(f"train.nproc_per_node: must be an integer >= 1 (got {nproc!r}); fix it in params.yaml")
    if nproc == 1 or under_torchrun():
        return None
    worker_argv, log = split_log_arg(argv)
    cmd = torchrun_command(worker_argv, nproc)
    env = dict(os.environ)  # holds runtime.threads and the CPU pins (epamnet.runtime): every worker uses them
    env["PYTHONUNBUFFERED"] = "1"
    logger.info("launching %d training processes: %s", nproc, shlex.join(cmd))

    files = _log_files(log)
    extra = None
    if log is not None and not files:  # called without epamnet's logging set up: append to FILE
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        extra = open(log, "a", encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        proc = subprocess.Popen(
            cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, bufsize=1, errors="replace",
        )
        with _forward_signals(proc):
            assert proc.stdout is not None
            context = logs.label()
            for line in proc.stdout:
                if context and f"[{context}" not in line:  # torchrun's own lines
                    line = f"{logs.prefix()}{line}"
                sys.stderr.write(line)
                sys.stderr.flush()
                for handler in files:
                    handler.acquire()
                    try:
                        if handler.stream is not None:
                            handler.stream.write(line)
                            handler.flush()
                    finally:
                        handler.release()
                if extra is not None:
                    extra.write(line)
                    extra.flush()
            rc = proc.wait()
    finally:
        if extra is not None:
            extra.close()
    if rc == 0:
        logger.info("%d training processes finished", nproc)
    else:
        logger.error("training processes failed (torchrun exit status %d)", rc)
    return rc
