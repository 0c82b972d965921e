# One entry point for everything CI runs: `make check`.
PY ?= python

.PHONY: check lint typecheck test bench

check: lint typecheck test

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck:
	$(PY) -m mypy

test:
	$(PY) -m pytest -n 3

bench:
	$(PY) -m benchmarks.run
