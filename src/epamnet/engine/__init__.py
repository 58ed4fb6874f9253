"""Training and evaluation engine: generic over models through small task objects.

- :func:`train` (``trainer``): one process or ``torchrun`` DDP, checkpoints, metrics, selection.
- :func:`evaluate` / :func:`write_evaluation` (``evaluate``): 1 clip per sample, each once.
- :class:`SingleStreamTask`, :class:`FusionTask` (``tasks``): batch -> (loss, scores, labels).
- ``metrics``: top-k, confusion matrix, per-class and mean class accuracy.

Import names from their modules: this package's ``__init__`` imports nothing, so importing
one submodule does not load (and, for the pipeline's code dependencies, does not depend on) the rest.
"""
