"""Memory bugs made loud: many round trips of closures, dynamic classes and instances must not
grow the interpreter's allocated blocks (a missing decref in the Rust reducer, or a cache that
keeps what it should only remember weakly, would)."""

import pickle

import satchel
from conftest import CLASSES_FREED, live_blocks


def _make(i):
    k = i

    def f(x):
        return x + k

    class C:
        def m(self):
            return k

    if not CLASSES_FREED:  # PyPy: a class satchel has seen is never freed (conftest)
        return f, lambda: f, {"nested": [f, (k,)]}
    return f, C, C(), lambda: f, {"nested": [f, (C,)]}


def _rounds(n):
    for i in range(n):
        out = pickle.loads(satchel.dumps(_make(i)))
        assert out[0](1) == i + 1 and (not CLASSES_FREED or out[2].m() == i)


def test_round_trips_do_not_grow_allocated_blocks():
    _rounds(1000)  # warm caches (code analysis, interned strings, type caches)
    before = live_blocks()
    _rounds(5000)
    growth = live_blocks() - before
    # 5000 rounds each allocate ~100 blocks; a leak of even one block per round shows here.
    assert growth < 1000, growth
