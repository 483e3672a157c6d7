# vk-swarm developer entry points. Every target works from a clean clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PKG_FILES := pyproject.toml packages/shared/pyproject.toml packages/node/pyproject.toml packages/hive/pyproject.toml

.PHONY: install test test-fast lint fmt demo bench chaos clean docs

install: $(STAMP)

# Re-installs only when a pyproject changed (the packages are editable, so code changes need nothing).
$(STAMP): $(PKG_FILES)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-e packages/node -e packages/hive --group dev
	@# vk-node and vk-hive name vk-shared by its path (so a plain `pip install ./packages/node`
	@# works); pip installs that as a regular copy, which this step makes editable again.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e packages/shared
	@touch $(STAMP)
	@echo "installed: $(VENV) (vk-shared, vk-node, vk-hive editable + dev tools)"

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

docs: install
	$(BIN)/python -m vk_shared.docgen > docs/protocol.md
	$(BIN)/python -m vk_shared.schema > packages/shared/src/vk_shared/schema/wire.schema.json

demo: install
	$(BIN)/python scripts/demo.py $(DEMO_ARGS)

# Benchmarks against a real hive and PostgreSQL: one JSON line per metric (docs/performance.md).
# BENCH_ARGS=--quick for a run under a minute; --only NAME... for some of them.
bench: install
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

# Fault injection (part 7): SCHEDULES seeded schedules of faults and workload against a real hive
# and real nodes, each checked for the sync invariants; SEED fixes the base seed (replay).
SCHEDULES ?= 20
chaos: install
	$(BIN)/python scripts/chaos.py --schedules $(SCHEDULES) $(if $(SEED),--seed $(SEED)) $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
