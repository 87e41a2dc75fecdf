"""satchel's PEP 517 build backend: maturin's, after a check that Rust is installed.

Where ``cargo`` is missing, maturin's backend would quietly download a whole Rust toolchain
(about 670 MB) into a temporary directory on every build. This backend stops instead, saying
what is missing and how to get it (``MATURIN_NO_INSTALL_RUST`` turns maturin's download off
for anything that imports it in this process too). Everything else is maturin's.
"""

import os
import shutil
import sys

os.environ.setdefault("MATURIN_NO_INSTALL_RUST", "1")

import maturin  # noqa: E402 (after the variable it reads)
from maturin import *  # noqa: E402,F403 (every hook maturin defines)

_MISSING_RUST = """
satchel is a Rust extension: building it from source needs Rust (cargo) and a C compiler,
and `cargo` is not on PATH.

  Install Rust with rustup:  https://rustup.rs
      curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh
  then open a new shell (or `. "$HOME/.cargo/env"`) and retry.

Or install a prebuilt wheel instead of the source distribution (see README.md, "Install").
"""


def _need_cargo():
    if shutil.which("cargo") is None:
        sys.stderr.write(_MISSING_RUST)
        sys.exit(1)


def _checked(hook):
    def run(*args, **kwargs):
        _need_cargo()
        return hook(*args, **kwargs)

    run.__name__ = hook.__name__
    run.__doc__ = hook.__doc__
    return run


build_wheel = _checked(maturin.build_wheel)
build_sdist = _checked(maturin.build_sdist)
build_editable = _checked(maturin.build_editable)
get_requires_for_build_wheel = _checked(maturin.get_requires_for_build_wheel)
get_requires_for_build_sdist = _checked(maturin.get_requires_for_build_sdist)
get_requires_for_build_editable = _checked(maturin.get_requires_for_build_editable)
prepare_metadata_for_build_wheel = _checked(maturin.prepare_metadata_for_build_wheel)
prepare_metadata_for_build_editable = _checked(maturin.prepare_metadata_for_build_editable)
