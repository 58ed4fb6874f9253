# Two commands on a fresh machine (README "Quick start"):
#   make run    install the environment (once) and run the whole pipeline
#   make test   install the environment (once) and run the test suite
# Everything runs from the project's virtual environment in .venv.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= all

export PATH := $(BIN):$(PATH)

.PHONY: venv run dry-run test test-fast dvc-yaml clean-data

venv: $(STAMP)

$(STAMP): envs/requirements.lock envs/oracle.txt envs/pose.txt scripts/install_pose.sh pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r envs/requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -r envs/oracle.txt
	bash scripts/install_pose.sh $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(STAMP)

run: venv
	snakemake --cores $(CORES)

dry-run: venv
	snakemake -n

# The mmaction2 oracle and the mmpose stack are installed by `venv`: their tests must run, not skip.
test: venv
	EPAMNET_REQUIRE_ORACLE=1 EPAMNET_REQUIRE_POSE=1 pytest

test-fast: venv
	EPAMNET_REQUIRE_ORACLE=1 EPAMNET_REQUIRE_POSE=1 pytest -m "not pipeline"

dvc-yaml: venv
	epamnet dvc-yaml
	epamnet schema

clean-data:
	rm -rf data logs .snakemake
