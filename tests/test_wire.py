"""The wire constants are written once (bootstrap/boot.py, read by build.rs into Rust): the
running bootstrap, satchel's Rust side, the packaged module shims and the streams agree."""

import pathlib
import sys
import tomllib

import satchel
from satchel import _satchel

ROOT = pathlib.Path(__file__).resolve().parent.parent
WIRE = _satchel._wire()
BOOT = _satchel.bootstrap_module()


def test_format_version_and_names_agree():
    assert WIRE["FORMAT_VERSION"] == BOOT.FORMAT_VERSION == satchel.FORMAT_VERSION
    assert WIRE["FORMAT_MAJOR"] == int(BOOT.FORMAT_VERSION.split(".")[0])
    assert WIRE["BOOT_MODULE"] == f"_satchel_boot_{WIRE['FORMAT_MAJOR']}"
    assert WIRE["BOOT_MODULE"] == _satchel.BOOTSTRAP_MODULE_NAME == BOOT.__name__
    assert sys.modules[WIRE["BOOT_MODULE"]] is BOOT
    assert WIRE["LEAN_MODULE"] == _satchel.LEAN_MODULE_NAME
    # The lean check is satchel's (Rust: it decides the common case without a Python frame);
    # it defers to BOOT.check for everything else (tests/test_envelope.py).
    assert callable(sys.modules[WIRE["LEAN_MODULE"]].c)
    assert WIRE["LEAN_MODULE_1_4"] == _satchel.LEAN_MODULE_1_4_NAME
    assert sys.modules[WIRE["LEAN_MODULE_1_4"]].c is sys.modules[WIRE["LEAN_MODULE"]].c


def test_flags_agree_with_the_bootstrap():
    for name in ("FLAG_NONPORTABLE", "FLAG_COMPRESSED", "FLAG_STANDALONE"):
        assert WIRE[name] == getattr(BOOT, name), name
    # The flags only Rust sets are read by bytecode.py's IncompatibleInterpreter message.
    mismatch = BOOT._mismatch
    assert "holds a started generator" in mismatch(WIRE["FLAG_GENERATORS"], "CPython 3.0/1")
    assert "cannot be" in mismatch(WIRE["FLAG_STREAMED"], "CPython 3.0/1")
    assert "started generator" not in mismatch(0, "CPython 3.0/1")


def test_headers_carry_the_constants():
    f = lambda: 1  # noqa: E731
    info = satchel.inspect(satchel.dumps(f))
    assert info["format_version"] == WIRE["FORMAT_VERSION"]
    lean = satchel.dumps(f)
    assert lean.startswith(b"c" + WIRE["LEAN_MODULE"].encode() + b"\nc\n")
    standalone = satchel.dumps(f, standalone=True)
    assert (b"c" + WIRE["BOOT_MODULE"].encode() + b"\ncheck\n") in standalone


def test_every_constructor_rust_names_is_a_bootstrap_constructor():
    assert WIRE["CONSTRUCTORS"], "the table is not empty"
    for name in WIRE["CONSTRUCTORS"]:
        assert not name.startswith("_")
        assert callable(getattr(BOOT, name)), name


def test_the_packaged_shims_have_the_wire_names():
    """The module shims on disk (python/<name>/) and the wheel's list of them."""
    python = ROOT / "python"
    names = {WIRE["BOOT_MODULE"], WIRE["LEAN_MODULE"], WIRE["LEAN_MODULE_1_4"]}
    for name in names:
        assert (python / name / "__init__.py").is_file(), name
    maturin = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["maturin"]
    assert set(maturin["python-packages"]) == names


def test_the_version_lives_in_cargo_toml_alone():
    """Cargo.toml's version is the package metadata's (maturin) and satchel.__version__ (the
    compiler's CARGO_PKG_VERSION); no other file writes it."""
    import importlib.metadata

    version = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]["version"]
    assert satchel.__version__ == version == importlib.metadata.version("satchel")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and project["dynamic"] == ["version"]
