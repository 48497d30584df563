# Every target installs what it needs: a fresh clone only needs python3 (3.11+) and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch first, pinned: pip then takes the local CPU build instead of a multi-GB CUDA one.
TORCH := torch==2.13.0
STAMP := $(VENV)/.installed
DOCS ?= $(if $(wildcard ../shared/corpus),../shared/corpus,docs)
export HF_HUB_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/dossier ingest $(DOCS)
	$(BIN)/dossier status
	$(BIN)/dossier ask "How many overseas police stations did the report identify, and in how many countries?"
	@echo
	$(BIN)/dossier ask "Who founded Safeguard Defenders?"
	@if [ -t 0 ]; then $(BIN)/dossier chat; fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .dossier .pytest_cache .ruff_cache
