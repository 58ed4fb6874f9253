# Shared definitions: the typed view of params.yaml and the path layout.
# The schema check above validates the raw config; validate_params() is the second,
# typed validation (the same one every `epamnet` command runs at start-up).

from epamnet.config import validate_params
from epamnet.layout import STAGE_CODE, Layout, dataset_params, splits_params

PARAMS = validate_params(config, "params.yaml")
LAYOUT = Layout.from_params(PARAMS)
DATA = str(LAYOUT.data)
RESULTS = str(LAYOUT.results)
DATASETS = list(PARAMS.datasets.run)
SHARDS = [f"{i:03d}" for i in range(PARAMS.prepare.shards)]


wildcard_constraints:
    dataset="|".join(DATASETS),
    shard=r"\d{3}",


def lookup_param(key):
    """Value of a dotted key of params.yaml."""
    value = config
    for part in key.split("."):
        value = value[part]
    return value


def param_values(keys):
    """Rule params: {dotted key: value}, so a changed value re-runs the rule.

    `keys` is a list of keys, or a function of the wildcards returning one; the keys
    are the ones the matching dvc.yaml stage lists under `params`.
    """

    def values(wildcards):
        names = keys(wildcards) if callable(keys) else keys
        return {k.format(**wildcards): lookup_param(k.format(**wildcards)) for k in names}

    return values
