"""memoryview (``src/reduce/memoryview.rs``): loads in a fresh interpreter as a memoryview
with the same contents, format, shape and writability, through plain ``pickle.loads``, in both
modes and without satchel on the receiver. (cloudpickle gives ``bytes`` back; a memoryview
compares equal to those.)"""

import array
import ctypes

import pytest

import satchel
from conftest import OTHER_PYTHONS, PYPY, child_eval, child_eval_bytes, stdlib_eval

# In the child: what a view is.
SHOW = "(type(obj).__name__, obj.tobytes(), obj.format, obj.shape, obj.readonly, obj.tolist())"


def show(view):
    return ("memoryview", view.tobytes(), view.format, view.shape, view.readonly, view.tolist())


CASES = {
    "bytes": memoryview(b"Hello!"),
    "slice": memoryview(b"Hello!" * 3)[2:15],
    "non-contiguous": memoryview(b"Hello!" * 3)[2:15:2],
    "reversed": memoryview(b"abcdef")[::-1],
    "writable": memoryview(bytearray(b"writable")),
    "writable-strided": memoryview(bytearray(b"abcdefgh"))[1::3],
    "cast-2d": memoryview(b"abcdefgh").cast("i", [1, 2]),
    "cast-0d": memoryview(b"abcd").cast("i", []),
    "bytes-2d": memoryview(b"abcdefgh").cast("B", [2, 4]),
    "doubles": memoryview(array.array("d", [1.5, -2.25, 3.0])),
    "strided-doubles": memoryview(array.array("q", range(10)))[::3],
    "empty": memoryview(b""),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_memoryview_cross_process(name):
    view = CASES[name]
    if PYPY and view.ndim == 0:
        # PyPy's tolist() of a 0-d view aborts the interpreter (a fatal RPython
        # NotImplementedError, with or without satchel); its one element is view[()].
        expr = SHOW.replace("obj.tolist()", "obj[()]")
        shown = ("memoryview", view.tobytes(), view.format, view.shape, view.readonly, view[()])
        assert child_eval(view, expr) == shown
        return
    assert child_eval(view, SHOW) == show(view)


def test_cloudpickle_compatible_equality():
    # cloudpickle's own tests compare the loaded object with `view.tobytes()`.
    view = memoryview(b"Hello!" * 3)[2:15:2]
    loaded = satchel.loads(satchel.dumps(view))
    assert loaded == view.tobytes() == view
    assert isinstance(loaded, memoryview)


def test_large_memoryview():
    view = memoryview(b"Hello!" * 2_000_000)
    assert child_eval(view, "(obj.nbytes, obj[-6:].tobytes(), obj.readonly)") == (
        12_000_000,
        b"Hello!",
        True,
    )


def test_format_cast_cannot_make_is_a_byte_view_of_the_same_bytes():
    # ctypes exports explicit byte order ('<i'), which memoryview.cast refuses to produce.
    view = memoryview((ctypes.c_int32 * 3)(1, 2, 3))
    assert view.format in ("<i", "<l")
    result = child_eval(view, "(obj.tobytes(), obj.format, obj.shape)")
    assert result == (view.tobytes(), "B", (12,))


def test_view_of_a_bytearray_stays_its_view():
    data = bytearray(b"xyz")
    expr = "(obj[1].__setitem__(0, ord('Q')), bytes(obj[0]), obj[2].readonly)[1:]"
    assert child_eval([data, memoryview(data), memoryview(data)], expr) == (b"Qyz", False)


def test_views_of_one_bytes_object_share_it():
    data = b"shared contents"
    views = [memoryview(data), memoryview(data)]
    assert child_eval(views, "obj[0].obj is obj[1].obj") is True
    # The same view twice is one object.
    assert child_eval([views[0], views[0]], "obj[0] is obj[1]") is True


def test_slice_ships_only_what_it_shows():
    data = b"public part|SECRET REST"
    payload = satchel.dumps(memoryview(data)[:11])
    assert b"SECRET" not in payload
    assert child_eval_bytes(payload, "obj.tobytes()") == b"public part"


def views_in_a_closure():
    views = [CASES[name] for name in sorted(CASES)]

    def get():
        return [(v.tobytes(), v.format, v.shape, v.readonly) for v in views]

    return get, get()


@pytest.mark.parametrize("mode", ["nonportable", "portable"])
def test_memoryviews_in_a_function_both_modes(mode):
    get, expected = views_in_a_closure()
    payload = satchel.dumps(get, mode=mode)
    assert child_eval_bytes(payload, "obj()") == expected
    standalone = payload if mode == "portable" else satchel.dumps(get, standalone=True)
    assert satchel.inspect(standalone)["standalone"]
    assert stdlib_eval(standalone, "obj()") == expected


@pytest.mark.parametrize("name", sorted(OTHER_PYTHONS))
def test_portable_memoryviews_load_on_other_interpreters(name):
    get, expected = views_in_a_closure()
    payload = satchel.dumps(get, mode="portable")
    assert stdlib_eval(payload, "obj()", OTHER_PYTHONS[name]) == expected


def test_released_memoryview_is_a_clear_error():
    view = memoryview(b"gone")
    view.release()
    with pytest.raises(satchel.PicklingError, match="memoryview was released") as info:
        satchel.dumps({"buffer": view})
    assert str(info.value).startswith("item ['buffer']: ")
