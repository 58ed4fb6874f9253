"""Profiling: parameter and multiply-add counts, throughput, the efficiency table."""

from __future__ import annotations

import csv

import pytest

from epamnet.models.profile import (
    PAPER_GFLOPS,
    count_model,
    profile_epamnet,
    write_efficiency_table,
)
from epamnet.config.model import paper_spec, synthetic_spec
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
    assert "synthetic configuration, 5 classes" in text and "| batch size | clips/s |" in text
    assert f"| epam_net | {result['components'][-1]['params']:,} |" in text


def test_paper_table_shows_the_reported_number(tmp_path):
    result = profile_epamnet(paper_spec(), 60, throughput_iters=0)
    md, csv_path = write_efficiency_table(result, tmp_path)
    last = list(csv.DictReader(csv_path.open()))[-1]
    assert last["component"] == "epam_net" and last["reported_gflops"] == "8.1" and last["clips_per_s"] == ""
    assert "| 8.1 |" in md.read_text() and "clips/s" not in md.read_text()
