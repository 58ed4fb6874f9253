"""Process-group setup for one process or ``torchrun`` DDP, and small collective helpers.

``torchrun`` (``python -m torch.distributed.run``) sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in each worker's environment. When
they say ``WORLD_SIZE > 1`` we join the process group (NCCL on GPUs, Gloo on CPUs);
otherwise everything runs in one process and the helpers below are no-ops. The
context is an explicit value passed around, never a module global.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from epamnet.errors import EpamnetError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: rank, world size, its device; ``owns_group`` if we created it."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files and shows progress bars."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise EpamnetError(f"environment variable {name}={value!r} is not an integer; launch with torchrun") from None


def world_size_from_env() -> int:
    """Processes of the torchrun job this process belongs to (1 outside torchrun)."""
    return _env_int("WORLD_SIZE", 1)


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> ``cuda:<local_rank>`` when a GPU is present, else CPU; ``"cuda"`` gets the local rank."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        device = f"cuda:{local_rank}"
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise EpamnetError(f"train.device: unknown device {device!r}; use 'auto', 'cpu' or 'cuda'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise EpamnetError(f"train.device: {device!r} requested but no CUDA GPU is available; use 'auto' or 'cpu'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise EpamnetError(
            f"train.device: this process needs {dev} but only {torch.cuda.device_count()} GPU(s) are visible; "
            "set train.nproc_per_node to at most the number of GPUs (and request as many: `gpu` in the SLURM profile)"
        )
    return dev


def init_distributed(device: str = "auto", timeout_s: float = 1800.0) -> DistContext:
    """Join the torchrun process group when the environment asks for one; else one process.

    A process group that already exists (the caller set one up) is reused and left alone.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if dist.is_available() and dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, dev, owns_group=False)
    if world_size <= 1:
        return DistContext(0, 1, 0, dev, owns_group=False)
    if not dist.is_available():
        raise EpamnetError("WORLD_SIZE > 1 but this torch build has no torch.distributed; run one process")
    backend = "nccl" if dev.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    logger.info("joined process group: rank %d of %d (%s, device %s)", rank, world_size, backend, dev)
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, dev, owns_group=True)


def shutdown_distributed(ctx: DistContext) -> None:
    """Leave the process group if :func:`init_distributed` created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def distributed(device: str = "auto") -> Iterator[DistContext]:
    """``with distributed("auto") as ctx:`` join (and later leave) the torchrun group."""
    ctx = init_distributed(device)
    try:
        yield ctx
    finally:
        shutdown_distributed(ctx)


def current_context(device: torch.device) -> DistContext:
    """Context of an already initialised group (or a single process) for a given device."""
    if dist.is_available() and dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0), device)
    return DistContext(device=device)


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        if ctx.device.type == "cuda":
            dist.barrier(device_ids=[ctx.device.index])
        else:
            dist.barrier()


def all_reduce_sum(ctx: DistContext, values: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over all ranks (returns it unchanged in one process)."""
    if ctx.distributed:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def all_gather_objects(ctx: DistContext, obj: Any) -> list[Any]:
    """Every rank's ``obj`` in rank order (a one-element list in one process)."""
    if not ctx.distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_buffers(ctx: DistContext, module: torch.nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (BatchNorm running statistics) to every rank.

    Without SyncBatchNorm each rank updates its own running statistics; DDP only
    re-broadcasts them at the next forward. Call this before evaluating so every rank
    scores with the statistics that rank 0 saves in the checkpoint.
    """
    if ctx.distributed:
        for buf in module.buffers():
            dist.broadcast(buf.data, src=src)


def shard_indices(n: int, rank: int, world_size: int) -> list[int]:
    """Indices ``rank, rank + W, ...`` of ``range(n)``: every index on exactly one rank, no padding.

    Unlike ``DistributedSampler`` (which repeats samples so every rank gets the same
    count), this counts each evaluation sample exactly once.
    """
    return list(range(rank, n, world_size))
