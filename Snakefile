# epamnet: raw datasets -> prepared data -> trained streams and fusion -> evaluation.
#
#   snakemake --cores all              # the whole pipeline on the embedded synthetic default
#   snakemake -n                       # what would run
#   snakemake --profile workflow/profiles/slurm ...   # on a SLURM cluster
#
# Every rule calls exactly one `epamnet <stage>` command line, the same one dvc.yaml
# calls (tests/test_orchestration.py checks that the two graphs agree).

import sys

from snakemake.utils import min_version, validate

from epamnet.config import read_params_file
from epamnet.errors import EpamnetError

min_version("9.0")

# params.yaml's YAML syntax first: a broken file stops the run with the line `epamnet check`
# prints (Snakemake's own message for it names neither the line nor the problem).
try:
    read_params_file("params.yaml")
except EpamnetError as exc:
    sys.exit(f"error: {exc}")


configfile: "params.yaml"


# The typed check first (common.smk): a bad value stops the run with the one line that
# `epamnet check` prints; the JSON-schema check after it then never fires on its own.
include: "workflow/rules/common.smk"


validate(config, "workflow/schemas/params.schema.json")


include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        [LAYOUT.eval_dir(ds, p, s) / "metrics.json" for ds, p in RUNS for s in STREAMS],
        rules.profile.output,
        rules.report.output,
