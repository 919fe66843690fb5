# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv clean reasons openapi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/verifier demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

reasons: $(STAMP)
	$(BIN)/verifier reasons --markdown > docs/REASONS.md

openapi: $(STAMP)
	$(BIN)/verifier openapi --out docs/openapi.json

clean:
	rm -rf $(VENV) verifier-data demo-out
