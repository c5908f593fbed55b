# Everything a fresh machine needs: `make run` (one ingestion on the embedded default) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PIP_FLAGS ?= --disable-pip-version-check --quiet

.PHONY: run test install install-test bench bench-stores bench-scale serve clean system-test-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install $(PIP_FLAGS) -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install $(PIP_FLAGS) -c constraints.txt -e '.[test]'
	touch $@

# feedparser's own test corpus ships in its sdist only: tests/test_decoding_suite.py reads it from here
FEEDPARSER_SDIST := $(VENV)/sdist/feedparser-$(shell sed -n 's/^feedparser==//p' constraints.txt).tar.gz
$(FEEDPARSER_SDIST): constraints.txt
	$(BIN)/pip download $(PIP_FLAGS) --no-deps --no-binary :all: -d $(VENV)/sdist \
	  "feedparser==$(shell sed -n 's/^feedparser==//p' constraints.txt)"

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: $(VENV)/.installed
	mkdir -p var
	$(BIN)/energywatch run --feeds config/feeds.yaml --store sqlite:///var/energywatch.db

# Debian packages the tests use: docker-compose (v1.29) validates docker/docker-compose.yml (`config`
# needs no engine); chromium runs the browser tests (Playwright drives it; it never downloads a browser);
# PostgreSQL and Redis serve the CeleryExecutor test (started by the test itself on free ports).
system-test-deps:
	@missing=""; \
	{ command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1; } || missing="$$missing docker-compose"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  { command -v apt-get >/dev/null 2>&1 && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null 2>&1; } || \
	  echo "note: could not install$$missing; the tests that need them will be skipped"; \
	fi

test: $(VENV)/.installed-test $(FEEDPARSER_SDIST) system-test-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/pipeline_throughput.py
	$(BIN)/python benchmarks/enrich_speed.py
	$(BIN)/python benchmarks/alert_latency.py

bench-stores: $(VENV)/.installed
	$(BIN)/python benchmarks/store_compare.py

bench-scale: $(VENV)/.installed
	$(BIN)/python benchmarks/store_scale.py

serve: $(VENV)/.installed
	$(BIN)/energywatch serve

clean:
	rm -rf $(VENV) var .pytest_cache
