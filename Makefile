# The two commands of the README. Both create .venv and install the project into it first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo lint test test-fast mutations bench matrix clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# nftables/iptables for the firewall gate (as root with apt-get); without them the demo keeps clients
# away by port isolation, and says so.
demo: $(STAMP)
	bash scripts/install-firewall.sh
	bash scripts/demo.sh

# ruff (the rules in pyproject.toml) on the code and the tests, mypy on the code; `test` runs it first,
# so CI fails on a lint or type error before it starts the slow tests.
lint: $(STAMP)
	$(BIN)/ruff check migrator tests
	$(BIN)/mypy

# The container engine for tests/integration/containers (podman, runc, podman-compose) and the firewall
# gate's tools (as root with apt-get); where they cannot be installed the scripts say `SKIP: <reason>`
# and the tests that need them skip with it.
test: lint
	bash scripts/install-container-engine.sh
	bash scripts/install-firewall.sh
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

# The round trip RocksMQ -> NATS -> RocksMQ live on each Milvus 2.3.x wheel, and 2.2.16's refusal;
# rewrites the table in docs/compatibility.md. Slow (minutes a version, wheels downloaded once): not in test.
matrix: $(STAMP)
	$(BIN)/python benchmarks/matrix.py

clean:
	rm -rf $(VENV) .demo build *.egg-info
