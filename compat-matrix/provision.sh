#!/usr/bin/env bash
# Provision the interpreters this machine can have, from Debian's packages only (no other
# downloads; see shared/INTERPRETERS.md):
#   - CPython 3.11.2, Debian bookworm's /usr/bin/python3.11 (apt-get if it is missing);
#   - the pyenv CPythons under /root/.pyenv/versions, where present (nothing is installed);
#   - PyPy 3.9 from bookworm: apt-get install pypy3 pypy3-dev;
#   - CPython 3.13, 3.14 and 3.15 and PyPy from Debian sid, unpacked into a private root
#     (.interpreters/sid/root): their glibc is newer than bookworm's, so they run through sid's
#     own loader, from wrapper scripts in .interpreters/bin/ (python3.13, python3.14, python3.15, pypy3.11).
# Idempotent and cached (.interpreters/sid/debs keeps the packages): what runs already is kept.
# Reports what it could not get and exits 0 anyway: tests and the compat matrix skip
# interpreters that are missing, and say so. The last lines list what is there.
#   --bookworm   only the system's apt (Debian's 3.11, PyPy 3.9).
#   --sid=NAME,...   of sid, only these (python3.15, ...), without headers: what CI uses.
set -u
sid_wanted=1 sid_only=""
for arg in "$@"; do
  case $arg in
    --bookworm) sid_wanted=0 ;;
    --sid=*) sid_only=",${arg#--sid=}," ;;
    *) echo "usage: $0 [--bookworm] [--sid=NAME,...]" >&2; exit 2 ;;
  esac
done
repo="$(cd "$(dirname "$0")/.." && pwd)"
root="$repo/.interpreters"
mkdir -p "$root/bin"
missing=()

runs() { [ -x "$1" ] && "$1" -c "pass" >/dev/null 2>&1; }

# --- Debian bookworm (the system's apt) -------------------------------------------------------
apt_updated=0
apt_install() { # apt_install LOG PKG...: install with the system's apt (update once per run)
  local log=$1; shift
  {
    if [ "$apt_updated" = 0 ]; then apt-get update -q && apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
  } >>"$log" 2>&1
}

# CPython 3.11.2 (bookworm's own Python 3).
if runs /usr/bin/python3.11; then
  echo "debian python3.11: /usr/bin/python3.11 (present)"
elif apt_install "$root/debian-python3.11.log" python3.11 && runs /usr/bin/python3.11; then
  echo "debian python3.11: /usr/bin/python3.11 (installed)"
else
  missing+=("debian python3.11 (apt-get failed: $root/debian-python3.11.log)")
fi

# PyPy 3.9 (bookworm) and its headers (pypy3-dev: what a PyPy build of satchel would need).
if command -v pypy3 >/dev/null 2>&1 && dpkg -s pypy3-dev >/dev/null 2>&1; then
  echo "pypy3: $(command -v pypy3) (present, with pypy3-dev)"
else
  echo "pypy3: installing pypy3 pypy3-dev with apt-get"
  if apt_install "$root/pypy3.log" pypy3 pypy3-dev && command -v pypy3 >/dev/null 2>&1; then
    echo "pypy3: $(command -v pypy3)"
  elif command -v pypy3 >/dev/null 2>&1; then
    echo "pypy3: $(command -v pypy3) (pypy3-dev failed: $root/pypy3.log)"
    missing+=("pypy3-dev (apt-get failed: $root/pypy3.log)")
  else
    missing+=("pypy3 (apt-get failed: $root/pypy3.log)")
  fi
fi

# --- pyenv (present or not: nothing to download) ----------------------------------------------
for d in /root/.pyenv/versions/3.*; do
  [ -d "$d" ] || continue
  v=${d##*/}
  case $v in 3.9.* | 3.1[0-9].*) ;; *) continue ;; esac
  if runs "$d/bin/python3"; then echo "pyenv python $v: $d/bin/python3 (present)"; fi
done

# --- Debian sid, in a private root ------------------------------------------------------------
provision_sid() {
sid="$root/sid"
mkdir -p "$sid/lists/partial" "$sid/debs" "$sid/root"
list="$sid/sources.list"
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror:-http://deb.debian.org/debian} sid main" >"$list"
apt_opts=(-o "Dir::Etc::SourceList=$list" -o "Dir::Etc::SourceParts=/dev/null"
          -o "Dir::State::Lists=$sid/lists" -o "Dir::Cache::Archives=$sid/debs"
          -o "Dir::State::status=/dev/null" -o "Debug::NoLocking=1")
sid_updated=0
loader="$sid/root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
libdir="$sid/root/usr/lib/x86_64-linux-gnu"
base_libs=(libc6 libexpat1 zlib1g libffi8 libssl3t64 libbz2-1.0 liblzma5 libzstd1 libuuid1
           libsqlite3-0 libgcc-s1 media-types libncursesw6 libtinfo6)

# sid_fetch LOG PKG...: download (cached) and unpack into the private root.
sid_fetch() {
  local log=$1; shift
  {
    if [ "$sid_updated" = 0 ]; then
      # One index download per run at most, and none when the cached lists are a day fresh.
      if [ -z "$(find "$sid/lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null)" ]; then
        apt-get "${apt_opts[@]}" update -q || return 1
      fi
      sid_updated=1
    fi
    local need=() p
    for p in "$@"; do
      compgen -G "$sid/debs/${p}_*.deb" >/dev/null || need+=("$p")
    done
    if [ ${#need[@]} -gt 0 ]; then
      (cd "$sid/debs" && apt-get "${apt_opts[@]}" download "${need[@]}") || return 1
    fi
    for p in "$@"; do
      for deb in "$sid"/debs/"${p}"_*.deb; do dpkg -x "$deb" "$sid/root" || return 1; done
    done
  } >>"$log" 2>&1
}

# sid_wrapper WRAPPER BINARY: a two-line script running BINARY (inside the root) through sid's
# loader, so tools (maturin -i, venv) can treat it as a normal interpreter. PyPy finds its
# stdlib whatever argv[0] says, so it gets the wrapper as argv[0] (and as sys.executable, which
# maturin runs); CPython derives its prefix from argv[0], so it keeps the real path (a venv
# made from it needs the same wrapper with --argv0, see compat-matrix/wheels.py).
sid_wrapper() {
  local argv0=""
  case ${2##*/} in pypy*) argv0="--argv0 \"$1\" " ;; esac
  cat >"$1" <<WRAP
#!/bin/sh
exec "$loader" --library-path "$libdir" $argv0"$2" "\$@"
WRAP
  chmod +x "$1"
}

# sid_interpreter NAME BINARY PKG...: fetch, unpack, wrap, and check it runs.
sid_interpreter() {
  local name=$1 binary=$2; shift 2
  local wrapper="$root/bin/$name" log="$root/$name.log"
  [ -z "$sid_only" ] || [[ $sid_only == *",$name,"* ]] || return 0
  if runs "$wrapper"; then
    echo "sid $name: $wrapper (present)"
    return 0
  fi
  echo "sid $name: fetching from sid into $sid"
  if ! sid_fetch "$log" "${base_libs[@]}" "$@"; then
    missing+=("sid $name (download failed: $log)")
    return 1
  fi
  sid_wrapper "$wrapper" "$sid/root$binary"
  if "$wrapper" -c "import sys; print(sys.version)" >>"$log" 2>&1; then
    echo "sid $name: $wrapper"
  else
    missing+=("sid $name (unpacked but does not run: $log)")
    rm -f "$wrapper"
    return 1
  fi
}

sid_interpreter python3.14 /usr/bin/python3.14 \
  python3.14-minimal libpython3.14-minimal libpython3.14-stdlib python3.14
# CPython 3.14's headers (tools/frame_layouts reads the internal ones).
if [ -z "$sid_only" ] && runs "$root/bin/python3.14" && [ ! -f "$sid/root/usr/include/python3.14/internal/pycore_frame.h" ]; then
  if sid_fetch "$root/python3.14.log" libpython3.14-dev libpython3.14; then
    echo "sid python3.14 headers: $sid/root/usr/include/python3.14"
  else
    missing+=("sid python3.14 headers (download failed: $root/python3.14.log)")
  fi
fi

# CPython 3.15 (released October 2026) with its headers, exactly as 3.14.
sid_interpreter python3.15 /usr/bin/python3.15 \
  python3.15-minimal libpython3.15-minimal libpython3.15-stdlib python3.15 libreadline8t64
if [ -z "$sid_only" ] && runs "$root/bin/python3.15" && [ ! -f "$sid/root/usr/include/python3.15/internal/pycore_frame.h" ]; then
  if sid_fetch "$root/python3.15.log" libpython3.15-dev libpython3.15; then
    echo "sid python3.15 headers: $sid/root/usr/include/python3.15"
  else
    missing+=("sid python3.15 headers (download failed: $root/python3.15.log)")
  fi
fi

sid_interpreter python3.13 /usr/bin/python3.13 \
  python3.13-minimal libpython3.13-minimal libpython3.13-stdlib python3.13

# PyPy (Python 3.11) from sid, with its headers (pypy3-dev) for a PyPy build of satchel.
sid_interpreter pypy3.11 /usr/bin/pypy3.11 pypy3 pypy3-lib libgdbm6t64 pypy3-dev
}
if [ "$sid_wanted" = 1 ]; then provision_sid; else echo "sid: skipped (--bookworm)"; fi

echo "== interpreters"
for py in /usr/bin/python3.11 /root/.pyenv/versions/3.{9,1[0-9]}.*/bin/python3 \
          "$(command -v pypy3 || true)" "$root"/bin/*; do
  [ -n "$py" ] && runs "$py" || continue
  printf '%-50s %s\n' "$py" "$("$py" -c 'import platform, sys; print(platform.python_implementation(), platform.python_version(), "(Python %d.%d)" % sys.version_info[:2])' 2>&1)"
done
for m in "${missing[@]+"${missing[@]}"}"; do echo "not provisioned: $m"; done
exit 0
