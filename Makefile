# The two commands of the README. Both create .venv and install the project into it first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test test-fast mutations bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh

# The container engine for tests/integration/containers (podman, runc, podman-compose, as root with
# apt-get); where it cannot be installed the script says `SKIP: <reason>` and those tests skip with it.
test: $(STAMP)
	bash scripts/install-container-engine.sh
	$(BIN)/python -m pytest tests

# Every test that needs no Milvus, a file per worker process (FAST_JOBS=1 runs them in one).
FAST_JOBS ?= auto
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not milvus" -n $(FAST_JOBS) --dist loadfile tests

# Breaks the checks that keep data safe, one at a time in a copy of the tree, and says which fast
# test caught each (docs/testing.md).
mutations: $(STAMP)
	$(BIN)/python scripts/mutations.py

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .demo build *.egg-info
