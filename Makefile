# Lifeboat: two commands do everything on a fresh Debian 12 machine (as root):
#   make demo   set up, then run the end-to-end disaster-recovery demo
#   make test   set up, then run ruff, mypy and the whole test suite
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.lifeboat-installed

.PHONY: setup demo test lint typecheck unit bench dist clean

$(STAMP): pyproject.toml scripts/setup.sh scripts/install-test-servers.sh
	bash scripts/setup.sh "$(VENV)"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(PYTHON) -m lifeboat.demo

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src

typecheck: setup
	$(VENV)/bin/mypy

test: lint typecheck
	$(VENV)/bin/pytest -q -n 2 --dist loadgroup

# Benchmarks beside restic, Borg, borgmatic, pgBackRest and Barman; run on a quiet machine.
# Results are written to bench/results/.
bench: setup
	bash bench/setup.sh
	$(PYTHON) bench/files_bench.py
	$(PYTHON) bench/pg_bench.py
	$(PYTHON) bench/pg_bench.py --dataset mixed
	$(PYTHON) bench/s3_bench.py
	$(PYTHON) bench/logical_bench.py
	$(PYTHON) bench/drill_bench.py

# The wheel and the source archive for a production install (docs/install.md): dist/lifeboat-*.whl.
# Built from a small environment of its own (only 'build'): no system packages, no test servers.
DIST_VENV ?= .venv-dist
dist:
	test -x $(DIST_VENV)/bin/python || python3 -m venv $(DIST_VENV)
	$(DIST_VENV)/bin/python -m pip install -q --disable-pip-version-check build
	rm -rf dist build
	$(DIST_VENV)/bin/python -m build --outdir dist .

clean:
	rm -rf $(VENV) $(DIST_VENV) .pytest_cache .mypy_cache .ruff_cache dist build
