"""One module per pipeline stage: ``params.yaml`` + the layout -> the stage's work.

``epamnet <stage>`` parses its arguments and calls ``run`` of the stage's module here;
Snakemake and DVC call that command. Each module, with every ``epamnet`` module it
imports (directly or not), is the stage's code: :mod:`epamnet.dag` gives both
orchestrators exactly those files as the stage's dependencies, so keep a stage's
imports to what it runs. This package's ``__init__`` imports nothing.
"""
