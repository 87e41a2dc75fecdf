# Every target installs what it needs: a fresh machine needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.deps-stamp
BUILD_STAMP := $(VENV)/.build-stamp
SOURCES := $(shell find src bootstrap python -type f \( -name '*.rs' -o -name '*.py' -o -name '*.pyi' \) 2>/dev/null) Cargo.toml pyproject.toml

.PHONY: all venv build demo test test-debug bench lint fmt clean interpreters

all: test

$(STAMP): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(STAMP)

# Release build (fat LTO) installed into the venv.
$(BUILD_STAMP): $(STAMP) $(SOURCES)
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(VENV))/bin:$$PATH $(VENV)/bin/maturin develop --release -q
	touch $@

build: $(BUILD_STAMP)

demo: build
	$(PY) examples/demo.py

test: build
	$(PY) -m pytest -q -p no:cacheprovider tests

test-debug: build
	PYTHONMALLOC=debug $(PY) -m pytest -q -p no:cacheprovider tests

bench: build
	$(PY) -m pip install -q matplotlib
	$(PY) tests/benchmarks/bench.py --out docs

# Other interpreters for the cross-version tests (PyPy 3.9 via apt, CPython 3.14 from Debian
# sid in .interpreters/); tests skip what is missing. Not part of `make test`: CI may lack them.
interpreters:
	bash compat-matrix/provision.sh

lint: $(STAMP)
	cargo fmt --check
	cargo clippy --release -q -- -D warnings
	$(VENV)/bin/ruff check python tests examples bootstrap compat-matrix tools
	$(VENV)/bin/ruff format --check python tests examples bootstrap tools

fmt:
	cargo fmt

clean:
	rm -rf $(VENV) target .interpreters
