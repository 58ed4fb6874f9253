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

.PHONY: venv chromium slurm run dry-run test test-fast mutation dvc-yaml clean-data

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

# The run is recorded in dvc.lock too (epamnet sync dvc), so `dvc status` is clean afterwards.
run: venv
	snakemake --cores $(CORES)
	epamnet sync dvc

dry-run: venv
	snakemake -n

# Debian's Chromium draws `dvc plots show` pages in tests/test_dvc_plots.py (headless, offline).
# Installed with apt when missing and running as root; otherwise install it yourself.
chromium:
	@command -v chromium >/dev/null || { test "$$(id -u)" = 0 && command -v apt-get >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } || \
		{ echo "chromium is missing: install Debian's chromium package (apt-get install chromium)"; exit 1; }

# Debian's SLURM and MUNGE run the throw-away cluster of tests/test_slurm.py (tests/slurm_cluster.py
# starts and stops its daemons, as root). Installed with apt when missing and running as root.
slurm:
	@command -v slurmctld >/dev/null && command -v munged >/dev/null || { test "$$(id -u)" = 0 && command -v apt-get >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null; } || \
		{ echo "SLURM is missing: install Debian's slurm-wlm and munge packages (apt-get install slurm-wlm munge)"; exit 1; }

# The mmaction2 oracle, the mmpose stack, Chromium and SLURM are installed first: their tests must run, not skip.
test: venv chromium slurm
	EPAMNET_NO_SKIP=1 EPAMNET_REQUIRE_ORACLE=1 EPAMNET_REQUIRE_POSE=1 EPAMNET_REQUIRE_CHROMIUM=1 pytest

test-fast: venv
	EPAMNET_REQUIRE_ORACLE=1 EPAMNET_REQUIRE_POSE=1 pytest -m "not pipeline"

# Mutation testing, on demand (not part of `make test`; about an hour on 2 cores): mutmut
# mutates the modules listed under [tool.mutmut] in pyproject.toml, runs the tests that call
# each mutated function, and scripts/mutation_report.py prints the kill rate per module.
# Results are kept in mutants/ (a rerun only retests what changed); `rm -rf mutants` to start over.
MUTATION_STAMP := $(VENV)/.mutation-installed
MUTATION_JOBS  ?= 2

$(MUTATION_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --no-build-isolation -e ".[mutation]"
	touch $(MUTATION_STAMP)

mutation: $(MUTATION_STAMP)
	OMP_NUM_THREADS=1 mutmut run --max-children $(MUTATION_JOBS) || true
	$(BIN)/python scripts/mutation_report.py --survivors --fail-under 90

dvc-yaml: venv
	epamnet dvc-yaml
	epamnet schema

clean-data:
	rm -rf data logs .snakemake
