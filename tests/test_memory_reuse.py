"""Freed memory is reused: every ``epamnet`` command keeps large freed blocks in its heap.

With glibc's defaults a large allocation may be a fresh ``mmap`` whose pages the kernel
zero-fills on first touch, and a freed block at the top of the heap is given back, so
a training step paid a page fault per 4 kB of many activations and gradients
(``runtime.reuse_freed_memory``). Measured by the minor page faults of ten training
steps of a small convolutional net in a fresh process, after three warm-up steps.
"""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from helpers import cli_env

PROBE = """
import resource, sys
import torch
from torch import nn
from epamnet import runtime
if sys.argv[1] == "apply":
    runtime.apply(1, False, None)  # what every epamnet command runs at start-up
torch.set_num_threads(1)
torch.manual_seed(0)
net = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                    nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
x = torch.randn(64, 8, 64, 64)  # activations of 8-16 MB
def step():
    net.zero_grad(set_to_none=True)
    net(x).square().mean().backward()
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], env=cli_env(), capture_output=True, text=True,
                         timeout=300, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator policy")
def test_epamnet_commands_reuse_freed_memory_instead_of_faulting_in_fresh_pages() -> None:
    default, applied = _faults("default"), _faults("apply")
    assert default > 10 * 4096, default  # glibc's defaults: at least a fresh 16 MB per step
    assert applied < default / 10, (default, applied)
