"""satchel's load-time constructors (stdlib only).

Every public top-level name in this file is **wire format**: satchel streams call these through
STACK_GLOBAL as ``_satchel_boot_<major>.<name>``. Never rename, move or change the meaning of one;
add new ones and raise FORMAT_VERSION's minor instead. Names starting with ``_`` are private.

The module is importable as ``_satchel_boot_1`` once satchel is installed; the same source is
embedded in satchel's binary (``satchel._satchel.BOOTSTRAP_SOURCE``).

Sections, by role (as in cloudpickle): reconstructors, state setters, the dynamic-class tracker.
"""

import builtins
import functools
import marshal
import sys
import threading
import types
import weakref

FORMAT_VERSION = "1.0.0"

# ---------------------------------------------------------------------------------------------
# Reconstructors: build a skeleton; the state setters below fill it in. Building the skeleton
# before the state is what lets self-referential and mutually recursive objects round-trip.
# ---------------------------------------------------------------------------------------------


def make_function(code, base_globals, name, closure):
    """A function skeleton; ``function_setstate`` fills globals, defaults and attributes.

    ``base_globals`` is one dict per source module per dump, shared by every function of that
    module in the stream, and never a receiver module's own dict: loading mutates nothing.
    """
    if "__builtins__" not in base_globals:
        base_globals["__builtins__"] = builtins
    return types.FunctionType(code, base_globals, name, None, closure)


def make_code(data, frozensets):
    """A code object from marshal bytes (nonportable mode: the fingerprint pins the format).

    ``frozensets`` lists the paths of frozenset constants that the producer shipped as sorted
    tuples, so that the bytes do not depend on PYTHONHASHSEED; they are turned back here.
    """
    code = marshal.loads(data)
    for path in frozensets:
        code = _restore_frozenset(code, path)
    return code


def _restore_frozenset(container, path):
    index, rest = path[0], path[1:]
    if isinstance(container, types.CodeType):
        consts = list(container.co_consts)
        consts[index] = _restore_frozenset(consts[index], rest) if rest else frozenset(
            consts[index]
        )
        return container.replace(co_consts=tuple(consts))
    items = list(container)
    items[index] = _restore_frozenset(items[index], rest) if rest else frozenset(items[index])
    return tuple(items)


def make_cell():
    """An empty cell; ``cell_setstate`` fills it, so a cell may hold the function owning it."""
    return types.CellType()


def make_skeleton_class(metaclass, name, bases, type_kwargs, class_id):
    """A class skeleton (or the class already tracked under ``class_id`` in this process)."""
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
    import typing

    factory = getattr(typing, kind)
    if kind == "TypeVar":
        obj = factory(
            name, *constraints, bound=bound, covariant=covariant, contravariant=contravariant
        )
    else:
        obj = factory(name, bound=bound, covariant=covariant, contravariant=contravariant)
    return _track(class_id, obj)


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

# The function state is a tuple; these are its fields in order (append new ones at the end).
_FUNCTION_STATE = (
    "globals",
    "__defaults__",
    "__kwdefaults__",
    "__annotations__",
    "__qualname__",
    "__module__",
    "__doc__",
    "__dict__",
    "submodules",
    "__type_params__",
)


def function_setstate(func, state):
    """Fill a function skeleton: globals it reads, defaults, attributes, type params."""
    fglobals, defaults, kwdefaults, annotations, qualname, module, doc, fdict = state[:8]
    func.__globals__.update(fglobals)
    func.__defaults__ = defaults
    func.__kwdefaults__ = kwdefaults
    if annotations is not None:
        func.__annotations__ = annotations
    func.__qualname__ = qualname
    func.__module__ = module
    func.__doc__ = doc
    if fdict:
        func.__dict__.update(fdict)
    # state[8] lists submodules the code reaches by attribute (``os.path``); unpickling them
    # imported them, which is all they are for.
    if len(state) > 9 and state[9]:
        func.__type_params__ = state[9]
    return func


def cell_setstate(cell, state):
    (cell.cell_contents,) = state
    return cell


def class_setstate(cls, state):
    """Set a class's attributes, but only on a skeleton this process just made.

    A class already tracked (loaded earlier, or defined here) keeps its state: re-loading must
    not overwrite it (cloudpickle issue #439).
    """
    with _TRACKER_LOCK:
        fresh = cls in _FRESH
        _FRESH.discard(cls)
    if not fresh:
        return cls
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
# Dynamic-class tracker: one class object per content-derived id in each process, so repeated
# loads (and a dump then load in one process) give the same class.
# ---------------------------------------------------------------------------------------------

_TRACKER_LOCK = threading.RLock()
_BY_ID = weakref.WeakValueDictionary()
_BY_OBJECT = weakref.WeakKeyDictionary()
_FRESH = weakref.WeakSet()


def _track(class_id, obj):
    with _TRACKER_LOCK:
        known = _BY_ID.get(class_id)
        if known is not None:
            return known
        _BY_ID[class_id] = obj
        _BY_OBJECT[obj] = class_id
        if isinstance(obj, type):
            _FRESH.add(obj)
        return obj


def _tracked_id(obj, content_id):
    """The id of a class about to be dumped: its tracked id, else ``content_id`` (made unique
    among live classes of this process by a suffix)."""
    with _TRACKER_LOCK:
        known = _BY_OBJECT.get(obj)
        if known is not None:
            return known
        class_id, n = content_id, 1
        while _BY_ID.get(class_id) is not None:
            n += 1
            class_id = f"{content_id}#{n}"
        _BY_ID[class_id] = obj
        _BY_OBJECT[obj] = class_id
        return class_id


def _install_as(name):
    """Register this module under its wire name (used by the embedded copy)."""
    sys.modules.setdefault(name, sys.modules[__name__])
