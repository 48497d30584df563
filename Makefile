# Every target installs what it needs: a fresh clone only needs python3 (3.11+) and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch first, pinned: pip then takes the local CPU build instead of a multi-GB CUDA one.
TORCH := torch==2.13.0
STAMP := $(VENV)/.installed
DOCS ?= $(if $(wildcard ../shared/corpus),../shared/corpus,docs/sample)
ifeq ($(DOCS),../shared/corpus)
Q1 ?= How many overseas police stations did the report identify, and in how many countries?
Q2 ?= Who founded Safeguard Defenders?
else
Q1 ?= How many hours did volunteers log?
Q2 ?= Who chaired the committee in 2025?
endif
export HF_HUB_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[test,multilingual]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/dossier ingest $(DOCS)
	$(BIN)/dossier status
	$(BIN)/dossier ask "$(Q1)"
	@echo
	$(BIN)/dossier ask "$(Q2)"
	@if [ -t 0 ]; then $(BIN)/dossier chat; fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy bot ingest index dossier_common
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .dossier .pytest_cache .ruff_cache
