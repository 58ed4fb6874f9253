#!/usr/bin/env bash
# Install the pose stack (envs/pose.txt) into the project venv, without compiling mmcv and
# without letting pip touch torch. Usage: scripts/install_pose.sh [PYTHON] (default .venv/bin/python).
# Run after envs/requirements.lock and envs/oracle.txt are installed (`make venv` does this).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-.venv/bin/python}"
PIP=("$PY" -m pip install --quiet --no-deps)

"${PIP[@]}" -r envs/pose.txt
# xtcocotools rebuilt against the installed numpy 2 (the wheel is built for numpy 1.x).
"${PIP[@]}" --no-build-isolation --no-binary xtcocotools xtcocotools==1.14.3

"$PY" - <<'PY'
import torch
assert torch.__version__.startswith("2.13.0"), f"torch was replaced: {torch.__version__}"
import setuptools
assert int(setuptools.__version__.split(".")[0]) < 81, "mmengine needs pkg_resources: setuptools<81"
PY
PYTHONPATH=src "$PY" -W ignore -c "from epamnet.pose.compat import import_mmpose_apis; import_mmpose_apis()"
echo "pose stack installed: mmpose $("$PY" -c 'import mmpose; print(mmpose.__version__)')"
