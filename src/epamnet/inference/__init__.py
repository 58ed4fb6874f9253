"""Inference library: EPAM-Net on a user's own video (what ``epamnet predict`` runs).

- :mod:`~epamnet.inference.recognizer`: load a recognizer from any checkpoint form, and
  classify one video with its skeleton (global crop, one test clip, forward pass);
- :mod:`~epamnet.inference.skeletons`: the video's skeleton, from an annotation file or mmpose;
- :mod:`~epamnet.inference.classes`: the class names of the outputs;
- :mod:`~epamnet.inference.prediction`: scores, top-k, the printed table and the JSON record;
- :mod:`~epamnet.inference.visualize`: the annotated video (attention heat map, skeleton, label).

The command that turns ``params.yaml`` and the command line into these calls is
:mod:`epamnet.stages.predict`. Import the submodules directly; this package imports nothing on its own.
"""
