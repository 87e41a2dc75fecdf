#!/usr/bin/env bash
# Build satchel for the other CPythons on this machine and run tests on each.
#   tools/test_other_pythons.sh [pytest args...]   (default: tests/test_generators.py, else tests/)
#   PYTHONS="3.12 3.14" tools/test_other_pythons.sh ...   picks interpreters (3.11 is opt-in).
# Everything lives in .interpreters/ (gitignored): venv-3.X (cached), target-3.X (own cargo
# target dir: the main build in target/ is never touched), wheels-3.X, log-3.X.txt.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=$repo/.interpreters
helpers=$repo/tools/other_pythons
maturin=$repo/.venv/bin/maturin
declare -A interp=(
  [3.11]=/root/.pyenv/versions/3.11.7/bin/python3.11
  [3.12]=/root/.pyenv/versions/3.12.1/bin/python3.12
  [3.13]=/root/.pyenv/versions/3.13.0/bin/python3.13
  [3.14]=$cache/bin/python3.14 # sid build run through sid's loader (compat-matrix/provision.sh)
  [3.15]=$cache/bin/python3.15
)
cd "$repo" || exit 2
if [ $# -eq 0 ]; then
  if [ -f tests/test_generators.py ]; then set -- tests/test_generators.py; else set -- tests/; fi
fi
unset VIRTUAL_ENV PYO3_PYTHON PYO3_CONFIG_FILE PYTHONPATH # nothing may point at the main venv
summary=() status=0
# Others edit the tree concurrently: say which snapshot gets built and tested.
echo "source: $(git rev-parse --short HEAD) + $(git status --porcelain | wc -l) changed paths, tests: $*"

# Create the venv for $1 (version) from $2 (interpreter) once; the stamp marks it complete.
make_venv() {
  local v=$1 py=$2 venv=$cache/venv-$1 vpy=$cache/venv-$1/bin/python
  [ -f "$venv/.deps-stamp" ] && return 0
  "$py" -m venv --clear "$venv" 2>/dev/null || "$py" -m venv --clear --without-pip "$venv" || return 1
  # A loader wrapper (3.14): the venv's python must be one too, with argv[0] naming the venv so
  # sys.executable (used by the tests' child processes) finds pyvenv.cfg and runs.
  if grep -qs 'ld-linux' "$py"; then
    rm -f "$venv/bin/python$v"
    sed "s|\" \"\([^\"]*/python$v\)\"|\" --argv0 \"$venv/bin/python$v\" \"\1\"|" "$py" >"$venv/bin/python$v"
    chmod +x "$venv/bin/python$v"
  fi
  "$vpy" -c 'import sys; assert sys.prefix != sys.base_prefix' || return 1
  if ! "$vpy" -m pip --version >/dev/null 2>&1; then # no ensurepip: bootstrap from a pip wheel
    "$repo/.venv/bin/python" -m pip download -q pip --no-deps -d "$cache/pip-wheel" || return 1
    local whl; whl=$(ls -t "$cache"/pip-wheel/pip-*.whl | head -1)
    "$vpy" "$whl/pip" install -q pip || return 1
  fi
  "$vpy" -m pip install -q --upgrade pip pytest hypothesis || return 1
  "$vpy" -m pip install -q --only-binary=:all: numpy || echo "[$v] numpy: no wheel, skipped"
  touch "$venv/.deps-stamp"
}

for v in ${PYTHONS:-3.12 3.13 3.14}; do
  py=${interp[$v]:-} venv=$cache/venv-$v log=$cache/log-$v.txt
  if [ -z "$py" ] || ! "$py" -c pass >/dev/null 2>&1; then
    echo "[$v] skipped: no interpreter at ${py:-?}"; summary+=("$v: skipped (missing)"); continue
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
