# Every target installs what it needs: a fresh machine needs only `make demo` or `make test`.
# The demo needs only the build tool and cloudpickle (requirements-demo.txt); the tests, the
# benchmarks and the linters install the rest (requirements-dev.txt) when they run.
PYTHON ?= python3
# bench_instr.py flags for `make bench`: K=1 keeps it to minutes; --quick also drops dill.
BENCH_INSTR_FLAGS ?= --k 1
# The newest CPython satchel supports: CI runs the whole suite on it too (docs/ADDING.md).
NEWEST ?= 3.15
VENV   ?= .venv
PY     := $(VENV)/bin/python
DEMO_STAMP := $(VENV)/.demo-deps-stamp
STAMP  := $(VENV)/.deps-stamp
BUILD_STAMP := $(VENV)/.build-stamp
# make cannot name a file with a space: the lean header's shim module (python/satchel or dump
# with standalone=True/, docs/FORMAT.md) is left out, and it never changes.
SOURCES := $(shell find src bootstrap python -type f \( -name '*.rs' -o -name '*.py' -o -name '*.pyi' \) ! -path '* *' 2>/dev/null) Cargo.toml pyproject.toml

.PHONY: all venv build demo test cargo-test test-debug test-pythons test-newest test-pypy fuzz-pypy bench bench-instr fuzz lint fmt clean interpreters interpreters-ci wheels matrix

all: test

$(DEMO_STAMP): requirements-demo.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-demo.txt
	touch $@

$(STAMP): $(DEMO_STAMP) requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(STAMP)

# Release build (fat LTO) installed into the venv.
$(BUILD_STAMP): $(DEMO_STAMP) $(SOURCES)
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(VENV))/bin:$$PATH $(VENV)/bin/maturin develop --release -q
	touch $@

build: $(BUILD_STAMP)

demo: build
	$(PY) examples/demo.py

test: build $(STAMP) cargo-test
	$(PY) -m pytest -q -p no:cacheprovider tests

# The pure-Rust unit tests (envelope, wire constants). The test binary links the venv's
# libpython, which is why pyo3's extension-module feature comes from maturin only (Cargo.toml).
cargo-test: $(DEMO_STAMP)
	PYO3_PYTHON=$(abspath $(PY)) cargo test -q

test-debug: build $(STAMP)
	PYTHONMALLOC=debug $(PY) -m pytest -q -p no:cacheprovider tests

bench: build $(STAMP)
	$(PY) -m pip install -q matplotlib
	$(PY) tests/benchmarks/bench.py --out docs
	$(PY) tests/benchmarks/bench_executors.py --out docs
	$(PY) tests/benchmarks/bench_session.py --out docs
	$(PY) tests/benchmarks/bench_instr.py --out docs $(BENCH_INSTR_FLAGS)

# Instruction counts only (callgrind, issue 18's shapes), quick: K=1, no dill. About 10 min on
# a loaded 2-core machine; `make bench` runs the full version (K=3, dill too).
bench-instr: build $(STAMP)
	$(PY) tests/benchmarks/bench_instr.py --quick --out docs

# Other interpreters for the cross-version tests and the compat matrix, from Debian's packages
# only: Debian's 3.11 and PyPy 3.9 (apt); CPython 3.13-3.15 and PyPy 3.11 from Debian sid in
# .interpreters/ (compat-matrix/provision.sh). Tests skip what is missing.
interpreters:
	bash compat-matrix/provision.sh

# What CI uses: the system apt's PyPy 3.9 (the compat slice) and sid's newest CPython, without
# headers (for test-newest); never fatal (test-newest fails if it is missing).
interpreters-ci:
	bash compat-matrix/provision.sh --sid=python$(NEWEST)

# satchel built for every provisioned interpreter that can have it (.interpreters/matrix/).
wheels: $(STAMP)
	$(PY) compat-matrix/wheels.py

# Every producer x consumer x mode: compat-matrix/MATRIX.md, and new fixture streams.
matrix: $(STAMP)
	$(PY) compat-matrix/matrix.py

# Fuzz satchel.loads/inspect with atheris, satchel.dumps with hostile objects in forked children,
# and suspended generators' frame data with fuzz_frames.py (data-only edits, each resumed in a
# fork); see fuzz/README.md. Any finding fails the target. The unsigned-loads target skips inputs
# whose marshalled code was damaged (a known crash class: CPython has no bytecode verifier;
# signed loads refuse them), `fuzz/run.py loads N` does not.
FUZZ_SECONDS ?= 120
fuzz: build $(STAMP)
	$(PY) fuzz/run.py signed $(FUZZ_SECONDS)
	SATCHEL_FUZZ_INTACT_CODE=1 $(PY) fuzz/run.py loads $(FUZZ_SECONDS)
	$(PY) fuzz/run.py buffers $(FUZZ_SECONDS)
	$(PY) fuzz/run.py frames $(FUZZ_SECONDS)
	$(PY) fuzz/fuzz_dumps.py --seconds $(FUZZ_SECONDS)

# Build satchel for the other CPythons (3.12 to 3.15 where provisioned) and run tests there;
# PYTHON_TESTS picks the tests (the frame code is per version: generators by default).
PYTHON_TESTS ?= tests/test_generators.py tests/test_itertools.py tests/test_exceptions.py
test-pythons: $(STAMP) interpreters
	bash tools/test_other_pythons.sh $(PYTHON_TESTS)

# The whole suite on the newest CPython (CI runs it after `make test`); fails if that one is
# missing (make interpreters, or interpreters-ci, provisions it). PYTEST_ARGS adds arguments.
test-newest: $(STAMP)
	REQUIRE_PYTHONS=1 PYTHONS=$(NEWEST) bash tools/test_other_pythons.sh tests $(PYTEST_ARGS)

# The whole suite on PyPy 3.11 (make interpreters provisions it); fails if it is missing. Tests
# of what PyPy cannot have (frame capture, CPython's bytecode and C API) skip and say why;
# -rs lists the skips. PYTEST_ARGS adds arguments.
test-pypy: $(STAMP)
	REQUIRE_PYTHONS=1 PYTHONS=pypy3.11 bash tools/test_other_pythons.sh -rs tests $(PYTEST_ARGS)

# A blind mutation run of the loads-side targets on PyPy 3.11 (atheris has no PyPy build), in
# the venv test-pypy made (fuzz/mutate_run.py).
fuzz-pypy:
	.interpreters/venv-pypy3.11/bin/python fuzz/mutate_run.py signed $(FUZZ_SECONDS)
	SATCHEL_FUZZ_INTACT_CODE=1 .interpreters/venv-pypy3.11/bin/python fuzz/mutate_run.py loads $(FUZZ_SECONDS)

# The stubs are checked against the built extension (stubtest), and the README's examples as
# a user's typed code (mypy --strict), so `lint` builds first.
lint: build $(STAMP)
	cargo fmt --check
	cargo clippy --release -q -- -D warnings
	$(VENV)/bin/ruff check python tests examples bootstrap compat-matrix tools fuzz
	$(VENV)/bin/ruff format --check python tests examples bootstrap tools compat-matrix fuzz
	$(PY) -m mypy.stubtest satchel._satchel --allowlist tools/stubtest-allowlist.txt
	$(PY) -m mypy --strict tests/typing

fmt:
	cargo fmt

clean:
	rm -rf $(VENV) target .interpreters
