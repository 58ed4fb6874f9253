"""Which run a log line belongs to, and progress bars that only a terminal sees.

Two jobs writing to one terminal or one CI log (Snakemake with ``--cores 2``, a SLURM
array) interleave their lines. Each stage therefore names what it works on once, at its
start (:func:`set_context`: dataset, protocol, stream or shard), and the handlers that
:func:`configure` installs prefix every record with it, whichever module or library
logged it::

    12:00:03 [ntu60/xsub/pose] epamnet.engine.trainer INFO: epoch 3/10: ...

Under ``torchrun`` (``RANK`` and ``WORLD_SIZE`` > 1 in the environment) the rank is
added: ``[ntu60/xsub/pose rank 1]``.

:func:`progress` is tqdm with the same context in its description, shown only when
stderr is a terminal (tqdm's ``disable=None``): CI logs and log files get the plain
log lines, no bar. Log records go through ``tqdm.write`` so that they do not tear a
bar that is being drawn.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")

#: The format of the stage logs; ``context`` is "[...] " or empty (:class:`ContextFilter`).
LOG_FORMAT = "%(asctime)s %(context)s%(name)s %(levelname)s: %(message)s"
DATE_FORMAT = "%H:%M:%S"

_parts: tuple[str, ...] = ()


def set_context(*parts: object) -> str:
    """Name what this process works on, e.g. ``set_context("ntu60", "xsub", "pose")``; returns the label.

    Empty parts are left out; no parts clears the context. One stage runs per process,
    so the context is process-wide (library modules and their threads see it too).
    """
    global _parts
    _parts = tuple(str(p) for p in parts if p is not None and str(p) != "")
    return label()


def _rank() -> str:
    """`` rank R`` in a multi-process torchrun job, else empty."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    except ValueError:
        world = 1
    rank = os.environ.get("RANK", "")
    return f" rank {rank}" if world > 1 and rank else ""


def label() -> str:
    """The context as ``ntu60/xsub/pose`` (plus `` rank R`` under torchrun); empty when none is set."""
    return "/".join(_parts) + _rank() if _parts else ""


def prefix() -> str:
    """``[label] `` or empty: what every log line of the stage starts with after the time."""
    text = label()
    return f"[{text}] " if text else ""


class ContextFilter(logging.Filter):
    """Gives every record a ``context`` attribute (for :data:`LOG_FORMAT`); drops none.

    Attached to handlers, not loggers, so that it sees the records of every module and
    library that reach them. A captured warning (``py.warnings``) keeps only its first
    line ``file:line: Category: message``, without the echo of the source line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.context = prefix()
        if record.name == "py.warnings" and isinstance(record.args, tuple) and len(record.args) == 1:
            text = str(record.args[0]).strip()
            record.args = (text.splitlines()[0] if text else text,)
        return True


class TqdmHandler(logging.StreamHandler):
    """A stream handler that writes through ``tqdm.write``: log lines above a live bar, not through it.

    It writes to ``sys.stderr`` as it is at each record, not as it was when logging was
    configured: a caller that swaps stderr (pytest's capture between tests) never leaves
    the handler writing to a closed stream.
    """

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:  # StreamHandler.__init__ assigns it
        pass

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
            self.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def configure(
    level: int, log_file: str | os.PathLike[str] | None = None, *, capture_warnings: bool = False
) -> list[logging.Handler]:
    """Root logging of an ``epamnet`` command: stderr (and ``log_file``, overwritten), with the context.

    ``capture_warnings``: route :mod:`warnings` through logging too, so that they carry
    the context and reach ``log_file`` (a real command process; not in-process callers,
    whose own warning capture, pytest's for one, this would replace).
    """
    handlers: list[logging.Handler] = [TqdmHandler()]
    if log_file is not None:
        handlers.append(logging.FileHandler(log_file, mode="w", encoding="utf-8"))
    for handler in handlers:
        handler.addFilter(ContextFilter())
    logging.basicConfig(level=level, format=LOG_FORMAT, datefmt=DATE_FORMAT, handlers=handlers, force=True)
    if capture_warnings:
        logging.captureWarnings(True)
    return handlers


def progress(
    iterable: Iterable[T] | None = None, what: str = "", *, enabled: bool = True, **kwargs: Any
) -> tqdm:
    """tqdm over ``iterable``, described as ``[context] what``, drawn only when stderr is a terminal.

    ``enabled=False`` (e.g. ranks other than 0) never draws. Extra ``kwargs`` go to tqdm
    (``total``, ``unit``...); bars are removed when done (``leave=False``): the stage's
    log lines are the record.
    """
    kwargs.setdefault("leave", False)
    kwargs.setdefault("dynamic_ncols", True)
    desc = f"{prefix()}{what}".strip()
    return tqdm(iterable, desc=desc or None, disable=None if enabled else True, **kwargs)


def eta_text(done: int, total: int, elapsed: float) -> str:
    """``elapsed 1m02s, ETA 3m10s`` from ``done`` of ``total`` steps taking ``elapsed`` seconds so far."""
    left = max(total - done, 0)
    eta = elapsed / done * left if done > 0 else float("nan")
    return f"elapsed {_duration(elapsed)}, ETA {_duration(eta)}"


def _duration(seconds: float) -> str:
    if math.isnan(seconds):  # nothing done yet
        return "?"
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


__all__ = [
    "DATE_FORMAT",
    "LOG_FORMAT",
    "ContextFilter",
    "TqdmHandler",
    "configure",
    "eta_text",
    "label",
    "prefix",
    "progress",
    "set_context",
]
