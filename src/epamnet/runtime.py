"""How a stage uses the CPU, set in code from ``params.yaml`` (``runtime``), never by the launcher.

Launchers hand a job different environments: Snakemake sets ``OMP_NUM_THREADS`` (and the
MKL/OpenBLAS equivalents) to the rule's ``threads``, ``dvc repro``, ``torchrun`` and a
shell set nothing, and torch then picks all cores. The thread count changes how torch
splits its reductions, so the same stage gave different weights under different
launchers. Every ``epamnet`` command therefore applies ``runtime.threads`` itself
(:func:`apply` at start-up, :func:`set_torch_threads` in the stages that run torch).

Across CPUs, numbers still differ through the code paths the libraries pick for the
CPU at hand: MKL's kernels, ATen's vectorised kernels (AVX2 / AVX-512), oneDNN's
convolutions and numpy's SIMD loops. ``runtime.portable_cpu: true`` pins all four to
AVX2, which every x86-64 CPU of the last decade has, through the environment variables
the libraries read when they load. They must be set before numpy and torch are
imported, so the command re-executes itself once with them set (:func:`apply`); with
``portable_cpu: false`` it re-executes without them when a launcher had set any, so
that the setting, not the launcher, decides.

Memory: glibc's malloc gives each allocation above a threshold its own ``mmap`` and
unmaps it when freed (the threshold starts at 128 kB and follows the largest block freed,
up to 32 MB). A training step allocates and frees every activation and gradient, so
each step's tensors are fresh pages that the kernel zero-fills one page fault at a
time, and the element-wise layers ran several times slower than on reused memory.
:func:`reuse_freed_memory` serves them from the heap and keeps freed memory for reuse
(``mallopt``, the same knobs as glibc's ``MALLOC_MMAP_THRESHOLD_`` and
``MALLOC_TRIM_THRESHOLD_``); a process then holds its peak memory until it exits.
Allocation never changes a number.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import sys
from collections.abc import Mapping, Sequence

from epamnet.errors import EpamnetError

logger = logging.getLogger(__name__)

#: Variables that pin the CPU code paths to AVX2 (x86-64); read by each library when it loads.
PINNED_CPU_ENV: dict[str, str] = {
    "MKL_CBWR": "AVX2,STRICT",  # MKL conditional numerical reproducibility: AVX2 kernels, strict mode
    "ATEN_CPU_CAPABILITY": "avx2",  # torch's vectorised CPU kernels
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN convolutions and matmuls
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # numpy's dispatch targets above AVX2 (x86-64-v3)
}
#: oneDNN's older spelling and numpy's allow-list: removed with the others so that only the setting decides.
OTHER_CPU_ENV = ("DNNL_MAX_CPU_ISA", "NPY_ENABLE_CPU_FEATURES")
#: Thread variables of OpenMP, MKL and OpenBLAS, for libraries loaded after start-up and for child processes.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: Set in the re-executed process, so that it does not re-execute again.
REEXEC_MARK = "EPAMNET_RUNTIME_APPLIED"
#: glibc's ``mallopt`` parameters (``malloc.h``).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: Blocks up to this size come from the heap, and this much freed memory stays for reuse.
HEAP_REUSE_BYTES = 1 << 30


def wanted_environment(threads: int, portable_cpu: bool, environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with the thread variables set to ``threads`` and the CPU pins set or removed."""
    env = {k: v for k, v in environ.items() if k not in PINNED_CPU_ENV and k not in OTHER_CPU_ENV}
    if portable_cpu:
        env.update(PINNED_CPU_ENV)
    env.update({name: str(threads) for name in THREAD_ENV})
    return env


def _cpu_env(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: environ[k] for k in (*PINNED_CPU_ENV, *OTHER_CPU_ENV) if k in environ}


def apply(threads: int, portable_cpu: bool, argv: Sequence[str] | None) -> None:
    """Make this process run with ``threads`` threads and the CPU pins ``portable_cpu`` asks for.

    ``argv``: the command line after the program name, to re-execute with; ``None`` when
    :func:`epamnet.cli.main` was called in-process (tests), where re-executing would
    replace the caller: that is refused with a one-line error instead.
    """
    env = wanted_environment(threads, portable_cpu, os.environ)
    if _cpu_env(env) != _cpu_env(os.environ):
        if argv is None or os.environ.get(REEXEC_MARK):
            raise EpamnetError(
                "runtime.portable_cpu: the CPU code paths are fixed when numpy and torch load; "
                f"run `epamnet` as its own process (pinned variables: {_cpu_env(env) or 'none'})"
            )
        env[REEXEC_MARK] = "1"
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, "-m", "epamnet", *argv], env)
    os.environ.update({name: env[name] for name in THREAD_ENV})
    reuse_freed_memory()
    if "torch" in sys.modules:
        set_torch_threads(threads)


def reuse_freed_memory() -> bool:
    """Serve large blocks from the heap and keep freed memory for reuse (glibc; module doc).

    Returns whether it applied: False on a C library other than glibc, which has its own
    allocator policy."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)  # the running process's own symbols, glibc's mallopt among them
    # Setting either threshold also stops glibc's automatic raising of the mmap threshold.
    applied = libc.mallopt(M_MMAP_THRESHOLD, HEAP_REUSE_BYTES) == 1
    applied = libc.mallopt(M_TRIM_THRESHOLD, HEAP_REUSE_BYTES) == 1 and applied
    if not applied:
        logger.debug("mallopt refused the heap thresholds; freed memory is unmapped as glibc decides")
    return applied


def set_torch_threads(threads: int) -> None:
    """torch's intra-op threads (what decides its reduction order on the CPU)."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    logger.debug("torch: %d thread(s), CPU capability %s", threads, torch.backends.cpu.get_cpu_capability())
