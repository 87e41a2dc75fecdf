"""dill's catalog of standard-library objects (``dill/_objects.py``) and dill's own tests, with
satchel held against what cloudpickle 3.1.2 does with the same objects.

The catalog (about 230 objects: ``succeeds``, the ones dill expects to pickle, and ``failures``)
comes from the dill package pinned in requirements-dev.txt; nothing is vendored. A first child
process imports it and dumps every object with cloudpickle, satchel (nonportable and portable)
and dill; a second, fresh, child loads every stream with ``pickle.loads`` (``dill.loads`` for
dill's) and describes what it got (type, value or repr with addresses masked, attribute names,
the first items of an iterator). A child that dies or hangs on one object is restarted after it,
and that object is recorded as a crash.

The contract: an object that cloudpickle dumps and loads again in a fresh process, satchel must
dump and load too, in both modes, to the same description as the original (or as cloudpickle's
copy). Every exception is listed in ``EXPECTED_FAILURES`` (or, for portable mode only, in
``PORTABLE_REFUSES``) with its reason, and every listed object must still fail: the lists only
shrink. A stream satchel writes must load, whatever cloudpickle does with the object. When both
refuse an object, satchel's error is a PicklingError or TypeError that names the object's type
or the path to the part it cannot pickle.

Where cloudpickle does not import (PyPy 3.11, cloudpickle#592), satchel's side still runs: every
object is dumped in both modes and loaded in a fresh process. The reference is then satchel on
CPython: ``CPYTHON_REFUSES`` (checked on CPython to be exactly what satchel refuses there) is
what it may refuse, plus ``PYPY_REFUSES`` for the objects only PyPy's catalog has; everything
else must load to the same description as the original, and ``PYPY_EXPECTED_FAILURES`` lists,
with the reason, what PyPy cannot do.

    .venv/bin/python -m pytest -q -p no:cacheprovider -s tests/test_dill_suite.py
"""

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import fresh_units
import pytest
import upstream_suite

import satchel
from conftest import run_script

pytest.importorskip("dill", reason="dill (requirements-dev.txt) is not installed")
# What both children use to describe an object: plain data, compared in the parent.
_DESCRIBE = r"""
import collections.abc, itertools, re, types

_ADDR = re.compile(r"0x[0-9a-fA-F]+")


def tname(t):
    return f"{getattr(t, '__module__', '?')}.{getattr(t, '__qualname__', getattr(t, '__name__', '?'))}"


def _norm(text):
    return _ADDR.sub("0x?", text)


def describe(obj, depth=0):
    try:
        return _describe(obj, depth)
    except Exception as exc:
        return ("describe failed", tname(type(exc)), _norm(str(exc)))


_ITER_MODULES = ("builtins", "itertools", "collections", "_collections")


def _describe(obj, depth):
    t = type(obj)
    if depth > 2:
        return ("deep", tname(t))
    if isinstance(obj, type):
        names = tuple(sorted(k for k in vars(obj) if not k.startswith("__")))
        return ("class", obj.__module__, obj.__qualname__, tuple(map(tname, obj.__mro__)), names)
    if isinstance(obj, types.FunctionType):
        c = obj.__code__
        return ("function", obj.__module__, obj.__qualname__, c.co_argcount, c.co_names,
                c.co_varnames, _norm(repr(obj.__defaults__)))
    if isinstance(obj, types.ModuleType):
        return ("module", obj.__name__)
    if isinstance(obj, types.CodeType):
        return ("code", obj.co_name, obj.co_code, obj.co_consts)
    if isinstance(obj, types.MappingProxyType):
        # '__slotnames__' is copyreg's cache, set on a class in the process that pickled one
        # of its instances (the sender did, earlier in the catalog), not part of the class.
        items = sorted((k, _norm(repr(v))) for k, v in obj.items() if k != "__slotnames__")
        return ("mappingproxy", tuple(items))
    if isinstance(obj, memoryview):
        return ("memoryview", obj.format, obj.shape, obj.tobytes(), obj.readonly)
    if isinstance(obj, collections.abc.Iterator) and t.__module__ in _ITER_MODULES:
        items = tuple(describe(v, depth + 1) for v in itertools.islice(obj, 5))
        return ("iterator", tname(t), items)
    state = None
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        try:
            state = tuple(sorted((k, tname(type(v))) for k, v in vars(obj).items()))
        except TypeError:
            state = None
    return ("object", tname(t), _norm(repr(obj)), state)
"""

_SENDER = (
    _DESCRIBE
    + r"""
import pickle, sys, warnings
warnings.simplefilter("ignore")
import dill, dill._objects as catalog
import satchel

DUMPERS = {
    "satchel": satchel.dumps,
    "portable": lambda o: satchel.dumps(o, mode="portable"),
    "dill": dill.dumps,
}
try:
    import cloudpickle
    DUMPERS["cloudpickle"] = cloudpickle.dumps
except (ImportError, AttributeError):  # PyPy 3.11: cloudpickle#592
    pass


def entries():
    out = dict(catalog.a)
    for name, obj in catalog.x.items():
        out[f"{name} (failures)" if name in out else name] = obj
    return out


def main(out_path, todo_path):
    todo = pickle.load(open(todo_path, "rb"))
    objs = entries()
    with open(out_path, "ab") as out:
        if todo is None:
            todo = sorted(objs)
            pickle.dump(("units", todo), out)
        for key in todo:
            pickle.dump(("start", key), out)
            out.flush()
            obj = objs[key]
            try:
                cls = obj.__class__  # a weak proxy's is its referent's
            except Exception:
                cls = type(obj)
            if type(obj) is super:
                cls = type(obj.__self__)  # what a super object stands for
            rec = {"type": tname(type(obj)), "type_name": type(obj).__name__, "class": tname(cls)}
            for label, dump in DUMPERS.items():  # only the dumpers that import here
                try:
                    rec[label] = ("ok", dump(obj))
                except Exception as exc:
                    rec[label] = ("err", tname(type(exc)), str(exc),
                                  isinstance(exc, (pickle.PicklingError, TypeError)))
            rec["desc"] = describe(obj)  # last: describing an iterator consumes it
            pickle.dump(("done", key, rec), out)
            out.flush()


main(*sys.argv[1:3])
"""
)

# Objects that cloudpickle round-trips and satchel does not (either mode), with the reason.
# Only ever remove entries: the test fails when a listed object passes.
EXPECTED_FAILURES = {}

# Objects satchel refuses in portable mode only, by design; the refusal must say so.
PORTABLE_REFUSES = {
    "CodeType": (
        "a code object is bytecode for one interpreter version (docs/FORMAT.md): portable mode "
        "refuses it and says to pickle the function instead",
        "in portable mode",
    ),
}

# Objects cloudpickle refuses that satchel pickles as another type, by design.
SATCHEL_ONLY_CHANGES = {
    "FileType": "an unbuffered binary file loads as an io.BytesIO of its contents (README)",
}

# The catalog objects satchel refuses on CPython (both modes): key -> the first version that
# refuses it (None: every version). On CPython the test checks that this is exactly what
# satchel refuses there (measured on 3.11 and 3.15; cloudpickle refuses each too, or writes a
# stream that does not load, which test_dill_catalog checks); on PyPy, where cloudpickle does
# not import (cloudpickle#592), it is the reference for what satchel may refuse.
_ITERTOOLS_314 = (3, 14)  # Python 3.14 removed the pickle support of itertools objects
CPYTHON_REFUSES = {
    **dict.fromkeys(
        (
            # ctypes objects: C data and function pointers
            "CCharArrayType",
            "CCharPType",
            "CDLLType",
            "CFUNCTYPEType",
            "CFunctionType",
            "CParamType",
            "CVoidPType",
            "CWCharArrayType",
            "CWCharPType",
            "FieldType",
            "FuncPtrType",
            "LPCCharObjType",
            "LPCCharType",
            "NullPtrType",
            "NullPyObjectType",
            "PyDLLType",
            "PyObjectType",
            "StructType",
            "PyCapsuleType",
            # C state no reduction sees: csv, hashes, compressors, regex matches, locks, ...
            "CSVDictReaderType",
            "CSVDictWriterType",
            "CSVReaderType",
            "CSVWriterType",
            "DialectType",
            "HMACType",
            "HashType",
            "ZlibCompressType",
            "ZlibDecompressType",
            "SREMatchType",
            "SREScannerType",
            "CallableIteratorType (failures)",
            "LockType",
            "RLockType",
            "QueueType",
            "CmpKeyObjType",
            "CmpKeyType",
            # ... and what holds a lock or an open OS resource
            "FileHandlerType",
            "MemoryHandlerType",
            "RotatingFileHandlerType",
            "SocketHandlerType",
            "StreamHandlerType",
            "SocketPairType",
            "SocketType",
            "GzipFileType",
            "TemporaryFileType",
            "StreamReader",
            # ... only where the build has _bz2, _sqlite3 and _dbm (sid's 3.14, not pyenv's)
            "BZ2CompressorType",
            "BZ2DecompressorType",
            "BZ2FileType",
            "ConnectionType",
            "CursorType",
            "DbmType",
            # iterators over C internals, frames, weak references, method descriptors
            "DictionaryItemIteratorType",
            "DictionaryValueIteratorType",
            "LineIteratorType",
            "MemoryIteratorType",
            "PositionsIteratorType",
            "SymtableEntryType",
            "FrameType",
            "TracebackType",
            "DeadCallableProxyType",
            "DeadProxyType",
            "DeadReferenceType",
            "ReferenceType",
            "ClassMethodDescriptorType",
            "DictProxyType",
        )
    ),
    **dict.fromkeys(
        ("CombinationsType", "CompressType", "PermutationsType", "ProductType"), _ITERTOOLS_314
    ),
}

# Objects whose copy differs from the original, as cloudpickle's (and plain pickle's) does:
# key -> (what it loads as, why). "referent": an object of the class it stands for (its
# `__class__`; a super object's bound object's); "items": an iterator over the same items.
# On CPython every object that loads as something else than the original (and is not in
# SATCHEL_ONLY_CHANGES) must be listed here; where there is no cloudpickle to compare with
# (PyPy), the listed outcome is the reference.
_ITER_COPY = (
    "items",
    "its own __reduce__ is iter() of a list of the remaining items: it loads as a list "
    "iterator over them",
)
LOADS_AS_COPY = {
    "ProxyType": ("referent", "a weak proxy forwards __reduce_ex__ to its referent"),
    "CallableProxyType": ("referent", "a weak proxy forwards __reduce_ex__ to its referent"),
    "SuperType": (
        "referent",
        "a super object forwards __reduce_ex__ to the object it binds (before Python 3.15, "
        "which gave super a reduction of its own)",
    ),
    "DictReverseitemiteratorType": _ITER_COPY,
    "DictReversekeyiteratorType": _ITER_COPY,
    "DictReversevalueiteratorType": _ITER_COPY,
    "DictionaryKeyIteratorType": _ITER_COPY,
    "OdictIteratorType": _ITER_COPY,
    "SetIteratorType": _ITER_COPY,
}


def _loads_as_listed(rec, got, key):
    """Whether a loaded description is what LOADS_AS_COPY says ``key`` loads as."""
    if got[0] != "ok":
        return False
    if LOADS_AS_COPY[key][0] == "items":
        return got[1][0] == "iterator" and got[1][2] == rec["desc"][2]
    return got[1][0] == "object" and got[1][1] == rec["class"]


# PyPy's catalog, where it differs from CPython's: key -> why satchel refuses it there.
PYPY_REFUSES = {
    "BZ2CompressorType": "a bz2 compressor's state is C data (PyPy's own error: cannot serialize)",
    "BZ2DecompressorType": "a bz2 decompressor's state is C data (cannot serialize)",
    "BZ2FileType": "an open bz2 file reads through a buffered reader that names no file",
    "ConnectionType": "an sqlite3 connection (PyPy's _sqlite3 is Python over cffi) holds a C "
    "handle, a _cffi_backend._CDataBase",
    "CursorType": "an sqlite3 cursor holds its connection's C handle",
    "CallableIteratorType": (
        "PyPy's catalog has only dill's 'failures' entry under this key (re.finditer's "
        "iterator over an SRE_Scanner); CPython's 'CallableIteratorType (failures)' is refused "
        "too"
    ),
}

# Objects CPython satchel round-trips that PyPy satchel does not: key -> why (what PyPy
# lacks). Only ever remove entries: the test fails when a listed object passes.
PYPY_EXPECTED_FAILURES = {}

MODES = ("satchel", "portable")


def _cloudpickle_imports():
    """Whether cloudpickle, the reference, imports here (not on PyPy 3.11: cloudpickle#592)."""
    probe = subprocess.run(
        [sys.executable, "-c", "import cloudpickle"], capture_output=True, check=False, timeout=120
    )
    return probe.returncode == 0


def _refused_on_cpython(keys):
    return {
        k
        for k, since in CPYTHON_REFUSES.items()
        if k in keys and (since is None or sys.version_info >= since)
    }


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    probe = subprocess.run(
        [sys.executable, "-c", "import dill._objects"],
        capture_output=True,
        check=False,
        timeout=120,
    )
    if probe.returncode != 0:
        pytest.skip(f"dill's catalog does not import here: {probe.stderr.decode()[-300:]}")
    tmp = tmp_path_factory.mktemp("dill-catalog")
    send = tmp / "send"
    send.mkdir()
    dumped, dump_crashes = fresh_units.run_resumable(_SENDER, send)
    streams = {
        (key, label): rec[label][1]
        for key, rec in dumped.items()
        for label in ("cloudpickle", *MODES, "dill")
        if label in rec and rec[label][0] == "ok"
    }
    loaded = fresh_units.load_in_fresh_process(_DESCRIBE + "\njudge = describe\n", streams, tmp)
    return dumped, dump_crashes, loaded


def _outcome(rec, loaded, key, label):
    """'ok', or what went wrong for this object in this mode."""
    if rec[label][0] != "ok":
        return f"dump failed: {rec[label][1]}: {rec[label][2][:300]}"
    got = loaded[(key, label)]
    if got[0] != "ok":
        return f"load failed in a fresh process: {got[1]}: {got[2][:300]}"
    cp = loaded.get((key, "cloudpickle"))
    if got[1] == rec["desc"] or (cp is not None and cp[0] == "ok" and got[1] == cp[1]):
        return "ok"
    return f"loads a different object: {got[1]!r:.300} (the original: {rec['desc']!r:.300})"


def _clear_refusal(rec, label):
    """None, or why satchel's refusal is not a pickling error naming what it refused."""
    _, etype, msg, is_pickling_error = rec[label]
    # The object's type, the path to the part refused, or the part itself: "Can't pickle <...>"
    # is the pickler's own error for what it cannot find by name (PyPy's `type.__prepare__`,
    # a classmethod over a built-in function that no module exports).
    named = rec["type_name"] in msg or any(
        f"{w} " in msg for w in ("attribute", "argument", "item", "cannot pickle", "Can't pickle")
    )
    if is_pickling_error and named:
        return None
    return f"unclear refusal {etype}: {msg[:300]}"


def test_dill_catalog(catalog, capsys):
    dumped, dump_crashes, loaded = catalog
    assert not dump_crashes, f"a child crashed while dumping: {dump_crashes}"
    keys = sorted(dumped)
    assert len(keys) > 150, f"dill's catalog has only {len(keys)} objects"
    if _cloudpickle_imports():
        _check_against_cloudpickle(dumped, loaded, keys, capsys)
    else:
        _check_against_cpython_lists(dumped, loaded, keys, capsys)


def _round_trips(dumped, loaded, key, label):
    return dumped[key][label][0] == "ok" and loaded[(key, label)][0] == "ok"


def _counts(dumped, loaded, keys, accepted):
    """The summary line's satchel part: round-trips and refusals per mode."""
    parts = []
    for label in MODES:
        ok = sum(1 for k in keys if accepted(k, label))
        refused = sum(1 for k in keys if dumped[k][label][0] != "ok")
        parts.append(f"{label}: round-trips {ok}, refuses {refused}")
    return "; ".join(parts)


def _check_against_cloudpickle(dumped, loaded, keys, capsys):
    cp_ok = [k for k in keys if _round_trips(dumped, loaded, k, "cloudpickle")]
    problems, defects = [], {}
    for key in keys:
        rec = dumped[key]
        for label in MODES:
            outcome = _outcome(rec, loaded, key, label) if rec[label][0] == "ok" else None
            if key not in cp_ok and outcome is not None and outcome != "ok":
                # cloudpickle refuses it: satchel's stream must still load, to the same type
                # unless satchel documents another one.
                got = loaded[(key, label)]
                changed = got[0] == "ok" and got[1][0] == "object" and got[1][1] != rec["type"]
                if got[0] != "ok" or (changed and key not in SATCHEL_ONLY_CHANGES):
                    defects.setdefault(key, []).append(f"{label}: {outcome}")
            elif outcome not in (None, "ok"):
                # A stream satchel wrote must load, and to the right object.
                defects.setdefault(key, []).append(f"{label}: {outcome}")
            elif outcome is None and key in cp_ok:
                if label == "portable" and key in PORTABLE_REFUSES:
                    marker = PORTABLE_REFUSES[key][1]
                    if marker not in rec[label][2]:
                        problems.append(f"{key}: portable refusal does not say why: {rec[label]}")
                    continue
                defects.setdefault(key, []).append(f"{label}: {_outcome(rec, loaded, key, label)}")
        if rec["cloudpickle"][0] != "ok" and rec["satchel"][0] != "ok":
            # Both refuse: satchel's error is a pickling error that names what it refused.
            unclear = _clear_refusal(rec, "satchel")
            if unclear:
                problems.append(f"{key}: {unclear}")
        for label in MODES:
            got = loaded.get((key, label), ("missing",))
            if got[0] != "ok" or got[1] == rec["desc"] or key in SATCHEL_ONLY_CHANGES:
                continue
            # It loads as something else than the original: PyPy's reference needs to know.
            if key not in LOADS_AS_COPY:
                problems.append(
                    f"{key}: {label} loads as {got[1]!r:.200}: list it in LOADS_AS_COPY"
                )
            elif not _loads_as_listed(rec, got, key):
                problems.append(
                    f"{key}: {label} does not load as LOADS_AS_COPY says: {got[1]!r:.200}"
                )
    for key in PORTABLE_REFUSES:
        if dumped[key]["portable"][0] == "ok":
            problems.append(f"{key} is listed in PORTABLE_REFUSES but portable mode pickles it")
    # CPYTHON_REFUSES, PyPy's reference, is exactly what satchel refuses here.
    expected = _refused_on_cpython(keys)
    for label in MODES:
        refused = {k for k in keys if dumped[k][label][0] != "ok"}
        if label == "portable":
            refused -= set(PORTABLE_REFUSES)
        if refused != expected:
            problems.append(
                f"{label}: CPYTHON_REFUSES is out of date here: refused but not listed "
                f"{sorted(refused - expected)}, listed but not refused {sorted(expected - refused)}"
            )

    def count(label):
        return sum(
            1
            for k in keys
            if _round_trips(dumped, loaded, k, label)
            and _outcome(dumped[k], loaded, k, label) == "ok"
        )

    both_refuse = sum(
        1 for k in keys if dumped[k]["cloudpickle"][0] != "ok" and dumped[k]["satchel"][0] != "ok"
    )
    dill_only = [
        k
        for k in keys
        if _round_trips(dumped, loaded, k, "dill")
        and _outcome(dumped[k], loaded, k, "satchel") != "ok"
    ]
    line = (
        f"dill {__import__('dill').__version__}'s catalog, {len(keys)} objects: cloudpickle "
        f"round-trips {len(cp_ok)}, satchel {count('satchel')} (portable {count('portable')}), "
        f"dill {sum(1 for k in keys if _round_trips(dumped, loaded, k, 'dill'))}; both "
        f"cloudpickle and satchel refuse {both_refuse}; satchel refuses: "
        + ", ".join(
            f"{label} {sum(1 for k in keys if dumped[k][label][0] != 'ok')}" for label in MODES
        )
    )
    with capsys.disabled():
        print(f"\n{line}")
        if dill_only:
            print(f"  dill round-trips, satchel does not: {', '.join(dill_only)}")
    unexpected = {k: v for k, v in defects.items() if k not in EXPECTED_FAILURES}
    if unexpected:
        problems.append(
            "satchel fails where cloudpickle round-trips (or writes a stream that does not "
            "load):\n  " + "\n  ".join(f"{k}: {'; '.join(v)}" for k, v in unexpected.items())
        )
    fixed = [k for k in EXPECTED_FAILURES if k not in defects]
    if fixed:
        problems.append(f"listed in EXPECTED_FAILURES but passing now (remove them): {fixed}")
    assert not problems, f"{line}\n" + "\n".join(problems)


def _check_against_cpython_lists(dumped, loaded, keys, capsys):
    """Where cloudpickle does not import (PyPy): every object is still dumped by satchel in
    both modes and loaded in a fresh process. A refusal must be one satchel makes on CPython
    too (CPYTHON_REFUSES, checked there) or one listed for PyPy with its reason, and be a
    pickling error that names what it refused; every stream must load to the same description
    as the original (where CPython refuses the object, to the same type)."""
    cpython_refuses = set(CPYTHON_REFUSES)  # any version's: PyPy's catalog is 3.11's
    problems, failing = [], {}
    for key in keys:
        rec = dumped[key]
        for label in MODES:
            if rec[label][0] != "ok":
                if label == "portable" and key in PORTABLE_REFUSES:
                    if PORTABLE_REFUSES[key][1] not in rec[label][2]:
                        problems.append(f"{key}: portable refusal does not say why: {rec[label]}")
                    continue
                unclear = _clear_refusal(rec, label)
                if unclear:
                    problems.append(f"{key}: {label}: {unclear}")
                if key not in cpython_refuses and key not in PYPY_REFUSES:
                    failing.setdefault(key, []).append(
                        f"{label}: {_outcome(rec, loaded, key, label)}"
                    )
                continue
            outcome = _outcome(rec, loaded, key, label)
            got = loaded[(key, label)]
            if key in LOADS_AS_COPY:
                good = outcome == "ok" or _loads_as_listed(rec, got, key)
            elif key in cpython_refuses or key in SATCHEL_ONLY_CHANGES:
                # CPython refuses it, so there is no round trip to hold it to: it must load, to
                # the same type unless satchel documents another one.
                changed = got[0] == "ok" and got[1][0] == "object" and got[1][1] != rec["type"]
                good = got[0] == "ok" and (not changed or key in SATCHEL_ONLY_CHANGES)
            else:
                good = outcome == "ok"
            if not good:
                failing.setdefault(key, []).append(f"{label}: {outcome}")
    for key in PYPY_REFUSES:
        if key in dumped and any(dumped[key][label][0] == "ok" for label in MODES):
            problems.append(f"{key} is listed in PYPY_REFUSES but satchel pickles it now")
    unexpected = {k: v for k, v in failing.items() if k not in PYPY_EXPECTED_FAILURES}
    if unexpected:
        problems.append(
            "satchel fails here on an object it round-trips on CPython (or writes a stream "
            "that does not load):\n  "
            + "\n  ".join(f"{k}: {'; '.join(v)}" for k, v in unexpected.items())
        )
    fixed = [k for k in PYPY_EXPECTED_FAILURES if k not in failing]
    if fixed:
        problems.append(f"listed in PYPY_EXPECTED_FAILURES but passing now (remove them): {fixed}")
    accepted = {
        (k, label)
        for k in keys
        for label in MODES
        if dumped[k][label][0] == "ok" and k not in failing
    }
    dill_trips = sum(1 for k in keys if _round_trips(dumped, loaded, k, "dill"))
    # (Those every CPython refuses: the itertools ones pickle before 3.14, as on PyPy 3.11.)
    beyond_cpython = sorted(
        k for k in keys if CPYTHON_REFUSES.get(k, 0) is None and (k, "satchel") in accepted
    )
    line = (
        f"dill {__import__('dill').__version__}'s catalog on "
        f"{sys.implementation.name} (no cloudpickle here), {len(keys)} objects: "
        + _counts(dumped, loaded, keys, lambda k, label: (k, label) in accepted)
        + f"; expected failures {len(PYPY_EXPECTED_FAILURES)}; dill round-trips {dill_trips}"
    )
    with capsys.disabled():
        print(f"\n{line}")
        if beyond_cpython:
            print(f"  satchel pickles here what it refuses on CPython: {', '.join(beyond_cpython)}")
    assert not problems, f"{line}\n" + "\n".join(problems)


def test_satchel_version_is_the_one_under_test():
    """The children import the same satchel as this process (the catalog measures it)."""
    out = subprocess.run(
        [sys.executable, "-c", "import satchel; print(satchel.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert Path(out.stdout.strip()) == Path(satchel.__file__)


# --- dill's own tests, with satchel standing in for dill.dumps/loads/copy -----------------

# dill's test modules that pickle through dill's public dumps/loads/dump/load/copy/pickles.
# Left out: test_check (runs dill in a subprocess), test_detect/test_source/test_sources/
# test_diff/test_logger/test_temp/test_session (dill's own tools and session files),
# test_file (dill's fmode settings), test_extendpickle (dill's Pickler registry),
# test_objects/test_registered (dill's catalog: test_dill_catalog above holds satchel to it),
# test_pycapsule (dill's own PyCapsule reduction, which cloudpickle refuses too).
DILL_TEST_FILES = (
    "test_abc.py",
    "test_classdef.py",
    "test_dataclasses.py",
    "test_dictviews.py",
    "test_fglobals.py",
    "test_functions.py",
    "test_functors.py",
    "test_mixins.py",
    "test_module.py",
    "test_moduledict.py",
    "test_nested.py",
    "test_properties.py",
    "test_recursive.py",
    "test_restricted.py",
    "test_selected.py",
    "test_threads.py",
    "test_weakref.py",
)

# Runs one of dill's test modules the way `python -m dill.tests` does, as `__main__` (so its
# functions and classes are pickled by value, not found by import), but calls each test_*
# function on its own (in definition order) and records its outcome instead of stopping at the
# first failure. With "satchel", dill's dumps/loads/dump/load (and so copy and pickles, which
# call them) are satchel's; a dill-only setting (byref=True, fmode, ignore=True) makes the test
# "skipped", as satchel has no such setting. recurse is accepted: satchel always pickles only
# the globals a function uses, which is what dill's recurse=True does.
_DILL_RUNNER = r"""
import ast, builtins, io, json, sys, traceback, types, warnings

path, mode, out_path = sys.argv[1:4]
sys.path.insert(0, __import__("os").path.dirname(path))
# The test module is __main__ before dill is imported: dill keeps the __main__ it saw first.
main = types.ModuleType("__main__")
main.__file__ = path
main.__builtins__ = builtins
sys.modules["__main__"] = main
import dill, dill._dill


class NotApplicable(BaseException):
    pass


if mode != "dill":
    if mode == "satchel":
        import satchel as stand_in
    else:
        import cloudpickle as stand_in

    def _check(byref=None, fmode=None, ignore=None):
        byref = dill.settings["byref"] if byref is None else byref
        fmode = dill.settings["fmode"] if fmode is None else fmode
        if byref:
            raise NotApplicable("dill-only setting byref=True")
        if fmode:  # dill's default, HANDLE_FMODE, is 0
            raise NotApplicable(f"dill-only setting fmode={fmode}")
        if ignore:
            raise NotApplicable("dill-only setting ignore=True")

    def dumps(obj, protocol=None, byref=None, fmode=None, recurse=None, **kwds):
        _check(byref, fmode)
        return stand_in.dumps(obj, protocol=protocol)

    def dump(obj, file, protocol=None, byref=None, fmode=None, recurse=None, **kwds):
        _check(byref, fmode)
        stand_in.dump(obj, file, protocol=protocol)

    def loads(data, ignore=None, **kwds):
        _check(ignore=ignore)
        return stand_in.loads(data)

    def load(file, ignore=None, **kwds):
        _check(ignore=ignore)
        return stand_in.load(file)

    for module in (dill, dill._dill):
        module.dumps, module.dump, module.loads, module.load = dumps, dump, loads, load

source = open(path).read()
tree = ast.parse(source)
tree.body = [
    n for n in tree.body
    if not (isinstance(n, ast.If) and "__main__" in ast.unparse(n.test))
]
results = {}
try:
    exec(compile(tree, path, "exec"), main.__dict__)
except NotApplicable as exc:
    results["<module>"] = ("skipped", str(exc))
except BaseException:
    results["<module>"] = ("error", traceback.format_exc(limit=-3))
else:
    for name, fn in list(main.__dict__.items()):
        if not name.startswith("test_") or getattr(fn, "__module__", None) != "__main__":
            continue
        if not isinstance(fn, types.FunctionType):
            continue
        try:
            with warnings.catch_warnings():
                fn()
            results[name] = ("passed", "")
        except NotApplicable as exc:
            results[name] = ("skipped", str(exc))
        except ModuleNotFoundError as exc:
            results[name] = ("skipped", f"needs a module that is not installed: {exc}")
        except BaseException:
            results[name] = ("failed", traceback.format_exc(limit=-3))
with open(out_path, "w") as f:
    json.dump(results, f)
"""

DILL_VERSION = "0.4.1"  # requirements-dev.txt pins it; its wheel ships the tests

# dill test -> why it fails with cloudpickle 3.1.2 standing in for dill: where cloudpickle's
# contract (which satchel keeps) differs from dill's. Measured here; the list only shrinks.
_SAME_CLASS = (
    "loading a class in the process that pickled it gives back the original class "
    "(cloudpickle's class tracking); dill's test asserts a new class"
)
_LOCKS = "a Thread holds locks: cloudpickle and satchel refuse them (dill makes new ones)"
_SHARED = {
    "test_abc.py::test_abc_non_local": _SAME_CLASS,
    "test_abc.py::test_abc_local": _SAME_CLASS,
    "test_classdef.py::test_namedtuple": _SAME_CLASS,
    "test_classdef.py::test_inherit": _SAME_CLASS,
    "test_dataclasses.py::test_dataclasses": _SAME_CLASS,
    "test_classdef.py::test_array_subclass": (
        "a numpy.ndarray subclass pickles through ndarray.__reduce__, which drops the "
        "instance __dict__ (dill adds it back with its own numpy reduction)"
    ),
    "test_dictviews.py::test_dictproxy_trick": (
        "dill's own mappingproxy reduction (one copy of an OrderedDict shared by its views)"
    ),
    "test_recursive.py::test_recursive_function": (
        "dill's recurse=True drops a recursive function's reference to itself from its "
        "globals; cloudpickle and satchel keep it"
    ),
    "test_selected.py::test_dict_contents": (
        "type.__dict__['__prepare__'] is a classmethod_descriptor, which cloudpickle and "
        "satchel refuse (dill pickles it); on PyPy a classmethod over a built-in function that "
        "no module exports, which satchel refuses too"
    ),
    "test_threads.py::test_new_thread": _LOCKS,
    "test_threads.py::test_run_thread": _LOCKS,
    "test_threads.py::test_join_thread": _LOCKS,
    "test_weakref.py::test_weakref": (
        "weakref.ref/proxy: cloudpickle and satchel refuse them (dill pickles a reference to "
        "a copy, which is dead on arrival)"
    ),
}
CLOUDPICKLE_EXPECTED_FAILURES = {
    **_SHARED,
    "test_selected.py::test_class_descriptors": (
        "cloudpickle refuses a __main__ class's __dict__/__weakref__ getset descriptors "
        "(satchel pickles them)"
    ),
}
# dill test -> why it fails with satchel: cloudpickle's list, less what satchel pickles and
# cloudpickle does not, plus one deliberate difference. Only ever remove entries.
DILL_EXPECTED_FAILURES = {
    **_SHARED,
    "test_selected.py::test_frame_related": (
        "satchel pickles started generators (its feature); the test asserts that a generator "
        "does not pickle"
    ),
}
EXPECTED = {
    "dill": {},
    "cloudpickle": CLOUDPICKLE_EXPECTED_FAILURES,
    "satchel": DILL_EXPECTED_FAILURES,
}
# dill's own failures on PyPy: test -> why.
DILL_PYPY_FAILURES = {
    "test_weakref.py::test_weakref": (
        "a proxy to a temporary is dead on PyPy by the time it is checked (its GC ran; no "
        "reference counting) and dill.detect.errors reports the ReferenceError"
    ),
}


def _expected(mode):
    """EXPECTED[mode], less the tests whose body does not run here, plus dill's own failures
    on PyPy."""
    import importlib.util

    import dill._dill

    expected = dict(EXPECTED[mode])
    if importlib.util.find_spec("numpy") is None:
        # Its body is `try: import numpy ... except ImportError: pass`.
        expected.pop("test_classdef.py::test_array_subclass", None)
    if not dill._dill.MAPPING_PROXY_TRICK:
        # Its body runs only where dill's mapping proxy trick works (not on PyPy).
        expected.pop("test_dictviews.py::test_dictproxy_trick", None)
    if sys.implementation.name == "pypy" and mode == "dill":
        expected.update(DILL_PYPY_FAILURES)
    return expected


def _run_dill_tests(root, mode, tmp):
    outcomes, reasons = {}, {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    for name in DILL_TEST_FILES:
        out = tmp / f"{mode}-{name}.json"
        cmd = [sys.executable, "-c", _DILL_RUNNER, str(root / name), mode, str(out)]
        try:
            proc = subprocess.run(
                cmd,
                capture_output=True,
                check=False,
                timeout=fresh_units.CHILD_TIMEOUT,
                env=env,
                cwd=tmp,
            )
            why = proc.stderr.decode(errors="replace")[-500:]
        except subprocess.TimeoutExpired:
            why = f"timed out after {fresh_units.CHILD_TIMEOUT} s"
        if not out.exists():
            outcomes[f"{name}::<module>"] = "error"
            reasons[f"{name}::<module>"] = f"the runner died: {why}"
            continue
        for test, (outcome, reason) in json.loads(out.read_text()).items():
            outcomes[f"{name}::{test}"] = outcome
            reasons[f"{name}::{test}"] = reason
    return outcomes, reasons


@pytest.fixture(scope="module")
def dill_tests(tmp_path_factory):
    import dill

    if dill.__version__ != DILL_VERSION:
        pytest.skip(f"dill {dill.__version__} is installed; these lists are for {DILL_VERSION}")
    tmp = tmp_path_factory.mktemp("dill-tests")
    root = tmp / "tests"
    # A copy: test_module.py deletes its neighbours' bytecode caches.
    shutil.copytree(Path(dill.__file__).parent / "tests", root)
    return root, tmp


@pytest.mark.parametrize("mode", ["dill", "cloudpickle", "satchel"])
def test_dill_own_tests(dill_tests, mode, capsys):
    if mode == "dill" and sys.version_info >= (3, 15):
        pytest.skip(f"dill {DILL_VERSION} does not support Python 3.15 (it reads code.co_lnotab)")
    if mode == "cloudpickle" and not _cloudpickle_imports():
        pytest.skip("cloudpickle does not import here (PyPy 3.11: cloudpickle#592)")
    root, tmp = dill_tests
    outcomes, reasons = _run_dill_tests(root, mode, tmp)
    title = f"dill {DILL_VERSION}'s own tests ({len(DILL_TEST_FILES)} modules) with {mode}"
    upstream_suite.check(title, outcomes, reasons, _expected(mode), capsys)


def test_a_type_made_by_c_that_nothing_names_is_refused():
    """A heap type made by C code (here `_sre.SRE_Scanner`, which `_sre` does not export; on
    3.13+ also ctypes' array and pointer metaclasses, found by the catalog) cannot be rebuilt by
    value: satchel used to write it as a Python class whose slot methods the receiver then
    failed to look up. It is refused when dumped, naming the type."""
    import re

    scanner_type = type(re.compile("").scanner(""))
    with pytest.raises(satchel.PicklingError, match="SRE_Scanner"):
        satchel.dumps(scanner_type)
    with pytest.raises(satchel.PicklingError, match="SRE_Scanner"):
        satchel.dumps(scanner_type, mode="portable")


def test_weak_references_and_tracebacks_are_refused_with_a_pickling_error():
    """Found by the catalog on PyPy: there a weakref.ref went through object.__reduce_ex__ into
    a stream that failed to load with a bare TypeError (``ReferenceType.__new__() missing 1
    required positional argument``), and a traceback's own ``__reduce__`` crashed the
    interpreter. Both are refused at dump time, as on CPython; a live weak proxy still pickles
    its referent (it forwards ``__reduce_ex__``, as on CPython), and a reduction registered
    with copyreg (as tblib does for tracebacks) still wins. In a fresh process: a library
    imported by the test session (tblib) may have registered one already."""
    out = run_script(
        """
        import copyreg, pickle, types, weakref
        import satchel

        class Target:
            pass

        target = Target()
        try:
            raise ValueError("x")
        except ValueError as exc:
            traceback = exc.__traceback__
        results = []
        for mode in ("nonportable", "portable"):
            for obj in (weakref.ref(target), traceback):
                try:
                    satchel.dumps(obj, mode=mode)
                    results.append("dumped")
                except satchel.PicklingError as exc:
                    results.append(str(exc))
        results.append(type(pickle.loads(satchel.dumps(weakref.proxy(target)))).__name__)
        copyreg.pickle(types.TracebackType, lambda tb: (str, ("a traceback",)))
        results.append(pickle.loads(satchel.dumps(traceback)))
        print(repr(results))
        """
    )
    results = ast.literal_eval(out.decode())
    for refused in results[:4:2]:
        assert "weakref.ReferenceType" in refused
    for refused in results[1:4:2]:
        assert "'traceback'" in refused
    assert results[4:] == ["Target", "a traceback"]
