# The two commands a new user needs: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export TRUST_HOME ?= $(CURDIR)/var

.PHONY: run test bench bench-conversion load-test install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# `trustctl init --demo` does nothing when the database is already initialised. The demo
# service may fetch OCSP answers and CA certificates from itself, so it verifies its own
# seals and licences (TRUST_REVOCATION_HOSTS; set it to override).
run: export TRUST_REVOCATION_HOSTS ?= $(or $(TRUST_HOST),127.0.0.1):$(or $(TRUST_PORT),8000)
run: install
	$(BIN)/trustctl init --demo
	$(BIN)/trustctl serve

# The linter and the type checker first (pyproject.toml's [tool.ruff] and [tool.mypy]: seconds,
# and the suite is not worth running on code they refuse). Two processes share the suite
# (pytest-xdist, a file each at a time: module fixtures are made once); the tests that judge
# timing under load (marked serial) run alone afterwards.
test: install-test
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not serial"
	$(BIN)/python -m pytest -m serial

bench: install
	@$(BIN)/python -m bench

# Issue #17's acceptance run of bulk conversion: 10,000 rows, killed at half, run again (~10 min).
bench-conversion: install
	@$(BIN)/python -m bench.conversion

# Issue #18's load test: 60 s of mixed traffic on SQLite, then on PostgreSQL (~3 min).
load-test: install
	@$(BIN)/python -m bench.load

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
