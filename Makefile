# bioloop: make demo | test | hdl | bench | bitstream
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.bioloop-installed
JOBS   ?= 2

.PHONY: all demo test test-long hdl bench bitstream clean venv

all: test

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) --dist loadgroup -q

test-long: $(STAMP)
	BIOLOOP_LONG=1 $(PY) -m pytest -n $(JOBS) --dist loadgroup -q

hdl: $(STAMP)
	$(PY) scripts/hdl.py

bench: $(STAMP)
	$(PY) scripts/bench.py

demo: $(STAMP)
	$(VENV)/bin/bioloop demo --force

bitstream: $(STAMP)
	@echo "make bitstream needs Vivado on the user's machine; see docs/board.md" && exit 1

clean:
	rm -rf sim_build .pytest_cache
