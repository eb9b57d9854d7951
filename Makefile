# flux-batch: `make run` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test check bench schemas clean

install: $(STAMP)

# Reinstall when the dependencies change; the package itself is editable.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# With ONEMIN_API_KEY set this talks to the real API (and costs credits); without, to the
# built-in emulator.
run: install
	@if [ -n "$$ONEMIN_API_KEY" ]; then \
	  echo "ONEMIN_API_KEY is set: running manifests/example.yaml against the real API"; \
	  $(BIN)/flux-batch run manifests/example.yaml; \
	else \
	  echo "ONEMIN_API_KEY is not set: running manifests/example.yaml against the built-in emulator"; \
	  $(BIN)/flux-batch run manifests/example.yaml --emulator; \
	fi

test: install
	$(BIN)/pytest -q

check: install
	$(BIN)/ruff check runner tests
	$(BIN)/ruff format --check runner tests
	$(BIN)/mypy

# Byte-compiled first, as a wheel install is: where PYTHONDONTWRITEBYTECODE is set, an editable
# checkout would otherwise compile every module at every start of both clients.
bench: install
	$(BIN)/python -m compileall -q runner tests/bench
	$(BIN)/python -m tests.bench

# After a change to schemas/: regenerate the compiled checks (a test fails while they are stale).
schemas: install
	$(BIN)/python -m runner.schemas

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
