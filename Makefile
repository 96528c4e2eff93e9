# Two commands do everything on a fresh machine: `make reproduce` and `make test`.
# Each creates .venv and installs the package into it when missing or when pyproject.toml changed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU build of PyTorch: a plain `torch>=2.4` resolves to a multi-GB CUDA build on a fresh machine.
TORCH ?= torch==2.13.0

.PHONY: reproduce test bench install clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[test]" $(TORCH)
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (workbench)" >/dev/null
	touch $(STAMP)

reproduce: $(STAMP)
	$(BIN)/python -m workbench reproduce

test: $(STAMP)
	$(BIN)/python -m pytest tests
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks/

# Speed and memory against the peers, one report: bench/results/*.json + .md and the README table.
bench: $(STAMP)
	$(BIN)/python bench/run.py

clean-venv:
	rm -rf $(VENV)
