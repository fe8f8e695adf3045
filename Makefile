# The two commands a user needs: `make run` and `make test`. Both create .venv/ first.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER ?= 0
export RAY_USAGE_STATS_ENABLED ?= 0
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba

.PHONY: setup run live test lint bench clean

setup: $(STAMP)

$(BIN)/python:
	$(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q -U pip

# torch first, in a call of its own, so nothing else pulls a multi-GB build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

run: setup
	$(BIN)/python -m app run --workdir runs/latest

# The paper worker and its API until Ctrl-C: replays the main job's simulator data at one bar
# per second per ticker (the live feed actors take over from --replay when they land).
live: setup
	$(BIN)/python -m app live --replay runs/latest/sim --speed 1 --out runs/live

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/ingest.py

clean:
	rm -rf runs .pytest_cache .ruff_cache
