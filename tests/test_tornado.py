"""Tornado coroutines (``@tornado.gen.coroutine``), which cloudpickle's suite pickles, and the
deprecated ``is_tornado_coroutine`` that cloudpickle still exports."""

import pickle

import pytest

import satchel
from conftest import child_eval, run_script

gen = pytest.importorskip("tornado.gen")
ioloop = pytest.importorskip("tornado.ioloop")


def make_coroutines():
    @gen.coroutine
    def f(x, y):
        yield gen.sleep(x)
        raise gen.Return(y + 1)

    @gen.coroutine
    def g(y):
        res = yield f(0.01, y)
        raise gen.Return(res + 1)

    return f, g


def test_is_tornado_coroutine():
    f, g = make_coroutines()
    with pytest.warns(DeprecationWarning, match="tornado.gen.is_coroutine_function"):
        assert satchel.is_tornado_coroutine(g)
    with pytest.warns(DeprecationWarning):
        assert not satchel.is_tornado_coroutine(make_coroutines)


def test_is_tornado_coroutine_does_not_import_tornado():
    out = run_script(
        """
        import sys, warnings
        import satchel
        warnings.simplefilter("ignore")
        print(satchel.is_tornado_coroutine(len), "tornado" in sys.modules)
        """
    )
    assert out.split() == [b"False", b"False"]


def test_coroutine_runs_in_a_fresh_interpreter():
    f, g = make_coroutines()
    g2, g3 = pickle.loads(satchel.dumps([g, g]))
    assert g2 is g3
    loop = ioloop.IOLoop(make_current=False)
    assert loop.run_sync(lambda: g2(5)) == 7
    loop.close()
    # The child imports tornado only through the stream (f and g's globals).
    result = child_eval(
        g,
        "__import__('tornado.ioloop').ioloop.IOLoop(make_current=False).run_sync(lambda: obj(5))",
    )
    assert result == 7
