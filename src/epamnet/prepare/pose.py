"""The ``pose`` stage: 2D skeletons of every raw video.

With ``datasets.<name>.skeletons: provided`` the stage takes the skeletons the
dataset ships (the pre-extracted mmaction2 pickles for NTU, the generator's pickle
for the synthetic datasets), checks every entry against the annotation format and
writes them as one annotation list in original-pixel coordinates, the input of
``clips`` and ``crop``. Extraction with mmpose is the other source (a later stage
option); both write the same file.
"""

from __future__ import annotations

import logging
from pathlib import Path

from epamnet.errors import EpamnetError
from epamnet.io.skeleton import load_annotation_file, save_annotations

logger = logging.getLogger(__name__)

#: File name of the skeletons a dataset provides, inside its raw folder.
PROVIDED_SKELETONS: dict[str, str] = {
    "ntu60": "ntu60_2d.pkl",
    "ntu120": "ntu120_2d.pkl",
    "pku": "pku_2d.pkl",
    "toyota": "toyota_2d.pkl",
}


def provided_skeletons(dataset: str, raw_dir: Path, out_path: Path) -> int:
    """Copy the dataset's own skeletons into ``out_path``, validated; return the count."""
    src = Path(raw_dir) / PROVIDED_SKELETONS[dataset]
    if not src.exists():
        raise EpamnetError(
            f"{src}: provided skeletons not found; put the dataset's 2D skeleton pickle there "
            f"(or run `epamnet acquire --dataset {dataset}`)"
        )
    annotations, _split = load_annotation_file(src)  # validates every entry, rejects repeats
    if not annotations:
        raise EpamnetError(f"{src}: holds no annotations; re-download or regenerate it")
    annotations = sorted(annotations, key=lambda a: a["frame_dir"])
    save_annotations(out_path, annotations)
    logger.info("pose: %d skeleton sequences from %s -> %s", len(annotations), src, out_path)
    return len(annotations)
