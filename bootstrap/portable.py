# satchel's portable-mode constructors (stdlib only; Python 3.9+, CPython and PyPy). No
# f-strings: a 3.12+ sender's ast.unparse (the standalone minifier) may write them in a form
# (PEP 701) that older receivers cannot parse.
#
# Appended to boot.py (src/bootstrap.rs) in the ``_satchel_boot_<major>`` namespace, so every
# public name here is **wire format** too (``portable_code``, ``portable_function``,
# ``dataclass_setstate``, ``make_field``, ``make_class``); private names carry a ``_portable``
# prefix so they cannot collide with boot.py's. It uses boot.py's ``_set_extra``, class tracker
# and ``class_setstate``. Keep it runnable on Python 3.9 (no ``match``, no ``X | Y``
# annotations, no 3.10+ APIs): the receiver of a portable stream may be any of them. Comments,
# not a docstring, head this file: a docstring in the middle of the concatenation would survive
# the standalone minifier.
#
# In portable mode a function travels as the source text of its own ``def`` or ``lambda`` (see
# ``satchel._source.function_source``), recompiled here by the receiver's own compiler.

import ast
import builtins
import types

PARTS.add("portable")  # noqa: F821 (boot.py)

# Wrapper around a snippet that has free variables: each one becomes a local of the wrapper, so
# the compiler turns the snippet's uses of it into free variables again. The snippet goes into
# the body of the class ``_``, for two reasons:
# - names a class body binds are invisible to the functions inside it, so the def's own name
#   stays a global for its body, as in the original (it would become a free variable if the
#   wrapper bound it while the original bound it in a class or at module level);
# - a method using zero-argument super() (or ``__class__``) gets its ``__class__`` cell from the
#   class, as in the original. A class named only with underscores mangles no private names
#   (CPython's _Py_Mangle), and the sender has already mangled them in the snippet.
# The wrapper is only compiled, never run: decorators and default values are never evaluated.
_PORTABLE_WRAPPER = "__satchel_wrapper__"

_PORTABLE_CACHE = {}
_PORTABLE_CACHE_SIZE = 1024


def portable_code(snippet, filename, lineno, name, freevars):
    """The code object of the function that ``snippet`` defines, compiled by this interpreter.

    ``snippet`` holds one statement: a ``def``/``async def`` (leading empty lines stand for the
    decorators, which were removed: the first decorator's line is ``lineno``) or an expression
    statement whose value is a lambda. Its first line lands on line ``lineno`` of ``filename``,
    so tracebacks name the original file and lines. ``name`` is the function's ``co_name``
    (``"<lambda>"`` for a lambda). ``freevars`` are the original's ``co_freevars``.
    """
    freevars = tuple(freevars)
    key = (snippet, filename, lineno, name, freevars)
    code = _PORTABLE_CACHE.get(key)
    if code is None:
        code = _portable_compile(snippet, filename, lineno, name, freevars)
        if len(_PORTABLE_CACHE) >= _PORTABLE_CACHE_SIZE:
            _PORTABLE_CACHE.clear()
        _PORTABLE_CACHE[key] = code
    return code


def portable_function(code, base_globals, cells, fglobals, defaults, extra):
    """A complete function from ``portable_code``'s code: ``boot.function`` with the closure
    given by name (``cells`` maps each free variable to its cell), because the receiver's
    compiler decides the order of ``co_freevars``. The given cell objects are used as they are,
    so cells shared with other functions stay shared."""
    if "__builtins__" not in base_globals:
        base_globals["__builtins__"] = builtins
    closure = None
    if code.co_freevars:
        missing = [name for name in code.co_freevars if name not in cells]
        if missing:
            raise ValueError(
                "satchel: no cell for free variable(s) %s of %s"
                % (", ".join(missing), code.co_name)
            )
        closure = tuple(cells[name] for name in code.co_freevars)
    func = types.FunctionType(code, base_globals, None, defaults, closure)
    if fglobals:
        base_globals.update(fglobals)
    if extra is not None:
        _set_extra(func, extra)  # noqa: F821 (defined by boot.py, exec'd first in this namespace)
    return func


def _portable_compile(snippet, filename, lineno, name, freevars, imported=()):
    # ``imported``: only for the sender's check (satchel._source), the names its file binds by
    # import at module level; CPython 3.11+ compiles ``name.attr(...)`` differently when
    # ``name`` is one (plain attribute load instead of a method load), nothing else changes.
    # Newlines in front rather than ast.increment_lineno: a SyntaxError (say, syntax this
    # Python does not have) then points at the original line too.
    tree = ast.parse("\n" * (lineno - 1) + snippet, filename)
    if len(tree.body) != 1:
        raise ValueError("satchel: bad portable snippet for %r" % (name,))
    stmt = tree.body[0]
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        if not stmt.decorator_list and stmt.lineno > lineno:
            # The original was decorated from ``lineno`` on, and CPython (3.8+) makes a
            # decorated function's co_firstlineno its first decorator's line. An inert
            # placeholder there gives the same co_firstlineno (hence the same line table).
            placeholder = ast.Constant(value=0, kind=None)
            placeholder.lineno = placeholder.end_lineno = lineno
            placeholder.col_offset, placeholder.end_col_offset = 0, 1
            stmt.decorator_list = [placeholder]
    elif not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Lambda)):
        raise ValueError("satchel: bad portable snippet for %r" % (name,))
    if freevars:
        # ``__class__`` comes from the class ``_``; every other free variable is a local.
        bound = [var for var in freevars if var != "__class__"]
        if not all(var.isidentifier() for var in bound):
            raise ValueError("satchel: bad portable snippet for %r" % (name,))
        source = "def %s():\n" % _PORTABLE_WRAPPER
        source += "".join("    %s = None\n" % var for var in bound)
        source += "    class _:\n        pass\n"
        wrapper = ast.parse(source)
        wrapper.body[0].body[-1].body = tree.body
        tree = wrapper
    if imported:
        tree.body[:0] = ast.parse("import " + ", ".join(imported)).body
    module = compile(tree, filename, "exec", dont_inherit=True)
    holder = module
    if freevars:
        holder = _portable_find(_portable_find(module, _PORTABLE_WRAPPER), "_")
    found = _portable_find(holder, name)
    if found is None:
        # A PEP 695 generic def (3.12+) compiles inside "<generic parameters of NAME>".
        for const in holder.co_consts:
            if isinstance(const, types.CodeType) and const.co_name.startswith("<generic"):
                found = _portable_find(const, name)
    if found is None:
        raise ValueError("satchel: bad portable snippet for %r" % (name,))
    return found


def _portable_find(code, name):
    # The last match: defaults are compiled before the function that owns them, so in
    # ``lambda f=lambda: 0: f`` the outer lambda's code comes after the inner one's.
    found = None
    for const in code.co_consts:
        if isinstance(const, types.CodeType) and const.co_name == name:
            found = const
    return found


# Dataclasses in portable mode: the methods @dataclass generated (``__init__``, ``__eq__``, ...)
# were compiled from text the sender no longer has, so the stream leaves them out and the
# receiver generates them again, from the Field objects, with its own dataclasses module.
def dataclass_setstate(cls, state):
    """``class_setstate``, then @dataclass again with the original parameters.

    Format 1.4: ``state`` is ``(attrs, options)``: ``attrs`` holds the class's own
    ``__annotations__`` and a ``dataclasses.Field`` (``make_field``) under each of its own
    fields' names, as its class body had them, and ``options`` the @dataclass arguments that
    are not defaults. Before, ``state`` was ``(attrs,)`` with the producer's own
    ``__dataclass_fields__`` and ``__dataclass_params__`` in ``attrs``."""
    import dataclasses

    with _TRACKER_LOCK:  # noqa: F821 (boot.py)
        fresh = _trackable(cls) and cls in _FRESH  # noqa: F821 (boot.py)
    class_setstate(cls, state)  # noqa: F821 (boot.py)
    if not fresh:
        return cls
    if len(state) > 1:
        options = dict(state[1])
    else:
        params = cls.__dict__["__dataclass_params__"]
        fields = cls.__dict__["__dataclass_fields__"]
        # A Field as class attribute is how @dataclass reads a field's spec (default,
        # default_factory, init, repr, compare, metadata, kw_only); it puts defaults back
        # itself. Only this class's own fields (a base's are the base's), and never a
        # ClassVar, whose class attribute holds its current value.
        own = cls.__dict__.get("__annotations__")
        if own is None:  # 3.14 (PEP 649) keeps them out of __dict__; the getter has them
            own = getattr(cls, "__annotations__", {})
        for name, field in fields.items():
            if name in own and field._field_type is not dataclasses._FIELD_CLASSVAR:
                setattr(cls, name, field)
        delattr(cls, "__dataclass_fields__")
        delattr(cls, "__dataclass_params__")
        options = {}
        for name in (
            "init",
            "repr",
            "eq",
            "order",
            "unsafe_hash",
            "frozen",
            "match_args",
            "kw_only",
        ):
            if hasattr(params, name):
                options[name] = getattr(params, name)
    try:
        return dataclasses.dataclass(cls, **options)
    except TypeError:  # an older dataclasses without some of the newer options
        for name in ("match_args", "kw_only"):
            options.pop(name, None)
        return dataclasses.dataclass(cls, **options)


def make_field(options):
    """A dataclasses.Field from ``dataclasses.field`` arguments (portable mode): the Field's
    slots differ between versions (3.10 added kw_only), its public arguments much less."""
    import dataclasses

    options = dict(options)
    kind = options.pop("_field_type", None)  # "_FIELD", "_FIELD_CLASSVAR", "_FIELD_INITVAR"
    try:
        field = dataclasses.field(**options)
    except TypeError:  # a dataclasses without kw_only (3.9)
        options.pop("kw_only", None)
        field = dataclasses.field(**options)
    if kind:
        field._field_type = getattr(dataclasses, kind)
    return field


def make_class(factory, args, kwargs, class_id):
    """A class made by a stdlib factory (``collections.namedtuple`` in portable mode), or the
    class tracked under ``class_id``: as ``make_skeleton_class``, ``class_setstate`` then adds
    what the class body added."""
    known = _known(class_id)  # noqa: F821 (boot.py)
    if known is None:
        known = _track(class_id, factory(*args, **kwargs))  # noqa: F821 (boot.py)
    return known
