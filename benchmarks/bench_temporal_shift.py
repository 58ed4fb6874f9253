"""Benchmark: allocation-light temporal shift vs the straightforward version.

Compares ``epamnet.models.tsm.temporal_shift`` (one ``empty_like``, boundary frames
zeroed, custom backward) with ``temporal_shift_naive`` (``zeros_like`` + slice copies,
autograd through the copies, as the official code) in the same process, forward and
forward+backward, at the shapes the paper model runs them: the RGB stream's block
inputs (N=4, T=16, C=24..192 at 112..7) and its bottleneck widths, and the pose
stream's (T=48, C=24..96 at 56..7). Checks outputs and gradients are identical, then
prints times and naive/ours ratios (> 1 means ours is faster).

Run: ``PYTHONPATH=src python benchmarks/bench_temporal_shift.py [--device cuda] [--batch 4]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from epamnet.models.tsm import temporal_shift, temporal_shift_naive

# (label, C, T, H, fold_div): the block inputs the shift sees in the paper model
# ("layer2.1+" = blocks 1.. of stage 2), plus bottleneck-width tensors (C=54, C=432).
SHAPES = [
    ("rgb layer1.0", 24, 16, 112, 8),
    ("rgb layer1.1+", 24, 16, 56, 8),
    ("rgb layer2.1+", 48, 16, 28, 8),
    ("rgb layer3.1+", 96, 16, 14, 8),
    ("rgb layer4.1+", 192, 16, 7, 8),
    ("rgb C=54 56x56", 54, 16, 56, 8),
    ("rgb C=432 7x7", 432, 16, 7, 8),
    ("pose layer1.0+", 24, 48, 56, 4),
    ("pose layer2.1+", 48, 48, 28, 4),
    ("pose layer3.1+", 96, 48, 14, 4),
    ("pose C=54 56x56", 54, 48, 56, 4),
]


def _time(fn: Callable[[], None], device: torch.device, repeats: int) -> float:
    """Median seconds per call over ``repeats`` timed calls (after two warm-up calls)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, N={args.batch}")
    print(f"{'shape':<18} {'N,C,T,H,W':<20} {'fwd naive':>10} {'fwd ours':>10} {'ratio':>6} "
          f"{'f+b naive':>10} {'f+b ours':>10} {'ratio':>6}")
    fwd_ratios, fb_ratios = [], []
    for label, c, t, h, fold_div in SHAPES:
        x = torch.randn(args.batch, c, t, h, h, device=device, requires_grad=True)
        grad = torch.randn_like(x)

        # Same outputs and the same gradients.
        ours, naive = temporal_shift(x, fold_div), temporal_shift_naive(x, fold_div)
        if not torch.equal(ours, naive):
            raise SystemExit(f"{label}: outputs differ")
        (g_ours,) = torch.autograd.grad(ours, x, grad)
        (g_naive,) = torch.autograd.grad(naive, x, grad)
        if not torch.equal(g_ours, g_naive):
            raise SystemExit(f"{label}: gradients differ")
        del ours, naive, g_ours, g_naive

        def fwd(f: Callable[[torch.Tensor, int], torch.Tensor]) -> Callable[[], None]:
            def run() -> None:
                with torch.no_grad():
                    f(x, fold_div)

            return run

        def fwd_bwd(f: Callable[[torch.Tensor, int], torch.Tensor]) -> Callable[[], None]:
            def run() -> None:
                torch.autograd.grad(f(x, fold_div), x, grad)

            return run

        fn_ = _time(fwd(temporal_shift_naive), device, args.repeats)
        fo = _time(fwd(temporal_shift), device, args.repeats)
        bn_ = _time(fwd_bwd(temporal_shift_naive), device, args.repeats)
        bo = _time(fwd_bwd(temporal_shift), device, args.repeats)
        fwd_ratios.append(fn_ / fo)
        fb_ratios.append(bn_ / bo)
        shape = f"{args.batch},{c},{t},{h},{h}"
        print(f"{label:<18} {shape:<20} {fn_ * 1e3:9.3f}ms {fo * 1e3:9.3f}ms {fn_ / fo:6.2f} "
              f"{bn_ * 1e3:9.3f}ms {bo * 1e3:9.3f}ms {bn_ / bo:6.2f}")
    gmean = lambda v: statistics.geometric_mean(v)  # noqa: E731
    print(f"all outputs and gradients identical; geometric-mean speed-up (naive/ours): "
          f"forward {gmean(fwd_ratios):.2f}x, forward+backward {gmean(fb_ratios):.2f}x")


if __name__ == "__main__":
    main()
