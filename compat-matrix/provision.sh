#!/usr/bin/env bash
# Provision the interpreters this machine can have, from Debian's packages only (no other
# downloads): PyPy 3.9 from bookworm (apt), CPython 3.14 from Debian sid unpacked into a
# private root (its glibc is newer than bookworm's, so it runs through sid's own loader; see
# shared/INTERPRETERS.md). Idempotent: what is there already is kept. Reports what it could not
# get and exits 0 anyway: tests skip interpreters that are missing, and say so.
set -u
root="$(cd "$(dirname "$0")/.." && pwd)/.interpreters"
mkdir -p "$root/bin"
missing=()

# PyPy 3.9 (bookworm).
if command -v pypy3 >/dev/null 2>&1; then
  echo "pypy3: $(command -v pypy3) (present)"
else
  echo "pypy3: installing with apt-get"
  if { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q pypy3; } >"$root/pypy3.log" 2>&1; then
    echo "pypy3: $(command -v pypy3)"
  else
    missing+=("pypy3 (apt-get failed: $root/pypy3.log)")
  fi
fi

# CPython 3.14 from sid, in a private root.
py314="$root/bin/python3.14"
if [ -x "$py314" ] && "$py314" -c "pass" >/dev/null 2>&1; then
  echo "python3.14: $py314 (present)"
else
  sid="$root/sid"
  mkdir -p "$sid/lists/partial" "$sid/debs" "$sid/root"
  list="$sid/sources.list"
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror:-http://deb.debian.org/debian} sid main" >"$list"
  apt_opts=(-o "Dir::Etc::SourceList=$list" -o "Dir::Etc::SourceParts=/dev/null"
            -o "Dir::State::Lists=$sid/lists" -o "Dir::Cache::Archives=$sid/debs"
            -o "Debug::NoLocking=1")
  pkgs=(python3.14-minimal libpython3.14-minimal libpython3.14-stdlib python3.14 libc6
        libexpat1 zlib1g libffi8 libssl3t64 libbz2-1.0 liblzma5 libzstd1 libuuid1
        libsqlite3-0 libgcc-s1 media-types)
  echo "python3.14: fetching from sid into $sid"
  if { apt-get "${apt_opts[@]}" update -q &&
       (cd "$sid/debs" && apt-get "${apt_opts[@]}" download "${pkgs[@]}") &&
       for deb in "$sid"/debs/*.deb; do dpkg -x "$deb" "$sid/root"; done; } >"$root/python3.14.log" 2>&1; then
    cat >"$py314" <<WRAP
#!/bin/sh
exec "$sid/root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --library-path "$sid/root/usr/lib/x86_64-linux-gnu" "$sid/root/usr/bin/python3.14" "\$@"
WRAP
    chmod +x "$py314"
    if "$py314" -c "import sys; print(sys.version)" >>"$root/python3.14.log" 2>&1; then
      echo "python3.14: $py314"
    else
      missing+=("python3.14 (unpacked but does not run: $root/python3.14.log)")
      rm -f "$py314"
    fi
  else
    missing+=("python3.14 (download failed: $root/python3.14.log)")
  fi
fi

# CPython 3.14's internal headers (tools/frame_layouts reads them): libpython3.14-dev from sid.
sid="$root/sid"
if [ -x "$py314" ] && [ ! -f "$sid/root/usr/include/python3.14/internal/pycore_frame.h" ]; then
  list="$sid/sources.list"
  apt_opts=(-o "Dir::Etc::SourceList=$list" -o "Dir::Etc::SourceParts=/dev/null"
            -o "Dir::State::Lists=$sid/lists" -o "Dir::Cache::Archives=$sid/debs"
            -o "Debug::NoLocking=1")
  if (cd "$sid/debs" && apt-get "${apt_opts[@]}" download libpython3.14-dev) >>"$root/python3.14.log" 2>&1; then
    for deb in "$sid"/debs/libpython3.14-dev_*.deb; do dpkg -x "$deb" "$sid/root"; done
    echo "python3.14 headers: $sid/root/usr/include/python3.14"
  else
    missing+=("python3.14 headers (download failed: $root/python3.14.log)")
  fi
fi

for m in "${missing[@]+"${missing[@]}"}"; do echo "not provisioned: $m"; done
exit 0
