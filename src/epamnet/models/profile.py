"""Parameters, multiply-adds and forward throughput of EPAM-Net, and the efficiency table.

Counting conventions (say which, because papers differ):

* ``macs``: multiply-adds of convolutions and linear layers, measured with PyTorch's own
  ``torch.utils.flop_counter.FlopCounterMode``. That counter reports 2 FLOPs per
  multiply-add, so ``macs = FLOPs / 2``. Papers in this area (fvcore, mmcv's
  ``get_flops``) call a multiply-add one "FLOP", so ``macs / 1e9`` is what they print as
  "GFLOPs"; this is the number to put beside the paper's 8.1 GFLOPs.
* ``gflops_mmcv_style``: ``macs`` plus what mmcv's complexity counter adds for the
  other layers: BatchNorm 2 per input element (affine), ReLU 1 per element, average
  pooling 1 per input element (Swish, sigmoid, the shift and additions are not counted
  there either). It explains the gap between conv-only 7.62 G and the reported 8.1.

Counting runs on the ``meta`` device (shapes only, no arithmetic), so it takes well under
a second for the paper model; throughput runs real forwards on the requested device.
"""

from __future__ import annotations

import logging
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from epamnet.config.model import ModelSpec
from epamnet.io.tables import csv_text, markdown_table, write_table
from epamnet.models.epam import EPAMNet

logger = logging.getLogger(__name__)

#: EPAM-Net's GFLOPs as reported in the paper (Table 1; official README figure), filled in as
#: ``reported_gflops`` for the paper configuration. Its one definition: the report's Table 1
#: (:data:`epamnet.report.paper.PAPER_EFFICIENCY`) takes it from here, the layer below.
PAPER_GFLOPS = 8.1

#: Component rows of the table: name -> submodules of EPAMNet that it sums.
COMPONENTS: dict[str, tuple[str, ...]] = {
    "rgb_backbone": ("rgb_backbone",),
    "rgb_stream": ("rgb_backbone", "rgb_cls_head"),
    "pose_backbone": ("pose_backbone",),
    "pose_stream": ("pose_backbone", "pose_cls_head"),
    "attention": ("attention_module",),
    "epam_net": ("rgb_backbone", "rgb_cls_head", "pose_backbone", "pose_cls_head", "attention_module"),
}


def input_shapes(spec: ModelSpec, batch_size: int = 1) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Input shapes (RGB, pose heatmaps) of one batch at the spec's clip sizes."""
    r, p = spec.rgb, spec.pose
    return (
        (batch_size, r.in_channels, r.clip_len, r.input_size, r.input_size),
        (batch_size, p.in_channels, p.clip_len, p.input_size, p.input_size),
    )


def count_parameters(module: nn.Module, conv_linear_only: bool = False) -> int:
    """Parameters of ``module``; ``conv_linear_only`` leaves out BatchNorm's weight and bias."""
    if not conv_linear_only:
        return sum(p.numel() for p in module.parameters())
    kinds = (nn.Conv1d, nn.Conv3d, nn.Linear)
    return sum(p.numel() for m in module.modules() if isinstance(m, kinds) for p in m.parameters(recurse=False))


def _elementwise_hooks(model: nn.Module, totals: dict[str, int]) -> list[Any]:
    """Hooks adding mmcv-style counts of BN / ReLU / average-pool ops per top-level submodule."""
    handles = []
    for top_name, top in model.named_children():
        for m in top.modules():
            if isinstance(m, nn.BatchNorm3d | nn.ReLU | nn.AdaptiveAvgPool3d):

                def hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor, name: str = top_name) -> None:
                    n = inp[0].numel()
                    if isinstance(mod, nn.BatchNorm3d) and mod.affine:
                        n *= 2
                    totals[name] = totals.get(name, 0) + n

                handles.append(m.register_forward_hook(hook))
    return handles


def count_model(spec: ModelSpec, num_classes: int) -> dict[str, dict[str, int]]:
    """Per top-level submodule: params, conv+linear params, MACs and mmcv-style ops, batch 1.

    Built and run on the meta device: exact counts without computing anything.
    """
    with torch.device("meta"):
        model = EPAMNet(spec, num_classes).eval()
        rgb_shape, pose_shape = input_shapes(spec)
        imgs, heatmaps = torch.empty(rgb_shape), torch.empty(pose_shape)
    extra: dict[str, int] = {}
    handles = _elementwise_hooks(model, extra)
    counter = FlopCounterMode(display=False)
    try:
        with counter, torch.no_grad():
            model(imgs, heatmaps)
    finally:
        for h in handles:
            h.remove()
    flops = counter.get_flop_counts()
    out: dict[str, dict[str, int]] = {}
    for name, sub in model.named_children():
        sub_flops = sum(flops.get(f"EPAMNet.{name}", {}).values())
        out[name] = {
            "params": count_parameters(sub),
            "params_conv_linear": count_parameters(sub, conv_linear_only=True),
            "macs": sub_flops // 2,  # FlopCounterMode: 2 FLOPs per multiply-add
            "elementwise_ops": extra.get(name, 0),
        }
    return out


def cpu_load() -> float | None:
    """The machine's 1-minute load average (None where the OS has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def measure_throughput(
    model: nn.Module, spec: ModelSpec, device: str | torch.device, batch_size: int, repeats: int, warmup: int = 2
) -> dict[str, Any]:
    """Forward clips per second (eval mode, inference mode): ``warmup`` untimed forwards, then
    ``repeats`` forwards timed one by one; the median time gives ``clips_per_s``.

    Also returns the fastest and slowest repeat as clips/s and the 1-minute load average
    before and after, so a table can say how busy the machine was.
    """
    device = torch.device(device)
    rgb_shape, pose_shape = input_shapes(spec, batch_size)
    imgs = torch.randn(rgb_shape, device=device)
    heatmaps = torch.rand(pose_shape, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    load_before = cpu_load()
    times: list[float] = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(imgs, heatmaps)
        sync()
        for _ in tqdm(range(repeats), desc=f"throughput b={batch_size}", leave=False, disable=None):
            start = time.perf_counter()
            model(imgs, heatmaps)
            sync()
            times.append(time.perf_counter() - start)
    return {
        "batch_size": batch_size,
        "clips_per_s": batch_size / statistics.median(times),
        "clips_per_s_min": batch_size / max(times),
        "clips_per_s_max": batch_size / min(times),
        "repeats": repeats,
        "warmup": warmup,
        "load_before": load_before,
        "load_after": cpu_load(),
    }


def profile_epamnet(
    spec: ModelSpec,
    num_classes: int,
    device: str = "cpu",
    throughput_iters: int = 10,
    batch_sizes: tuple[int, ...] = (1, 8),
    warmup_iters: int = 2,
) -> dict[str, Any]:
    """Params and multiply-adds per component at the spec's input sizes, and clips/s.

    ``throughput_iters``: timed forwards per batch size, after ``warmup_iters`` untimed
    ones (0 skips the timing). Returns a JSON-able dict with ``components`` (one row per
    entry of :data:`COMPONENTS`) and ``throughput`` (:func:`measure_throughput` per batch size).
    """
    parts = count_model(spec, num_classes)
    components = []
    for comp, names in COMPONENTS.items():
        row: dict[str, Any] = {"component": comp}
        for key in ("params", "params_conv_linear", "macs", "elementwise_ops"):
            row[key] = sum(parts[n][key] for n in names)
        row["gmacs"] = row["macs"] / 1e9
        row["gflops_mmcv_style"] = (row["macs"] + row["elementwise_ops"]) / 1e9
        row["reported_gflops"] = PAPER_GFLOPS if comp == "epam_net" and spec == ModelSpec() else None
        components.append(row)
    rgb_shape, pose_shape = input_shapes(spec)
    result: dict[str, Any] = {
        "spec": spec.to_dict(),
        "spec_name": spec.name,
        "num_classes": num_classes,
        "inputs": {"rgb": list(rgb_shape), "pose": list(pose_shape)},
        "components": components,
        "throughput": [],
        "device": str(device),
        "device_name": _device_name(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
    }
    for row in components:
        logger.info("%s: %d params, %.3f G multiply-adds", row["component"], row["params"], row["gmacs"])
    if throughput_iters > 0:
        model = EPAMNet(spec, num_classes).to(device).eval()
        for bs in batch_sizes:
            speed = measure_throughput(model, spec, device, bs, throughput_iters, warmup_iters)
            logger.info("throughput batch %d on %s: %.2f clips/s (median of %d)", bs, device, speed["clips_per_s"],
                        throughput_iters)  # fmt: skip
            result["throughput"].append(speed)
    return result


def _device_name(device: str) -> str:
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return platform.processor() or platform.machine()


CSV_COLUMNS = (
    "component",
    "params",
    "params_conv_linear",
    "gmacs",
    "gflops_mmcv_style",
    "reported_gflops",
    "batch_size",
    "clips_per_s",
    "device",
    "clips_per_s_min",
    "clips_per_s_max",
    "repeats",
    "warmup",
    "threads",
    "load_before",
    "load_after",
)


def efficiency_frame(result: dict[str, Any]) -> pd.DataFrame:
    """The rows of ``efficiency.csv``, as text.

    One row per component (throughput columns empty), then one ``epam_net`` row per
    measured batch size: ``clips_per_s`` (the median repeat), the fastest and slowest
    repeat, how many, the warm-up forwards, torch's threads and the 1-minute load average.
    """
    empty = dict.fromkeys(CSV_COLUMNS, "")
    records = [
        empty | {
            "component": row["component"],
            "params": str(row["params"]),
            "params_conv_linear": str(row["params_conv_linear"]),
            "gmacs": f"{row['gmacs']:.4f}",
            "gflops_mmcv_style": f"{row['gflops_mmcv_style']:.4f}",
            "reported_gflops": "" if row["reported_gflops"] is None else str(row["reported_gflops"]),
        }
        for row in result["components"]
    ]
    records += [
        empty | {
            "component": "epam_net",
            "batch_size": str(t["batch_size"]),
            "clips_per_s": f"{t['clips_per_s']:.3f}",
            "device": result["device_name"],
            "clips_per_s_min": f"{t['clips_per_s_min']:.3f}",
            "clips_per_s_max": f"{t['clips_per_s_max']:.3f}",
            "repeats": str(t["repeats"]),
            "warmup": str(t["warmup"]),
            "threads": str(result["threads"]),
            "load_before": _load(t["load_before"]),
            "load_after": _load(t["load_after"]),
        }
        for t in result["throughput"]
    ]
    return pd.DataFrame(records, columns=list(CSV_COLUMNS))


def write_efficiency_table(result: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``efficiency.csv`` and ``efficiency.md`` into ``out_dir`` atomically; (md, csv) paths."""
    csv_path, md_path = write_table(
        Path(out_dir) / "efficiency", {"csv": csv_text(efficiency_frame(result)), "md": _markdown(result)}
    )
    return md_path, csv_path


def _markdown(result: dict[str, Any]) -> str:
    rgb, pose = result["inputs"]["rgb"], result["inputs"]["pose"]
    counts = pd.DataFrame(
        [
            [
                row["component"], f"{row['params']:,}", f"{row['params'] / 1e6:.3f}", f"{row['gmacs']:.4f}",
                f"{row['gflops_mmcv_style']:.4f}",
                "" if row["reported_gflops"] is None else f"{row['reported_gflops']:.1f}",
            ]
            for row in result["components"]
        ],
        columns=["component", "params", "params (M)", "GMACs", "GFLOPs mmcv-style", "paper GFLOPs"],
    )  # fmt: skip
    lines = [
        f"# EPAM-Net efficiency ({result['spec_name']} configuration, {result['num_classes']} classes)",
        "",
        f"Inputs: RGB {'x'.join(map(str, rgb))}, pose heatmaps {'x'.join(map(str, pose))} (one clip).",
        "GMACs: multiply-adds of convolutions and linear layers (PyTorch FlopCounterMode FLOPs / 2),",
        "the convention papers print as GFLOPs. mmcv-style adds BatchNorm (2/element), ReLU and",
        "average pooling (1/element), as mmcv's complexity counter does.",
        "",
        markdown_table(counts, "lrrrrr"),
    ]
    if result["throughput"]:
        speeds = pd.DataFrame(
            [[str(t["batch_size"]), f"{t['clips_per_s']:.2f}", f"{t['clips_per_s_min']:.2f}-{t['clips_per_s_max']:.2f}"]
             for t in result["throughput"]],
            columns=["batch size", "clips/s (median)", "slowest-fastest repeat"],
        )  # fmt: skip
        t0 = result["throughput"][0]
        lines += [
            "",
            (
                f"Forward throughput on {result['device_name']} ({result['device']}, torch {result['torch']}, "
                f"{threads_label(result['threads'])}), eval mode: median of {t0['repeats']} timed forwards "
                f"after {t0['warmup']} warm-up forwards, per batch size."
            ),
            load_sentence(result),
            "",
            markdown_table(speeds, "rrr"),
        ]
    return "\n".join(lines) + "\n"


def threads_label(n: int) -> str:
    """'1 thread', '2 threads'."""
    return f"{n} thread" if n == 1 else f"{n} threads"


def _load(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def load_sentence(result: dict[str, Any]) -> str:
    """How busy the machine was while timing: the 1-minute load average against its CPUs.

    The machine counts as busy when other work (the load before timing) wanted at least half
    a CPU more than the timing's threads left free; then speeds are lower and batch sizes
    compare unevenly.
    """
    loads = [t[k] for t in result["throughput"] for k in ("load_before", "load_after") if t[k] is not None]
    cpus = result.get("cpus")
    if not loads or not cpus:
        return "The machine's load was not recorded (no load average on this OS)."
    before = result["throughput"][0]["load_before"]
    span = f"{min(loads):.2f}-{max(loads):.2f}" if max(loads) - min(loads) >= 0.005 else f"{loads[0]:.2f}"
    head = f"1-minute load average while timing: {span} on {cpus} CPUs"
    if before is not None and before >= cpus - result["threads"] + 0.5:
        return (
            f"{head}: the machine was busy (other processes shared the CPUs), so these speeds are lower than on "
            "an idle machine and the batch sizes may compare unevenly."
        )
    return f"{head}: the machine was otherwise idle."
