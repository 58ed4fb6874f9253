"""``epamnet <stage> ...``: the one command line that Snakemake rules and DVC stages call.

Each subcommand reads ``params.yaml`` (``--params``), applies its ``runtime`` settings
(threads, CPU code paths: :mod:`epamnet.runtime`) and calls ``run`` of the stage's own
module in :mod:`epamnet.stages`; this file only parses arguments. Stage modules are
imported lazily so that ``epamnet --help`` and start-up validation stay fast.

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

from epamnet import logs, runtime
from epamnet.config import Params, json_schema, load_params
from epamnet.errors import EpamnetError

logger = logging.getLogger("epamnet")


# ---------------------------------------------------------------- stages (epamnet.stages)
def cmd_acquire(params: Params, args: argparse.Namespace) -> None:
    from epamnet.stages import acquire

    acquire.run(params, args.dataset)


def cmd_pose(params: Params, args: argparse.Namespace) -> None:
    from epamnet.stages import pose

    pose.run(params, args.dataset)


def cmd_pose_extract(params: Params, args: argparse.Namespace) -> None:
    from epamnet.stages import pose_extract

    pose_extract.run(params, args.dataset, args.shard)


def cmd_clips(params: Params, args: argparse.Namespace) -> None:
    from epamnet.stages import clips

    clips.run(params, args.dataset)


def cmd_crop(params: Params, args: argparse.Namespace) -> None:
    from epamnet.stages import crop

    crop.run(params, args.dataset, args.shard)


def cmd_crop_merge(params: Params, args: argparse.Namespace) -> None:
    from epamnet.stages import crop_merge

    crop_merge.run(params, args.dataset)


def cmd_splits(params: Params, args: argparse.Namespace) -> None:
    from epamnet.stages import splits

    splits.run(params, args.dataset)


def cmd_train(params: Params, args: argparse.Namespace) -> None:
    from epamnet.engine.launch import train_argv
    from epamnet.stages import train

    train.run(params, args.dataset, args.protocol, args.stream, resume=not args.no_resume, argv=train_argv(args))


def cmd_evaluate(params: Params, args: argparse.Namespace) -> None:
    from epamnet.stages import evaluate

    evaluate.run(params, args.dataset, args.protocol, args.stream)


def cmd_evaluate_released(params: Params, args: argparse.Namespace) -> None:
    from epamnet.stages import released

    released.run(params, args.dataset, args.protocol)


def cmd_report(params: Params, args: argparse.Namespace) -> None:
    """Paper tables and figures from whatever runs have finished."""
    from epamnet.stages import report

    for path in report.run(params, attention_clips=args.attention_clips):
        print(path)


def cmd_profile(params: Params, args: argparse.Namespace) -> None:
    """Params, multiply-adds and clips/s of EPAM-Net at the paper's input sizes."""
    from epamnet.stages import profile

    print(profile.run(params, args.num_classes).read_text(encoding="utf-8"))


# ---------------------------------------------------------------- tools outside the DAG
def cmd_convert_official(params: Params, args: argparse.Namespace) -> None:
    """Map an official released checkpoint (EPAM-Net or one stream) onto our model, loading strictly."""
    from epamnet.stages import convert

    print(convert.run(args.src, args.dst, args.num_classes, args.stream, args.model_preset))


def cmd_predict(params: Params, args: argparse.Namespace) -> None:
    """Top-5 actions of a user's video (pose, global crop, EPAM-Net)."""
    from epamnet.stages import predict

    predict.run(args, params)


# ---------------------------------------------------------------- tooling
def cmd_check(params: Params, args: argparse.Namespace) -> None:
    """Validate params.yaml (done before every command) and say what will run."""
    for ds in params.datasets.run:
        entry = params.datasets.entry(ds)
        print(f"{ds}: {entry.source} data, protocols {', '.join(entry.protocols)}, skeletons {entry.skeletons}")
    from epamnet.stages.checks import training_summary

    print("\n".join(training_summary(params)))


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


def cmd_sync(params: Params, args: argparse.Namespace) -> None:
    from epamnet import sync

    sync.to_dvc() if args.to == "dvc" else sync.to_snakemake()


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

    p = stage(
        "evaluate-released", cmd_evaluate_released,
        "evaluate the released EPAM-Net weights of a protocol (datasets.<dataset>.released) on its test list",
    )
    p.add_argument("--dataset", required=True)
    p.add_argument("--protocol", required=True)
    p = stage("report", cmd_report, "paper tables and figures (results/tables, results/figures) from the finished runs")
    p.add_argument("--attention-clips", type=int, default=3, help="test clips per run in the attention figure (0: none)")
    p = stage("profile", cmd_profile, "parameters, multiply-adds (GFLOPs) and clips/s of EPAM-Net at the paper's sizes")
    p.add_argument("--num-classes", type=int, default=60, help="classes of the heads (NTU-60: 60)")
    p = stage("convert-official", cmd_convert_official, "convert an official released checkpoint (EPAM-Net or one stream)")
    p.add_argument("--src", required=True, help="official checkpoint (.pth)")
    p.add_argument("--dst", required=True, help="converted checkpoint to write")
    p.add_argument("--num-classes", type=int, required=True, help="60 (NTU-60), 120 (NTU-120), 51 (PKU), 31/19 (Toyota CS/CV)")
    p.add_argument(
        "--stream", choices=("fusion", "pose", "rgb"), default="fusion",
        help="what the checkpoint holds: EPAM-Net (fusion, default) or one stream's recognizer (backbone.*, cls_head.*)",
    )
    p.add_argument(
        "--model-preset", choices=("paper", "synthetic"), default="paper",
        help="model sizes to check the weights against (released checkpoints: paper, the default)",
    )

    add_predict_arguments(
        stage("predict", cmd_predict, "top-5 actions of your own video (pose, global crop, EPAM-Net); optionally an annotated video")
    )
    stage("check", cmd_check, "validate params.yaml and print what the pipeline will run")
    p = stage("schema", cmd_schema, "write the JSON schema of params.yaml (used by Snakemake's validate())")
    p.add_argument("--output", default="workflow/schemas/params.schema.json")
    p = stage("sync", cmd_sync, "bring one orchestrator's records in step with the other's results, re-running nothing")
    p.add_argument(
        "to", choices=("dvc", "snakemake"),
        help="dvc: record a finished Snakemake run in dvc.lock; snakemake: mark DVC's results done for Snakemake",
    )
    p = stage("dvc-yaml", cmd_dvc_yaml, "write dvc.yaml, the DVC view of the same stages as the Snakefile")
    p.add_argument("--output", default="dvc.yaml")
    p.add_argument("--check", action="store_true", help="only check that the file is up to date")
    return parser


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``epamnet predict`` (:mod:`epamnet.stages.predict`)."""
    parser.add_argument("video", type=Path, help="the video to classify (any format OpenCV reads)")
    model = parser.add_argument_group("model")
    model.add_argument(
        "--checkpoint", type=Path, metavar="FILE",
        help="EPAM-Net weights: a fusion model.pt from `epamnet train`, a training checkpoint, or an official "
        "released checkpoint (converted on the fly, strictly); default: models/<dataset>/<protocol>/fusion/model.pt",
    )
    model.add_argument("--dataset", help="dataset the model was trained on (finds the default checkpoint and class names)")
    model.add_argument("--protocol", help="protocol the model was trained on (with --dataset)")
    model.add_argument(
        "--model-preset", choices=("synthetic", "paper"),
        help="model sizes of the checkpoint: replaces params.yaml's model.preset (official checkpoints: paper)",
    )
    model.add_argument("--classes", type=Path, metavar="FILE", help="class names: one per line, or a JSON list")
    model.add_argument("--split", type=Path, metavar="FILE", help="class names from a split JSON's `classes`")
    model.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")

    pose = parser.add_argument_group("skeletons")
    pose.add_argument(
        "--skeletons", type=Path, metavar="FILE.pkl",
        help="take the keypoints from this mmaction2-format annotation file instead of running mmpose",
    )
    pose.add_argument(
        "--skeleton-id", metavar="FRAME_DIR",
        help="the entry of --skeletons to use (default: the one named like the video)",
    )
    pose.add_argument(
        "--force-skeletons", action="store_true",
        help="use the --skeletons entry (--skeleton-id, or the file's only one) even when it is named after "
        "another video than VIDEO",
    )
    pose.add_argument(
        "--pose-checkpoint", type=Path, metavar="FILE",
        help="HRNet-W32 COCO weights (mmpose model zoo; default: params.yaml's pose.checkpoint)",
    )
    pose.add_argument("--pose-config", metavar="FILE", help="mmpose config (default: params.yaml's pose.config)")
    pose.add_argument(
        "--pose-random-init", action="store_true",
        help="FOR TESTING ONLY: a randomly initialised HRNet instead of --pose-checkpoint (meaningless keypoints)",
    )
    pose.add_argument(
        "--det-config", type=Path, metavar="FILE",
        help="mmdet config: person boxes from a detector (default: the whole frame is the person box)",
    )
    pose.add_argument("--det-checkpoint", type=Path, metavar="FILE", help="mmdet checkpoint (with --det-config)")
    pose.add_argument("--det-score-threshold", type=float, metavar="S", help="detector person score threshold (default: params.yaml)")
    pose.add_argument("--pose-batch-size", type=int, metavar="N", help="person crops per pose forward pass (default: params.yaml)")
    pose.add_argument("--max-persons", type=int, metavar="N", help="persons kept per frame, highest scores (default: params.yaml)")
    pose.add_argument("--no-flip-test", action="store_true", help="pose without flip test (faster, less accurate)")

    out = parser.add_argument_group("output")
    out.add_argument("--top", type=int, default=5, metavar="K", help="how many classes to list (default: 5)")
    out.add_argument("--json", type=Path, metavar="FILE", help="also write the top-k and the run's facts as JSON")
    out.add_argument(
        "--output-video", type=Path, metavar="OUT.mp4",
        help="write the annotated video: skeleton, top-1 label, attention heat map (.mp4 or .avi)",
    )
    out.add_argument(
        "--overlay-on", choices=("original", "crop"), default="original",
        help="frames of the annotated video: the original ones or the cropped ones the model saw",
    )
    out.add_argument("--alpha", type=float, default=0.45, metavar="A", help="opacity of the attention heat map (0..1)")
    out.add_argument("--kpt-thr", type=float, default=0.3, metavar="S", help="keypoints below this score are not drawn")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.log:
        Path(args.log).parent.mkdir(parents=True, exist_ok=True)
    # Every record is prefixed with the stage's context ([dataset/protocol/stream], set by
    # the stage); a real command also routes warnings through the log (epamnet.logs).
    logs.set_context()
    logs.configure(logging.DEBUG if args.verbose else logging.INFO, args.log, capture_warnings=argv is None)
    try:
        params = load_params(args.params)
        # Threads and CPU code paths from params.yaml, not from the launcher's environment.
        runtime.apply(params.runtime.threads, params.runtime.portable_cpu, sys.argv[1:] if argv is None else None)
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
