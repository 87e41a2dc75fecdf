"""PyPy only: what satchel's Rust side must not hand to cpyext before Python looked at it.

cpyext builds a C object for a PyPy object the first time C code sees it, and for a tuple its
items with it, recursively (a dict gets its getset descriptor values made with it). Two things
go wrong there, fatally (a segfault, not an exception):

- A constant nested a few thousand levels deep overflows PyPy's stack inside that conversion.
  So the constants of a function's code are measured here, at Python level, before the
  reducer reads ``co_consts`` (``constants_deeper_than``).
- PyPy 8.0's cpyext crashes making the C object of a class's ``__dict__``/``__weakref__``
  getset descriptor unless it is made with the class: making a class's C type makes those of
  the descriptors in its dict, told which class they belong to, but a descriptor reached any
  other way (a tuple or dict holding it, an attribute C code reads) has no class to tell, and
  ``getsetdescr_attach`` dereferences the missing one. So the classes of the descriptors that
  C code would reach are made C types first (``ready``, ``ready_reads``): at the boundary,
  before an object crosses into C (``satchel.dumps``, the reducer), and before the reducer
  reads what an object holds (a function's defaults, closure, dict and globals, ...)."""

import gc
import sys
from types import (
    AsyncGeneratorType,
    CellType,
    CodeType,
    CoroutineType,
    FunctionType,
    GeneratorType,
    MappingProxyType,
    MethodType,
    ModuleType,
)

from satchel import _satchel

_NESTING = (tuple, frozenset, CodeType)


def constants_deeper_than(code, limit):
    """Whether the constants of ``code`` (tuples, frozensets and code objects, and theirs)
    nest more than ``limit`` levels deep. PyPy's built-in functions are functions too, whose
    ``__code__`` is a ``builtin-code`` without constants."""
    if type(code) is not CodeType:
        return False
    todo = [(code, 0)]
    seen = {}
    while todo:
        obj, depth = todo.pop()
        if depth > limit:
            return True
        if seen.get(id(obj), -1) >= depth:
            continue
        seen[id(obj)] = depth
        items = obj.co_consts if type(obj) is CodeType else obj
        todo.extend((item, depth + 1) for item in items if isinstance(item, _NESTING))
    return False


# What CPython's C pickler writes itself, never asking reducer_override. PyPy's asks about every
# object, and handing these to the Rust reducer makes cpyext build a C copy of each (all 5 GiB
# of a bytes object): they are answered in Python.
PICKLER_OWN = frozenset(
    {type(None), bool, int, float, bytes, str, dict, set, frozenset, list, tuple}
)

_GETSET = type(type.__dict__["__name__"])
_make_c_type = getattr(_satchel, "_cpyext_ready", None)
# Never holding anything: skipped without a look.
_LEAVES = frozenset({type(None), bool, int, float, complex, bytes, str, CodeType})
# What cpyext converts along with its owner (a bound method's __self__), or what the reducer
# reads as a whole (a cell's contents, a proxy's mapping): walked when they cross.
_HOLDERS = frozenset({_GETSET, CellType, MethodType, MappingProxyType})


def ready(obj, deep=True, lists=False):
    """Make the C types of the classes whose getset descriptors handing ``obj`` to C code
    would reach: through tuples (any subclass, to any depth), the getset descriptor values of
    dicts, and bound methods' ``__self__``, which cpyext converts with their owner; and with
    ``deep`` also what C code would reach reading what ``obj`` holds: the keys and values of
    dicts and mapping proxies, cells' contents; with ``lists`` lists' and sets' items too.
    Lists and sets are converted lazily, item by item: the pickler hands their items to the
    reducer one by one, and each is looked at then. Each container is walked once."""
    todo = [obj]
    seen = set()
    while todo:
        obj = todo.pop()
        kind = type(obj)
        if kind in _LEAVES:
            continue
        if kind is _GETSET:
            _make_c_type(obj.__objclass__)
            continue
        if id(obj) in seen:
            continue
        if isinstance(obj, tuple) or (lists and isinstance(obj, (list, set, frozenset))):
            seen.add(id(obj))
            todo.extend(obj)
        elif isinstance(obj, dict):
            seen.add(id(obj))
            if deep:
                todo.extend(dict.keys(obj))
                todo.extend(dict.values(obj))
            else:
                todo.extend(v for v in dict.values(obj) if type(v) is _GETSET)
        elif kind is MethodType:
            seen.add(id(obj))
            todo.append(obj.__self__)
        elif not deep:
            continue
        elif kind is MappingProxyType:
            seen.add(id(obj))
            for item in obj.items():
                todo.extend(item)
        elif kind is CellType:
            seen.add(id(obj))
            try:
                todo.append(obj.cell_contents)
            except ValueError:  # empty
                pass


def loaded(obj):
    """What a load returns, readied to cross into C (satchel.loads is Rust)."""
    ready(obj, deep=False)
    return obj


def ready_values(mapping):
    """``ready`` for a dict about to cross into C whose values the reducer meets one by one
    anyway: only its getset descriptor values cross with it."""
    for value in mapping.values():
        if type(value) is _GETSET:
            _make_c_type(value.__objclass__)


def reducer_override(rust):
    """A ``reducer_override`` for picklers of PyPy: ``rust`` (a ``ReducerOverride``) behind the
    readying, and what the C pickler writes itself answered here. A Python frame per object."""
    get = rust.__get__

    def reducer_override(self, obj):
        kind = type(obj)
        if kind in PICKLER_OWN:
            return NotImplemented
        if kind in _HOLDERS or isinstance(obj, (tuple, dict)):
            ready(obj, deep=False)  # what Rust reads of it: ready_reads
        try:
            # Where ReducerOverride.__get__ keeps the pickler's reducer (src/pickler/mod.rs).
            reduce = self._satchel_reducer
        except AttributeError:
            reduce = get(self)
        return reduce(obj)

    return reducer_override


_HEAPTYPE = 1 << 9
# Attributes the reducer reads from objects of these (exact) types, besides their __dict__.
_READS = {
    classmethod: ("__func__",),
    staticmethod: ("__func__",),
    property: ("fget", "fset", "fdel", "__doc__"),
    type({}.keys()): ("mapping",),
    type({}.values()): ("mapping",),
    type({}.items()): ("mapping",),
}
_GENERATORS = {GeneratorType: "gi_frame", CoroutineType: "cr_frame", AsyncGeneratorType: "ag_frame"}


def ready_reads(obj):
    """``ready`` for what the reducer is about to read from ``obj``, which it reduces itself
    (once per dump): a function's defaults, closure, dict, annotations and the globals its code
    names; a class's or a by-value module's namespace; an exception's args and dict; a
    method's self; ... (src/reduce/mod.rs calls this before reduce_kind)."""
    kind = type(obj)
    if kind is FunctionType:
        _ready_function(obj)
    elif kind in _HOLDERS:
        ready(obj)
    elif isinstance(obj, type):
        if obj.__flags__ & _HEAPTYPE:
            ready(obj.__dict__)
    elif isinstance(obj, ModuleType):
        if not _by_reference(obj):
            ready(obj.__dict__)
    elif isinstance(obj, BaseException):
        ready((obj.args, getattr(obj, "__dict__", None)))
    elif kind in _GENERATORS:
        # Not started (portable mode): its arguments, its function's globals and closure.
        frame = getattr(obj, _GENERATORS[kind], None)
        if frame is not None:
            found = [dict(frame.f_locals)]
            _globals_read(frame.f_code, frame.f_globals, found)
            ready(tuple(found))
    else:
        # itertools and the coroutine wrapper are read through gc.get_referents.
        found = [getattr(obj, name, None) for name in _READS.get(kind, ())]
        found.append(getattr(obj, "__dict__", None))
        found.extend(gc.get_referents(obj))
        ready(tuple(found))


def _ready_function(func):
    found = [
        func.__defaults__,
        func.__kwdefaults__,
        func.__closure__,
        func.__dict__,
        func.__annotations__,
        func.__doc__,
    ]
    _globals_read(func.__code__, func.__globals__, found)
    ready(tuple(found))


def _globals_read(code, names, found):
    """Add to ``found`` the globals in ``names`` that ``code`` (or code nested in it) names:
    what the reducer reads of them."""
    if type(code) is not CodeType or type(names) is not dict:
        return
    todo = [code]
    while todo:
        code = todo.pop()
        found.extend(names[n] for n in code.co_names if n in names)
        todo.extend(c for c in code.co_consts if type(c) is CodeType)


def _by_reference(module):
    name = getattr(module, "__name__", None)
    if type(name) is not str or sys.modules.get(name) is not module:
        return False
    return not any(
        name == r or name.startswith(r + ".") for r in _satchel.list_registry_pickle_by_value()
    )
