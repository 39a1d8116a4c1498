# Spark Connect Router: `make demo` and `make test` work on a fresh machine (Python 3.10+, JDK 17).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JAR    := listener/build/spark-router-listener.jar
EXTRAS := service,client,dev,airflow

.PHONY: install listener listener-test session-jar browser check-java lint test test-fast demo bench clean

# The repo's own modules are compiled here: pip does not compile an editable install, and where
# PYTHONDONTWRITEBYTECODE is set (as on these machines) Python would compile them again at every start.
install: check-java $(STAMP) listener session-jar
	@$(BIN)/python -m compileall -q service client_runtime airflow_plugins

# Re-runs only when pyproject.toml or this file changes; pip builds pyspark 4.3.0 from its source archive once.
# The editable install is a plain path entry (compat mode): setuptools' default import hook slows every
# Python start in .venv, the launcher's and each app's included (docs/benchmarks.md).
$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[$(EXTRAS)]' --config-settings editable_mode=compat
	@touch $@

check-java:
	@javac=$${JAVA_HOME:+$$JAVA_HOME/bin/}javac; \
	v=$$($$javac -version 2>&1 | head -1); \
	case "$$v" in "javac 17."*) ;; \
	  *) echo "error: a JDK 17 is needed to build and run the listener (found: $${v:-no javac})." >&2; \
	     echo "       On Debian/Ubuntu: apt-get install openjdk-17-jdk-headless, or set JAVA_HOME." >&2; exit 1;; \
	esac

# Both jars come from the one Java build script.
listener: $(STAMP)
	@client_runtime/java/build.sh listener

# The session helper of JVM apps (io.sparkrouter.session.RouterSession, docs/jvm.md).
session-jar: $(STAMP)
	@client_runtime/java/build.sh session

# Debian's Chromium for the dashboard's browser test (playwright drives it; it downloads no browser).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# ruff and mypy with the project's config (pyproject.toml): both must be clean.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# The listener's Java unit tests (javac and a small runner; no test framework needed).
listener-test: listener
	@listener/test.sh

test: install browser lint listener-test
	$(BIN)/pytest

# Unit tests only: no Spark, no PostgreSQL.
test-fast: $(STAMP)
	$(BIN)/pytest -m "not spark and not postgres"

demo: install
	$(BIN)/python examples/demo.py

# Benchmarks print figures (docs/benchmarks.md); wrk drives the HTTP ones.
bench: install
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	cd bench && ../$(BIN)/python listener_overhead.py
	cd bench && ../$(BIN)/python ingest.py
	cd bench && ../$(BIN)/python decisions.py
	cd bench && ../$(BIN)/python e2e_modes.py
	cd bench && ../$(BIN)/python restart.py
	cd bench && ../$(BIN)/python mixed_workload.py

clean:
	rm -rf listener/build client_runtime/java/build .pytest_cache
