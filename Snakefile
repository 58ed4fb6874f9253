# epamnet: raw datasets -> prepared data -> (training, evaluation, report in later stages).
#
#   snakemake --cores all              # the whole pipeline on the embedded synthetic default
#   snakemake -n                       # what would run
#   snakemake --profile workflow/profiles/slurm ...   # on a SLURM cluster
#
# Every rule calls exactly one `epamnet <stage>` command line, the same one dvc.yaml
# calls (tests/test_orchestration.py checks that the two graphs agree).

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "params.yaml"


validate(config, "workflow/schemas/params.schema.json")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"


rule all:
    default_target: True
    input:
        expand(LAYOUT.data / "prepared" / "{dataset}" / "splits", dataset=DATASETS),
        rules.profile.output,
