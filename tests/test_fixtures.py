"""The committed fixture streams (compat-matrix/fixtures/format-<X.Y>/<producer>/, written by
`make matrix` in stream format X.Y) still load here, or fail exactly as satchel promises: a
future satchel that cannot load an old stream fails this test (cloudpickle's ``old_pickles`` is
the model). Every format's set is loaded (format-1.2, format-1.3, ...): test ids start with it.

Every stream is loaded in this process with ``pickle.loads`` and with ``satchel.loads``, and
checked against the value its producer computed (the manifest's check and expected value):
- a nonportable stream from another interpreter build (another fingerprint) must raise
  ``IncompatibleInterpreter``, before building anything (with ``pickle.loads``, the only
  globals resolved are the header's);
- a stream a known bug breaks (compat-matrix/rules.py ``KNOWN_ISSUES``) must fail with that
  bug's error: a fix makes this test fail until the entry goes;
- everything else must load and give the producer's value (a signed stream, with its key
  through ``satchel.loads``, after another key was refused).
Skipped, with the reason: streams that need numpy where it is missing, streams from a newer
format major, suspended generators where this build has no live generator support.
"""

import io
import json
import pathlib
import pickle
import re
import sys

import pytest

import satchel

MATRIX = pathlib.Path(__file__).resolve().parent.parent / "compat-matrix"
FIXTURES = MATRIX / "fixtures"
sys.path.insert(0, str(MATRIX))
import rules  # noqa: E402

HERE = {
    "impl": sys.implementation.name,
    "version": list(sys.version_info[:2]),
    # The fingerprint decides, as the header's check does: compared with the producer's.
    "bytecode": [satchel.FINGERPRINT.hex()],
    "zstd": sys.version_info >= (3, 14),
}

#: What a header resolves before its check refuses a stream (formats 1.2 to 1.5): the standalone
#: bootstrap (``builtins.exec`` of ``zlib.decompress``-ed source, then its ``check``), or the
#: lean header's ``check`` from satchel's bootstrap or shim module.
HEADER_GLOBALS = re.compile(
    r"builtins\.exec|zlib\.decompress|_satchel_boot_\d+\.check|satchel [^.]*\.c"
)


def _fixtures():
    params = []
    for manifest_file in sorted(FIXTURES.glob("format-*/*/manifest.json")):
        manifest = json.loads(manifest_file.read_text())
        producer = manifest["producer"]
        where = manifest_file.parent.relative_to(FIXTURES).as_posix()  # format-1.2/cpython-3.11.7
        for name, stream in sorted(manifest["streams"].items()):
            obj = dict(manifest["objects"][stream["object"]])
            obj.update({k: stream[k] for k in ("check", "expected", "numpy") if k in stream})
            path = manifest_file.parent / name
            params.append(pytest.param(producer, stream, obj, path, id=f"{where}/{name}"))
    return params


FIXTURE_PARAMS = _fixtures()


def _format_set(path):
    return path.parent.parent.name  # "format-1.2"


def test_fixtures_are_committed():
    assert FIXTURE_PARAMS, f"no fixture streams under {FIXTURES}/format-*/: run `make matrix`"
    sets, misfiled = {}, []
    for producer, stream, _, path in (param.values for param in FIXTURE_PARAMS):
        sets.setdefault(_format_set(path), set()).add(producer["name"])
        major, minor = stream["format_version"].split(".")[:2]
        if _format_set(path) != f"format-{int(major)}.{int(minor)}" or not path.is_file():
            misfiled.append((str(path.relative_to(FIXTURES)), stream["format_version"]))
    assert not misfiled, f"streams missing or not under their format's set: {misfiled[:5]}"
    # Format 1.2's streams are the oldest kept: they must stay, from several producers.
    assert "format-1.2" in sets, sorted(sets)
    for name, producers in sets.items():
        assert len(producers) >= 2, (name, producers)
    stray = [p.name for p in FIXTURES.iterdir() if p.is_dir() and not p.name.startswith("format-")]
    assert not stray, f"fixtures outside a format-<X.Y>/ set: {stray}"


def _skip_reason(producer, stream, obj):
    if obj["numpy"]:
        try:
            import numpy  # noqa: F401
        except ImportError:
            return "needs numpy"
    major = int(stream["format_version"].split(".")[0])
    if major > int(satchel.FORMAT_VERSION.split(".")[0]):
        return "format {} is newer than this satchel's {}".format(
            stream["format_version"],
            satchel.FORMAT_VERSION,
        )
    live = satchel._satchel.LIVE_GENERATORS
    if (
        stream["object"] == "generator_suspended"
        and producer["fingerprint"] == satchel.FINGERPRINT.hex()
        and not str(live).startswith("cpython-")
    ):
        return f"no live generators in this build: {live}"
    return None


@pytest.mark.parametrize("loader", ["pickle.loads", "satchel.loads"])
@pytest.mark.parametrize(("producer", "stream", "obj", "path"), FIXTURE_PARAMS)
def test_fixture_loads_or_fails_as_promised(producer, stream, obj, path, loader):
    reason = _skip_reason(producer, stream, obj)
    if reason:
        pytest.skip(reason)
    load = pickle.loads if loader == "pickle.loads" else satchel.loads
    data = path.read_bytes()
    if obj.get("key") and loader == "satchel.loads":
        # A signed stream: another key is refused before anything runs; its own is accepted.
        with pytest.raises(satchel.SignatureError):
            satchel.loads(data, key=b"not the key")
        key = bytes.fromhex(obj["key"])

        def load(data):
            return satchel.loads(data, key=key)

    prod = {
        "impl": producer["impl"],
        "version": producer["version"],
        "bytecode": [producer["fingerprint"]],
    }
    expected = rules.expect_load(stream["object"], stream, prod, HERE, True)
    fmt = stream["format_version"]
    issue = next(
        (
            i
            for i in rules.KNOWN_ISSUES
            if i["phase"] == "load"
            and rules.applies(i, stream["object"], stream["variant"], prod, HERE, True, fmt)
        ),
        None,
    )
    if expected == "incompatible-interpreter":
        # A started generator cannot go portable: its message says where it loads instead.
        advice = "re-dump with mode='portable'|whose frame resumes only on .*: load it there"
        if loader == "satchel.loads":
            with pytest.raises(satchel.IncompatibleInterpreter, match=advice):
                load(data)
            return
        # The header's check refuses it before the stream names anything of its own: the only
        # globals resolved are the header's (the standalone bootstrap's exec, its zlib, the
        # check; or the lean shim's check).
        resolved = []

        class Tracing(pickle.Unpickler):
            def find_class(self, module, name):
                resolved.append(f"{module}.{name}")
                return super().find_class(module, name)

        with pytest.raises(satchel.IncompatibleInterpreter, match=advice):
            Tracing(io.BytesIO(data)).load()
        assert resolved, "refused before the header's check ran"
        assert all(HEADER_GLOBALS.fullmatch(name) for name in resolved), resolved
        return
    assert expected == rules.OK, f"a receiver with satchel should load this: {expected}"
    try:
        loaded = load(data)
        value = json.loads(
            json.dumps(eval(compile(obj["check"], "<check>", "eval"), {"obj": loaded}))
        )
    except Exception as exc:
        error = {
            "class": f"{type(exc).__module__}.{type(exc).__qualname__}",
            "message": str(exc),
        }
        if issue is not None and rules.known_issue(
            "load", stream["object"], stream["variant"], prod, HERE, True, error, fmt
        ):
            pytest.xfail("known bug {}: {}".format(issue["id"], issue["text"]))
        raise
    assert issue is None, (
        "known bug {} no longer happens here: remove or narrow it in compat-matrix/rules.py".format(
            issue["id"]
        )
    )
    assert value == obj["expected"]
