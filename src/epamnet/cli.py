"""``epamnet <stage> ...``: the one command line that Snakemake rules and DVC stages call.

Each subcommand reads ``params.yaml`` (``--params``), finds its inputs and outputs
through :mod:`epamnet.layout`, and calls the stage function in ``epamnet.prepare`` (or
``models``, ``engine``, ``report``). Stage modules are imported lazily so that
``epamnet --help`` and start-up validation stay fast.

Errors a user can fix (:class:`~epamnet.errors.EpamnetError`) print one line,
``error: <file>: <problem>; <fix>``, and exit with status 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from epamnet.config import Params, json_schema, load_params
from epamnet.errors import EpamnetError
from epamnet.layout import Layout

logger = logging.getLogger("epamnet")


def _dataset_arg(params: Params, name: str) -> str:
    if name not in params.datasets.run:
        raise EpamnetError(
            f"params.yaml: dataset {name!r} is not in datasets.run {params.datasets.run}; add it there or pick one of them"
        )
    return name


def _shard_arg(stage: str, shard: int, n: int, key: str) -> int:
    """Check ``--shard`` against the shard count ``n`` (params key ``key``); return ``n``."""
    if not 0 <= shard < n:
        raise EpamnetError(f"{stage}: shard {shard} is out of range; {key} is {n}, use 0..{n - 1}")
    return n


# ---------------------------------------------------------------- data stages
def cmd_acquire(params: Params, args: argparse.Namespace) -> None:
    ds = _dataset_arg(params, args.dataset)
    lay = Layout.from_params(params)
    entry = params.datasets.entry(ds)
    if entry.source == "synthetic":
        from epamnet.prepare.synthetic import generate

        generate(ds, lay.raw(ds), params.synthetic_spec(), seed=params.synthetic.seed)
    else:
        from epamnet.prepare.acquire import acquire_real

        acq = params.acquire
        acquire_real(
            ds,
            lay.downloads,
            lay.raw(ds),
            link=acq.link,
            skeleton_url=acq.skeleton_url,
            skeleton_sha256=acq.skeleton_sha256,
            timeout=acq.timeout,
            retries=acq.retries,
        )


def cmd_pose(params: Params, args: argparse.Namespace) -> None:
    ds = _dataset_arg(params, args.dataset)
    lay = Layout.from_params(params)
    if params.datasets.entry(ds).skeletons == "mmpose":
        from epamnet.prepare.pose import merge_extracted

        merge_extracted([lay.pose_shard(ds, i) for i in range(params.pose.shards)], lay.skeletons(ds))
        return
    from epamnet.prepare.pose import provided_skeletons

    provided_skeletons(ds, lay.raw(ds), lay.skeletons(ds))


def cmd_pose_extract(params: Params, args: argparse.Namespace) -> None:
    ds = _dataset_arg(params, args.dataset)
    if params.datasets.entry(ds).skeletons != "mmpose":
        raise EpamnetError(
            f"params.yaml: datasets.{ds}.skeletons is {params.datasets.entry(ds).skeletons!r}; "
            "set it to 'mmpose' to extract skeletons with HRNet"
        )
    _shard_arg("pose-extract", args.shard, params.pose.shards, "pose.shards")
    lay = Layout.from_params(params)
    from epamnet.prepare.pose import extract_skeletons

    extract_skeletons(ds, lay.raw(ds), params.pose, args.shard, lay.pose_shard(ds, args.shard))


def cmd_clips(params: Params, args: argparse.Namespace) -> None:
    ds = _dataset_arg(params, args.dataset)
    if ds != "pku":
        raise EpamnetError(f"clips: only PKU-MMD has untrimmed videos to cut, not {ds!r}; run it with --dataset pku")
    lay = Layout.from_params(params)
    from epamnet.prepare.pku_clips import make_clips

    make_clips(lay.raw(ds), lay.skeletons(ds), lay.clips(ds))


def _video_finder(lay: Layout, ds: str) -> Callable[[str], Path]:
    """Map a sample's frame_dir to the video ``crop`` reads."""
    if ds == "pku":
        clips = lay.clips(ds) / "videos"
        return lambda name: clips / f"{name}.mp4"
    from epamnet.datasets.registry import get_dataset

    raw, info = lay.raw(ds), get_dataset(ds)
    return lambda name: raw / info.video_relpath(name)


def cmd_crop(params: Params, args: argparse.Namespace) -> None:
    ds = _dataset_arg(params, args.dataset)
    n = _shard_arg("crop", args.shard, params.prepare.shards, "prepare.shards")
    lay = Layout.from_params(params)
    skeletons, _ = lay.crop_source(ds)
    crop = params.prepare.crop
    from epamnet.prepare.crop import crop_shard

    crop_shard(
        skeletons,
        _video_finder(lay, ds),
        args.shard,
        n,
        lay.crop_shard(ds, args.shard),
        lay.crop_videos(ds, args.shard),
        size=crop.size,
        padding=crop.padding,
        threshold=crop.threshold,
        on_error=params.prepare.on_sample_error,
    )


def cmd_crop_merge(params: Params, args: argparse.Namespace) -> None:
    ds = _dataset_arg(params, args.dataset)
    lay = Layout.from_params(params)
    from epamnet.prepare.crop import merge_shards

    merge_shards([lay.crop_shard(ds, i) for i in range(params.prepare.shards)], lay.annotations(ds))


def cmd_splits(params: Params, args: argparse.Namespace) -> None:
    ds = _dataset_arg(params, args.dataset)
    lay = Layout.from_params(params)
    entry = params.datasets.entry(ds)
    from epamnet.prepare.splits import make_splits

    num_classes = params.synthetic_spec().num_classes if entry.source == "synthetic" else None
    make_splits(
        ds,
        lay.annotations(ds),
        lay.splits(ds),
        list(entry.protocols),
        num_classes=num_classes,
        pku_split_dir=lay.raw(ds) / "Split" if ds == "pku" else None,
        source=entry.source,
    )


# ---------------------------------------------------------------- training
def _protocol_arg(params: Params, dataset: str, protocol: str) -> str:
    protocols = params.datasets.entry(dataset).protocols
    if protocol not in protocols:
        raise EpamnetError(
            f"params.yaml: protocol {protocol!r} is not in datasets.{dataset}.protocols {protocols}; add it there or pick one of them"
        )
    return protocol


def cmd_train(params: Params, args: argparse.Namespace) -> None:
    ds = _dataset_arg(params, args.dataset)
    protocol = _protocol_arg(params, ds, args.protocol)
    from epamnet.engine.launch import maybe_relaunch, train_argv

    # train.<stream>.nproc_per_node > 1: this process becomes the torchrun launcher.
    if (rc := maybe_relaunch(train_argv(args), params.train_config(args.stream).nproc_per_node)) is not None:
        if rc != 0:
            raise EpamnetError(f"train: the torchrun processes failed (exit status {rc}); see the log above")
        return
    from epamnet.engine.stages import train_stage

    train_stage(params, ds, protocol, args.stream, resume=not args.no_resume)


def cmd_evaluate(params: Params, args: argparse.Namespace) -> None:
    ds = _dataset_arg(params, args.dataset)
    protocol = _protocol_arg(params, ds, args.protocol)
    from epamnet.engine.stages import evaluate_stage

    evaluate_stage(params, ds, protocol, args.stream)


# ---------------------------------------------------------------- results
def cmd_report(params: Params, args: argparse.Namespace) -> None:
    """Paper tables and figures from whatever runs have finished."""
    from epamnet.report.stage import report_stage

    written = report_stage(params, attention_clips=args.attention_clips)
    for path in written:
        print(path)


# ---------------------------------------------------------------- models
def cmd_profile(params: Params, args: argparse.Namespace) -> None:
    """Params, multiply-adds and clips/s of EPAM-Net at the paper's input sizes."""
    from epamnet.models.profile import profile_epamnet, write_efficiency_table
    from epamnet.models.specs import paper_spec

    prof = params.profile
    result = profile_epamnet(
        paper_spec(),
        args.num_classes,
        device=prof.device,
        throughput_iters=prof.iters,
        batch_sizes=tuple(prof.batch_sizes),
    )
    md, _csv = write_efficiency_table(result, Layout.from_params(params).tables)
    print(md.read_text(encoding="utf-8"))


def cmd_convert_official(params: Params, args: argparse.Namespace) -> None:
    """Map an official released checkpoint onto our EPAM-Net, loading strictly."""
    from epamnet.models.convert import convert_official_checkpoint
    from epamnet.models.epam import EPAMNet
    from epamnet.models.specs import paper_spec

    model = EPAMNet(paper_spec(), args.num_classes)
    convert_official_checkpoint(args.src, args.dst, model)
    print(f"converted {args.src} -> {args.dst} ({args.num_classes} classes, strict: no missing or unexpected keys)")


def cmd_predict(params: Params, args: argparse.Namespace) -> None:
    """Top-5 actions of a user's video (pose, global crop, EPAM-Net)."""
    from epamnet.predict import run

    run(args, params)


# ---------------------------------------------------------------- tooling
def cmd_check(params: Params, args: argparse.Namespace) -> None:
    """Validate params.yaml (done before every command) and say what will run."""
    for ds in params.datasets.run:
        entry = params.datasets.entry(ds)
        print(f"{ds}: {entry.source} data, protocols {', '.join(entry.protocols)}, skeletons {entry.skeletons}")


def cmd_schema(params: Params, args: argparse.Namespace) -> None:
    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        from epamnet.io.atomic import write_text

        write_text(args.output, text)


def cmd_dvc_yaml(params: Params, args: argparse.Namespace) -> None:
    from epamnet.dvcfile import render_dvc_yaml

    text = render_dvc_yaml(params)
    out = Path(args.output)
    if args.check:
        current = out.read_text(encoding="utf-8") if out.exists() else ""
        if current != text:
            raise EpamnetError(f"{out}: out of date with params.yaml; run `epamnet dvc-yaml` to rewrite it")
        return
    from epamnet.io.atomic import write_text

    write_text(out, text)


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="epamnet", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--log", metavar="FILE", help="also write the log to FILE (what Snakemake and DVC pass)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="<stage>")

    def stage(name: str, func: Callable, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    for name, func, help in [
        ("acquire", cmd_acquire, "get a dataset's raw files: download/verify real data, or generate the synthetic one"),
        ("pose", cmd_pose, "2D skeletons of every raw video (provided or extracted)"),
        ("clips", cmd_clips, "cut PKU-MMD's untrimmed videos into one clip per label row"),
        ("crop-merge", cmd_crop_merge, "merge the crop shards into the prepared annotation file"),
        ("splits", cmd_splits, "train/val/test lists per protocol from the official naming rules"),
    ]:
        stage(name, func, help).add_argument("--dataset", required=True)
    p = stage("crop", cmd_crop, "global-box crop and resize of one shard of a dataset's videos")
    p.add_argument("--dataset", required=True)
    p.add_argument("--shard", required=True, type=int)
    p = stage("pose-extract", cmd_pose_extract, "HRNet-W32 (mmpose) skeletons of one shard of a dataset's raw videos")
    p.add_argument("--dataset", required=True)
    p.add_argument("--shard", required=True, type=int)

    for name, func, help in [
        ("train", cmd_train, "train one stream (pose, rgb) or the fusion of one dataset and protocol"),
        ("evaluate", cmd_evaluate, "evaluate a trained stream on the protocol's test list (1 clip per video)"),
    ]:
        p = stage(name, func, help)
        p.add_argument("--dataset", required=True)
        p.add_argument("--protocol", required=True)
        p.add_argument("--stream", required=True, choices=("pose", "rgb", "fusion"))
        if name == "train":
            p.add_argument("--no-resume", action="store_true", help="start over instead of resuming from the last checkpoint")

    p = stage("report", cmd_report, "paper tables and figures (results/tables, results/figures) from the finished runs")
    p.add_argument("--attention-clips", type=int, default=3, help="test clips per run in the attention figure (0: none)")
    p = stage("profile", cmd_profile, "parameters, multiply-adds (GFLOPs) and clips/s of EPAM-Net at the paper's sizes")
    p.add_argument("--num-classes", type=int, default=60, help="classes of the heads (NTU-60: 60)")
    p = stage("convert-official", cmd_convert_official, "convert an official released EPAM-Net checkpoint")
    p.add_argument("--src", required=True, help="official checkpoint (.pth)")
    p.add_argument("--dst", required=True, help="converted checkpoint to write")
    p.add_argument("--num-classes", type=int, required=True, help="60 (NTU-60), 120 (NTU-120), 51 (PKU), 31/19 (Toyota CS/CV)")

    from epamnet.predict import add_arguments as add_predict_arguments

    add_predict_arguments(
        stage("predict", cmd_predict, "top-5 actions of your own video (pose, global crop, EPAM-Net); optionally an annotated video")
    )
    stage("check", cmd_check, "validate params.yaml and print what the pipeline will run")
    p = stage("schema", cmd_schema, "write the JSON schema of params.yaml (used by Snakemake's validate())")
    p.add_argument("--output", default="workflow/schemas/params.schema.json")
    p = stage("dvc-yaml", cmd_dvc_yaml, "write dvc.yaml, the DVC view of the same stages as the Snakefile")
    p.add_argument("--output", default="dvc.yaml")
    p.add_argument("--check", action="store_true", help="only check that the file is up to date")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if args.log:
        Path(args.log).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(args.log, mode="w", encoding="utf-8"))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        datefmt="%H:%M:%S",
        handlers=handlers,
        force=True,
    )
    try:
        params = load_params(args.params)
        args.func(params, args)
    except EpamnetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if args.log:
            with open(args.log, "a", encoding="utf-8") as fh:
                fh.write(f"error: {exc}\n")
        return 1
    except OSError as exc:  # permissions, missing folders, I/O errors the stages did not name themselves
        where = exc.filename if exc.filename is not None else "(no file)"
        print(f"error: {where}: {exc.strerror or exc}; check that the path exists and is writable", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; outputs of the interrupted step were not written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
