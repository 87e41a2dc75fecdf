# satchel's nonportable-mode constructors (stdlib only): functions whose code travels as
# marshal bytes, which only the same interpreter build can load (the header's fingerprint check
# runs first). Appended to boot.py in the ``_satchel_boot_<major>`` namespace (src/bootstrap.rs),
# so every public name here is wire format. Comments, not a docstring, head this file (see
# portable.py).

import builtins
import marshal
import types

PARTS.add("bytecode")  # noqa: F821 (boot.py)


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
        _set_extra(func, extra)  # noqa: F821 (boot.py)
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


# Suspended generators, coroutines and async generators (docs/FORMAT.md, "Generators"): the
# skeleton is a created generator of the shipped code object, memoized before its frame state
# is pickled (so the state may refer back to it); satchel's Rust core then writes the frame.


def _resume():
    resume = globals().get("_resume_generator")
    if resume is None:
        try:
            import satchel  # noqa: F401 (installs _resume_generator here)
        except ImportError:
            pass
        resume = globals().get("_resume_generator")
    if resume is None:
        raise UnpicklingError(  # noqa: F821 (boot.py)
            "this stream holds a suspended generator; resuming it needs satchel on the "
            "receiver (pip install satchel): the stdlib alone cannot rebuild a frame"
        )
    return resume


def generator_skeleton(func, code):
    """A created generator (coroutine, async generator) of exactly ``code``: its function's
    prologue runs (it makes the cells), nothing of the body does. ``func`` is the generator's
    function, for its globals; when it still has this code it is called itself."""
    _resume()
    _check_prologue(code)
    if getattr(func, "__code__", None) is not code:
        cells = tuple(types.CellType() for _ in code.co_freevars)
        func = types.FunctionType(code, func.__globals__, code.co_name, None, cells or None)
    n = code.co_argcount
    args = [()] * (code.co_varnames[:1] == (".0",)) + [None] * n  # 3.15 iterates .0 first
    return func(*args[:n], **dict.fromkeys(code.co_varnames[n : n + code.co_kwonlyargcount]))


def _check_prologue(code):
    """Calling the function must stop at RETURN_GENERATOR: only the prologue may come first
    (a damaged stream must not get its code run by the skeleton call)."""
    import opcode

    m = opcode.opmap
    ok = {
        m.get(n) for n in ("COPY_FREE_VARS", "MAKE_CELL", "EXTENDED_ARG", "NOP", "CACHE", "RESUME")
    }
    c = code.co_code
    i = c.find(bytes([m["LOAD_FAST"], 0, m["GET_ITER"], 0]))
    if code.co_varnames[:1] == (".0",) and i >= 0 and i % 2 == 0:
        c = c[:i] + c[i + 4 :]  # 3.15: a generator expression takes its iterator first
    if code.co_flags & 0x2A0:  # CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR
        for op in c[::2]:
            if op == m["RETURN_GENERATOR"]:
                return
            if op not in ok:
                break
    raise UnpicklingError(  # noqa: F821 (boot.py)
        "cannot resume the suspended generator in this stream: its code does not start as a "
        "generator's does (a damaged stream)"
    )


def generator_setstate(gen, state):
    """Write the frame state (offset, slots, value stack, exception) into the skeleton."""
    _resume()(gen, state)


def finished_generator(kind, name, qualname):
    """A finished generator (kind 0), coroutine (1) or async generator (2)."""
    if kind == 1:

        async def done():
            pass

        gen = done()
        try:
            gen.send(None)
        except StopIteration:
            pass
    elif kind == 2:

        async def done():
            return
            yield

        gen = done()
        try:
            gen.asend(None).send(None)
        except StopAsyncIteration:
            pass
    else:
        gen = (x for x in ())
        next(gen, None)
    gen.__name__ = name
    gen.__qualname__ = qualname
    return gen


def await_of(coro):
    """``coro.__await__()``: the iterator a generator-based awaitable holds."""
    return coro.__await__()


# The IncompatibleInterpreter message of boot.py's check (only nonportable streams raise it).
# Its advice depends on what the stream holds (header flags 8 and 16, format 1.4).


def _describe(label):
    name, _, bytecode = label.partition("/")
    return "%s (bytecode %s)" % (name, bytecode) if bytecode else name


def _mismatch(flags, producer):
    made = _describe(producer)
    text = "stream made by %s; this is %s: " % (made, _describe(LABEL))  # noqa: F821 (boot.py)
    if flags & 8:
        return text + (
            "it holds a started generator, whose frame resumes only on %s: load it there" % made
        )
    text += "re-dump with mode='portable'"
    if flags & 16:
        text += " (a started generator cannot be: load it on %s)" % made
    return text
