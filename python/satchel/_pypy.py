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
import io
import itertools
import pickle
import sys
from types import (
    AsyncGeneratorType,
    CellType,
    ClassMethodDescriptorType,
    CodeType,
    CoroutineType,
    FunctionType,
    GeneratorType,
    MappingProxyType,
    MemberDescriptorType,
    MethodDescriptorType,
    MethodType,
    ModuleType,
    WrapperDescriptorType,
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
        todo.extend((item, depth + 1) for item in items if issubclass(type(item), _NESTING))
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


# cpyext makes a class's C type after its bases', by a recursion per base with no stack check:
# a chain of 400 classes segfaulted a 64 KiB thread wherever its last class (or an instance)
# first crossed into C. A long chain's C types are made from the base up, each one step.
_LONG_MRO = 16
_MRO = type.__dict__["__mro__"].__get__
_c_typed = set()  # ids: a class cpyext has seen is never freed


def _bases_first(obj, kind):
    cls = obj if issubclass(kind, type) else kind
    if id(cls) in _c_typed:
        return
    mro = _MRO(cls)
    if len(mro) > _LONG_MRO:
        for base in reversed(mro):
            if id(base) not in _c_typed:
                _make_c_type(base)
                _c_typed.add(id(base))
    _c_typed.add(id(cls))


# The walks below copy a container with one call (``list(d.values())``) before looking at its
# items: PyPy switches threads only between bytecodes, so the copy is atomic, where a loop over
# a dict another thread changes raised a bare RuntimeError out of dumps.
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
        _bases_first(obj, kind)
        if kind is _GETSET:
            _make_c_type(obj.__objclass__)
            continue
        if id(obj) in seen:
            continue
        if issubclass(kind, tuple) or (lists and issubclass(kind, (list, set, frozenset))):
            seen.add(id(obj))
            todo.extend(obj)
        elif issubclass(kind, dict):
            seen.add(id(obj))
            if deep:
                todo.extend(dict.keys(obj))
                todo.extend(dict.values(obj))
            else:
                todo.extend([v for v in list(dict.values(obj)) if type(v) is _GETSET])
        elif kind is MethodType:
            seen.add(id(obj))
            todo.append(obj.__self__)
        elif not deep:
            continue
        elif kind is MappingProxyType:
            seen.add(id(obj))
            for item in list(obj.items()):
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


def clean_error(exc):
    """A replacement for ``exc`` (a load's exception) when it holds a malformed ``str``, else
    None. PyPy 8.0's unpickler (``_pickle``) makes strs of raw stream bytes without checking
    them: ``pickle.loads(b"L\\xff\\n")`` raises a ValueError whose message is not valid text
    (its UTF-8 encoding is not UTF-8). Python code can carry it, but cpyext cannot: handing that
    exception to C (the load's error crossing into satchel's Rust side) is a fatal error or
    heap corruption. The replacement has the same type (UnpicklingError when that type cannot
    be made from its arguments), its text repaired (U+FFFD), and no context: it is raised
    outside the handler, so the malformed exception does not travel with it."""
    args = exc.args
    if not any(type(a) is str and _malformed(a) for a in args):
        return None
    args = tuple(_repaired(a) if type(a) is str else a for a in args)
    try:
        new = type(exc)(*args)
    except Exception:  # noqa: BLE001 (a type that is not made from its args alone)
        import pickle

        new = pickle.UnpicklingError(*args)
    if new.args != args:  # a type that keeps other args than it was given
        import pickle

        new = pickle.UnpicklingError(*args)
    return new


def _malformed(text):
    try:
        text.encode("utf-8", "surrogatepass").decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return True
    return False


def _repaired(text):
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def ready_values(mapping):
    """``ready`` for a dict about to cross into C whose values the reducer meets one by one
    anyway: only its getset descriptor values cross with it."""
    for value in list(mapping.values()):
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
        _bases_first(obj, kind)
        if kind in _HOLDERS or issubclass(kind, (tuple, dict)):
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
    elif issubclass(kind, type):
        if obj.__flags__ & _HEAPTYPE and not _importable(obj):
            ready_description(obj)
    elif issubclass(kind, ModuleType):
        if not _by_reference(obj):
            ready(obj.__dict__)
    elif issubclass(kind, BaseException):
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
    ready(tuple(_function_reads(func)))


def _function_reads(func):
    """What the reducer reads of a function (src/ffi/pypy.rs ``function_fields``, the globals
    its code names)."""
    found = [
        func.__defaults__,
        func.__kwdefaults__,
        func.__closure__,
        func.__dict__,
        func.__annotations__,
        func.__doc__,
        func.__module__,
    ]
    _globals_read(func.__code__, func.__globals__, found)
    return found


def _globals_read(code, names, found):
    """Add to ``found`` the globals in ``names`` that ``code`` (or code nested in it) names:
    what the reducer reads of them."""
    if type(code) is not CodeType or type(names) is not dict:
        return
    todo = [code]
    while todo:
        code = todo.pop()
        found.extend([names.get(n) for n in code.co_names])
        todo.extend(c for c in code.co_consts if type(c) is CodeType)


# src/reduce/classid.rs: how deep and how many items of each container it describes.
_MAX_DEPTH = 12
_MAX_ITEMS = 512
_WRAPPERS = {
    classmethod: ("__func__",),
    staticmethod: ("__func__",),
    property: ("fget", "fset", "fdel", "__doc__"),
    MethodType: ("__self__", "__func__"),
}
_DESCRIPTORS = frozenset(
    {
        MemberDescriptorType,
        MethodDescriptorType,
        WrapperDescriptorType,
        ClassMethodDescriptorType,
    }
)


def ready_description(cls):
    """``ready`` for what the class's content id (src/reduce/classid.rs) reads describing a
    class that travels by value: its namespace and bases, and from there containers, functions
    (as ``ready_reads`` has them), classes, descriptors' classes, and the ``__reduce_ex__(4)``
    of anything else, as deep and as wide as it goes; beyond, what converting reaches."""
    todo = [(cls, 0)]
    seen = set()
    while todo:
        obj, depth = todo.pop()
        kind = type(obj)
        if kind in _LEAVES:
            continue
        if kind is _GETSET:
            _make_c_type(obj.__objclass__)
            continue
        if depth > _MAX_DEPTH:
            ready(obj, deep=False, lists=True)
            continue
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        depth += 1
        if issubclass(kind, (tuple, list, set, frozenset, dict)) or kind is MappingProxyType:
            if len(obj) > _MAX_ITEMS:
                ready(obj, deep=False, lists=True)
            elif issubclass(kind, (dict, MappingProxyType)):
                todo.extend((item, depth) for pair in list(obj.items()) for item in pair)
            else:
                todo.extend((item, depth) for item in list(obj))
        elif kind is FunctionType:
            found = _function_reads(obj)
            found.append(obj.__code__.co_consts)
            todo.extend((item, depth) for item in found)
        elif kind in _WRAPPERS:
            todo.extend((getattr(obj, name, None), depth) for name in _WRAPPERS[kind])
        elif kind is CellType:
            ready(obj)
            try:
                todo.append((obj.cell_contents, depth))
            except ValueError:  # empty
                pass
        elif issubclass(kind, ModuleType):
            continue
        elif issubclass(kind, type):
            if obj.__flags__ & _HEAPTYPE:
                todo.append((obj.__dict__, depth))
                todo.append((obj.__bases__, depth))
                todo.append((type(obj), depth))
        elif kind in _DESCRIPTORS:
            todo.append((obj.__objclass__, depth))
        else:
            try:
                reduced = obj.__reduce_ex__(4)
            except Exception:  # noqa: BLE001 (the description gives up there too)
                continue
            if type(reduced) is not tuple:
                continue
            for i, part in enumerate(reduced):
                if i in (3, 4) and part is not None:
                    try:
                        part = list(itertools.islice(part, _MAX_ITEMS + 1))
                    except Exception:  # noqa: BLE001 (the description gives up there too)
                        continue
                todo.append((part, depth))


def _importable(cls):
    """Whether the class travels by reference (src/reduce/byref.rs, in short): what its module
    (not ``__main__``) and qualname name is the class itself, and the module is not registered
    by value."""
    name = getattr(cls, "__module__", None)
    module = sys.modules.get(name) if type(name) is str and name != "__main__" else None
    if module is None or not _by_reference(module):
        return False
    found = module
    for part in str(getattr(cls, "__qualname__", "")).split("."):
        found = getattr(found, part, None)
    return found is cls


def _by_reference(module):
    name = getattr(module, "__name__", None)
    if type(name) is not str or sys.modules.get(name) is not module:
        return False
    return not any(
        name == r or name.startswith(r + ".") for r in _satchel.list_registry_pickle_by_value()
    )


# PyPy 8.0's own unpickler (the RPython ``_pickle``) trusts its stream: a damaged one can
# make it crash the interpreter (a segfault, not an exception): BUILD into an object without
# a ``__dict__`` (``b"\x8fK\x01b."``), a memo slot read before anything was put there
# (``b"h\x00\x8c\x01a\x93."``; ``b"h\x00."`` loads None), a SHORT_BINUNICODE whose bytes are
# not UTF-8. So a stream nobody vouched for (no verified signature) goes to PyPy's unpickler
# only when a walk of its opcodes (src/envelope/pypy_scan.rs, ``fast``) finds none of what
# crashes it: most function, closure and plain-data bodies. Any other (one that BUILDs: an
# instance's state) is unpickled by the pure-Python unpickler of the ``pickle`` module, whose
# checks are Python's own; its few bookkeeping errors (too few items on the stack, an unknown
# opcode) and BUILD's are raised as UnpicklingError. A stream whose signature was verified
# comes from a key holder, who could run any code anyway: PyPy's own unpickler loads it.
fast = getattr(_satchel, "_pypy_fast_unpickle", None)


def pick(body, own, safe):
    """``(body, unpickler class)`` for loading ``body``: ``own`` (on PyPy's own unpickler) only
    when a damaged copy of it could not crash that (``fast``), else ``safe``."""
    body = stable(body)
    return body, own if fast(body) else safe


def stable(data):
    """``data`` as bytes nothing can change between the walk and the load: itself when it is
    bytes or a read-only view of bytes (satchel.loads' body), else a copy."""
    if type(data) is bytes:
        return data
    if type(data) is memoryview and data.readonly and type(data.obj) is bytes:
        return data
    return bytes(data)


class SafeUnpickler(pickle._Unpickler):
    """``pickle.Unpickler`` for PyPy that a damaged stream cannot crash: the pure-Python
    unpickler, its structural errors raised as UnpicklingError."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def load(self):
        if not hasattr(self, "_file_read"):
            return super().load()  # its error about a missing __init__
        self._unframer = unframer = pickle._Unframer(self._file_read, self._file_readline)
        read = unframer.read

        def read_all(n):
            # An argument cut short: the C unpickler's error, not an IndexError further on.
            data = read(n)
            if len(data) < n:
                raise pickle.UnpicklingError("pickle data was truncated")
            return data

        def readline():
            line = unframer.readline()
            if not line.endswith(b"\n"):
                raise pickle.UnpicklingError("pickle data was truncated")
            return line

        self.read = read_all
        self.readinto = unframer.readinto
        self.readline = readline
        self.metastack = []
        self.stack = []
        self.append = self.stack.append
        self.proto = 0
        dispatch = self.dispatch
        key = b""
        try:
            while True:
                key = read(1)
                if not key:
                    raise EOFError("Ran out of input")  # as the C unpickler says it
                dispatch[key[0]](self)
        except pickle._Stop as stop:
            return stop.value
        except (KeyError, IndexError) as exc:
            if not _raised_by_unpickler(exc):
                raise
            if type(exc) is KeyError and key[0] not in dispatch:
                err = pickle.UnpicklingError(f"invalid load key, {key!r}: not a pickle opcode")
            else:
                err = pickle.UnpicklingError(
                    f"the opcode {_opname(key)} finds too few items on the stack (a damaged stream)"
                )
        raise err

    def load_build(self):
        stack = self.stack
        if len(stack) < 2:
            raise pickle.UnpicklingError(
                "the opcode BUILD finds too few items on the stack (a damaged stream)"
            )
        state = stack.pop()
        inst = stack[-1]
        setstate = getattr(inst, "__setstate__", None)
        if setstate is not None:
            setstate(state)
            return
        slotstate = None
        if isinstance(state, tuple) and len(state) == 2:
            state, slotstate = state
        # CPython's checks (Modules/_pickle.c, load_build).
        if state is not None and not isinstance(state, dict):
            raise pickle.UnpicklingError("state is not a dictionary")
        if slotstate is not None and not isinstance(slotstate, dict):
            raise pickle.UnpicklingError("slot state is not a dictionary")
        if state:
            try:
                inst_dict = inst.__dict__
            except AttributeError:
                inst_dict = None
            if not isinstance(inst_dict, dict):
                raise pickle.UnpicklingError(
                    f"BUILD sets attributes of a {_kind_name(inst)} object, which has no "
                    "__dict__ (a damaged stream)"
                )
            intern = sys.intern
            for k, v in state.items():
                if type(k) is str:
                    inst_dict[intern(k)] = v
                else:
                    inst_dict[k] = v
        if slotstate:
            for k, v in slotstate.items():
                setattr(inst, k, v)

    dispatch[pickle.BUILD[0]] = load_build


_PICKLE_FILE = pickle.__file__


def _raised_by_unpickler(exc):
    """Whether ``exc`` was raised by the unpickler's own code (its innermost Python frame is in
    pickle.py), not by code a stream called."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename == _PICKLE_FILE or tb.tb_frame.f_code is (
        SafeUnpickler.load.__code__
    )


def _opname(key):
    import pickletools

    op = pickletools.code2op.get(key.decode("latin-1")) if key else None
    return op.name if op is not None else repr(key)


def _kind_name(obj):
    try:
        return type(obj).__qualname__
    except Exception:  # noqa: BLE001 (a name is only for the message)
        return "<unnamed>"


def safe_loads(data, /, *, fix_imports=True, encoding="ASCII", errors="strict", buffers=None):
    """``pickle.loads`` that a damaged stream cannot crash: PyPy's own unpickler when the
    walk finds nothing that crashes it, else ``SafeUnpickler``."""
    if isinstance(data, str):
        raise TypeError("Can't load pickle from unicode string")
    data = stable(data)
    kwargs = {"fix_imports": fix_imports, "encoding": encoding, "errors": errors}
    if fast(data):
        return pickle.loads(data, buffers=buffers, **kwargs)
    return SafeUnpickler(io.BytesIO(data), buffers=buffers, **kwargs).load()
