#!/usr/bin/env bash
# Snakemake runs this once, inside the conda environment it has just created from the .yaml
# file of the same name (`--sdm conda`), from the directory snakemake runs in: the
# repository root. It installs this project (the `epamnet` command every rule calls);
# its dependencies are pinned in the .yaml file.
set -euo pipefail
ROOT="${EPAMNET_ROOT:-$PWD}"
if ! grep -q '^name = "epamnet"' "$ROOT/pyproject.toml" 2>/dev/null; then
    echo "post-deploy: $ROOT is not the epamnet repository; run snakemake from its root or set EPAMNET_ROOT" >&2
    exit 1
fi
python -m pip install --quiet --no-deps --no-build-isolation -e "$ROOT"
python -c "import torch, epamnet.cli; print('epamnet environment ready: torch', torch.__version__)"
