# mmfuzz: `make run` sets up and runs a short campaign; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
TIME   ?= 60
DB     ?= sqlite:///db/mmfuzz.sqlite

.PHONY: setup run test test-fast lint clean

$(BIN)/mmfuzz: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The executor and the step's system calls in C (fuzzer/stepcalls.c), and the hot pure
# modules compiled with mypyc (fuzzer/native.py; rebuilt only when their sources changed;
# MMFUZZ_PURE=1 runs the interpreted ones instead).
setup: $(BIN)/mmfuzz
	$(BIN)/python -m fuzzer.executor
	$(BIN)/python -c 'import fuzzer.native; fuzzer.native.main()'

run: setup
	$(BIN)/mmfuzz run --time $(TIME) --db $(DB)

# Lint first, tests last: the test runner's summary is the closing line.
test: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q

# Under a minute: the pure tests alone (no real kernel, no UML guest, nothing marked slow).
test-fast: setup
	$(BIN)/pytest -q -m "not kernel and not slow and not uml"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info fuzzer/executor/mmfuzz-executor fuzzer/executor/mmfuzz-ceiling
	find fuzzer -name '*.so' -delete
	rm -f fuzzer/compiled.stamp
