#!/usr/bin/env bash
# Build satchel for the other CPythons on this machine and run tests on each.
#   tools/test_other_pythons.sh [pytest args...]   (default: tests/test_generators.py, else tests/)
#   PYTHONS="3.12 3.14" tools/test_other_pythons.sh ...   picks interpreters (default 3.12-3.15;
#   3.11 is opt-in). A missing interpreter is skipped, or fails the run with REQUIRE_PYTHONS=1.
# Everything lives in .interpreters/ (gitignored): venv-3.X (cached; the test dependencies of
# requirements-dev.txt that have wheels there), target-3.X (own cargo target dir: the main build
# in target/ is never touched), wheels-3.X, log-3.X.txt.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=$repo/.interpreters
helpers=$repo/tools/other_pythons
maturin=$repo/.venv/bin/maturin
declare -A interp=(
  [3.11]=/root/.pyenv/versions/3.11.7/bin/python3.11
  [3.12]=/root/.pyenv/versions/3.12.1/bin/python3.12
  [3.13]=/root/.pyenv/versions/3.13.0/bin/python3.13
  [3.14]=$cache/bin/python3.14 # sid builds run through sid's loader (compat-matrix/provision.sh)
  [3.15]=$cache/bin/python3.15
  [pypy3.11]=$cache/bin/pypy3.11 # sid's PyPy 3.11 (make test-pypy)
)
cd "$repo" || exit 2
if [ $# -eq 0 ]; then
  if [ -f tests/test_generators.py ]; then set -- tests/test_generators.py; else set -- tests/; fi
fi
unset VIRTUAL_ENV PYO3_PYTHON PYO3_CONFIG_FILE PYTHONPATH # nothing may point at the main venv
summary=() status=0
# Others edit the tree concurrently: say which snapshot gets built and tested.
echo "source: $(git rev-parse --short HEAD) + $(git status --porcelain | wc -l) changed paths, tests: $*"

# The test dependencies: requirements-dev.txt minus the build, lint and fuzz tools.
# (requirements-dev.txt includes requirements-demo.txt with -r: both files, their -r lines out.)
requirements() {
  cat requirements-demo.txt requirements-dev.txt |
    grep -Ev '^[[:space:]]*(#|$|-r)|^(maturin|ruff|atheris)([^A-Za-z0-9_-]|$)'
}

# Create the venv for $1 (version) from $2 (interpreter) once, and install the test dependencies
# whenever requirements-dev.txt changes (the stamp holds its hash).
make_venv() {
  local v=$1 py=$2 venv=$cache/venv-$1 vpy=$cache/venv-$1/bin/python
  local want; want=$(requirements | sha256sum | cut -c1-16)
  [ "$(cat "$venv/.deps-stamp" 2>/dev/null)" = "$want" ] && return 0
  if ! "$vpy" -c 'import sys; assert sys.prefix != sys.base_prefix' >/dev/null 2>&1; then
    "$py" -m venv --clear "$venv" >/dev/null 2>&1 || "$py" -m venv --clear --without-pip "$venv" || return 1
    # A loader wrapper (3.14, 3.15, pypy3.11): the venv's python must be one too, with argv[0]
    # naming the venv so sys.executable (used by the tests' child processes) finds pyvenv.cfg
    # and runs. PyPy's wrapper already passes --argv0 (PyPy finds its stdlib from it).
    if grep -qs 'ld-linux' "$py"; then
      local exe=python$v; case $v in pypy*) exe=$v ;; esac
      rm -f "$venv/bin/$exe"
      if grep -qs -- '--argv0' "$py"; then
        sed "s|--argv0 \"[^\"]*\"|--argv0 \"$venv/bin/$exe\"|" "$py" >"$venv/bin/$exe"
      else
        sed "s|\" \"\([^\"]*/$exe\)\"|\" --argv0 \"$venv/bin/$exe\" \"\1\"|" "$py" >"$venv/bin/$exe"
      fi
      chmod +x "$venv/bin/$exe"
    fi
    "$vpy" -c 'import sys; assert sys.prefix != sys.base_prefix' || return 1
  fi
  if ! "$vpy" -m pip --version >/dev/null 2>&1; then # no ensurepip: bootstrap from a pip wheel
    "$repo/.venv/bin/python" -m pip download -q pip --no-deps -d "$cache/pip-wheel" || return 1
    local whl; whl=$(ls -t "$cache"/pip-wheel/pip-*.whl | head -1)
    "$vpy" "$whl/pip" install -q pip || return 1
  fi
  "$vpy" -m pip install -q --upgrade pip || return 1
  # Binary wheels only (a sid interpreter has no build environment); if the set cannot install
  # at once, each requirement alone: what has no wheel for this version is skipped, and the tests
  # that need it skip too.
  requirements >"$cache/requirements-$v.txt"
  if ! "$vpy" -m pip install -q --only-binary=:all: -r "$cache/requirements-$v.txt"; then
    # PyPy: psutil and tornado publish no PyPy wheels but build from source there in seconds
    # (small C extensions); without psutil most of the fuzz, memory and process tests skip.
    while read -r req; do
      "$vpy" -m pip install -q --only-binary=:all: "$req" && continue
      case $v:$req in pypy*:psutil* | pypy*:tornado*)
        "$vpy" -m pip install -q "$req" && continue ;;
      esac
      echo "[$v] $req: no wheel, skipped"
    done <"$cache/requirements-$v.txt"
  fi
  "$vpy" -c 'import pytest, hypothesis' || return 1
  echo "$want" >"$venv/.deps-stamp"
}

for v in ${PYTHONS:-3.12 3.13 3.14 3.15}; do
  py=${interp[$v]:-} venv=$cache/venv-$v log=$cache/log-$v.txt
  if [ -z "$py" ] || ! "$py" -c pass >/dev/null 2>&1; then
    echo "[$v] skipped: no interpreter at ${py:-?}"; summary+=("$v: skipped (missing)")
    [ "${REQUIRE_PYTHONS:-0}" = 1 ] && status=1
    continue
  fi
  echo "== [$v] $py"
  if ! make_venv "$v" "$py"; then summary+=("$v: FAILED (venv)"); status=1; continue; fi
  vpy=$venv/bin/python out=$cache/wheels-$v
  rm -f "$out"/*.whl
  if ! CARGO_TARGET_DIR=$cache/target-$v "$maturin" build --release -q -i "$vpy" --out "$out" ||
     ! "$vpy" -m pip install -q --force-reinstall --no-deps "$out"/*.whl; then
    summary+=("$v: FAILED (build/install)"); status=1; continue
  fi
  # The satchel under test must be the venv's, not python/satchel (cp311 .so, editable install).
  origin=$("$vpy" -P -c 'import satchel; print(satchel.__file__)' 2>&1)
  case $origin in "$venv"/*) echo "[$v] satchel: $origin" ;;
    *) echo "[$v] wrong satchel: $origin"; summary+=("$v: FAILED (import)"); status=1; continue ;; esac
  echo "[$v] smoke:"; (cd /tmp && "$vpy" "$helpers/smoke.py") 2>&1 | sed 's/^/  /'
  # run_pytest.py runs as a script (sys.path[0] is tools/other_pythons, not the repo) and stops
  # the session if satchel would come from anywhere but the venv.
  HYPOTHESIS_STORAGE_DIRECTORY=$cache/hypothesis-$v \
    "$vpy" "$helpers/run_pytest.py" -q -p no:cacheprovider "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}; [ "$rc" -eq 0 ] || status=1
  summary+=("$v ($("$vpy" -c 'import platform; print(platform.python_version())')): $(grep -E '(passed|failed|error|no tests ran)' "$log" | tail -1) [exit $rc, log $log]")
done

echo "== summary"
printf '%s\n' "${summary[@]}"
exit $status
