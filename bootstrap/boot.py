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
import threading
import types
import weakref

FORMAT_VERSION = "1.0.0"

# ---------------------------------------------------------------------------------------------
# Reconstructors: build a skeleton; the state setters below fill it in. Building the skeleton
# before the state is what lets self-referential and mutually recursive objects round-trip.
# ---------------------------------------------------------------------------------------------


def function(code, base_globals, closure, fglobals, defaults, extra):
    """A complete function in one call: the form used when nothing in its state can refer
    back to it (plain values and imported modules), so no skeleton is needed.

    ``code`` is marshal bytes or a code object. ``base_globals`` is one dict per source module
    per dump, shared by every function of that module in the stream, and never a receiver
    module's own dict: loading mutates nothing. ``extra`` holds the attributes that differ
    from what FunctionType derives from the code and globals (see ``_set_extra``), or None.
    """
    if "__builtins__" not in base_globals:
        base_globals["__builtins__"] = builtins
    func = types.FunctionType(_code(code), base_globals, None, defaults, closure)
    if fglobals:
        base_globals.update(fglobals)
    if extra is not None:
        _set_extra(func, extra)
    return func


def make_function(code, base_globals, closure):
    """A function skeleton; ``function_setstate`` fills globals, defaults and attributes."""
    if "__builtins__" not in base_globals:
        base_globals["__builtins__"] = builtins
    return types.FunctionType(_code(code), base_globals, None, None, closure)


def make_code(data, frozensets):
    """A code object from marshal bytes (nonportable mode: the fingerprint pins the format).

    ``frozensets`` lists the paths of frozenset constants that the producer shipped as sorted
    tuples, so that the bytes do not depend on PYTHONHASHSEED; they are turned back here.
    """
    if not frozensets:
        return _code(data)  # the same object a function of this stream gets from these bytes
    code = marshal.loads(data)
    for path in frozensets:
        code = _restore_frozenset(code, path)
    return code


# Code objects are immutable, so loads of the same marshal bytes share one (bounded) cache:
# the 1000 closures of one factory, or the same task function shipped again and again, are
# unmarshalled once.
_CODE_CACHE = {}
_CODE_CACHE_SIZE = 1024


def _code(code):
    if type(code) is not bytes:
        return code
    cached = _CODE_CACHE.get(code)
    if cached is None:
        if len(_CODE_CACHE) >= _CODE_CACHE_SIZE:
            _CODE_CACHE.clear()
        cached = _CODE_CACHE[code] = marshal.loads(code)
    return cached


def _restore_frozenset(container, path):
    index, rest = path[0], path[1:]
    if isinstance(container, types.CodeType):
        consts = list(container.co_consts)
        consts[index] = (
            _restore_frozenset(consts[index], rest) if rest else frozenset(consts[index])
        )
        return container.replace(co_consts=tuple(consts))
    items = list(container)
    items[index] = _restore_frozenset(items[index], rest) if rest else frozenset(items[index])
    return tuple(items)


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
# Dynamic-class tracker: one class object per content-derived id in each process, so repeated
# loads (and a dump then load in one process) give the same class.
# ---------------------------------------------------------------------------------------------

_TRACKER_LOCK = threading.RLock()
_BY_ID = weakref.WeakValueDictionary()
_BY_OBJECT = weakref.WeakKeyDictionary()
_FRESH = weakref.WeakSet()


def _known(class_id):
    with _TRACKER_LOCK:
        return _BY_ID.get(class_id)


def _track(class_id, obj):
    if not _trackable(obj):
        return obj
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
    if not _trackable(obj):
        return content_id
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


def _trackable(obj):
    """Classes whose metaclass defines __eq__ without __hash__ cannot be weak-dict keys."""
    try:
        hash(obj)
    except TypeError:
        return False
    return True
