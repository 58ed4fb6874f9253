"""Profiling: parameter and multiply-add counts, throughput, the efficiency table."""

from __future__ import annotations

import csv

import pytest
import torch

from epamnet.config.model import paper_spec, synthetic_spec
from epamnet.models import profile as prof
from epamnet.models.profile import (
    PAPER_GFLOPS,
    count_model,
    profile_epamnet,
    write_efficiency_table,
)
from epamnet.models.xshift import se_bottleneck


def analytic_macs(spec, num_classes: int) -> dict[str, int]:
    """Multiply-adds of convs and linears, written out from the architecture (batch 1)."""

    def stream(s) -> int:
        t, size = s.clip_len, s.input_size
        size = (size - 1) // s.stem_stride + 1
        macs = s.in_channels * s.base_channels * 9 * t * size * size
        inplanes = s.base_channels
        for i, (blocks, stride) in enumerate(zip(s.stage_blocks, s.spatial_strides, strict=True)):
            width = s.base_channels * 2**i
            planes = int(width * s.widen_factor)
            for j in range(blocks):
                cin, st = (inplanes, stride) if j == 0 else (width, 1)
                out = (size - 1) // st + 1
                macs += cin * planes * t * size * size  # conv1
                macs += planes * 9 * t * out * out  # depthwise conv2
                if s.se_style == "all" or (s.se_style == "half" and j % 2 == 0):
                    macs += 2 * planes * se_bottleneck(planes, s.se_ratio)
                macs += planes * width * t * out * out  # conv3
                if j == 0:
                    macs += cin * width * t * out * out  # downsample
                size = out
            inplanes = width
        return macs + inplanes * int(inplanes * s.widen_factor) * t * size * size  # conv5

    f = spec.rgb.feature_size
    t = spec.rgb.clip_len
    return {
        "rgb_backbone": stream(spec.rgb),
        "pose_backbone": stream(spec.pose),
        "attention_module": 2 * 49 * t * f * f + 7 * t,
        "rgb_cls_head": spec.rgb.out_channels * num_classes,
        "pose_cls_head": spec.pose.out_channels * num_classes,
    }


@pytest.mark.parametrize("spec", [paper_spec(), synthetic_spec()])
def test_counted_macs_equal_the_analytic_count(spec):
    counts = count_model(spec, 60)
    assert {k: v["macs"] for k, v in counts.items()} == analytic_macs(spec, 60)


def test_paper_counts_match_the_spec():
    rows = {r["component"]: r for r in profile_epamnet(paper_spec(), 60, throughput_iters=0)["components"]}

    def near(value, target, tol=0.01):
        return abs(value - target) <= tol * target

    assert near(rows["rgb_backbone"]["params"], 1.98e6) and near(rows["rgb_backbone"]["gmacs"], 4.26)
    assert near(rows["pose_backbone"]["params"], 0.52e6) and near(rows["pose_backbone"]["gmacs"], 3.36)
    assert rows["attention"]["params"] == 107
    assert near(rows["epam_net"]["params"], 2.54e6) and near(rows["epam_net"]["gmacs"], 7.62)
    # Counting BN / ReLU / pooling the way mmcv does lands on the paper's 8.1 GFLOPs.
    assert near(rows["epam_net"]["gflops_mmcv_style"], PAPER_GFLOPS, tol=0.02)
    assert rows["epam_net"]["reported_gflops"] == PAPER_GFLOPS
    parts = ("rgb_stream", "pose_stream", "attention")
    assert rows["epam_net"]["params"] == sum(rows[p]["params"] for p in parts)
    assert rows["epam_net"]["macs"] == sum(rows[p]["macs"] for p in parts)
    assert near(profile_epamnet(paper_spec(), 120, throughput_iters=0)["components"][-1]["params"], 2.58e6)


def test_throughput_and_table_files(tmp_path):
    spec = synthetic_spec().replace(name="synthetic")
    result = profile_epamnet(spec, 5, throughput_iters=1, batch_sizes=(1, 2), warmup_iters=1)
    assert [t["batch_size"] for t in result["throughput"]] == [1, 2]
    assert all(t["clips_per_s"] > 0 for t in result["throughput"])
    assert result["components"][-1]["reported_gflops"] is None  # not the paper configuration

    out = tmp_path / "tables"
    md, csv_path = write_efficiency_table(result, out)
    assert sorted(p.name for p in out.iterdir()) == ["efficiency.csv", "efficiency.md"]  # no temp files left
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["component"] for r in rows] == [
        "rgb_backbone", "rgb_stream", "pose_backbone", "pose_stream", "attention", "epam_net", "epam_net", "epam_net",
    ]
    assert int(rows[5]["params"]) == result["components"][-1]["params"]
    assert [r["batch_size"] for r in rows[6:]] == ["1", "2"] and float(rows[7]["clips_per_s"]) > 0
    text = md.read_text()
    assert "synthetic configuration, 5 classes" in text and "| batch size | clips/s (median) | slowest-fastest repeat |" in text
    assert [r["repeats"] for r in rows[6:]] == ["1", "1"] and [r["warmup"] for r in rows[6:]] == ["1", "1"]
    assert f"| epam_net | {result['components'][-1]['params']:,} |" in text


def test_paper_table_shows_the_reported_number(tmp_path):
    result = profile_epamnet(paper_spec(), 60, throughput_iters=0)
    md, csv_path = write_efficiency_table(result, tmp_path)
    last = list(csv.DictReader(csv_path.open()))[-1]
    assert last["component"] == "epam_net" and last["reported_gflops"] == "8.1" and last["clips_per_s"] == ""
    assert "| 8.1 |" in md.read_text() and "clips/s" not in md.read_text()


class CountingModel(torch.nn.Module):
    """Stands in for EPAM-Net: counts forwards, computes nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, imgs, heatmaps):
        self.calls += 1
        return imgs.sum()


def test_throughput_is_the_median_of_timed_repeats_after_warm_up(monkeypatch):
    durations = [0.5, 0.1, 0.2, 0.4, 0.3]  # one forward each; median 0.3 s
    clock = iter(x for d in durations for x in (0.0, d))  # perf_counter: start, end of each timed forward
    monkeypatch.setattr(prof.time, "perf_counter", lambda: next(clock))
    loads = iter([0.25, 1.75])
    monkeypatch.setattr(prof, "cpu_load", lambda: next(loads))
    model = CountingModel()
    speed = prof.measure_throughput(model, synthetic_spec(), "cpu", batch_size=3, repeats=5, warmup=2)
    assert model.calls == 2 + 5  # warm-up forwards are run, not timed
    assert speed["clips_per_s"] == pytest.approx(3 / 0.3)  # the median, not the mean (0.3 here too) nor the total
    assert speed["clips_per_s_min"] == pytest.approx(3 / 0.5) and speed["clips_per_s_max"] == pytest.approx(3 / 0.1)
    assert (speed["repeats"], speed["warmup"], speed["load_before"], speed["load_after"]) == (5, 2, 0.25, 1.75)
    # A skewed run: the mean (1.6 s) and the total would differ from the median (0.2 s).
    clock = iter(x for d in [0.1, 0.2, 6.0] for x in (0.0, d))
    loads = iter([0.0, 0.0])
    assert prof.measure_throughput(model, synthetic_spec(), "cpu", 1, 3, 0)["clips_per_s"] == pytest.approx(5.0)


def fake_result(threads: int, load_before: float, cpus: int = 2) -> dict:
    result = profile_epamnet(synthetic_spec().replace(name="synthetic"), 5, throughput_iters=0)
    result.update(threads=threads, cpus=cpus, device_name="testcpu")
    timing = {"repeats": 7, "warmup": 3, "load_before": load_before, "load_after": load_before + 0.5}
    result["throughput"] = [
        {"batch_size": 1, "clips_per_s": 2.0, "clips_per_s_min": 1.5, "clips_per_s_max": 2.5, **timing},
        {"batch_size": 4, "clips_per_s": 1.8, "clips_per_s_min": 1.2, "clips_per_s_max": 2.2, **timing},
    ]
    return result


@pytest.mark.parametrize(("threads", "words"), [(1, "1 thread)"), (2, "2 threads)")])
def test_efficiency_table_states_threads_repeats_and_load(tmp_path, threads, words):
    md, csv_path = write_efficiency_table(fake_result(threads, load_before=0.2), tmp_path)
    text = md.read_text()
    assert words in text and "1 threads" not in text
    assert "median of 7 timed forwards after 3 warm-up forwards" in text
    assert "| 1 | 2.00 | 1.50-2.50 |" in text and "| 4 | 1.80 | 1.20-2.20 |" in text
    assert "1-minute load average while timing: 0.20-0.70 on 2 CPUs: the machine was otherwise idle." in text
    rows = list(csv.DictReader(csv_path.open()))[-2:]
    assert [(r["batch_size"], r["clips_per_s"], r["repeats"], r["warmup"], r["threads"], r["load_before"]) for r in rows] == [
        ("1", "2.000", "7", "3", str(threads), "0.20"), ("4", "1.800", "7", "3", str(threads), "0.20"),
    ]  # fmt: skip


def test_efficiency_table_says_when_the_machine_was_busy(tmp_path):
    # 2 CPUs, 1 thread timing: a load of 1.6 before timing means other work wanted more than the one free CPU.
    text = write_efficiency_table(fake_result(1, load_before=1.6), tmp_path)[0].read_text()
    assert "on 2 CPUs: the machine was busy (other processes shared the CPUs)" in text
    assert "batch sizes may compare unevenly" in text
    text = write_efficiency_table(fake_result(1, load_before=0.9), tmp_path)[0].read_text()
    assert "the machine was otherwise idle" in text and "busy" not in text
