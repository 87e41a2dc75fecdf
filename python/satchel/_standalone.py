"""The payload standalone streams carry (docs/FORMAT.md, "Standalone"): one zlib blob holding
the loader (bootstrap/loader.py) and, as string literals, the parts of the bootstrap the
stream's mode needs, all minified. The header runs ``exec(zlib.decompress(blob), {"V": version})``."""

import ast
import zlib


def minify(source):
    """``source`` without comments and docstrings, indented by one space (same code; the
    receiver only runs it). ``ast.unparse`` writes every string literal on one line, so
    re-indenting line starts cannot touch a literal."""
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
    lines = []
    for line in ast.unparse(tree).splitlines():
        stripped = line.lstrip(" ")
        if stripped:
            lines.append(" " * ((len(line) - len(stripped)) // 4) + stripped)
    return "\n".join(lines) + "\n"


def payload(parts, loader_source):
    """The compressed blob: the loader, given ``S`` (the source of the parts, in order) and
    ``N`` (the part names beyond the core, which an already installed module must have)."""
    names = tuple(name for name, _ in parts if name != "core")
    source = "\n".join(minify(text) for _, text in parts)
    blob = f"S = {source!r}\nN = {names!r}\n{minify(loader_source)}"
    return zlib.compress(blob.encode("utf-8"), 9)
