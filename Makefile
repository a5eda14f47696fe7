# `make train` and `make test` set up .venv on first use; ARGS passes arguments through, e.g.
#   make train ARGS="experiment=linear trainer.max_epochs=5"
#   make test ARGS="-k mnist -x"
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt requirements.lock | cksum | cut -d' ' -f1)
ARGS ?=
# Offline machines that keep MNIST beside the clone (../shared/data) read it there; elsewhere
# torchvision downloads it into ./data on first use. LITLAB_DATA_DIR set by you always wins.
# (Tests make their own data and never read it.)
ifneq ($(wildcard ../shared/data/MNIST/raw/train-images-idx3-ubyte),)
train eval bench bench-gpu: export LITLAB_DATA_DIR ?= $(abspath ../shared/data)
endif

.DEFAULT_GOAL := help
.PHONY: help install lock train eval test test-all test-gpu lint format bench bench-gpu clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -c constraints.txt -c requirements.lock -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)  ## create .venv and install litlab with its dev tools, as requirements.lock pins them

# What pip would install into an empty venv today (a dry run: it installs nothing), pinned;
# torch and torchvision stay in constraints.txt. Not after $(STAMP): the old pins must not
# stand in the way of a changed pyproject.toml.
lock:  ## pin the newest releases pyproject.toml allows in requirements.lock, anew
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --dry-run --ignore-installed --report $(VENV)/lock.json \
	  -c constraints.txt ".[dev]"
	$(BIN)/python -c 'import json, sys; r = json.load(open(sys.argv[1]));\
	  print("# make lock: what make install installs, for Python %(python_version)s on" \
	  " %(sys_platform)s (pip ignores a pin a platform does not need)." % r["environment"]);\
	  print("# torch and torchvision are pinned in constraints.txt.");\
	  print(*sorted(("%(name)s==%(version)s" % p["metadata"] for p in r["install"] \
	  if p["metadata"]["name"] not in ("litlab", "torch", "torchvision")), key=str.lower),\
	  sep="\n")' $(VENV)/lock.json > $(VENV)/lock.txt
	mv $(VENV)/lock.txt requirements.lock

train: $(STAMP)  ## run the default experiment (MNIST), or the one in ARGS
	$(BIN)/litlab-train $(ARGS)

eval: $(STAMP)  ## test a checkpoint: make eval ARGS="ckpt_path=logs/.../checkpoints/best.ckpt"
	$(BIN)/litlab-eval $(ARGS)

test: $(STAMP)  ## the fast tier, offline: every feature, the tests marked slow left out
	$(BIN)/python -m pytest -m "not slow" $(ARGS)

# Two pytest workers (pytest-xdist), each test file whole on one of them (its module fixtures,
# such as the SLURM and PostgreSQL servers, start once): most tests wait on one core for a
# subprocess's imports or a server, so two at once roughly halve the time on CI's 2 cores.
JOBS ?= 2
test-all: $(STAMP)  ## every test, the slow ones included (what CI runs; JOBS=2 workers), 25 slowest listed
	$(BIN)/python -m pytest -n $(JOBS) --dist loadfile --durations=25 $(ARGS)

test-gpu: $(STAMP)  ## run the GPU tests alone (they skip themselves without CUDA)
	$(BIN)/python -m pytest -m gpu -rs $(ARGS)

lint: $(STAMP)  ## check style with ruff, YAML, notebooks, the CI workflow (.pre-commit-config.yaml)
	$(BIN)/ruff check src tests benchmarks notebooks/lessons
	$(BIN)/ruff format --check src tests benchmarks notebooks/lessons
	$(BIN)/python -c "import sys, yaml; [yaml.safe_load(open(f)) for f in sys.argv[1:]]" $$(git ls-files '*.yaml' '*.yml')
	$(BIN)/python -c "import sys, nbformat; [nbformat.validate(nbformat.read(f, as_version=4)) for f in sys.argv[1:]]" notebooks/*.ipynb
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

format: $(STAMP)  ## fix style with ruff
	$(BIN)/ruff check --fix src tests benchmarks notebooks/lessons
	$(BIN)/ruff format src tests benchmarks notebooks/lessons

bench: $(STAMP)  ## run the benchmarks (real MNIST from LITLAB_DATA_DIR)
	$(BIN)/python -m benchmarks $(ARGS)

bench-gpu: $(STAMP)  ## the GPU benchmarks alone, ~5 min on one GPU (docs/benchmarks.md)
	$(BIN)/python -m benchmarks --gpu $(ARGS)

clean:  ## remove runs, caches and .venv
	rm -rf logs outputs multirun wandb .pytest_cache .ruff_cache $(VENV)
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
