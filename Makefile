# Two entry points: `make demo` runs the whole chain, `make test` runs the suite. Both set up .venv themselves.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= demo-out
DEMO_ARGS ?=

.PHONY: demo test lint venv clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/hartool demo --out $(DEMO_OUT) $(DEMO_ARGS)

test: venv
	bash tests/setup_services.sh
	$(PY) -m pytest -q -n auto

lint: venv
	$(VENV)/bin/ruff check toolkit tests benchmarks firmware_bridge

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
