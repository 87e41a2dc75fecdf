"""satchel's load-time constructors (stdlib only).

Every public top-level name in this file is **wire format**: satchel streams call these through
STACK_GLOBAL as ``_satchel_boot_<major>.<name>``. Never rename, move or change the meaning of one;
add new ones and raise FORMAT_VERSION's minor instead. Names starting with ``_`` are private.

The module is importable as ``_satchel_boot_1`` once satchel is installed; the same source is
embedded in satchel's binary (``satchel._satchel.BOOTSTRAP_SOURCE``) and, minified and
compressed, in standalone streams.

Sections, by role (as in cloudpickle): the stream header (errors, fingerprint, check),
reconstructors, state setters, the dynamic-class tracker. It must run on every interpreter a
portable stream targets (CPython 3.9+ syntax, PyPy 3.9): nothing newer than 3.9 here.
"""

import builtins
import functools
import hashlib
import pickle
import struct
import sys
import threading
import types
import weakref

FORMAT_VERSION = "1.5.0"


#: Which parts of the bootstrap this module holds: "core" (this file), "bytecode" (bytecode.py,
#: nonportable constructors), "portable" (portable.py). A standalone stream carries the core and
#: the part its mode needs; its loader checks both the version and the parts. A loader (or
#: satchel's import) may run this source again in the same module to add a part or upgrade it:
#: state made with _keep survives that, so classes loaded before keep their identity.
def _keep(name, make):
    g = globals()
    return g[name] if name in g else make()


PARTS = _keep("PARTS", set)
PARTS.add("core")

# ---------------------------------------------------------------------------------------------
# Stream header: every satchel stream calls check(...) before its body (docs/FORMAT.md).
# ---------------------------------------------------------------------------------------------


class UnpicklingError(pickle.UnpicklingError):
    """A satchel stream could not be loaded."""


class IncompatibleFormat(UnpicklingError):
    """The stream needs a newer satchel bootstrap than this receiver has."""


class IncompatibleInterpreter(UnpicklingError):
    """A nonportable stream (bytecode) was made by a different interpreter build."""


# Header flags (wire format). This file is where the wire constants live: build.rs reads
# FORMAT_VERSION above, the FLAG_ lines below, and the "# wire:" comments (constants the
# bootstrap never reads by name, kept as comments so that standalone payloads do not carry
# them) into satchel's Rust side (src/wire.rs); tests/test_wire.py checks both agree.
FLAG_NONPORTABLE = 1
FLAG_COMPRESSED = 2
FLAG_STANDALONE = 4
# wire: FLAG_GENERATORS = 8
# wire: FLAG_STREAMED = 16
# FLAG_GENERATORS: the body holds a started generator's frame; FLAG_STREAMED: the header was
# written before the body (format 1.4). Only a nonportable stream's IncompatibleInterpreter
# reads them (bytecode.py's _mismatch).
# The module a lean header (format 1.5+) imports its check from: where satchel is missing or
# older than 1.5, its name is the ModuleNotFoundError a receiver reads (src/envelope/header.rs).
# wire: LEAN_MODULE = "satchel 1_5+ or standalone=True"
# The one format 1.4's lean headers name (still read): check(version, flags, fingerprint, producer).
# wire: LEAN_MODULE_1_4 = "satchel or dump with standalone=True"

_IMPLEMENTATIONS = {"cpython": "CPython", "pypy": "PyPy"}


def _fingerprint_text():
    """What must match for bytecode (marshal) to mean the same thing on both ends. The micro
    version is left out: releases of one minor share bytecode (same magic number)."""
    import importlib.util
    import sysconfig

    return (
        "impl=%s;version=%d.%d;magic=%s;cache_tag=%s;pointer=%d;byteorder=%s;"
        "gil_disabled=%d;debug=%d;format=%s"
        % (
            (sys.implementation.name,)
            + tuple(sys.version_info[:2])
            + (
                importlib.util.MAGIC_NUMBER.hex(),
                sys.implementation.cache_tag,
                struct.calcsize("P"),
                sys.byteorder,
                bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
                hasattr(sys, "gettotalrefcount"),
                FORMAT_VERSION.split(".")[0],
            )
        )
    )


def _label():
    import importlib.util

    name = _IMPLEMENTATIONS.get(sys.implementation.name, sys.implementation.name)
    bytecode = int.from_bytes(importlib.util.MAGIC_NUMBER[:2], "little")
    return "%s %d.%d/%d" % ((name,) + tuple(sys.version_info[:2]) + (bytecode,))


#: sha256 of _fingerprint_text(), first 16 bytes (satchel's Rust side computes the same).
FINGERPRINT = hashlib.sha256(_fingerprint_text().encode()).digest()[:16]
#: Below protocol 3 the header carries the fingerprint as hex text (no bytes opcode there).
_FINGERPRINT_HEX = FINGERPRINT.hex()
#: "CPython 3.11/3495": implementation, language version, bytecode magic number.
LABEL = _label()


def _version_tuple(version):
    try:
        major, minor = version.split(".")[:2]  # "1" is corrupt too, not an IndexError
        return int(major), int(minor)
    except Exception:  # noqa: BLE001 - shorter than a tuple of types (header bytes)
        raise UnpicklingError("corrupt satchel header: version %r" % (version,)) from None


def check(version, flags, fingerprint, producer):
    """Run by the header, before any of the body is built."""
    if version != FORMAT_VERSION:
        need, have = _version_tuple(version), _version_tuple(FORMAT_VERSION)
        if need[0] != have[0] or need[1] > have[1]:
            raise IncompatibleFormat(
                "stream needs satchel format %s; this receiver has %s: upgrade satchel"
                " (pip install -U satchel)" % (version, FORMAT_VERSION)
            )
    if flags & FLAG_NONPORTABLE and fingerprint != FINGERPRINT and fingerprint != _FINGERPRINT_HEX:
        # Its message is in bytecode.py, which every module that reads nonportable streams has.
        raise IncompatibleInterpreter(_mismatch(flags, producer))  # noqa: F821 (bytecode.py)


def load_zstd(frame):
    """The body of a compressed stream: one zstd frame holding a pickle."""
    return pickle.loads(_zstd_decompress(frame))


def _zstd_decompress(frame):
    try:
        from satchel._satchel import zstd_decompress
    except ImportError:
        pass
    else:
        return zstd_decompress(frame)
    try:
        from compression import zstd  # Python 3.14+
    except ImportError:
        raise UnpicklingError(
            "zstd body: needs satchel (pip install satchel) or Python 3.14+ (compression.zstd);"
            " or dump it with compress=False"
        ) from None
    return zstd.decompress(frame)


# ---------------------------------------------------------------------------------------------
# Reconstructors: build a skeleton; the state setters below fill it in. Building the skeleton
# before the state is what lets self-referential and mutually recursive objects round-trip.
# ---------------------------------------------------------------------------------------------


def make_cell(*contents):
    """A cell: filled when its contents cannot refer back to it, else empty and filled by
    ``cell_setstate`` once memoized, so a cell may hold the function owning it."""
    return types.CellType(*contents)


def make_skeleton_class(metaclass, name, bases, type_kwargs, class_id):
    """A class skeleton (or the class already tracked under ``class_id`` in this process)."""
    known = _known(class_id)
    if known is not None:
        return known  # no throwaway skeleton: its __init_subclass__ would run for nothing
    try:
        skeleton = types.new_class(
            name, bases, {"metaclass": metaclass}, lambda ns: ns.update(type_kwargs)
        )
    except TypeError:
        # Some metaclasses refuse the bare skeleton (typing's TypedDict checks its bases in
        # __new__); the state set afterwards carries everything their __new__ would compute.
        skeleton = type.__new__(metaclass, name, bases, dict(type_kwargs))
    return _track(class_id, skeleton)


def make_skeleton_enum(bases, name, qualname, members, module, class_id):
    """An Enum class built through its metaclass, so members are real members."""
    known = _known(class_id)
    if known is not None:
        return known
    metacls = type(bases[-1]) if bases else type
    classdict = metacls.__prepare__(name, bases)
    for member_name, member_value in members.items():
        classdict[member_name] = member_value
    enum_class = metacls.__new__(metacls, name, bases, classdict)
    enum_class.__module__ = module
    enum_class.__qualname__ = qualname
    return _track(class_id, enum_class)


def make_typevar(kind, name, bound, constraints, covariant, contravariant, class_id):
    """A TypeVar or ParamSpec defined where it cannot be imported (tracked like classes)."""
    known = _known(class_id)
    if known is not None:
        return known
    import typing

    # A ParamSpec has no constraints, so one call serves both kinds.
    return _track(
        class_id,
        getattr(typing, kind)(
            name, *constraints, bound=bound, covariant=covariant, contravariant=contravariant
        ),
    )


def make_module(name):
    """A fresh module for a module pickled by value; never the receiver's sys.modules entry."""
    module = types.ModuleType(name)
    module.__dict__["__builtins__"] = builtins
    return module


def builtin_type(name):
    """A type of the interpreter that is only reachable through the ``types`` module."""
    return getattr(types, name)


def make_lru_cache(func, maxsize, typed):
    """A ``functools.lru_cache`` wrapper around a function pickled by value (cache empty)."""
    return functools.lru_cache(maxsize=maxsize, typed=typed)(func)


def make_weak_mapping(cls, items):
    """A WeakKeyDictionary/WeakValueDictionary/WeakSet; entries whose weak side nothing else in
    the stream holds vanish on load, exactly as they would after a garbage collection."""
    obj = cls()
    if cls is weakref.WeakSet:
        for item in items:
            obj.add(item)
    else:
        for key, value in items:
            obj[key] = value
    return obj


# ---------------------------------------------------------------------------------------------
# State setters (the 6th element of a protocol-5 reduce tuple).
# ---------------------------------------------------------------------------------------------

# Function attributes that may travel in ``extra``, beyond what FunctionType derives from the
# code (name, qualname, doc) and the globals (module). Keys are wire format.
_EXTRA_ATTRS = frozenset(
    (
        "__name__",
        "__qualname__",
        "__module__",
        "__doc__",
        "__annotations__",
        "__kwdefaults__",
        "__type_params__",
    )
)


def _set_extra(func, extra):
    for key, value in extra.items():
        if key in _EXTRA_ATTRS:
            setattr(func, key, value)
        elif key == "__dict__":
            func.__dict__.update(value)
        # "submodules": unpickling them imported them, which is all they are for.


def function_setstate(func, state):
    """Fill a function skeleton: ``(globals it reads, __defaults__, extra)``."""
    fglobals, defaults, extra = state[:3]
    if fglobals:
        func.__globals__.update(fglobals)
    func.__defaults__ = defaults
    if extra is not None:
        _set_extra(func, extra)
    return func


def cell_setstate(cell, state):
    (cell.cell_contents,) = state
    return cell


def class_setstate(cls, state):
    """Set a class's attributes, but only on a skeleton this process just made.

    A class already tracked (loaded earlier, or defined here) keeps its state: re-loading must
    not overwrite it (cloudpickle issue #439). The state is applied under the tracker lock, so
    another thread loading the same class never sees it half filled.
    """
    with _TRACKER_LOCK:
        if _trackable(cls):
            if cls not in _FRESH:
                return cls
            _FRESH.discard(cls)
        (attrs,) = state[:1]
        registry = None
        for attrname, value in attrs.items():
            if attrname == "_abc_impl":
                registry = value
            else:
                setattr(cls, attrname, value)
        if registry is not None:
            for subclass in registry:
                cls.register(subclass)
        return cls


def module_setstate(module, state):
    (attrs,) = state[:1]
    module.__dict__.update(attrs)
    return module


# ---------------------------------------------------------------------------------------------
# Dynamic-class tracker: one class object per lineage in each process, so repeated loads (and a
# dump then load in one process) give the same class. An id is ``LINEAGE`` (the content id of
# the class when first dumped, docs/FORMAT.md) or ``LINEAGE@GENERATION@CONTENT`` once the class
# was changed in place where it was dumped: a newer generation of a class this process holds
# updates it (its state is applied again), an older or equal one changes nothing. satchel's
# Rust side gives classes their ids when it dumps them.
# ---------------------------------------------------------------------------------------------

_TRACKER_LOCK = _keep("_TRACKER_LOCK", threading.RLock)
_BY_ID = _keep("_BY_ID", weakref.WeakValueDictionary)
_BY_OBJECT = _keep("_BY_OBJECT", weakref.WeakKeyDictionary)
_FRESH = _keep("_FRESH", weakref.WeakSet)


def _generation(class_id):
    return int((class_id.split("@") + ["0"])[1])


def _known(class_id):
    with _TRACKER_LOCK:
        known = _BY_ID.get(class_id.split("@")[0])
        if known is not None and _generation(class_id) > _generation(_BY_OBJECT[known]):
            _BY_OBJECT[known] = class_id
            _FRESH.add(known)
        return known


def _track(class_id, obj):
    if not _trackable(obj):
        return obj
    with _TRACKER_LOCK:
        known = _known(class_id)
        if known is not None:
            return known
        _BY_ID[class_id.split("@")[0]] = obj
        _BY_OBJECT[obj] = class_id
        if isinstance(obj, type):
            _FRESH.add(obj)
        return obj


def _trackable(obj):
    """Classes whose metaclass defines __eq__ without __hash__ cannot be weak-dict keys."""
    try:
        hash(obj)
    except TypeError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Generators that are not running: a not-yet-started one is its function and arguments.
# ---------------------------------------------------------------------------------------------


def make_generator(func, args, kwargs):
    """A generator (or coroutine) not started yet: call its function again."""
    if func.__code__.co_varnames[:1] == (".0",):
        # A generator expression's code iterates its argument without GET_ITER: a damaged
        # stream's non-iterator there crashed CPython (tp_iternext is NULL).
        args = (iter(args[0]),) + tuple(args[1:])
    return func(*args, **kwargs)


def exhausted_generator():
    """A finished generator (there is nothing left of one but that it is done)."""
    done = (x for x in ())
    next(done, None)
    return done
