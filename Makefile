# ccsim — every entry point goes through `setup`, so a fresh machine needs nothing else.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
# Debian packages the project needs: Chromium for the control-room tests, net-snmp's
# snmpget/snmpwalk/snmpset as the independent peer of the NTCIP tests, Mosquitto (the MQTT broker
# `ccsim serve --mqtt` starts, and mosquitto_sub/pub as independent clients in tests), PostgreSQL
# (the store behind --db postgresql://..., and the server of the store tests).
APT_PACKAGES := chromium snmp mosquitto mosquitto-clients postgresql
DEMO_OUT ?= out/demo
DEMO_ARGS ?=

.PHONY: setup postgres demo demo-lorawan test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get update -q && apt-get install -y -q $$missing; fi
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

# A local PostgreSQL for the store tests and for `--db postgresql://ccsim:ccsim@127.0.0.1:5432/ccsim`:
# Debian's cluster (made if there is none) started, a role that may create databases (the tests make
# a fresh one each) and a database `ccsim`. Idempotent: what exists already is left as it is.
PG_ROLE     ?= ccsim
PG_PASSWORD ?= ccsim
AS_POSTGRES := $(if $(filter 0,$(shell id -u)),runuser -u postgres --,sudo -u postgres)
postgres: setup
	@cluster=$$(pg_lsclusters -h | awk 'NR == 1 {print $$1 " " $$2}'); \
	if [ -z "$$cluster" ]; then \
		cluster="$$(ls /usr/lib/postgresql | sort -n | tail -1) main"; pg_createcluster $$cluster; \
	fi; \
	pg_lsclusters -h | awk -v c="$$cluster" '$$1 " " $$2 == c && $$4 == "online" {found = 1} END {exit !found}' \
		|| $(AS_POSTGRES) pg_ctlcluster $$cluster start; \
	port=$$(pg_lsclusters -h | awk -v c="$$cluster" '$$1 " " $$2 == c {print $$3}'); \
	for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p $$port && break; sleep 1; done; \
	pg_isready -h 127.0.0.1 -p $$port; \
	psql="$(AS_POSTGRES) psql -p $$port -v ON_ERROR_STOP=1 -tAq"; \
	[ "$$($$psql -c "SELECT 1 FROM pg_roles WHERE rolname = '$(PG_ROLE)'")" = 1 ] \
		|| $$psql -c "CREATE ROLE $(PG_ROLE) LOGIN CREATEDB PASSWORD '$(PG_PASSWORD)'"; \
	[ "$$($$psql -c "SELECT 1 FROM pg_database WHERE datname = '$(PG_ROLE)'")" = 1 ] \
		|| $$psql -c "CREATE DATABASE $(PG_ROLE) OWNER $(PG_ROLE)"; \
	echo "postgres: cluster $$cluster on 127.0.0.1:$$port, role $(PG_ROLE)"

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

# The store tests run on SQLite and on the PostgreSQL `postgres` starts (unreachable, they fail).
test: lint postgres
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
