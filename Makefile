# make serve: set up everything (venv, pinned packages, data set, models) and serve on port 3000.
# make test:  lint, then run the test suite (unit + end-to-end against real `bentoml serve` processes, under
#             both placements of the engines: in process, then in runner processes).
# make lint:  ruff and mypy (pyproject.toml), seconds.
# make bench: the performance benchmark (bench/, results in docs/benchmarks.md); make bench-memory: memory per process only.
# make promote MODEL=clothes VERSION=v2: the promotion gate; make bench-lifecycle: drift detection and monitoring cost.
# make container / make test-container: the Docker image and its end-to-end tests (docs/container.md).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 3000
DATA_DIR ?= /usr/share/datasets/fashion-mnist
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

export BENTOML_DO_NOT_TRACK := true
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: serve lint test test-unit test-container container bench bytecode bench-memory bench-lifecycle promote install protos data nginx redis wrk chromium models build clean

serve: models bytecode
	$(VENV)/bin/bentoml serve service:ModelServer --host 0.0.0.0 --port $(PORT)

# The end-to-end suite twice: engines in the entry workers (the default placement), then in runner processes.
test: install data nginx redis wrk chromium lint bytecode
	$(PY) -m pytest
	E2E_PLACEMENT=process $(PY) -m pytest tests/e2e

# The fast inner loop: lint, then the unit and in-process tests (fake runners, real gRPC on loopback); about 2 minutes.
test-unit: install redis lint
	$(PY) -m pytest tests/unit

# ruff over every Python file; mypy over the serving code (pyproject.toml: serving, config, models, service.py).
# `ruff format --check`: the tree is formatted (line length 180, pyproject.toml).
lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# The performance benchmark (docs/benchmarks.md): every configured version served on ONNX Runtime and on
# TensorFlow, against the course's naive Flask server and a bare ASGI floor, per scenario (JSON, PNG, raw
# batches, a damage JPEG, v2 binary tensors, TF Serving predict), plus cold start and memory per process.
bench: models wrk bytecode
	$(PY) -m bench.run

# Memory per process (RSS, PSS) of the served tree, every configured version loaded, on each engine.
bench-memory: models
	$(PY) -m bench.memory

# Drift detection (false alarms, delays) against a served process, and what monitoring costs per request
# (docs/lifecycle.md).
bench-lifecycle: models
	$(PY) -m bench.drift
	$(PY) -m bench.monitoring_cost

# The promotion gate: make promote MODEL=clothes VERSION=v2 (docs/lifecycle.md; exits 1 when refused).
promote: models
	$(PY) train_and_save.py promote $(MODEL) $(VERSION)

install: $(VENV)/.installed

# The project's modules compiled once (__pycache__): with PYTHONDONTWRITEBYTECODE set (as on this
# machine) every process would compile them again at import, 60 ms of each server process's start.
bytecode: install
	$(PY) -m compileall -q config models serving lifecycle training service.py train_and_save.py > /dev/null

$(VENV)/.installed: requirements.txt requirements-tensorflow.txt requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps tensorflow-serving-api==2.21.0
	touch $@

# serving/protocols/grpc/protos/descriptors.binpb, from the generated modules of the pinned packages
# (its README.md); tests/unit/serving/protocols/grpc checks that the committed file is current.
protos: install
	$(PY) scripts/compile_protos.py

data:
	@test -f $(DATA_DIR)/train-images-idx3-ubyte.gz || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist; }

# nginx, for tests/e2e/test_failover.py (two replicas behind deploy/nginx/model-server.conf).
nginx:
	@test -x /usr/sbin/nginx || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nginx-light; }

# Debian's Redis 7, the fleet's desired-state backend in tests/e2e/test_fleet.py and tests/unit/serving/fleet/
# (the tests start their own redis-server on a free loopback port; the package's own service is not used).
redis:
	@test -x /usr/bin/redis-server || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq redis-server; }

# wrk, the HTTP load generator of bench/ and tests/e2e/test_overload_sustained.py.
wrk:
	@test -x /usr/bin/wrk || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }

# Debian's Chromium, for tests/e2e/test_page.py: Playwright (requirements-dev.txt) drives it; it cannot
# download a browser of its own here.
chromium:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

# The served versions into the BentoML model store: the shipped ones (models/shipped/, seconds), then
# any still missing trained from their recipes (clothes ~15 min, damage ~30 min on 2 cores).
models: install data
	$(PY) train_and_save.py install --configured

build: models
	$(VENV)/bin/bentoml build

# The deployable image: bentoml build + bentoml containerize (starts Docker and builds a local base
# image from Debian packages when needed; docs/container.md). Prints the image tag.
container: models
	scripts/build-container.sh

# Builds (or reuses) the image, runs it with --network host and tests it end to end (tests/container).
test-container: install data models
	$(PY) -m pytest tests/container

clean:
	rm -rf $(VENV) .pytest_cache
