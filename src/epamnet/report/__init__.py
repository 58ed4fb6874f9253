"""The report's library: the paper's results table and efficiency table (Markdown, CSV,
LaTeX), figures (matplotlib PNG) and the ``plots:`` section of ``dvc.yaml``.

- :mod:`~epamnet.report.paper`: the numbers the paper reports, with their sources;
- :mod:`~epamnet.report.tables`: results and efficiency tables;
- :mod:`~epamnet.report.figures`: accuracy vs GFLOPs, training curves, confusion matrices,
  per-class accuracy, attention variants;
- :mod:`~epamnet.report.attention`: pose-driven attention maps over RGB frames;
- :mod:`~epamnet.report.dvc_plots`: ``plots:`` / ``metrics:`` sections for ``dvc.yaml``.

The stage that uses them is :mod:`epamnet.stages.report`. Import the submodules directly; this package imports nothing heavy on its own.
"""
