#!/usr/bin/env bash
# Snakemake runs this once, inside the conda environment it has just created from
# envs/pose.yaml (`--sdm conda`), from the directory snakemake runs in: the repository root.
# It adds what a conda file cannot express: the mmpose stack installed WITHOUT its declared
# dependencies (envs/oracle.txt, envs/pose.txt; xtcocotools rebuilt against NumPy 2 by
# scripts/install_pose.sh, which also checks that torch was left alone), then this project.
set -euo pipefail
ROOT="${EPAMNET_ROOT:-$PWD}"
if ! grep -q '^name = "epamnet"' "$ROOT/pyproject.toml" 2>/dev/null; then
    echo "post-deploy: $ROOT is not the epamnet repository; run snakemake from its root or set EPAMNET_ROOT" >&2
    exit 1
fi
python -m pip install --quiet --no-deps -r "$ROOT/envs/oracle.txt"
bash "$ROOT/scripts/install_pose.sh" "$(command -v python)"
python -m pip install --quiet --no-deps --no-build-isolation -e "$ROOT"
python -c "import torch, epamnet.cli; print('epamnet pose environment ready: torch', torch.__version__)"
