# The two commands: `make up` (the cluster, once the Docker runtime lands) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test bench install clean up

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(PY) bench/placement.py --json

up:
	@echo "make up is not available yet: the cluster needs the Docker runtime (see README, 'What works today')." >&2
	@exit 1

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
