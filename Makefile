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
# Test processes at once. Most tests wait on processes of their own (runners, Dask, Chromium),
# so two share two cores well: 19 minutes in one process, 13 in two.
TEST_WORKERS ?= 2

# First every test but those marked `alone`, in TEST_WORKERS processes; then those, by
# themselves, since they restart a server the others use. pytest exits 5 when it collected no
# tests: that must fail, not pass quietly.
test: install
	@$(BIN)/pytest -n $(TEST_WORKERS) -m "not alone" $(PYTEST_ARGS); code=$$?; \
	if [ $$code -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi; \
	if [ $$code -ne 0 ]; then exit $$code; fi; \
	$(BIN)/pytest -m alone $(PYTEST_ARGS); code=$$?; \
	if [ $$code -eq 5 ]; then echo "no test marked alone was collected" >&2; exit 1; fi; \
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
