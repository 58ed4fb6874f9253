"""Synthetic datasets in the real raw formats (NTU RGB+D, PKU-MMD, Toyota Smarthome).

``generate(format, out_dir, spec, seed)`` writes a small dataset whose file names,
label files, split files and skeleton pickles follow the real datasets exactly, so
every later stage runs unchanged on it. Each clip renders a COCO-17 stick figure
(subject-specific proportions and colours, camera-specific viewpoint, setup-specific
background and distance, per-frame noise) performing a class motion; the class design
(``design.py``) makes the pose stream, the RGB stream and their fusion honestly
different. Modules: ``design`` (classes; the settings are :mod:`epamnet.config.synthetic`), ``body`` (3D skeleton and motions),
``render`` (cameras, backgrounds, drawing), ``formats`` (writers, ``generate``).

Import names from their modules: this package's ``__init__`` imports nothing, so importing
one submodule does not load (and, for the pipeline's code dependencies, does not depend on) the rest.
"""
