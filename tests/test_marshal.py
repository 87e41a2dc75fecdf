"""Code objects pickle to the same bytes whatever their history (src/reduce/code.rs marshals a
fresh load of marshal's first bytes): reference counts and interning differ between a freshly
compiled code object and one loaded from a stream, so a function or class loaded in another
process and pickled again there must still give the bytes it came with (cloudpickle's
chained-determinism tests)."""

import importlib
import pickle
import types

import pytest

import satchel
from conftest import run_script

# The modules whose code makes the corpus: large, and varied (async, match, generators, classes).
CORPUS = ["asyncio", "email.message", "json", "argparse", "dataclasses", "typing", "fractions"]


def _codes():
    seen = {}
    for name in CORPUS:
        module = importlib.import_module(name)
        stack = [vars(module)]
        while stack:
            for value in list(stack.pop().values()):
                if isinstance(value, types.FunctionType):
                    seen.setdefault(id(value.__code__), value.__code__)
                elif isinstance(value, type) and value.__module__ == module.__name__:
                    if id(value) not in seen:
                        seen[id(value)] = None
                        stack.append(dict(vars(value)))
    return [c for c in seen.values() if c is not None]


def test_corpus_pickles_again_to_the_same_bytes():
    codes = _codes()
    assert len(codes) > 300
    for code in codes:
        stream = satchel.dumps(code)
        loaded = pickle.loads(stream)
        assert loaded == code
        assert satchel.dumps(loaded) == stream, code.co_qualname


_SOURCE = """
def outer(x, *args, key="k", **kw):
    def inner(y):
        return (x, y, "shared text", ("a", "b"), {"k": key})
    return inner, [z for z in args if z != "*"]
"""


def _compiled():
    ns = {"__name__": "cell"}
    exec(compile(_SOURCE, "<cell>", "exec"), ns)
    return ns["outer"]


def test_reading_co_code_does_not_change_the_stream():
    # co_code is computed and cached on first read: the cached bytes object is then referenced
    # twice, and marshal flags it (FLAG_REF) by its reference count.
    plain, read = _compiled(), _compiled()
    assert plain.__code__ is not read.__code__
    _ = read.__code__.co_code
    for const in read.__code__.co_consts:
        if isinstance(const, types.CodeType):
            _ = const.co_code
    assert satchel.dumps(read) == satchel.dumps(plain)


def test_function_pickled_again_after_loading_gives_the_same_bytes():
    f = _compiled()
    stream = satchel.dumps(f)
    assert satchel.dumps(pickle.loads(stream)) == stream


_CHAINED = r"""
import sys, satchel

SCALE = 3

def task(x, *args, scale=SCALE, **kw):
    return [scale * x for _ in args], "*", kw

class Shape:
    '''A dynamic class.'''
    sides = 3
    name = "join"

    def join(self, other, *rest):
        return (self.sides, other, rest)

    @classmethod
    def make(cls):
        return cls()

Shape.join.tag = "join"
sys.stdout.buffer.write(satchel.dumps({"task": task, "Shape": Shape}, protocol=int(sys.argv[1])))
"""


@pytest.mark.parametrize("protocol", [2, 5])
def test_chained_pickling_in_another_process_gives_the_same_bytes(protocol):
    stream = run_script(_CHAINED, str(protocol))
    again = run_script(
        f"""
        import pickle, sys, satchel
        obj = pickle.loads({stream!r})
        assert obj["Shape"]().join(1) == (3, 1, ())
        sys.stdout.buffer.write(satchel.dumps(obj, protocol={protocol}))
        """
    )
    assert again == stream
    # And once more from there.
    third = run_script(
        f"""
        import pickle, sys, satchel
        sys.stdout.buffer.write(satchel.dumps(pickle.loads({again!r}), protocol={protocol}))
        """
    )
    assert third == stream


# cloudpickle's chained-determinism cases (tests/cloudpickle_test.py in its 3.1.0 sdist): each
# class is defined in one process, loaded in a second, pickled there, and the bytes compared.
_CLASS_SHAPES = {
    "docstring-only": '''
class A:
    """Simple class definition"""
''',
    "doc-after-attribute": """
class A:
    name = "A"
    __doc__ = "Updated class definition"
""",
    "docstring-on-init": '''
class A:
    def __init__(self):
        """Class definition with explicit __init__"""
''',
    "interned-names": '''
class A:
    """Class with potential string interning issues."""
    arg_1 = "class_value"
    def join(self):
        pass
    def test_method(self, arg_1, join):
        pass
''',
    "attribute-named-like-a-method": """
class A:
    arg_1 = "join"
    def join(self, arg_1):
        pass
A.join.arg_1 = "join"
""",
    "tuple-memoization": """
class A:
    def func1(self):
        pass
    def func2(self):
        pass
""",
}


@pytest.mark.parametrize("protocol", [2, 5])
@pytest.mark.parametrize("shape", sorted(_CLASS_SHAPES))
def test_cloudpickle_chained_class_shapes(shape, protocol):
    source = _CLASS_SHAPES[shape] + (
        f"\nimport sys, satchel\nsys.stdout.buffer.write(satchel.dumps(A, protocol={protocol}))\n"
    )
    stream = run_script(source)
    again = run_script(
        f"""
        import pickle, sys, satchel
        sys.stdout.buffer.write(satchel.dumps(pickle.loads({stream!r}), protocol={protocol}))
        """
    )
    assert again == stream
