# `make run` and `make test` are the whole quick start: each installs what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench screenshots clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: install
	$(BIN)/runlab up

# The slowest tests are listed at the end of every run, to keep the suite short.
PYTEST_ARGS ?= --durations=25
# Test processes at once. Most tests wait on processes of their own (runners, Dask), so two
# share two cores well.
TEST_WORKERS ?= 2

# First the tests of the store, the runners, the pages and the CLI, in TEST_WORKERS processes;
# then, in one process, the browser tests (e2e) and those marked `serial` (a server restarted
# under the others, a deployment's leases), whose waits are on a browser's or a cluster's pace.
# pytest exits 5 when it collected no tests: that must fail, not pass quietly.
test: install
	@$(BIN)/pytest -n $(TEST_WORKERS) -m "not serial and not e2e" $(PYTEST_ARGS); code=$$?; \
	if [ $$code -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi; \
	if [ $$code -ne 0 ]; then exit $$code; fi; \
	$(BIN)/pytest -m "serial or e2e" $(PYTEST_ARGS); code=$$?; \
	if [ $$code -eq 5 ]; then echo "no browser or serial test was collected" >&2; exit 1; fi; \
	exit $$code

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install
	$(BIN)/python benchmarks/bench_pi.py
	$(BIN)/python benchmarks/bench_dispatch.py
	$(BIN)/python benchmarks/bench_claim_order.py
	$(BIN)/python benchmarks/bench_kinds.py
	$(BIN)/python benchmarks/bench_result_page.py
	$(BIN)/python benchmarks/bench_sweeps.py
	$(BIN)/python benchmarks/bench_idle.py
	$(BIN)/python benchmarks/bench_ui.py --reuse

# A PNG of every page and job tab in docs/screenshots/, from a store seeded with real results.
screenshots: install
	$(BIN)/python docs/make_screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache
