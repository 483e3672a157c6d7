# vk-swarm developer entry points. Every target works from a clean clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PKG_FILES := pyproject.toml packages/shared/pyproject.toml packages/node/pyproject.toml packages/hive/pyproject.toml
# The exact versions the suite is green with (pip constraints; `make lock` refreshes them), and
# the lowest versions the packages allow (`make floors` runs tests against them).
LOCKED := constraints/locked.txt
LOWEST := constraints/lowest.txt
PIP    := --quiet --disable-pip-version-check

.PHONY: install test test-fast lint fmt demo bench chaos clean docs lock floors

install: $(STAMP)

# Re-installs only when a pyproject or the lock changed (the packages are editable, so code
# changes need nothing).
$(STAMP): $(PKG_FILES) $(LOCKED)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install $(PIP) --upgrade "pip>=25.1"
	$(BIN)/python -m pip install $(PIP) -c $(LOCKED) \
		-e packages/node -e packages/hive --group dev
	@# vk-node and vk-hive name vk-shared by its path (so a plain `pip install ./packages/node`
	@# works); pip installs that as a regular copy, which this step makes editable again.
	$(BIN)/python -m pip install $(PIP) --no-deps -e packages/shared
	@touch $(STAMP)
	@echo "installed: $(VENV) (vk-shared, vk-node, vk-hive editable + dev tools, versions of $(LOCKED))"

# Resolve the newest versions the packages allow into $(LOCKED) and their lowest allowed versions
# into $(LOWEST) (uv, universal: every platform and Python >= 3.11). Then `make test` and commit.
UV_COMPILE = $(BIN)/uv pip compile --quiet --universal --python-version 3.11 \
	packages/shared/pyproject.toml packages/node/pyproject.toml packages/hive/pyproject.toml \
	--group pyproject.toml:dev \
	--no-emit-package vk-shared --no-emit-package vk-node --no-emit-package vk-hive
lock: install
	$(UV_COMPILE) --upgrade --output-file $(LOCKED)
	$(UV_COMPILE) --upgrade --resolution lowest-direct --no-annotate --output-file $(LOWEST)
	@echo "refreshed $(LOCKED) and $(LOWEST): run make test (and make floors), then commit them"

# The packages' lower bounds are honest: a fresh venv with the lowest allowed version of every
# direct dependency (the three packages installed as users install them, not editable) runs the
# unit suite and the integration tests that exercise the web server, the WebSocket client and
# server and the SQLite and PostgreSQL drivers.
FLOORS_VENV  := .venv-floors
FLOORS_TESTS := tests/unit tests/integration/node/api tests/integration/node/link/test_connect.py \
	tests/integration/hive/api/test_app.py tests/integration/hive/gateway/test_auth.py
floors:
	rm -rf $(FLOORS_VENV)
	$(PYTHON) -m venv $(FLOORS_VENV)
	$(FLOORS_VENV)/bin/python -m pip install $(PIP) --upgrade "pip>=25.1"
	$(FLOORS_VENV)/bin/python -m pip install $(PIP) -c $(LOWEST) \
		./packages/shared ./packages/node ./packages/hive --group dev
	$(FLOORS_VENV)/bin/python -m pip list --format=freeze | grep -iE "^(litestar|uvicorn|msgspec|websockets|aiosqlite|asyncpg|piccolo|jinja2|mcp)=="
	$(FLOORS_VENV)/bin/python -m pytest $(FLOORS_TESTS)

# The board tests drive Debian's Chromium (tests/support/browser.py); without it the suite stops
# here with the instruction instead of failing late.
CHROMIUM ?= $(or $(VK_TEST_CHROMIUM),/usr/bin/chromium)
test: install
	@command -v $(CHROMIUM) >/dev/null || { echo "make test needs Chromium for the board tests: sudo apt-get install chromium"; exit 1; }
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The quick loop: unit and integration tests only (no processes, no browser).
test-fast: install
	$(BIN)/python -m pytest tests/unit tests/integration -q $(PYTEST_ARGS)

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

# KEEP=1: the hive and the nodes keep running after the tasks finished, until Ctrl-C.
demo: install
	$(BIN)/python scripts/demo.py $(if $(KEEP),--keep) $(DEMO_ARGS)

# Benchmarks against a real hive and PostgreSQL: one JSON line per metric (docs/performance.md).
# BENCH_ARGS=--quick for a run under a minute; --only NAME... for some of them.
bench: install
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

# Fault injection (part 7): SCHEDULES seeded schedules of faults and workload against a real hive
# and real nodes, each checked for the sync invariants; SEED fixes the base seed (replay); HIVES=2
# runs two hive processes on the one database (either killed at random, nodes fail over).
SCHEDULES ?= 20
HIVES ?= 1
chaos: install
	$(BIN)/python scripts/chaos.py --schedules $(SCHEDULES) --hives $(HIVES) $(if $(SEED),--seed $(SEED)) $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) $(FLOORS_VENV) build dist .pytest_cache .mypy_cache .ruff_cache
