# Two commands on a fresh machine: `make run` and `make test`.
# PY=python3.11 picks the interpreter (3.11 or newer); `make run PORT=8081` the demo's port.
PY ?= python3
PORT ?= 8080
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NEED_311 := import sys; sys.exit(sys.version_info < (3, 11))

.PHONY: run test lint typecheck unit eval train bench clean

$(STAMP): pyproject.toml
	@$(PY) -c '$(NEED_311)' || { echo "llmswitch needs Python >= 3.11; $(PY) is $$($(PY) -V 2>&1). Try: make PY=python3.11 ..."; exit 1; }
	@$(BIN)/python -c '$(NEED_311)' 2>/dev/null || rm -rf $(VENV)  # a .venv from an older Python
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/llmswitch demo --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check src tests ops
	$(BIN)/ruff format --check src tests ops

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit tests/actors tests/runtime tests/store

eval: $(STAMP)
	$(BIN)/python ops/eval.py --split test

train: $(STAMP)
	$(BIN)/python ops/train.py

test: lint typecheck
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python ops/bench/run.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info
