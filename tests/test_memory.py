"""Memory bugs made loud: many round trips of closures, dynamic classes and instances must not
grow the interpreter's allocated blocks (a missing decref in the Rust reducer, or a cache that
keeps what it should only remember weakly, would)."""

import gc
import pickle
import sys

import satchel


def _make(i):
    k = i

    def f(x):
        return x + k

    class C:
        def m(self):
            return k

    return f, C, C(), lambda: f, {"nested": [f, (C,)]}


def _rounds(n):
    for i in range(n):
        out = pickle.loads(satchel.dumps(_make(i)))
        assert out[0](1) == i + 1 and out[2].m() == i


def test_round_trips_do_not_grow_allocated_blocks():
    _rounds(1000)  # warm caches (code analysis, interned strings, type caches)
    gc.collect()
    before = sys.getallocatedblocks()
    _rounds(5000)
    gc.collect()
    growth = sys.getallocatedblocks() - before
    # 5000 rounds each allocate ~100 blocks; a leak of even one block per round shows here.
    assert growth < 1000, growth
