"""``epamnet predict VIDEO``: a user's own video in, the top-5 actions out.

The video goes through the same steps as the pipeline's test clips, so a model sees
what it saw in evaluation:

1. 2D skeletons: mmpose HRNet-W32 top-down (:mod:`epamnet.pose`) with person boxes
   from the full frame (default) or an mmdet detector (``--det-config`` and
   ``--det-checkpoint``); or, without running mmpose, one entry of an existing
   mmaction2-format annotation file (``--skeletons FILE.pkl``).
2. The global crop (:func:`epamnet.prepare.crop.crop_sample`): one box over all persons
   and frames, cut and resized to ``prepare.crop.size``, keypoints re-expressed in it.
   The cropped video is written to a temporary folder and read back, as ``crop`` and
   the datasets do.
3. One test-mode clip (:mod:`epamnet.loader.sampling`): ``pose.clip_len`` uniformly
   sampled frames as heatmaps, every ``pose/rgb``-th of them as the RGB clip.
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
attention map ``A`` (one map per RGB clip frame; each video frame shows the map of the
nearest sampled RGB frame) upsampled over the crop region as a heat colour map, with
a strip of the per-frame mean of ``A`` at the bottom. ``--json FILE`` writes the
top-k and the facts of the run. Every file is written atomically.

The CLI wiring: :func:`add_arguments` fills the ``predict`` subparser and :func:`run`
executes it (``epamnet.cli``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from epamnet.errors import EpamnetError, file_error

if TYPE_CHECKING:  # heavy imports stay inside the functions (``epamnet --help`` stays fast)
    import torch

    from epamnet.config import Params
    from epamnet.models.specs import ModelSpec
    from epamnet.pose.extract import PoseSettings

logger = logging.getLogger(__name__)

#: COCO-17 limbs (joint index pairs) drawn on the output video.
COCO_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (1, 3), (2, 4),  # face
    (5, 6), (5, 11), (6, 12), (11, 12),  # torso
    (5, 7), (7, 9), (6, 8), (8, 10),  # arms
    (11, 13), (13, 15), (12, 14), (14, 16),  # legs
)  # fmt: skip
#: Joints on the person's left (drawn in one colour), right (another), centre (a third).
_LEFT_JOINTS = frozenset((1, 3, 5, 7, 9, 11, 13, 15))
_RIGHT_JOINTS = frozenset((2, 4, 6, 8, 10, 12, 14, 16))
_COLOURS = {"left": (255, 170, 0), "right": (0, 200, 255), "centre": (255, 255, 255)}  # RGB

TRAIN_FIX = "train it with `epamnet train --dataset D --protocol P --stream fusion`, or pass --checkpoint FILE"


# ----------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``epamnet predict``."""
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
        help="the entry of --skeletons to use (default: the only one, or the one named like the video)",
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


def run(args: argparse.Namespace, params: Params) -> int:
    """``epamnet predict``: print the top-k (and write the JSON and the video if asked); return 0."""
    result = predict(
        args.video,
        params,
        checkpoint=args.checkpoint,
        dataset=args.dataset,
        protocol=args.protocol,
        model_preset=args.model_preset,
        classes=args.classes,
        split=args.split,
        device=args.device,
        skeletons=args.skeletons,
        skeleton_id=args.skeleton_id,
        pose=pose_options(args, params),
        top=args.top,
        output_video=args.output_video,
        overlay_on=args.overlay_on,
        alpha=args.alpha,
        kpt_thr=args.kpt_thr,
    )
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
    from epamnet.prepare.pose import pose_settings

    base = pose_settings(params.pose)
    det_config, det_checkpoint = args.det_config, args.det_checkpoint
    if det_config is None and det_checkpoint is None and params.pose.box_source == "detector":
        det_config, det_checkpoint = base.det_config, base.det_checkpoint

    def pick(value: Any, default: Any) -> Any:
        return value if value is not None else default

    return dataclasses.replace(
        base,
        checkpoint=pick(args.pose_checkpoint, base.checkpoint),
        config=pick(args.pose_config, base.config),
        random_init=args.pose_random_init,
        det_config=Path(det_config) if det_config else None,
        det_checkpoint=Path(det_checkpoint) if det_checkpoint else None,
        det_score_threshold=pick(args.det_score_threshold, base.det_score_threshold),
        batch_size=pick(args.pose_batch_size, base.batch_size),
        max_persons=pick(args.max_persons, base.max_persons),
        flip_test=False if args.no_flip_test else base.flip_test,
        box_source="detector" if det_config else "full_frame",
    )


# ----------------------------------------------------------------------------- results


@dataclass
class Prediction:
    """What :func:`predict` found for one video."""

    video: Path
    checkpoint: Path
    class_names: list[str]
    classes_from: str | None  # the file the names came from (None: generic names)
    keypoints_from: str  # 'mmpose ...' or the skeleton file
    logits: np.ndarray  # C, rgb + pose (the inference score)
    rgb_logits: np.ndarray
    pose_logits: np.ndarray
    attention: np.ndarray  # T_rgb x h x w, values in (0, 1)
    pose_indices: np.ndarray  # video frames of the pose clip
    rgb_indices: np.ndarray  # video frames of the RGB clip (attention frame k <-> video frame rgb_indices[k])
    frames: int
    fps: float
    size: tuple[int, int]  # video (h, w)
    crop_box: tuple[int, int, int, int]  # x0, y0, x1, y1 in video pixels
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def probs(self) -> np.ndarray:
        z = self.logits.astype(np.float64) - float(np.max(self.logits))
        e = np.exp(z)
        return e / e.sum()

    def top(self, k: int = 5) -> list[dict[str, Any]]:
        """The ``k`` best classes: rank, index, class name, score (probability), logit."""
        probs = self.probs
        order = np.argsort(-probs, kind="stable")[: max(1, min(k, len(probs)))]
        return [
            {"rank": r + 1, "index": int(i), "class": self.class_names[i], "score": float(probs[i]),
             "logit": float(self.logits[i])}
            for r, i in enumerate(order)
        ]


def format_table(pred: Prediction, k: int = 5) -> str:
    """The readable top-k table printed by ``epamnet predict``."""
    rows = pred.top(k)
    width = max([len("class")] + [len(r["class"]) for r in rows])
    h, w = pred.size
    lines = [
        f"video:      {pred.video} ({pred.frames} frames, {w}x{h}, {pred.fps:g} fps)",
        f"model:      {pred.checkpoint} ({len(pred.class_names)} classes"
        + (f", names from {pred.classes_from})" if pred.classes_from else ", no class names given)"),
        f"skeletons:  {pred.keypoints_from}",
        "",
        f"rank  {'class'.ljust(width)}   score",
    ]
    for r in rows:
        lines.append(f"{r['rank']:>4}  {r['class'].ljust(width)}  {r['score']:6.3f}")
    lines.append("(score: softmax of the summed RGB + pose logits)")
    return "\n".join(lines)


def prediction_json(pred: Prediction, k: int = 5) -> dict[str, Any]:
    h, w = pred.size
    return {
        "video": str(pred.video),
        "checkpoint": str(pred.checkpoint),
        "num_classes": len(pred.class_names),
        "classes_from": pred.classes_from,
        "keypoints_from": pred.keypoints_from,
        "frames": pred.frames,
        "fps": pred.fps,
        "width": w,
        "height": h,
        "crop_box": list(pred.crop_box),
        "pose_frames": [int(i) for i in pred.pose_indices],
        "rgb_frames": [int(i) for i in pred.rgb_indices],
        "attention_mean_per_rgb_frame": [round(float(a), 6) for a in pred.attention.mean(axis=(1, 2))],
        "score": "softmax of rgb_logits + pose_logits",
        "top": pred.top(k),
        **pred.extra,
    }


def write_json(pred: Prediction, path: str | Path, k: int = 5) -> None:
    """Write :func:`prediction_json` to ``path`` atomically."""
    from epamnet.io.atomic import write_text

    try:
        write_text(path, json.dumps(prediction_json(pred, k), indent=1) + "\n")
    except OSError as exc:
        raise file_error(path, f"cannot write the JSON ({exc.strerror or type(exc).__name__})",
                         "choose a writable path for --json") from None


# ----------------------------------------------------------------------------- class names


def read_class_file(path: str | Path) -> list[str]:
    """Class names from a text file (one per line) or a JSON list / object with ``classes``."""
    path = Path(path)
    fix = "give one class name per line, a JSON list of names, or a split JSON"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise file_error(path, "class file not found", "check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise file_error(path, f"cannot read the class file ({type(exc).__name__})", fix) from None
    stripped = text.lstrip()
    if path.suffix.lower() == ".json" or stripped.startswith(("[", "{")):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise file_error(path, f"not valid JSON ({exc.msg})", fix) from None
        names = obj.get("classes") if isinstance(obj, Mapping) else obj
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise file_error(path, "holds no list of class names (strings)", fix)
        return list(names)
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise file_error(path, "lists no class names", fix)
    return names


def _split_classes(path: Path) -> list[str]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise file_error(path, "split file not found", "run the splits stage, or pass --classes FILE") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise file_error(path, f"not a valid split JSON ({exc})", "rerun the splits stage") from None
    names = obj.get("classes") if isinstance(obj, Mapping) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise file_error(path, "has no `classes` list", "pass a split JSON written by the splits stage")
    return list(names)


def _dataset_of_checkpoint(checkpoint: Path, models_root: Path) -> tuple[str, str] | None:
    """``(dataset, protocol)`` when ``checkpoint`` is ``<models>/<dataset>/<protocol>/fusion/model.pt``."""
    try:
        rel = checkpoint.resolve().relative_to(models_root.resolve())
    except (ValueError, OSError):
        return None
    parts = rel.parts
    if len(parts) == 4 and parts[2] == "fusion":
        return parts[0], parts[1]
    return None


def resolve_class_names(
    num_classes: int,
    *,
    classes: Path | None,
    split: Path | None,
    dataset: str | None,
    protocol: str | None,
    split_dir: Path | None,
    checkpoint: Path,
) -> tuple[list[str], str | None]:
    """The model's class names and where they came from (see the module doc)."""
    if classes is not None and split is not None:
        raise EpamnetError("predict: --classes and --split both give class names; pass only one of them")
    names: list[str] | None = None
    source: str | None = None
    if classes is not None:
        names, source = read_class_file(classes), str(classes)
    elif split is not None:
        names, source = _split_classes(split), str(split)
    elif dataset is not None and protocol is not None:
        split_file = split_dir / f"{protocol}.json" if split_dir is not None else None
        if split_file is not None and split_file.is_file():
            names, source = _split_classes(split_file), str(split_file)
        else:
            names, source = _registry_classes(dataset, protocol, num_classes)
    if names is None:
        logger.warning(
            "predict: no class names for %s; showing class indices (pass --classes FILE, --split FILE or "
            "--dataset/--protocol)", checkpoint,
        )
        return [f"class {k}" for k in range(num_classes)], None
    if len(names) != num_classes:
        raise file_error(
            source or "class names",
            f"lists {len(names)} classes but {checkpoint} was trained for {num_classes}",
            "pass the class list of the dataset and protocol the model was trained on",
        )
    return names, source


def _registry_classes(dataset: str, protocol: str, num_classes: int) -> tuple[list[str] | None, str | None]:
    """The dataset's official class list (first ``num_classes`` for synthetic ones), if it fits."""
    from epamnet.datasets.registry import get_dataset

    try:
        info = get_dataset(dataset)
        full = info.class_names(protocol)
        names = full if len(full) == num_classes else get_dataset(dataset, num_classes=num_classes).class_names(protocol)
    except (EpamnetError, ValueError, KeyError):
        return None, None
    if len(names) != num_classes:
        return None, None
    return list(names), f"the {dataset} {protocol} class list"


# ----------------------------------------------------------------------------- model


def _state_of(ckpt: Mapping[str, Any], path: Path) -> dict[str, torch.Tensor]:
    """The model weights in any of the checkpoint forms we accept, with our key names."""
    from epamnet.engine.checkpoint import FORMAT
    from epamnet.models.convert import checkpoint_state, official_to_ours

    if ckpt.get("format") == FORMAT and isinstance(ckpt.get("model"), Mapping):
        state = dict(ckpt["model"])  # a training checkpoint (models/.work/.../checkpoints/epoch_k.pt)
    else:
        state = checkpoint_state(ckpt, path)  # published model.pt, convert-official output, official .pth
    return official_to_ours(state)


def _preset_spec(preset: str) -> ModelSpec:
    from epamnet.models.specs import paper_spec, synthetic_spec

    return paper_spec() if preset == "paper" else synthetic_spec()


def model_alternatives(params: Params) -> list[tuple[str, ModelSpec, str]]:
    """Other model sizes a checkpoint may have been trained with: (description, spec, how to select it).

    The other preset with params.yaml's remaining ``model`` keys (``--model-preset``), and,
    when params.yaml overrides sizes, the plain presets.
    """
    out: list[tuple[str, ModelSpec, str]] = []
    for preset in ("synthetic", "paper"):
        if preset != params.model.preset:
            other = params.model_copy(update={"model": params.model.model_copy(update={"preset": preset})})
            try:
                spec = other.model_spec()
            except (EpamnetError, ValueError):
                continue
            out.append((f"model preset {preset!r}", spec,
                        f"pass --model-preset {preset} (or set model.preset: {preset} in params.yaml)"))
    if params.model_spec().name == "custom":
        for preset in ("synthetic", "paper"):
            out.append((f"the plain {preset} preset", _preset_spec(preset),
                        f"set model.preset: {preset} in params.yaml and remove the size keys under model.rgb / model.pose"))
    return out


def load_model(
    checkpoint: str | Path,
    spec: ModelSpec,
    *,
    preset_name: str = "params.yaml's model",
    alternatives: Sequence[tuple[str, ModelSpec, str]] = (),
) -> tuple[torch.nn.Module, int]:
    """Build EPAM-Net of ``spec`` and load ``checkpoint`` strictly; return (model in eval mode, classes).

    When the weights do not fit, the first of ``alternatives`` (:func:`model_alternatives`)
    that they fit is named in the error, with how to select it.
    """
    from epamnet.models.convert import (
        check_state_dict,
        load_state_strict,
        read_checkpoint,
    )
    from epamnet.models.epam import build_model

    path = Path(checkpoint)
    state = _state_of(read_checkpoint(path), path)
    modules = {k.split(".", 1)[0] for k in state}
    for stream in ("pose", "rgb"):
        if modules and modules <= {f"{stream}_backbone", f"{stream}_cls_head"}:
            raise file_error(
                path, f"is a {stream}-stream checkpoint, not EPAM-Net",
                "pass the fusion model (models/<dataset>/<protocol>/fusion/model.pt)",
            )
    head = state.get("rgb_cls_head.fc_cls.weight")
    if head is None or head.ndim != 2:
        raise file_error(
            path, "holds no EPAM-Net classifier (no rgb_cls_head.fc_cls.weight)",
            "pass an EPAM-Net checkpoint: a fusion model.pt, or an official EPAM-Net release",
        )
    num_classes = int(head.shape[0])
    model = build_model(spec, num_classes, "fusion")
    fix = f"pass an EPAM-Net checkpoint trained with {preset_name} sizes, or select its sizes with --model-preset"
    try:
        load_state_strict(model, state, path, fix=fix)
    except EpamnetError:
        for what, other, how in alternatives:
            try:
                check_state_dict(build_model(other, num_classes, "fusion").state_dict(), state, path, "")
            except EpamnetError:
                continue
            raise file_error(path, f"weights do not fit {preset_name} but fit {what}", how) from None
        raise
    model.eval()
    logger.info("predict: EPAM-Net (%s, %d classes) from %s", preset_name, num_classes, path)
    return model, num_classes


# ----------------------------------------------------------------------------- skeletons


def skeleton_from_file(path: Path, video: Path, skeleton_id: str | None) -> dict[str, Any]:
    """The annotation of ``video`` in an mmaction2-format file (see ``--skeleton-id``)."""
    from epamnet.io.skeleton import load_annotations

    anns = load_annotations(path)
    if not anns:
        raise file_error(path, "holds no skeleton annotations", "pass a file with the video's skeletons")
    by_name = {str(a["frame_dir"]): a for a in anns}
    if skeleton_id is not None:
        if skeleton_id not in by_name:
            first = ", ".join(sorted(by_name)[:3])
            raise file_error(path, f"has no entry {skeleton_id!r} (it has {len(anns)}, e.g. {first})",
                             "pass one of its frame_dir names to --skeleton-id")
        return dict(by_name[skeleton_id])
    if len(anns) == 1:
        return dict(anns[0])
    stem = video.stem
    for name in (stem, stem.removesuffix("_rgb")):
        if name in by_name:
            return dict(by_name[name])
    raise file_error(
        path, f"holds {len(anns)} annotations and none is named {stem!r}",
        "pick the video's entry with --skeleton-id FRAME_DIR",
    )


def _check_pose_inputs(opts: PoseSettings) -> None:
    """Fail before any slow work when mmpose has nothing to run with."""
    from epamnet.pose.estimator import CHECKPOINT_URL

    get = f"HRNet-W32 COCO weights from the mmpose model zoo: {CHECKPOINT_URL}"
    if not opts.random_init:
        if opts.checkpoint is None:
            raise EpamnetError(
                f"predict: no pose model to find the skeletons; pass --pose-checkpoint FILE ({get}), "
                "or --skeletons FILE.pkl with the video's keypoints"
            )
        if not opts.checkpoint.is_file():
            raise file_error(
                opts.checkpoint, "HRNet-W32 checkpoint not found",
                f"pass --pose-checkpoint FILE (or set pose.checkpoint in params.yaml; {get}), "
                "or --skeletons FILE.pkl with the video's keypoints",
            )
    if (opts.det_config is None) != (opts.det_checkpoint is None):
        raise EpamnetError("predict: a detector needs both --det-config and --det-checkpoint; pass both or neither")
    if opts.batch_size < 1 or opts.max_persons < 1:
        raise EpamnetError("predict: --pose-batch-size and --max-persons must be at least 1")


def skeleton_from_mmpose(video: Path, opts: PoseSettings, device: str) -> tuple[dict[str, Any], str]:
    """Run HRNet on every frame of ``video``; return its annotation and a description."""
    from epamnet.pose.person_boxes import make_box_source
    from epamnet.pose.extract import extract_video, load_estimator

    settings = dataclasses.replace(opts, device=device)
    box_source = settings.box_source
    boxes = make_box_source(
        box_source, det_config=opts.det_config, det_checkpoint=opts.det_checkpoint,
        det_score_threshold=opts.det_score_threshold, device=device,
    )
    estimator = load_estimator(settings)
    if opts.random_init:
        logger.warning("predict: --pose-random-init: the HRNet has RANDOM weights, keypoints are meaningless (tests only)")
    ann = extract_video(estimator, video.stem, video, boxes, batch_size=opts.batch_size, max_persons=opts.max_persons)
    weights = "random weights (testing only)" if opts.random_init else str(opts.checkpoint)
    return ann, f"mmpose HRNet-W32 ({weights}), boxes: {box_source.replace('_', ' ')}"


# ----------------------------------------------------------------------------- predict


def predict(
    video: str | Path,
    params: Params,
    *,
    checkpoint: str | Path | None = None,
    dataset: str | None = None,
    protocol: str | None = None,
    model_preset: str | None = None,
    classes: str | Path | None = None,
    split: str | Path | None = None,
    device: str = "auto",
    skeletons: str | Path | None = None,
    skeleton_id: str | None = None,
    pose: PoseSettings | None = None,
    top: int = 5,
    output_video: str | Path | None = None,
    overlay_on: str = "original",
    alpha: float = 0.45,
    kpt_thr: float = 0.3,
) -> Prediction:
    """Classify ``video`` with EPAM-Net; optionally write the annotated video. See the module doc."""
    import torch

    from epamnet.loader.dataset import pose_clip, rgb_clip
    from epamnet.loader.sampling import rgb_indices, sample_frame_indices
    from epamnet.engine.distributed import resolve_device
    from epamnet.io.video import video_info
    from epamnet.layout import Layout
    from epamnet.prepare.crop import crop_sample
    from epamnet.stages.streams import clip_configs

    video = Path(video)
    if pose is None:
        from epamnet.pose.extract import PoseSettings

        pose = PoseSettings(box_source="full_frame")
    if top < 1:
        raise EpamnetError(f"predict: --top {top} must be at least 1")
    if not 0.0 <= alpha <= 1.0:
        raise EpamnetError(f"predict: --alpha {alpha} must be in [0, 1]")
    if overlay_on not in ("original", "crop"):
        raise EpamnetError(f"predict: --overlay-on {overlay_on!r}: use original or crop")
    if (dataset is None) != (protocol is None):
        raise EpamnetError("predict: --dataset and --protocol go together; pass both or neither")
    if output_video is not None:
        from epamnet.io.video import DEFAULT_CODECS

        if Path(output_video).suffix.lower() not in DEFAULT_CODECS:
            raise file_error(output_video, "unknown video suffix", f"use one of {', '.join(sorted(DEFAULT_CODECS))}")
    lay = Layout.from_params(params)

    # 1. inputs first, so that a bad one fails before the slow steps.
    info = video_info(video, count_frames=True)  # missing / undecodable video: one line naming it
    if checkpoint is None:
        if dataset is None:
            raise EpamnetError(
                "predict: no model given; pass --checkpoint FILE (an EPAM-Net model.pt or official checkpoint) "
                "or --dataset D --protocol P for the pipeline's models/D/P/fusion/model.pt"
            )
        checkpoint = lay.model_file(dataset, protocol, "fusion")  # type: ignore[arg-type]
        if not Path(checkpoint).is_file():
            raise file_error(checkpoint, "no trained EPAM-Net here", TRAIN_FIX)
    checkpoint = Path(checkpoint)
    if model_preset is not None and model_preset != params.model.preset:
        if model_preset not in ("synthetic", "paper"):
            raise EpamnetError(f"predict: --model-preset {model_preset!r}: use synthetic or paper")
        # The preset replaces params.yaml's; its other model keys still apply. Clip sizes follow the model.
        params = params.model_copy(update={"model": params.model.model_copy(update={"preset": model_preset})})
        preset_name = f"--model-preset {model_preset}"
    else:
        preset_name = f"params.yaml's model (preset {params.model.preset})"
    spec = params.model_spec()
    model, num_classes = load_model(checkpoint, spec, preset_name=preset_name, alternatives=model_alternatives(params))
    if dataset is None:
        found = _dataset_of_checkpoint(checkpoint, lay.models)
        if found is not None:
            dataset, protocol = found
    class_names, classes_from = resolve_class_names(
        num_classes, classes=Path(classes) if classes else None, split=Path(split) if split else None,
        dataset=dataset, protocol=protocol, split_dir=lay.splits(dataset) if dataset else None, checkpoint=checkpoint,
    )
    dev = resolve_device(device)
    if skeletons is None:
        _check_pose_inputs(pose)

    # 2. skeletons.
    if skeletons is not None:
        ann = skeleton_from_file(Path(skeletons), video, skeleton_id)
        keypoints_from = f"{skeletons} (entry {ann['frame_dir']})"
    else:
        ann, keypoints_from = skeleton_from_mmpose(video, pose, str(dev))
    from epamnet.prepare.global_box import valid_keypoints

    if not valid_keypoints(ann["keypoint"], ann["keypoint_score"]).any():
        raise file_error(
            video, f"no person found in any frame ({keypoints_from})",
            "check that the video shows a person, pass --det-config/--det-checkpoint for person boxes, "
            "or --skeletons with its keypoints",
        )
    if int(ann["total_frames"]) < info.frames:
        logger.warning("predict: the skeletons cover %d of the video's %d frames; using those",
                       int(ann["total_frames"]), info.frames)

    pose_cfg, rgb_cfg = clip_configs(params)
    crop = params.prepare.crop
    with tempfile.TemporaryDirectory(prefix="epamnet-predict-") as tmp:
        # 3. the global crop, as the crop stage does it.
        cropped_video = Path(tmp) / "crop.mp4"
        cropped = crop_sample(ann, video, cropped_video, size=crop.size, padding=crop.padding,
                              threshold=crop.threshold, filename=cropped_video.name)
        total = int(cropped["total_frames"])
        # 4. one test-mode clip.
        pose_inds = sample_frame_indices(total, pose_cfg.clip_len, test_mode=True)
        rgb_inds = rgb_indices(pose_inds, rgb_cfg.clip_len)
        heatmaps = pose_clip(cropped["keypoint"], cropped["keypoint_score"], tuple(cropped["img_shape"]),
                             pose_inds, pose_cfg)
        imgs = rgb_clip(cropped_video, rgb_inds, rgb_cfg)
        model = model.to(dev)
        with torch.no_grad():
            rgb_logits, pose_logits, attention = model(
                torch.from_numpy(imgs)[None].to(dev), torch.from_numpy(heatmaps)[None].to(dev), return_attention=True
            )
        rgb_l = rgb_logits[0].float().cpu().numpy()
        pose_l = pose_logits[0].float().cpu().numpy()
        img_h, img_w = (int(v) for v in ann["img_shape"])
        sx, sy = info.width / img_w, info.height / img_h
        x0, y0, x1, y1 = cropped["crop_box"]
        box = (round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy))
        pred = Prediction(
            video=video, checkpoint=checkpoint, class_names=class_names, classes_from=classes_from,
            keypoints_from=keypoints_from, logits=rgb_l + pose_l, rgb_logits=rgb_l, pose_logits=pose_l,
            attention=attention[0, 0].float().cpu().numpy(), pose_indices=pose_inds, rgb_indices=rgb_inds,
            frames=info.frames, fps=info.fps, size=(info.height, info.width), crop_box=box,
            extra={"model_sizes": preset_name, "crop_size": crop.size,
                   "persons": int(np.asarray(ann["keypoint"]).shape[0])},
        )
        logger.info("predict: %s -> %s (%.3f)", video, pred.top(1)[0]["class"], pred.top(1)[0]["score"])
        if output_video is not None:
            if overlay_on == "crop":
                frames_src, kp, sc = cropped_video, cropped["keypoint"], cropped["keypoint_score"]
                region = (0, 0, crop.size, crop.size)
            else:
                kp = np.asarray(ann["keypoint"], np.float32) * np.array([sx, sy], np.float32)
                frames_src, sc, region = video, ann["keypoint_score"], box
            try:
                write_annotated_video(pred, frames_src, Path(output_video), kp, sc, region,
                                      alpha=alpha, kpt_thr=kpt_thr)
            except OSError as exc:
                raise file_error(output_video, f"cannot write the video ({exc.strerror or type(exc).__name__})",
                                 "choose a writable path for --output-video") from None
    return pred


# ----------------------------------------------------------------------------- annotated video


def nearest_sampled(frame: int, sampled: np.ndarray) -> int:
    """Index ``k`` of the sampled frame nearest to video frame ``frame`` (ties: the earlier)."""
    return int(np.argmin(np.abs(np.asarray(sampled, dtype=np.int64) - frame)))


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")


def _side(j: int) -> str:
    return "left" if j in _LEFT_JOINTS else "right" if j in _RIGHT_JOINTS else "centre"


def draw_skeleton(frame: np.ndarray, keypoint: np.ndarray, score: np.ndarray, thr: float) -> None:
    """Draw the persons' COCO-17 skeletons (``M x 17 x 2`` pixels, scores ``M x 17``) on an RGB frame."""
    import cv2

    h, w = frame.shape[:2]
    thick = max(1, round(min(h, w) / 160))
    radius = max(2, round(min(h, w) / 120))
    for person_kp, person_sc in zip(np.asarray(keypoint), np.asarray(score)):
        ok = (person_sc > thr) & np.isfinite(person_kp).all(axis=1) & (person_kp != 0).any(axis=1)
        pts = np.round(np.nan_to_num(person_kp)).astype(np.int64)
        for a, b in COCO_EDGES:
            if ok[a] and ok[b]:
                colour = _COLOURS[_side(b)] if _side(a) == _side(b) else _COLOURS["centre"]
                cv2.line(frame, tuple(map(int, pts[a])), tuple(map(int, pts[b])), colour, thick, cv2.LINE_AA)
        for j in np.nonzero(ok)[0]:
            cv2.circle(frame, tuple(map(int, pts[j])), radius, _COLOURS[_side(int(j))], -1, cv2.LINE_AA)


def overlay_heat(frame: np.ndarray, heat: np.ndarray, region: tuple[int, int, int, int], alpha: float) -> None:
    """Blend ``heat`` (``h x w`` in [0, 1]) as a jet colour map over ``region`` of an RGB frame, in place."""
    import cv2

    from epamnet.report.attention import upsample

    x0, y0, x1, y1 = region
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(frame.shape[1], x1), min(frame.shape[0], y1)
    if x1 <= x0 or y1 <= y0:
        return
    up = np.clip(upsample(heat[None], (y1 - y0, x1 - x0))[0], 0.0, 1.0)
    colour = cv2.applyColorMap((up * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]  # BGR -> RGB
    patch = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip((1 - alpha) * patch + alpha * colour, 0, 255).astype(np.uint8)


def _label(frame: np.ndarray, text: str, org: tuple[int, int], scale: float) -> None:
    import cv2

    font, thick = cv2.FONT_HERSHEY_SIMPLEX, max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    x, y = org
    cv2.rectangle(frame, (x - 2, y - th - 3), (x + tw + 2, y + base + 1), (0, 0, 0), -1)
    cv2.putText(frame, text, (x, y), font, scale, (255, 255, 255), thick, cv2.LINE_AA)


def _strip(frame: np.ndarray, weights: np.ndarray, current: int) -> None:
    """The per-RGB-frame mean attention as a bar strip at the bottom; the shown map is highlighted."""
    import cv2

    h, w = frame.shape[:2]
    t = len(weights)
    strip_h = max(6, h // 12)
    hi = max(float(weights.max()), 1e-6)
    cell = w / t
    frame[h - strip_h - 2 :] = (frame[h - strip_h - 2 :].astype(np.float32) * 0.35).astype(np.uint8)
    for k, v in enumerate(weights):
        bar = max(1, round(strip_h * float(v) / hi))
        x0, x1 = round(k * cell) + 1, max(round(k * cell) + 2, round((k + 1) * cell) - 1)
        colour = (255, 80, 0) if k == current else (255, 200, 0)
        cv2.rectangle(frame, (x0, h - bar), (x1 - 1, h - 1), colour, -1)


def write_annotated_video(
    pred: Prediction,
    frames_src: Path,
    out: Path,
    keypoint: np.ndarray,
    keypoint_score: np.ndarray,
    region: tuple[int, int, int, int],
    *,
    alpha: float = 0.45,
    kpt_thr: float = 0.3,
) -> int:
    """Write ``frames_src`` with the attention heat, the skeleton and the top-1 label (atomically).

    ``keypoint`` M x T x 17 x 2 and ``keypoint_score`` M x T x 17 are in the frames'
    pixels; ``region`` (x0, y0, x1, y1) is where the attention maps lie (the crop box).
    The map shown on video frame ``i`` is the one of the nearest sampled RGB frame.
    One colour scale for the whole clip (its min..max), so temporal weighting shows.
    Returns the number of frames written.
    """
    from epamnet.io.video import VideoWriter, iter_frames

    att = np.asarray(pred.attention, dtype=np.float32)
    lo, hi = float(att.min()), float(att.max())
    norm = (att - lo) / (hi - lo) if hi - lo > 1e-6 else np.full_like(att, 0.5)
    weights = att.mean(axis=(1, 2))
    best = pred.top(1)[0]
    label = _ascii(f"{best['class']} {best['score']:.0%}")
    kp, sc = np.asarray(keypoint, np.float32), np.asarray(keypoint_score, np.float32)
    skeleton_frames = kp.shape[1]
    fps = pred.fps if pred.fps > 0 else 25.0
    frames = iter_frames(frames_src)
    try:
        with VideoWriter(out, fps=fps) as writer:
            for i, frame in enumerate(frames):
                frame = np.ascontiguousarray(frame)
                k = nearest_sampled(i, pred.rgb_indices)
                overlay_heat(frame, norm[k], region, alpha)
                if i < skeleton_frames:
                    draw_skeleton(frame, kp[:, i], sc[:, i], kpt_thr)
                scale = max(0.4, frame.shape[1] / 640 * 0.7)
                _label(frame, label, (6, 6 + round(22 * scale)), scale)
                _strip(frame, weights, k)
                writer.write(frame)
    finally:
        frames.close()
    logger.info("predict: wrote %s (%d frames)", out, writer.frames_written)
    return writer.frames_written


__all__ = [
    "COCO_EDGES",
    "Prediction",
    "add_arguments",
    "format_table",
    "load_model",
    "model_alternatives",
    "predict",
    "prediction_json",
    "read_class_file",
    "resolve_class_names",
    "run",
    "skeleton_from_file",
    "write_annotated_video",
    "write_json",
]
