# bioloop: make demo | test | hdl | bench | bitstream
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.bioloop-installed
JOBS   ?= 2
# The board profile: a second venv built as a PYNQ-Z2 image has it (numpy 1.26, pynq 4.0.0 from
# the [board] extra, no amaranth, numba or cocotb), at the lowest versions of pyproject's ranges.
BOARD_VENV  ?= .venv-board
BOARD_PY    := $(BOARD_VENV)/bin/python
BOARD_STAMP := $(BOARD_VENV)/.bioloop-installed
# The board-facing tests (docs/install.md): they run in both venvs.
BOARD_TESTS ?= tests/boards/test_pynq_backend.py tests/boards/test_pynq_standin.py \
	tests/host/test_driver.py tests/host/test_light_imports.py tests/host/test_jit.py \
	tests/host/test_observation.py tests/host/test_observation_properties.py \
	tests/host/test_spike_buffer.py tests/host/test_spike_buffer_properties.py tests/host/test_noise.py \
	tests/host/test_bioware_analysis.py tests/host/test_bioware_detection.py \
	tests/host/test_bioware_encoding.py tests/host/test_bioware_plasticity.py \
	tests/host/test_codec.py tests/host/test_codec_fuzz.py tests/host/test_codec_limits.py \
	tests/host/test_output_files.py

.PHONY: all demo test test-board test-long hdl bench bitstream clean venv venv-board

all: test

# pyproject.toml declares ranges; the constraints files pin the exact toolchain.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

$(BOARD_STAMP): pyproject.toml constraints-board.txt
	test -x $(BOARD_PY) || $(PYTHON) -m venv $(BOARD_VENV)
	$(BOARD_PY) -m pip install -q --upgrade pip
	$(BOARD_PY) -m pip install -q -c constraints-board.txt -e '.[board,test]'
	touch $@

venv: $(STAMP)

venv-board: $(BOARD_STAMP)

test: $(STAMP) $(BOARD_STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -n $(JOBS) --dist loadgroup -q --durations=20
	$(MAKE) --no-print-directory test-board

test-board: $(BOARD_STAMP)
	BIOLOOP_BOARD_PROFILE=1 $(BOARD_PY) -m pytest -n $(JOBS) -q -p no:cacheprovider $(BOARD_TESTS)

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
