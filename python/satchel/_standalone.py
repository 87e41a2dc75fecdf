"""The payload standalone streams carry (docs/FORMAT.md, "Standalone"): one zlib blob holding
the loader (bootstrap/loader.py) and, as string literals, the parts of the bootstrap the
stream's mode needs, all minified. The header runs ``exec(zlib.decompress(blob), {"V": version})``.
"""

import ast
import itertools
import zlib

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_DYNAMIC = {"locals", "vars", "exec", "eval", "globals"}


def minify(source):
    """``source`` without comments or docstrings, with short local variable names, indented by
    one space: the same code (the receiver only runs it). ``ast.unparse`` writes every string
    literal on one line, so re-indenting line starts cannot touch a literal."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    _rename_locals(tree)
    lines = []
    for line in ast.unparse(tree).splitlines():
        stripped = line.lstrip(" ")
        if stripped:
            lines.append(" " * ((len(line) - len(stripped)) // 4) + stripped)
    return "\n".join(lines) + "\n"


def _own_scope(func):
    """The nodes of ``func``'s own scope, and every name used inside the functions and classes
    nested in it. Lambdas and comprehensions count as its own: they bind only their
    parameters and targets, and every other name in them is the function's (or a global), so
    one consistent renaming of a name across all of them keeps the meaning, shadowing
    included. A nested def or class is left alone (a class body's names are attributes)."""
    own, nested_names = [], set()
    stack = list(func.body)
    while stack:
        node = stack.pop()
        if isinstance(node, _SCOPES) and not isinstance(node, ast.Lambda):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Name):
                    nested_names.add(inner.id)
                elif isinstance(inner, ast.arg):
                    nested_names.add(inner.arg)
            # Decorators and defaults of a nested def are evaluated in this scope.
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                stack.extend(node.decorator_list + node.args.defaults)
                stack.extend(d for d in node.args.kw_defaults if d is not None)
            continue
        own.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return own, nested_names


def _rename_locals(tree):
    """Give the variables a function binds, its parameters included (never its globals,
    nonlocals, or a name a nested scope also uses), short names no other code of the module
    uses. One name maps to the same short name in every function: zlib feeds on repetition,
    and per-function fresh names made the payload larger.

    Parameters are renamed too: the minified bootstrap only runs in a receiver without satchel,
    where nothing but the unpickler (positional arguments) and the bootstrap itself call it, and
    no call in the bootstrap passes one of its own functions' parameters by keyword
    (tests/test_envelope.py checks it). Where satchel is installed, its module runs the full
    source, and upgrading a standalone-installed module runs the full source in it too."""
    taken = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    taken |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
    fresh = (f"_{i}" for i in itertools.count())
    mapping_all = {}
    for func in [
        n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]:
        own, nested_names = _own_scope(func)
        names = [n for n in own if isinstance(n, ast.Name)]
        if any(n.id in _DYNAMIC for n in names):
            continue
        args = func.args
        params = [*args.posonlyargs, *args.args, *args.kwonlyargs]
        params += [a for a in (args.vararg, args.kwarg) if a is not None]
        declared = {
            name for n in own if isinstance(n, (ast.Global, ast.Nonlocal)) for name in n.names
        }
        assigned = {n.id for n in names if isinstance(n.ctx, (ast.Store, ast.Del))}
        assigned |= {n.name for n in own if isinstance(n, ast.ExceptHandler) and n.name}
        assigned |= {a.arg for a in params}
        assigned |= {n.arg for n in own if isinstance(n, ast.arg)}  # a lambda's
        candidates = sorted(assigned - declared - nested_names - {"__class__"})
        mapping = {}
        for name in candidates:
            if name not in mapping_all:
                mapping_all[name] = next(f for f in fresh if f not in taken)
            mapping[name] = mapping_all[name]
        for arg in params:
            arg.arg = mapping.get(arg.arg, arg.arg)
        for node in own:
            if isinstance(node, ast.Name) and node.id in mapping:
                node.id = mapping[node.id]
            elif isinstance(node, ast.arg) and node.arg in mapping:
                node.arg = mapping[node.arg]
            elif isinstance(node, ast.ExceptHandler) and node.name in mapping:
                node.name = mapping[node.name]


def payload(parts, loader_source):
    """The compressed blob: the loader, given ``S`` (the source of the parts, in order) and
    ``N`` (the part names beyond the core, which an already installed module must have)."""
    names = tuple(name for name, _ in parts if name != "core")
    source = "\n".join(minify(text) for _, text in parts)
    blob = f"S = {source!r}\nN = {names!r}\n{minify(loader_source)}"
    return zlib.compress(blob.encode("utf-8"), 9)
