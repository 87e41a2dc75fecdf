"""The source text of a function, for portable mode (sender side).

A portable stream carries a function as the source text of its own ``def`` or ``lambda``, which
the receiver recompiles with ``portable_code`` (bootstrap/portable.py). ``function_source``
finds that text through linecache and ``ast``, and never guesses: the text is recompiled here,
by the receiver's own routine, and must give the function's own code back (bytecode, constants,
names, behaviour flags, line numbers); if no candidate does, it raises ``SourceNotFound``.

Only the first line of the text is dedented: the other lines keep their indentation (a def's
body only has to be indented more than the def), because removing indentation from every line
would change the value of string literals that span lines, and keeping it keeps their columns.
"""

import ast
import inspect
import io
import linecache
import os
import re
import stat
import sys
import tokenize
import types
import typing
import weakref

__all__ = ["SourceNotFound", "annotations_of", "function_source"]


class SourceNotFound(LookupError):
    """No source text of this function can be shipped; the message says why."""


def function_source(func):
    """``(snippet, filename, lineno)`` for a Python function, lambda or method.

    ``snippet`` holds one statement: the function's ``def``/``async def`` without its
    decorators, or its lambda as an expression statement. A decorated def's snippet starts with
    one empty line per decorator line (``lineno`` is then the first decorator's line, the code's
    ``co_firstlineno``), so that every line lands where it was in ``filename``, the code's
    ``co_filename``. Private names (``self.__x`` in a method) are written mangled, as the
    compiler saw them in their class. Raises ``SourceNotFound``.
    """
    code = getattr(func, "__code__", None)
    if not isinstance(code, types.CodeType):
        raise SourceNotFound(f"{func!r} has no Python code")
    result = _cache_get(code)
    if result is None:
        try:
            result = _find(code, getattr(func, "__globals__", None))
        except SourceNotFound as exc:
            result = exc  # cached too: a caller falling back on each dump pays once
        _cache_put(code, result)
    if isinstance(result, SourceNotFound):
        raise SourceNotFound(*result.args)
    return result


def annotations_of(obj):
    """The annotations of a class or function as a plain dict, on Python 3.14+ (PEP 649/749).

    There they live in an ``__annotate__`` function the compiler generated: it has no ``def``
    to ship as source, and it closes over the class dict. Portable mode ships its result
    instead, evaluated here on the sender (``annotationlib.Format.VALUE``, what
    ``obj.__annotations__`` gives), which is what a receiver of any version gets back as
    ``__annotations__``. An annotation that does not evaluate (a forward reference to a name
    defined later, or never) travels as its source text (``Format.STRING``), as it would under
    ``from __future__ import annotations``; the others keep their values.
    """
    import annotationlib

    try:
        return dict(annotationlib.get_annotations(obj, format=annotationlib.Format.VALUE))
    except Exception:  # noqa: BLE001 (NameError, AttributeError...: whatever evaluating raised)
        pass
    values = annotationlib.get_annotations(obj, format=annotationlib.Format.FORWARDREF)
    texts = annotationlib.get_annotations(obj, format=annotationlib.Format.STRING)
    return {
        name: texts[name] if _holds_forward_ref(value, annotationlib.ForwardRef) else value
        for name, value in values.items()
    }


def _holds_forward_ref(value, forward_ref, depth=0):
    if isinstance(value, forward_ref):
        return True
    args = value if isinstance(value, list | tuple) else typing.get_args(value)
    return depth < 8 and any(_holds_forward_ref(arg, forward_ref, depth + 1) for arg in args)


# Results (or the SourceNotFound) per code object, keyed by identity: code objects compare and
# hash by content, which leaves out co_filename, so equal lambdas of two notebook cells would
# share a key.
_CACHE = {}


def _cache_get(code):
    entry = _CACHE.get(id(code))
    if entry is not None and entry[0]() is code:
        return entry[1]
    return None


def _cache_put(code, result):
    key = id(code)

    def forget(ref):
        if _CACHE.get(key, (None,))[0] is ref:
            _CACHE.pop(key, None)

    _CACHE[key] = (weakref.ref(code, forget), result)


def _not_a_file(filename):
    """The path linecache would open for ``filename`` if that is not a regular file, else None.
    co_filename is anyone's to set: linecache opening a FIFO there blocks dumps for good, and a
    device (/dev/zero, /dev/tty) may never end or wait for input. Checked the way
    linecache.updatecache looks: the name itself, then (a relative name) under each sys.path."""
    if not isinstance(filename, str) or filename in linecache.cache:
        return None
    candidates = [filename]
    if not os.path.isabs(filename):
        candidates += [os.path.join(d, filename) for d in sys.path if isinstance(d, str)]
    for path in candidates:
        try:
            mode = os.stat(path).st_mode
        except (OSError, ValueError):
            continue
        return None if stat.S_ISREG(mode) else path
    return None


def _find(code, module_globals):
    # The receiver's compiler (bootstrap/portable.py, part of the bootstrap module).
    from _satchel_boot_1 import _portable_compile

    filename = code.co_filename
    special = _not_a_file(filename)
    if special is not None:
        raise SourceNotFound(f"{special!r}, named by the code's co_filename, is not a regular file")
    # linecache also holds IPython cells and other registered sources (<ipython-input-...>);
    # module_globals lets it ask the module's loader (zip imports).
    lines = linecache.getlines(filename, module_globals)
    if not lines:
        raise SourceNotFound(f"no source lines for {filename!r}")
    index, imported = _index(filename, lines)
    candidates = [d for d in index.get(code.co_firstlineno, ()) if d.name == code.co_name]
    if not candidates:
        raise SourceNotFound(
            f"no def or lambda {code.co_name!r} at {filename}:{code.co_firstlineno}"
        )
    for found in _by_position(code, candidates):
        snippet = _snippet(lines, found)
        # The file's module-level imports change how CPython 3.11+ compiles ``name.attr()``
        # (see _portable_compile). A module compiled as a whole had them all; IPython and the
        # REPL compile each top-level statement on its own, so none.
        for context in (imported, ()) if imported else ((),):
            try:
                rebuilt = _portable_compile(
                    snippet, filename, found.first, code.co_name, code.co_freevars, context
                )
            except (SyntaxError, ValueError, RecursionError):
                break
            if _same(rebuilt, code):
                return snippet, filename, found.first
    raise SourceNotFound(
        f"the source of {code.co_name!r} at {filename}:{code.co_firstlineno} does not compile "
        "to its code (file edited since it ran, code rewritten after parsing as pytest does "
        "with asserts, or annotated defs inside under `from __future__ import annotations`)"
    )


class _Def(typing.NamedTuple):
    """Where a def or lambda is (ast positions: 1-based lines, UTF-8 byte columns)."""

    name: str  # "<lambda>" for a lambda (no def can have that name)
    first: int  # co_firstlineno: the first decorator's line if any (CPython 3.8+)
    line: int
    col: int
    end_line: int
    end_col: int
    private: str | None  # the class whose name its private names are mangled with


# Parsed files: filename -> (lines, index, imported). ``index`` maps a first line to its _Defs;
# ``imported`` holds the names the file binds by import at module level (see
# _portable_compile). Keyed on the very list linecache returns: a reloaded file is a new list.
_FILES = {}
_FILES_SIZE = 64
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _index(filename, lines):
    entry = _FILES.get(filename)
    if entry is not None and entry[0] is lines:
        return entry[1:]
    try:
        tree = ast.parse("".join(lines), filename)
    except (SyntaxError, ValueError, RecursionError) as exc:
        raise SourceNotFound(f"cannot parse {filename!r}: {exc}") from None
    index = {}
    imported = set()
    # The class name travels down to the functions of its body (and the functions nested in
    # them): it is the name the compiler mangled their private names with.
    stack = [(tree, None, True)]
    while stack:
        node, private, module_scope = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            decorators = getattr(node, "decorator_list", None)
            found = _Def(
                getattr(node, "name", "<lambda>"),
                decorators[0].lineno if decorators else node.lineno,
                node.lineno,
                node.col_offset,
                node.end_lineno,
                node.end_col_offset,
                private,
            )
            index.setdefault(found.first, []).append(found)
        elif module_scope and isinstance(node, ast.Import | ast.ImportFrom):
            imported.update((alias.asname or alias.name).partition(".")[0] for alias in node.names)
        if isinstance(node, ast.ClassDef):
            stack.extend((child, node.name, False) for child in node.body)
            outer = node.bases + node.keywords + node.decorator_list
            stack.extend((child, private, False) for child in outer)
        else:
            inner = module_scope and not isinstance(node, _SCOPES)
            stack.extend((child, private, inner) for child in ast.iter_child_nodes(node))
    imported.discard("*")
    result = index, tuple(sorted(imported))
    if len(_FILES) >= _FILES_SIZE:
        _FILES.clear()
    _FILES[filename] = (lines, *result)
    return result


def _by_position(code, candidates):
    """Candidates most likely first: those whose span holds every position of the code (3.11+
    co_positions), tightest first. That tells two lambdas on one line apart; the recompile
    check has the last word anyway."""
    if len(candidates) < 2:
        return candidates
    positions = [
        ((line, col), (end_line, end_col))
        for line, end_line, col, end_col in code.co_positions()
        if line is not None and col is not None and (col, end_col) != (0, 0)  # (0, 0): RESUME
    ]

    def key(found):
        start, end = (found.line, found.col), (found.end_line, found.end_col)
        inside = all(start <= p_start and p_end <= end for p_start, p_end in positions)
        return not inside, found.end_line - found.line, found.end_col - found.col

    return sorted(candidates, key=key)


def _snippet(lines, found):
    first_line, last_line = lines[found.line - 1], lines[found.end_line - 1]
    start, end = _char_col(first_line, found.col), _char_col(last_line, found.end_col)
    if found.line == found.end_line:
        text = first_line[start:end]
    else:
        text = first_line[start:] + "".join(lines[found.line : found.end_line - 1])
        text += last_line[:end]
        if found.name == "<lambda>":
            text = f"({text})"  # its line breaks were inside brackets; these keep them legal
    if found.private is not None:
        text = _mangle(text, found.private, own_name=found.name != "<lambda>")
    # One empty line per decorator line: the def stays on its own line, and portable_code puts
    # a placeholder decorator on line ``first`` (co_firstlineno).
    return "\n" * (found.line - found.first) + text + "\n"


def _char_col(line, col):
    """ast columns count UTF-8 bytes; str slices count characters."""
    if line.isascii():
        return col
    return len(line.encode("utf-8")[:col].decode("utf-8", "replace"))


def _mangle(text, private, own_name):
    """``text`` with private names (``__x``) written as the compiler mangled them in class
    ``private`` (``_C__x``), since the receiver compiles it outside that class. A def's own name
    stays: its co_name is unmangled."""
    prefix = "_" + private.lstrip("_")
    if prefix == "_":
        return text  # a class named only with underscores mangles nothing
    line_starts = [0]
    for line in text.splitlines(True):
        line_starts.append(line_starts[-1] + len(line))
    edits = []  # offsets in text where the prefix goes
    after_def = False
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        start = line_starts[tok.start[0] - 1] + tok.start[1]
        if tok.type == tokenize.STRING and "f" in _STRING_PREFIX.match(tok.string)[0].lower():
            # Before 3.12 an f-string is one token; its expressions are mangled too. Literal
            # text that looks like a private name would be rewritten as well: the recompile
            # check then refuses the function rather than ship a wrong one.
            edits.extend(start + m.start() for m in _PRIVATE.finditer(tok.string))
        elif tok.type != tokenize.NAME:
            continue
        elif own_name and tok.string == "def":
            after_def, own_name = True, False
        elif after_def:
            after_def = False
        elif _PRIVATE.fullmatch(tok.string):
            edits.append(start)
    for offset in reversed(edits):
        text = text[:offset] + prefix + text[offset:]
    return text


_STRING_PREFIX = re.compile(r"[A-Za-z]*")
# A name the compiler mangles: two leading underscores, not two trailing ones.
_PRIVATE = re.compile(r"(?<!\w)__\w*(?<!__)(?!\w)")


# The flags compared: those that change what calling the code does (how its frame is set up,
# what kind of object a call returns, whether co_consts[0] is its docstring). Every other flag
# is left out, because it is the wrapper's or the compiler's context, not the function's:
# - CO_NESTED (0x10): the old nested_scopes __future__ flag; CPython still sets it on code
#   compiled inside a function (the wrapper) and reads it only to pick deferred reference
#   counting (Objects/funcobject.c, _PyFunction_FromConstructor);
# - CO_METHOD (0x8000000, 3.14+): "a function defined in class scope" (Include/cpython/code.h),
#   set on everything compiled in the body of the wrapper's ``class _``, and missing on a method
#   that has no free variables (compiled at module level); funcobject.c reads it for the same
#   deferred reference counting and nothing else does;
# - CO_FUTURE_* (__future__ flags): the receiver compiles without them (dont_inherit); where
#   they change the code (annotations), co_code differs anyway;
# - CO_NO_MONITORING_EVENTS (3.13+): set only on code objects the interpreter makes for itself.
# The bytecode, names, constants and line table are compared in full below: with them equal,
# these flags cannot change what the function does.
_BEHAVIOUR_FLAGS = 0
for _flag in (
    "CO_OPTIMIZED",
    "CO_NEWLOCALS",
    "CO_VARARGS",
    "CO_VARKEYWORDS",
    "CO_GENERATOR",
    "CO_COROUTINE",
    "CO_ITERABLE_COROUTINE",
    "CO_ASYNC_GENERATOR",
    "CO_HAS_DOCSTRING",  # 3.14+
):
    _BEHAVIOUR_FLAGS |= getattr(inspect, _flag, 0)
del _flag


def _same(a, b):
    """Same bytecode, constants, names, behaviour flags and line numbers (columns may differ)."""
    return (
        a.co_code == b.co_code
        and a.co_name == b.co_name
        and a.co_names == b.co_names
        and a.co_varnames == b.co_varnames
        and a.co_freevars == b.co_freevars
        and a.co_cellvars == b.co_cellvars
        and a.co_argcount == b.co_argcount
        and a.co_posonlyargcount == b.co_posonlyargcount
        and a.co_kwonlyargcount == b.co_kwonlyargcount
        and a.co_flags & _BEHAVIOUR_FLAGS == b.co_flags & _BEHAVIOUR_FLAGS
        and a.co_firstlineno == b.co_firstlineno
        and list(a.co_lines()) == list(b.co_lines())
        and a.co_exceptiontable == b.co_exceptiontable
        and _same_const(a.co_consts, b.co_consts)
    )


def _same_const(a, b):
    if type(a) is not type(b):
        return False  # 1 == 1.0 == True, but they are different constants
    if isinstance(a, types.CodeType):
        return _same(a, b)
    if isinstance(a, tuple):
        return len(a) == len(b) and all(map(_same_const, a, b))
    if isinstance(a, float | complex):
        return repr(a) == repr(b)  # tells 0.0 from -0.0, and nan equals itself
    return a == b
