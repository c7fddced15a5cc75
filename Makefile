# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
SEED ?= 1
NODES ?= 3
MINUTES ?= 3
CHAOS_ARGS ?=

.PHONY: install test lint run demo bench man chaos clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check agent harperctl tests bench tools
	$(BIN)/ruff format --check agent harperctl tests bench tools

run: $(STAMP)
	$(BIN)/harper-agent run --root ./data

# Three agents under ./demo/: join, writes, one SIGKILLed and back, status green (~20 s).
# DEMO_KEEP=1 leaves them running (it prints the kill line); DEMO_PORT=N prefers port N.
demo: $(STAMP)
	$(BIN)/python tools/demo.py

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	@if [ -f bench/replication.py ]; then $(BIN)/python bench/replication.py; fi
	$(BIN)/python bench/secure.py
	$(BIN)/python bench/verify.py

# A seeded fault run against real agents; the same SEED replays the same schedule.
chaos: $(STAMP)
	$(BIN)/python tests/chaos/chaos.py --seed $(SEED) --nodes $(NODES) --minutes $(MINUTES) $(CHAOS_ARGS)

man: $(STAMP)
	$(BIN)/python tools/make_man.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
