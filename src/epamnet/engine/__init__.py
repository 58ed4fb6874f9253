"""Training and evaluation engine: generic over models through small task objects.

- :func:`train` (``trainer``): one process or ``torchrun`` DDP, checkpoints, metrics, selection.
- :func:`evaluate` / :func:`write_evaluation` (``evaluate``): 1 clip per sample, each once.
- :class:`TrainConfig` (``train_config``): validated settings; lr scaled by the real world size.
- :class:`SingleStreamTask`, :class:`FusionTask` (``tasks``): batch -> (loss, scores, labels).
- ``metrics``: top-k, confusion matrix, per-class and mean class accuracy.
"""

from epamnet.engine.distributed import DistContext, distributed, init_distributed, shutdown_distributed
from epamnet.engine.evaluate import EvalResult, evaluate, write_evaluation
from epamnet.engine.tasks import FusionTask, SingleStreamTask, StepOutput, Task
from epamnet.engine.train_config import TrainConfig
from epamnet.engine.trainer import TrainResult, seed_everything, train

__all__ = [
    "DistContext",
    "EvalResult",
    "FusionTask",
    "SingleStreamTask",
    "StepOutput",
    "Task",
    "TrainConfig",
    "TrainResult",
    "distributed",
    "evaluate",
    "init_distributed",
    "seed_everything",
    "shutdown_distributed",
    "train",
    "write_evaluation",
]
