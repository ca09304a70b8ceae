# The two commands: `make up` (the cluster, once the emulator process lands) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test bench install images system-deps bench-deps clean up

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Where Docker Hub can't be reached the images are built from Debian's packages,
# which needs debootstrap; install it from the distribution where we can.
system-deps:
	@if ! command -v debootstrap >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing debootstrap (builds the base image where Docker Hub is unreachable)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; \
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

up:
	@echo "make up is not available yet: the emulator process and its API come next (see README, 'What works today')." >&2
	@exit 1

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
