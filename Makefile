# Two commands on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit eval train bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/llmswitch demo

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
