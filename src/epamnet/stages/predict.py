"""``epamnet predict VIDEO``: a user's own video in, the top-5 actions out.

The video goes through the same steps as the pipeline's test clips, so a model sees
what it saw in evaluation (:mod:`epamnet.inference`):

1. 2D skeletons: mmpose HRNet-W32 top-down (:mod:`epamnet.pose`) with person boxes
   from the full frame (default) or an mmdet detector (``--det-config`` and
   ``--det-checkpoint``); or, without running mmpose, one entry of an existing
   mmaction2-format annotation file (``--skeletons FILE.pkl``), named like the video
   (``--force-skeletons`` takes an entry named otherwise).
2. The global crop: one box over all persons and frames, cut and resized to
   ``prepare.crop.size``, keypoints re-expressed in it. The cropped video is written to
   a temporary folder and read back, as ``crop`` and the datasets do.
3. One test-mode clip: ``pose.clip_len`` uniformly sampled frames as heatmaps, every
   ``pose/rgb``-th of them as the RGB clip.
4. EPAM-Net (``model`` in params.yaml, or ``--model-preset``) with the weights of
   ``--checkpoint`` (a ``model.pt`` that ``train --stream fusion`` published, a
   training checkpoint, a checkpoint written by ``convert-official``, or an official
   released checkpoint, converted on the fly), loaded strictly.

Score: the softmax of the summed logits (rgb + pose, the official inference score).
Class names come from ``--classes`` (one name per line, or a JSON list), ``--split``
(a split JSON's ``classes``), or the split of ``--dataset``/``--protocol`` (also found
from a checkpoint under ``models/<dataset>/<protocol>/fusion/``).

``--output-video OUT.mp4`` writes the video (original frames, or ``--overlay-on crop``
for the cropped ones) with the skeleton drawn, the top-1 label, and the pose-driven
attention map upsampled over the crop region. ``--json FILE`` writes the top-k and the
facts of the run. Every file is written atomically.

This module turns params.yaml, the layout and the command line (parsed in
:mod:`epamnet.cli`) into the library calls; :func:`run` is the command.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from epamnet.config import Params
from epamnet.engine.distributed import resolve_device
from epamnet.errors import EpamnetError, file_error
from epamnet.inference.classes import ClassSource, resolve_class_names
from epamnet.inference.prediction import Prediction, format_table, prediction_json
from epamnet.inference.recognizer import (
    Alternative,
    ClipSettings,
    Recognizer,
    VideoSample,
    load_model,
    recognize,
)
from epamnet.inference.skeletons import (
    Skeleton,
    check_pose_inputs,
    check_skeleton,
    extract_skeleton,
    read_skeleton,
)
from epamnet.inference.visualize import overlay_frames, write_annotated_video
from epamnet.io.atomic import write_text
from epamnet.io.video import DEFAULT_CODECS, video_info
from epamnet.layout import Layout
from epamnet.pose.extract import PoseSettings
from epamnet.pose.settings import pose_settings
from epamnet.stages.streams import clip_configs

TRAIN_FIX = "train it with `epamnet train --dataset D --protocol P --stream fusion`, or pass --checkpoint FILE"
PRESETS = ("synthetic", "paper")
_PATH_OPTIONS = ("checkpoint", "classes", "split", "skeletons", "output_video")


@dataclass(frozen=True)
class PredictOptions:
    """The choices of one ``epamnet predict`` run (the command line's options; see :mod:`epamnet.cli`)."""

    checkpoint: Path | None = None
    dataset: str | None = None
    protocol: str | None = None
    model_preset: str | None = None
    classes: Path | None = None
    split: Path | None = None
    device: str = "auto"
    skeletons: Path | None = None
    skeleton_id: str | None = None
    force_skeletons: bool = False  # use a --skeletons entry named after another video
    pose: PoseSettings | None = None  # None: full-frame boxes, the other PoseSettings defaults
    top: int = 5
    output_video: Path | None = None
    overlay_on: str = "original"
    alpha: float = 0.45
    kpt_thr: float = 0.3

    def __post_init__(self) -> None:
        for name in _PATH_OPTIONS:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        if self.top < 1:
            raise EpamnetError(f"predict: --top {self.top} must be at least 1")
        if not 0.0 <= self.alpha <= 1.0:
            raise EpamnetError(f"predict: --alpha {self.alpha} must be in [0, 1]")
        if self.overlay_on not in ("original", "crop"):
            raise EpamnetError(f"predict: --overlay-on {self.overlay_on!r}: use original or crop")
        if (self.dataset is None) != (self.protocol is None):
            raise EpamnetError("predict: --dataset and --protocol go together; pass both or neither")
        if self.output_video is not None and self.output_video.suffix.lower() not in DEFAULT_CODECS:
            suffixes = ", ".join(sorted(DEFAULT_CODECS))
            raise file_error(self.output_video, "unknown video suffix", f"use one of {suffixes}")


# ----------------------------------------------------------------------------- the command


def run(args: argparse.Namespace, params: Params) -> int:
    """``epamnet predict``: print the top-k (and write the JSON and the video if asked); return 0."""
    pose = pose_options(args, params)
    options = PredictOptions(
        checkpoint=args.checkpoint, dataset=args.dataset, protocol=args.protocol, model_preset=args.model_preset,
        classes=args.classes, split=args.split, device=args.device, skeletons=args.skeletons,
        skeleton_id=args.skeleton_id, force_skeletons=args.force_skeletons, pose=pose, top=args.top,
        output_video=args.output_video, overlay_on=args.overlay_on, alpha=args.alpha, kpt_thr=args.kpt_thr,
    )
    result = predict(args.video, params, options)
    print(format_table(result, args.top))
    if args.json is not None:
        write_json(result, args.json, args.top)
        print(f"wrote {args.json}")
    if args.output_video is not None:
        print(f"wrote {args.output_video}")
    return 0


def pose_options(args: argparse.Namespace, params: Params) -> PoseSettings:
    """mmpose settings: params.yaml's ``pose`` section with the command line's values on top.

    Boxes come from a detector when one is given, else the whole frame: a user's video
    has no dataset skeletons, whatever ``pose.box_source`` says for the datasets.
    """
    det_config, det_checkpoint = args.det_config, args.det_checkpoint
    if det_config is None and det_checkpoint is None and params.pose.box_source == "detector":
        det_config, det_checkpoint = params.pose.det_config, params.pose.det_checkpoint
    given = {
        "checkpoint": args.pose_checkpoint,
        "config": args.pose_config,
        "det_score_threshold": args.det_score_threshold,
        "batch_size": args.pose_batch_size,
        "max_persons": args.max_persons,
        "flip_test": False if args.no_flip_test else None,
    }
    return pose_settings(
        params.pose,
        **{k: v for k, v in given.items() if v is not None},
        random_init=args.pose_random_init,
        det_config=Path(det_config) if det_config else None,
        det_checkpoint=Path(det_checkpoint) if det_checkpoint else None,
        box_source="detector" if det_config else "full_frame",
    )


def write_json(pred: Prediction, path: str | Path, k: int = 5) -> None:
    """Write the top-k and the facts of the run to ``path`` atomically."""
    try:
        write_text(path, json.dumps(prediction_json(pred, k), indent=1) + "\n")
    except OSError as exc:
        raise file_error(path, f"cannot write the JSON ({exc.strerror or type(exc).__name__})",
                         "choose a writable path for --json") from None


# ----------------------------------------------------------------------------- predict


def predict(
    video: str | Path, params: Params, options: PredictOptions | None = None, /, **changes: Any
) -> Prediction:
    """Classify ``video`` with EPAM-Net; optionally write the annotated video. See the module doc.

    ``changes`` (fields of :class:`PredictOptions`) replace those of ``options``.
    """
    opts = dataclasses.replace(options or PredictOptions(), **changes)
    video = Path(video)
    lay = Layout.from_params(params)

    # 1. inputs first, so that a bad one fails before the slow steps.
    info = video_info(video, count_frames=True)  # missing / undecodable video: one line naming it
    checkpoint = _checkpoint(opts, lay)
    params, sizes = _with_preset(params, opts.model_preset)
    model, num_classes = load_model(checkpoint, params.model_spec(), preset_name=sizes,
                                    alternatives=model_alternatives(params))
    class_names, classes_from = resolve_class_names(num_classes, _class_source(opts, lay, checkpoint), checkpoint)
    device = resolve_device(opts.device)

    # 2. skeletons.
    sample = VideoSample(video, info, _skeleton(video, opts, str(device)))
    check_skeleton(sample.skeleton, video, info.frames)

    # 3. the global crop and one test clip through the model; 4. the annotated video.
    recognizer = Recognizer(model, checkpoint, sizes, class_names, classes_from)
    pose_cfg, rgb_cfg = clip_configs(params)
    settings = ClipSettings(crop=params.prepare.crop, pose=pose_cfg, rgb=rgb_cfg)
    with tempfile.TemporaryDirectory(prefix="epamnet-predict-") as tmp:
        pred, cropped = recognize(recognizer, sample, settings, device, Path(tmp))
        if opts.output_video is not None:
            frames = overlay_frames(pred, sample, cropped, opts.overlay_on)
            try:
                write_annotated_video(pred, frames, opts.output_video, alpha=opts.alpha, kpt_thr=opts.kpt_thr)
            except OSError as exc:
                raise file_error(opts.output_video, f"cannot write the video ({exc.strerror or type(exc).__name__})",
                                 "choose a writable path for --output-video") from None
    return pred


def _checkpoint(opts: PredictOptions, lay: Layout) -> Path:
    """``--checkpoint``, or the pipeline's fusion model of ``--dataset``/``--protocol``."""
    if opts.checkpoint is not None:
        return opts.checkpoint
    if opts.dataset is None or opts.protocol is None:
        raise EpamnetError(
            "predict: no model given; pass --checkpoint FILE (an EPAM-Net model.pt or official checkpoint) "
            "or --dataset D --protocol P for the pipeline's models/D/P/fusion/model.pt"
        )
    checkpoint = lay.model_file(opts.dataset, opts.protocol, "fusion")
    if not checkpoint.is_file():
        raise file_error(checkpoint, "no trained EPAM-Net here", TRAIN_FIX)
    return checkpoint


def _with_preset(params: Params, preset: str | None) -> tuple[Params, str]:
    """``params`` with ``--model-preset`` in place of ``model.preset``, and how the sizes are named.

    The preset replaces params.yaml's; its other model keys still apply. Clip sizes follow the model.
    """
    if preset is None or preset == params.model.preset:
        return params, f"params.yaml's model (preset {params.model.preset})"
    if preset not in PRESETS:
        raise EpamnetError(f"predict: --model-preset {preset!r}: use synthetic or paper")
    model = params.model.model_copy(update={"preset": preset})
    return params.model_copy(update={"model": model}), f"--model-preset {preset}"


def model_alternatives(params: Params) -> list[Alternative]:
    """Other model sizes a checkpoint may have been trained with: (description, spec, how to select it).

    The other preset with params.yaml's remaining ``model`` keys (``--model-preset``), and,
    when params.yaml overrides sizes, the plain presets.
    """
    out: list[Alternative] = []
    for preset in PRESETS:
        if preset != params.model.preset:
            other, _ = _with_preset(params, preset)
            try:
                spec = other.model_spec()
            except (EpamnetError, ValueError):
                continue
            out.append(Alternative(f"model preset {preset!r}", spec,
                                   f"pass --model-preset {preset} (or set model.preset: {preset} in params.yaml)"))
    if params.model_spec().name == "custom":
        for preset in PRESETS:
            plain = params.model_copy(update={"model": type(params.model)(preset=preset)})  # no size keys
            out.append(Alternative(f"the plain {preset} preset", plain.model_spec(),
                                   f"set model.preset: {preset} in params.yaml and remove the size keys under "
                                   "model.rgb / model.pose"))
    return out


def _trained_on(lay: Layout, checkpoint: Path) -> tuple[str, str] | None:
    """``(dataset, protocol)`` when ``checkpoint`` lies in the pipeline's fusion folder of them."""
    try:
        parts = checkpoint.resolve().relative_to(lay.models.resolve()).parts
    except (ValueError, OSError):
        return None
    if len(parts) == 4 and checkpoint.resolve().parent == lay.train_dir(parts[0], parts[1], "fusion").resolve():
        return parts[0], parts[1]
    return None


def _class_source(opts: PredictOptions, lay: Layout, checkpoint: Path) -> ClassSource:
    """``--classes``, ``--split``, else the split (or class list) of the model's dataset and protocol."""
    if opts.classes is not None and opts.split is not None:
        raise EpamnetError("predict: --classes and --split both give class names; pass only one of them")
    if opts.dataset is not None and opts.protocol is not None:
        dataset, protocol = opts.dataset, opts.protocol
    else:
        dataset, protocol = _trained_on(lay, checkpoint) or (None, None)
    split = opts.split
    if split is None and dataset is not None and protocol is not None:
        default = lay.split_file(dataset, protocol)
        split = default if default.is_file() else None
    return ClassSource(classes=opts.classes, split=split, dataset=dataset, protocol=protocol)


def _skeleton(video: Path, opts: PredictOptions, device: str) -> Skeleton:
    """The skeleton of ``video``: the entry of ``--skeletons``, or mmpose's (inputs checked first)."""
    if opts.skeletons is not None:
        return read_skeleton(opts.skeletons, video, opts.skeleton_id, force=opts.force_skeletons)
    pose = opts.pose if opts.pose is not None else PoseSettings(box_source="full_frame")
    check_pose_inputs(pose)
    return extract_skeleton(video, pose, device)
