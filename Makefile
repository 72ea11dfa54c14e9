# ccsim — every entry point goes through `setup`, so a fresh machine needs nothing else.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
# Debian packages the project needs: Chromium for the control-room tests, net-snmp's
# snmpget/snmpwalk/snmpset as the independent peer of the NTCIP tests, Mosquitto (the MQTT broker
# `ccsim serve --mqtt` starts, and mosquitto_sub/pub as independent clients in tests).
APT_PACKAGES := chromium snmp mosquitto mosquitto-clients
DEMO_OUT ?= out/demo
DEMO_ARGS ?=

.PHONY: setup demo demo-lorawan test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get update -q && apt-get install -y -q $$missing; fi
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

# The live district and its control room. The admin token is made once and kept in
# $(DEMO_OUT)/admin-token (readable by you only); the store keeps alarms and audit across runs.
demo: setup
	@mkdir -p $(DEMO_OUT)
	@test -s $(DEMO_OUT)/admin-token || (umask 077; $(PY) -c \
		"import secrets; print('ccsim_' + secrets.token_urlsafe(32))" > $(DEMO_OUT)/admin-token)
	@echo "token: $$(cat $(DEMO_OUT)/admin-token)"
	@echo "open http://127.0.0.1:8000/#token=$$(cat $(DEMO_OUT)/admin-token)  (Ctrl-C stops it)"
	CCSIM_ADMIN_TOKEN="$$(cat $(DEMO_OUT)/admin-token)" $(VENV)/bin/ccsim serve district \
		--db sqlite:///$(DEMO_OUT)/control-center.db --out $(DEMO_OUT)/run $(DEMO_ARGS)

# The same with the bay sensors as LoRaWAN devices through a Mosquitto child: parking guidance
# follows the uplinks ingested back from the broker (serve prints "mqtt: mqtt://HOST:PORT").
demo-lorawan:
	$(MAKE) demo DEMO_ARGS="--variant guidance-uplinks --mqtt --lorawan-link urban --lorawan-heartbeat 300"

lint: setup
	$(VENV)/bin/ruff check sim controlcenter adapters tests benchmarks scenarios
	$(VENV)/bin/ruff format --check sim controlcenter adapters tests benchmarks scenarios
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest -q

# Speed benchmarks (~15 min). The control-quality and variant tables take longer (~45 min):
# $(PY) benchmarks/control_quality.py --scenario district --seeds 1-5   (see benchmarks/RESULTS.md)
bench: setup
	$(PY) benchmarks/overhead.py --pairs 3 --controller fixed
	$(PY) benchmarks/overhead.py --pairs 3 --controller adaptive
	$(PY) benchmarks/optimizer_speed.py --end 3600
	$(PY) benchmarks/feed.py
	$(PY) benchmarks/ntcip.py

clean:
	rm -rf $(VENV) out .mypy_cache .ruff_cache .pytest_cache
