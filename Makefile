# ccsim — every entry point goes through `setup`, so a fresh machine needs nothing else.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
# Debian packages the project needs (later issues add mosquitto, chromium, snmp).
APT_PACKAGES :=
DEMO_OUT ?= out/demo

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get update -q && apt-get install -y -q $$missing; fi
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/ccsim compare district --controllers fixed,sumo-actuated --seeds 1-3 --out $(DEMO_OUT)

lint: setup
	$(VENV)/bin/ruff check sim controlcenter adapters tests benchmarks scenarios
	$(VENV)/bin/ruff format --check sim controlcenter adapters tests benchmarks scenarios
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/overhead.py --pairs 3

clean:
	rm -rf $(VENV) out .mypy_cache .ruff_cache .pytest_cache
