# Set-up and test entry points. `make lab` and `make test` each install first (fast when nothing changed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sr-kit-installed

.PHONY: install lab app test test-browser lint format bench notebooks results clean

# One thread per pytest worker: two workers x two threads on 2 cores runs 2.5x slower.
TEST_ENV := OMP_NUM_THREADS=1 SR_KIT_THREADS=1 SR_KIT_QUICK=1 \
	SR_KIT_REGISTRY=$(CURDIR)/.pytest_cache/sr-kit-runs.sqlite
NBVAL := --nbval-lax --nbval-current-env --nbval-cell-timeout=300

install: $(STAMP)

# Re-install only when the package metadata changes; the kit itself is installed editable.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q --upgrade "pip>=23"
	$(BIN)/python -m pip install --disable-pip-version-check -q -e ".[dev]"
	@touch $(STAMP)

# JupyterLab refuses to start as root unless told; containers often run as root.
lab: install
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

test: install
	$(BIN)/ruff check sr_kit tests bench tools
	$(BIN)/ruff format --check sr_kit tests bench tools
	$(TEST_ENV) $(BIN)/python -m pytest -n 2 --dist loadfile $(NBVAL) -m "not ui" tests notebooks

# The ablation panels as a standalone web app (Voila), on http://127.0.0.1:8866
app: install
	@$(BIN)/python -c "import voila" 2>/dev/null || $(BIN)/python -m pip install -q -e ".[app]"
	$(BIN)/voila notebooks/apps/ablation_app.ipynb --no-browser --port=8866 --Voila.ip=127.0.0.1

# JupyterLab + Debian chromium + Playwright. Installs what is missing: chromium needs root (apt);
# without it the test is skipped and says why.
test-browser: install
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
		echo "test-browser: cannot install chromium here (needs root and apt); the test will skip"; }
	@$(BIN)/python -c "import playwright, voila" 2>/dev/null || \
		$(BIN)/python -m pip install -q -e ".[browser,app]"
	$(BIN)/python -m pytest -m ui -p no:xdist -ra tests/ui

lint: install
	$(BIN)/ruff check sr_kit tests bench tools

format: install
	$(BIN)/ruff format sr_kit tests bench tools
	$(BIN)/ruff check --fix sr_kit tests bench tools

# Re-make every committed CPU result in place (results/manifest.toml; hours on 2 cores). The
# dry run of every entry is part of `make test` (tests/test_reproduce.py).
results: install
	$(BIN)/sr-kit reproduce --device cpu

# Re-execute the notebooks in quick mode and store their outputs (review the diff before committing).
# With ../shared/weights beside the checkout, 06, 09 and 13 show the authors' networks too (the
# kernels run in notebooks/, hence ../../shared).
notebooks: install
	$(if $(wildcard ../shared/weights),SR_KIT_WEIGHTS=../../shared/weights) $(BIN)/python tools/refresh_outputs.py

bench: install
	$(BIN)/python bench/imresize.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
