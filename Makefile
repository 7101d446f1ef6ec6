# `make demo` and `make test` are the two commands a newcomer needs (see README.md).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup lab test lint demo demo-dragonfly docs bench clean

$(STAMP): pyproject.toml scripts/bootstrap-os.sh
	./scripts/bootstrap-os.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

lab: setup
	$(BIN)/kvmigrate lab install all

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lab lint
	$(BIN)/pytest -n 3

demo: lab
	PATH="$(abspath $(BIN)):$$PATH" ./scripts/demo.sh

demo-dragonfly: lab
	PATH="$(abspath $(BIN)):$$PATH" ./scripts/demo-dragonfly.sh

bench: lab
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
