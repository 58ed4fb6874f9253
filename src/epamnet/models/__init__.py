"""EPAM-Net models: X-ShiftNet streams, pose-driven attention, fusion, profiling, conversion.

Import names from their modules: this package's ``__init__`` imports nothing, so importing
one submodule does not load (and, for the pipeline's code dependencies, does not depend on) the rest.
"""
