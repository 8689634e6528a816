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

# The PYNQ-Z2 overlay in build/pynq-z2/overlay: Vivado runs when it is on PATH; otherwise
# everything is written and the one command left is printed (docs/board.md).
BITSTREAM_ARGS ?= --channels 64 --lanes 64 --fanout 16
bitstream: $(STAMP)
	$(VENV)/bin/bioloop build --board pynq-z2 $(BITSTREAM_ARGS) --out build/pynq-z2 --force

clean:
	rm -rf sim_build .pytest_cache
