# The two commands: `make up` (the cluster, in the background) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test bench install images system-deps bench-deps clean up down load demo

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Where Docker Hub can't be reached the images are built from Debian's packages,
# which needs debootstrap; the monitoring tests need Prometheus (promtool) and
# docker-compose. Install them from the distribution where we can.
system-deps:
	@missing=""; \
	command -v debootstrap >/dev/null 2>&1 || missing="$$missing debootstrap"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing$$missing from the distribution's packages"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The ALB benchmark compares against nginx, with hey as the load generator.
bench-deps:
	@if ! (command -v hey && command -v nginx) >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing hey and nginx (the ALB benchmark's load generator and reference proxy)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hey nginx >/dev/null; \
	fi

images: $(STAMP) system-deps
	$(PY) -m emulator.runtime.images

test: $(STAMP) system-deps
	$(PY) -m pytest -q -p no:cacheprovider

bench: $(STAMP) system-deps bench-deps
	$(PY) bench/placement.py --json
	$(PY) bench/runtime.py --json
	$(PY) bench/alb.py --json
	$(PY) bench/scaling.py --json

# The cluster in the background with the default stack (STACK= for another); returns the terminal.
# STATE_DIR= and API_PORT= run a second, separate cluster (its own state, instances and API port).
STATE_ARGS = $(if $(STATE_DIR),--state-dir $(STATE_DIR)) $(if $(API_PORT),--api-port $(API_PORT))
up: $(STAMP) system-deps images
	$(VENV)/bin/ecsemu up $(STACK) $(STATE_ARGS)

# Stops the emulator and removes every instance, task, volume and network it made; harmless when repeated.
down:
	@if [ -x $(VENV)/bin/ecsemu ]; then $(VENV)/bin/ecsemu down $(if $(STATE_DIR),--state-dir $(STATE_DIR)); \
	else echo "nothing to take down (no .venv)"; fi

# The article's scaling story live on real Docker, narrated, then blue/green under load (a few minutes).
demo: $(STAMP) system-deps images
	$(VENV)/bin/ecsemu demo

# Bounded load on the ALB's CPU endpoint: hey where installed, else the project's own generator.
RATE ?= 40
DURATION ?= 120
URL ?= http://127.0.0.1:8080/cpu?ms=25
load: $(STAMP)
	@if command -v hey >/dev/null 2>&1; then \
		hey -z $(DURATION)s -c 8 -q $$(( ($(RATE) + 7) / 8 )) "$(URL)"; \
	else \
		$(VENV)/bin/ecsemu load "$(URL)" --rate $(RATE) --duration $(DURATION); \
	fi

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
