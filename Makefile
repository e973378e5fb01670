# mlinfra: two commands do everything on a fresh machine — `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export DAGSTER_HOME ?= $(CURDIR)/.dagster
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export GX_ANALYTICS_ENABLED := false
export DAGSTER_DISABLE_TELEMETRY := true
export NML_DISABLE_USAGE_LOGGING := 1

.PHONY: run test ui bench lint install home clean labelstudio java

# Each process writes the bytecode of the modules it compiles, so the next one reads it. This machine
# sets PYTHONDONTWRITEBYTECODE, under which every new process (a step, a server, each `mlinfra`
# command) compiled every module it imported again (`mlinfra status`: 23 s, 17 s with bytecode).
# Compiling the whole virtualenv up front instead took 40 s of a fresh `make test`, most of it for
# modules nothing imports (uv does not compile what it installs).
unexport PYTHONDONTWRITEBYTECODE

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# uv installs the rest: it downloads and installs in parallel (about 50 s here against
	# pip's ~3 min, the same versions)
	$(BIN)/pip install --quiet --upgrade pip uv
	# the CPU build of torch first, by pip (it takes the file on this machine's disk; uv does not
	# look there): any other torch spec pulls a multi-GB CUDA build. uv then keeps it (>=2.4,<3).
	# (pip compiles torch's bytecode, 28 s of the install against 4.5 s with --no-compile; left to
	# the first processes of the suite instead, a fresh `make test` took 1,048 s against 915 s)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e ".[dev]"
	touch $(STAMP)

home:
	@mkdir -p $(DAGSTER_HOME)
	@cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

## make run: install, generate the demo warehouse, materialize every asset over the history, replay
## the last days as the daemon would (the demo's shift, its drift alarm, the retraining), print a summary
## (a line per step and day; Dagster's event stream goes to data/logs/run-*.log; ARGS=--verbose shows it)
run: install home
	@$(BIN)/mlinfra run $(ARGS)

## make labelstudio: Label Studio in its own virtualenv (~0.8 GB, under a minute once with uv; reused when
## present), with an empty database already migrated (template/label_studio.sqlite3): a server the tests
## start on a copy of it answers in ~5 s instead of ~40 s of migrations. It needs nothing of the
## project's virtualenv (uv comes into its own), so `make test` builds both side by side: this one's
## migrations run on the cores while the other downloads.
## (sentry-sdk below 3: Label Studio 1.23 passes `send_default_pii`, which sentry-sdk 3.0 refuses, and
## then the server dies at start with "Unknown option 'send_default_pii'"; the stamp names this pin
## and the template, so a virtualenv made without them is brought in line by the next `make test`)
LABELSTUDIO_VENV ?= $(HOME)/.cache/mlinfra/labelstudio-venv
LABELSTUDIO_STAMP := $(LABELSTUDIO_VENV)/.mlinfra-ls1.23-sentry2-template
LABELSTUDIO_PY := $(LABELSTUDIO_VENV)/bin/python
labelstudio: $(LABELSTUDIO_STAMP)

$(LABELSTUDIO_STAMP):
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	test -x $(LABELSTUDIO_PY) || $(PYTHON) -m venv $(LABELSTUDIO_VENV)
	$(LABELSTUDIO_PY) -m pip --version >/dev/null 2>&1 || $(LABELSTUDIO_PY) -m ensurepip --upgrade >/dev/null
	$(LABELSTUDIO_PY) -m pip install --quiet uv
	$(LABELSTUDIO_VENV)/bin/uv pip install --quiet --compile-bytecode --python $(LABELSTUDIO_PY) \
		"label-studio>=1.23,<1.24" "sentry-sdk>=2.16,<3"
	rm -rf $(LABELSTUDIO_VENV)/template && mkdir -p $(LABELSTUDIO_VENV)/template
	cd $$($(LABELSTUDIO_PY) -c "import label_studio, os; print(os.path.dirname(label_studio.__file__))") && \
		LABEL_STUDIO_BASE_DATA_DIR=$(LABELSTUDIO_VENV)/template $(LABELSTUDIO_PY) manage.py migrate --no-input \
		> $(LABELSTUDIO_VENV)/template.log 2>&1 || { tail -20 $(LABELSTUDIO_VENV)/template.log; exit 1; }
	touch $@

## make java: Java 17+ for Spark (warehouse.engine: spark, and its tests): kept where one is found
## (java on PATH or JAVA_HOME), else installed from the system's packages (apt, as root or with sudo);
## where neither works it says so, and the Spark tests skip with that reason
JAVA_OK = v=$$("$${JAVA_HOME:+$$JAVA_HOME/bin/}java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p'); [ -n "$$v" ] && [ "$$v" -ge 17 ]
java:
	@if $(JAVA_OK); then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	elif command -v apt-get >/dev/null && sudo -n true 2>/dev/null; then \
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	fi; \
	$(JAVA_OK) || echo "make java: no Java 17+ found or installable here: Spark (warehouse.engine: spark) needs one (install a JDK 17+ or set JAVA_HOME); its tests will skip"

## make test: the whole suite (CI runs exactly this)
test:
	@$(MAKE) --no-print-directory -j 2 install labelstudio java
	$(BIN)/pytest

## make ui: the Dagster UI (http://127.0.0.1:3000) and the MLflow UI its `mlflow_run` links point at
## (http://127.0.0.1:5000), with the project's workspace and instance config; Ctrl-C stops both.
## make ui SPEC=path/spec.yaml opens another spec's code location and the runs `mlinfra run --spec` recorded
ui: install home
ifdef SPEC
	@mkdir -p "$(dir $(abspath $(SPEC)))data/.dagster"
	@cp -n dagster.yaml "$(dir $(abspath $(SPEC)))data/.dagster/dagster.yaml"
	MLINFRA_SPEC="$(abspath $(SPEC))" DAGSTER_HOME="$(dir $(abspath $(SPEC)))data/.dagster" \
		$(BIN)/mlinfra ui -p 3000 --mlflow-port 5000
else
	$(BIN)/mlinfra ui -p 3000 --mlflow-port 5000
endif

## make bench: the benchmark scripts (each prints a table against its anchor)
bench: install $(VENV)/.nannyml
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# NannyML (CBPE, the anchor of benchmarks/performance_estimation.py) in an extra of its own: it
# pulls ~30 packages (FLAML, lightgbm, a CUDA NCCL wheel, cloud SDKs) and pins plotly below 6,
# none of which the platform needs. NML_DISABLE_USAGE_LOGGING=1: it reports usage otherwise.
$(VENV)/.nannyml: $(STAMP)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e ".[dev,nannyml]"
	touch $@

lint: install
	$(BIN)/ruff check mlinfra_assets kernels tests benchmarks

clean:
	rm -rf data .dagster
