# Two commands do everything on a fresh machine: `make reproduce` and `make test`.
# Each creates .venv and installs the package into it when missing or when pyproject.toml changed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU build of PyTorch: a plain `torch>=2.4` resolves to a multi-GB CUDA build on a fresh machine.
TORCH ?= torch==2.13.0

# nbval compares every cell's output with the stored one, after the sanitizer folds timings, paths,
# ids and progress bars; cells whose output may change between runs carry `# NBVAL_IGNORE_OUTPUT`.
# Widget outputs are never compared (notebooks/conftest.py).
NBVAL := --nbval --nbval-current-env --nbval-cell-timeout 3600 --nbval-sanitize-with notebooks/nbval_sanitize.cfg -p no:cacheprovider
# Markers (pyproject.toml): data = needs the data cache, train = trains for more than a few seconds.
FAST := -m "not data and not train"

.PHONY: reproduce refresh test test-fast lint bench install clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[test]" $(TORCH)
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (workbench)" >/dev/null
	touch $(STAMP)

# Executed notebooks and figures go to runs/reproduce/DATE-TIME/ (ignored by git): running never
# changes the repository.
reproduce: $(STAMP)
	$(BIN)/python -m workbench reproduce

# Developers: refresh the committed notebooks and figures as a new user computes them, from an empty
# experiment cache (the data cache is reused). Needed after any change that moves a number.
refresh: $(STAMP)
	WORKBENCH_CACHE_DIR="$$(mktemp -d)" $(BIN)/python -m workbench reproduce --inplace

# Formatting and lint first: `ruff format .` and `ruff check --fix .` repair most of what they report.
lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest tests
	$(BIN)/python -m pytest $(NBVAL) notebooks/

# Everything that needs neither the data cache nor a training run: tests/ and notebook 01 (1.5 min on 2 busy cores).
test-fast: lint
	$(BIN)/python -m pytest $(FAST) tests
	$(BIN)/python -m pytest $(FAST) $(NBVAL) notebooks/

# Speed and memory against the peers, one report: bench/results/*.json + .md and the README table.
bench: $(STAMP)
	$(BIN)/python bench/run.py

clean-venv:
	rm -rf $(VENV)
