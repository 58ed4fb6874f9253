"""Data loading for training and evaluation: frame sampling, keypoint transforms,
heatmap volumes, RGB transforms, and the torch datasets that pair RGB and pose.

Every transform is a pure function over arrays; the datasets compose them following the
official EPAM-Net pipeline (docs: spec section 4). mmaction2 1.2 serves as the oracle in
``tests/test_oracle_mmaction.py``.

Import names from their modules: this package's ``__init__`` imports nothing, so importing
one submodule does not load (and, for the pipeline's code dependencies, does not depend on) the rest.
"""
