"""PyPy only: what satchel's Rust side must not hand to cpyext before Python looked at it.

cpyext builds a C tuple for a tuple the first time C code sees it, and its items with it,
recursively: a constant nested a few thousand levels deep overflows PyPy's stack inside that
conversion, which is fatal (a segfault, not a RecursionError). So the constants of a function's
code are measured here, at Python level, before the reducer reads ``co_consts``."""

from types import CodeType

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
