# Set-up and test entry points. `make lab` and `make test` each install first (fast when nothing changed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sr-kit-installed

.PHONY: install lab test lint format bench clean

install: $(STAMP)

# Re-install only when the package metadata changes; the kit itself is installed editable.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q --upgrade "pip>=23"
	$(BIN)/python -m pip install --disable-pip-version-check -q -e ".[dev]"
	@touch $(STAMP)

lab: install
	$(BIN)/jupyter lab notebooks/

test: install
	$(BIN)/ruff check sr_kit tests bench
	$(BIN)/ruff format --check sr_kit tests bench
	OMP_NUM_THREADS=1 SR_KIT_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadfile tests

lint: install
	$(BIN)/ruff check sr_kit tests bench

format: install
	$(BIN)/ruff format sr_kit tests bench
	$(BIN)/ruff check --fix sr_kit tests bench

bench: install
	$(BIN)/python bench/imresize.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
