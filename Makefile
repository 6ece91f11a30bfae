# The one entry point. `make run` and `make test` set up everything they need on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.9.0
UV_HOME := .cache/uv
UV := $(UV_HOME)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JARS_STAMP := .cache/jars/.fetched
SEED ?= 2025
export READINESS_ENV ?= local

.PHONY: help install jars chromium postgresql redis kafka-up kafka-down simulate run ranking stream serve test test-fast airflow bench clean \
	cluster-up cluster-down cluster-run cluster-status

help:
	@echo "make run        install, start Kafka, simulate reports, run the Airflow DAG, print the ranking"
	@echo "make test       install and run the whole test suite (real Kafka, Spark, Airflow)"
	@echo "make airflow    start the Airflow UI with the DAGs loaded"
	@echo "make stream     run the streaming service (gold seconds after a report; publish with make simulate)"
	@echo "make serve      start the SQL server (Spark Thrift Server, JDBC) on the gold tables"
	@echo "make bench      run the benchmarks and write docs/benchmarks.md"
	@echo "make kafka-up / kafka-down   start or stop the local Kafka broker"
	@echo "make cluster-run              the same pipeline on a cluster on this machine: 3 Kafka nodes,"
	@echo "                              a Spark master with 2 workers, Airflow's Celery workers on Redis"
	@echo "make cluster-up / cluster-down / cluster-status   start, stop or show that cluster"

$(UV):
	$(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	@touch $(STAMP)

install: $(STAMP)

$(JARS_STAMP): $(STAMP) build/maven/kafka-broker.xml build/maven/spark-packages.xml
	$(PY) -m readiness.ops.maven fetch
	@touch $(JARS_STAMP)

jars: $(JARS_STAMP)

# Debian packages the tests need, installed only when missing: $(1) is the command that shows
# the package is there, $(2) the package.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
apt_install = @command -v $(1) >/dev/null 2>&1 || ls $(1) >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(2); }

# Headless Chromium renders the HTML report in the tests.
chromium:
	$(call apt_install,chromium,chromium)

# PostgreSQL: the tests run Airflow on a throw-away PostgreSQL metadata database (the documented switch).
postgresql:
	$(call apt_install,/usr/lib/postgresql/*/bin/initdb,postgresql)

# Redis: the broker of Airflow's CeleryExecutor in the cluster profile.
redis:
	$(call apt_install,redis-server,redis-server)

kafka-up: jars
	$(PY) -m readiness.dev.kafka_broker up

kafka-down: install
	$(PY) -m readiness.dev.kafka_broker down

simulate: kafka-up
	$(VENV)/bin/readiness simulate --seed $(SEED) --if-empty

# The previous quarter is published first so the ranking shows each province's rank change.
run: simulate
	@for period in $$($(VENV)/bin/readiness latest-period --count 2); do \
	  echo "== Airflow DAG readiness_period_pipeline, period $$period"; \
	  $(PY) -m readiness.dev.airflow run-dag readiness_period_pipeline --quiet --conf "{\"period_id\": \"$$period\"}" || exit 1; \
	done
	$(VENV)/bin/readiness compliance
	$(VENV)/bin/readiness ranking --methodology ict-index
	$(VENV)/bin/readiness ranking --methodology dti-2022
	$(VENV)/bin/readiness report
	$(VENV)/bin/readiness status --runs 4

ranking: install
	$(VENV)/bin/readiness ranking

# TEST_WORKERS=N runs the suite on N pytest-xdist workers, each module (and the cluster package) on
# one of them; --no-loadscope-reorder keeps the order tests/conftest.py gives (the longest units
# first, not the ones with most tests). The default, 0, runs it in this process: on two cores the
# suite is CPU-bound and two workers took as long as one (docs/cluster.md, "Measured").
TEST_WORKERS ?= 0
test: jars chromium postgresql redis
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

test-fast: install
	$(PY) -m pytest -q -m "not slow"

stream: kafka-up
	@echo "== streaming service: publish reports (e.g. make simulate) in another terminal; Ctrl-C stops it"
	$(PY) -m readiness.cli stream

serve: jars
	$(VENV)/bin/readiness serve

bench: jars
	$(PY) -m bench.run

airflow: kafka-up
	$(PY) -m readiness.dev.airflow ui

# The cluster profile: every service on its own loopback ports, state under var/cluster/.
cluster-up: jars postgresql redis
	READINESS_ENV=cluster $(PY) -m readiness.dev.cluster up

cluster-down: install
	READINESS_ENV=cluster $(PY) -m readiness.dev.cluster down

cluster-status: install
	READINESS_ENV=cluster $(PY) -m readiness.dev.cluster status

cluster-run: jars postgresql redis
	READINESS_ENV=cluster $(PY) -m readiness.dev.cluster run --seed $(SEED)

clean:
	-READINESS_ENV=cluster $(PY) -m readiness.dev.cluster down
	-$(PY) -m readiness.dev.kafka_broker down
	rm -rf var
