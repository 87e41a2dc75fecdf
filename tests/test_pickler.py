"""The Pickler class and the module surface: subclassing (reducer_override, persistent_id,
dispatch_table per instance, per class and through the member descriptor), protocols,
out-of-band buffers, dump/load with files, and the names cloudpickle exposes."""

import _pickle
import copyreg
import io
import pickle
import sys
import types

import pytest

import satchel
from conftest import child_eval, child_eval_bytes, import_cloudpickle, run_script


def _closure():
    base = 40

    def add(x):
        return base + x

    return add


# ---------------------------------------------------------------------------------------------
# The class
# ---------------------------------------------------------------------------------------------


def test_pickler_is_a_c_pickler_subclass():
    assert issubclass(satchel.Pickler, _pickle.Pickler)
    assert satchel.Pickler is not _pickle.Pickler
    assert satchel.CloudPickler is satchel.Pickler
    p = satchel.Pickler(io.BytesIO())
    assert isinstance(p, _pickle.Pickler)
    assert isinstance(p, pickle.Pickler)  # pickle.Pickler is _pickle.Pickler


def test_pickler_dump_round_trips_closure_cross_process():
    f = io.BytesIO()
    satchel.Pickler(f).dump(_closure())
    assert child_eval_bytes(f.getvalue(), "obj(2)") == 42


def test_pickler_default_protocol_is_5():
    f = io.BytesIO()
    satchel.Pickler(f).dump([1])
    assert satchel.inspect(f.getvalue())["protocol"] == 5
    assert satchel.dumps([1])[:2] == b"\x80\x05"


def test_reducer_override_callable_through_class_and_instance():
    p = satchel.Pickler(io.BytesIO())
    # Plain data falls through to the C pickler.
    assert satchel.Pickler.reducer_override(p, 1) is NotImplemented
    assert p.reducer_override([1, 2]) is NotImplemented
    reduced = p.reducer_override(_closure())
    assert isinstance(reduced, tuple) and callable(reduced[0])


def test_subclass_overriding_reducer_override_with_super():
    class Secret:
        def __init__(self, value):
            self.value = value

    seen = []

    class RedactingPickler(satchel.Pickler):
        def reducer_override(self, obj):
            if isinstance(obj, Secret):
                seen.append(obj.value)
                return str, ("<redacted>",)
            return super().reducer_override(obj)

    k = 7

    def uses_secret(x):
        return (x + k, secret)

    secret = Secret("hunter2")
    f = io.BytesIO()
    RedactingPickler(f).dump({"fn": uses_secret, "s": secret, "cls": Secret})
    assert seen and set(seen) == {"hunter2"}
    result = child_eval_bytes(
        f.getvalue(),
        "(obj['fn'](1), obj['s'], obj['cls'].__name__, obj['cls']('v').value)",
    )
    assert result == ((8, "<redacted>"), "<redacted>", "Secret", "v")


def test_subclass_reducer_override_for_function_type():
    # Special-casing functions themselves (before satchel sees them), deferring the rest.
    class NamingPickler(satchel.Pickler):
        def reducer_override(self, obj):
            if isinstance(obj, types.FunctionType) and obj.__name__ == "skip_me":
                return str, ("skipped",)
            return super().reducer_override(obj)

    def skip_me():
        return 1

    f = io.BytesIO()
    NamingPickler(f).dump([skip_me, _closure()])
    assert child_eval_bytes(f.getvalue(), "(obj[0], obj[1](0))") == ("skipped", 40)


def test_persistent_id_is_honoured():
    class Handle:
        def __init__(self, key):
            self.key = key

    class PersistentPickler(satchel.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Handle):
                return ("handle", obj.key)
            return None

    h = Handle("db-1")

    def lookup():
        return h

    f = io.BytesIO()
    PersistentPickler(f).dump({"h": h, "fn": lookup})
    assert b"db-1" in f.getvalue()

    class Loader(pickle.Unpickler):
        def persistent_load(self, pid):
            kind, key = pid
            return f"resolved {kind} {key}"

    back = Loader(io.BytesIO(f.getvalue())).load()
    assert back["h"] == "resolved handle db-1"
    assert back["fn"]() == "resolved handle db-1"

    source = f"""
        import io, pickle
        class Loader(pickle.Unpickler):
            def persistent_load(self, pid):
                return "child:" + pid[1]
        d = Loader(io.BytesIO({f.getvalue()!r})).load()
        print(d["h"], d["fn"]())
    """
    assert run_script(source).split() == [b"child:db-1", b"child:db-1"]


def _point_reducer_factory():
    def rebuild(text):
        x, y = text.split(",")
        return ("rebuilt", int(x), int(y))

    def reducer(p):
        return rebuild, (f"{p.x},{p.y}",)

    return reducer


def test_per_instance_dispatch_table():
    class Point:
        def __init__(self, x, y):
            self.x, self.y = x, y

    f = io.BytesIO()
    p = satchel.Pickler(f)
    p.dispatch_table = {Point: _point_reducer_factory()}
    p.dump([Point(1, 2), _closure()])
    assert child_eval_bytes(f.getvalue(), "(obj[0], obj[1](2))") == (("rebuilt", 1, 2), 42)

    # A fresh pickler without the table pickles Points normally (by value, as instances).
    assert child_eval(Point(3, 4), "(obj.x, obj.y)") == (3, 4)


def test_per_instance_dispatch_table_chained_with_copyreg():
    class Point:
        def __init__(self, x, y):
            self.x, self.y = x, y

    table = copyreg.dispatch_table.copy()
    table[Point] = _point_reducer_factory()
    f = io.BytesIO()
    p = satchel.Pickler(f)
    p.dispatch_table = table
    p.dump({"p": Point(5, 6), "c": complex(1, 2)})
    assert child_eval_bytes(f.getvalue(), "(obj['p'], obj['c'])") == (("rebuilt", 5, 6), 1 + 2j)


def test_class_level_dispatch_table_on_subclass():
    class Point:
        def __init__(self, x, y):
            self.x, self.y = x, y

    class TablePickler(satchel.Pickler):
        dispatch_table = {Point: _point_reducer_factory()}  # noqa: RUF012

    f = io.BytesIO()
    TablePickler(f).dump((Point(7, 8), _closure()))
    assert child_eval_bytes(f.getvalue(), "(obj[0], obj[1](0))") == (("rebuilt", 7, 8), 40)


def test_loky_style_dispatch_table_via_member_descriptor():
    class Point:
        def __init__(self, x, y):
            self.x, self.y = x, y

    descriptor = _pickle.Pickler.dispatch_table
    # A member descriptor on CPython, a getset descriptor on PyPy: loky only calls __set__.
    assert isinstance(descriptor, (types.MemberDescriptorType, types.GetSetDescriptorType))

    f = io.BytesIO()
    p = satchel.Pickler(f)
    descriptor.__set__(p, {Point: _point_reducer_factory()})
    assert Point in p.dispatch_table
    p.dump([Point(9, 10), _closure()])
    assert child_eval_bytes(f.getvalue(), "(obj[0], obj[1](1))") == (("rebuilt", 9, 10), 41)


def test_reducer_override_runs_before_dispatch_table_for_functions():
    # The dispatch table cannot intercept functions: satchel's reducer_override claims them
    # first (as in cloudpickle). The function still pickles by value.
    def local_fn():
        return "by value"

    called = []

    def never(obj):
        called.append(obj)
        return str, ("from table",)

    f = io.BytesIO()
    p = satchel.Pickler(f)
    p.dispatch_table = {types.FunctionType: never}
    p.dump(local_fn)
    assert called == []
    assert child_eval_bytes(f.getvalue(), "obj()") == "by value"


# ---------------------------------------------------------------------------------------------
# Protocols and buffers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_protocols_round_trip_closure(protocol):
    data = satchel.dumps(_closure(), protocol=protocol)
    # The header has no PROTO of its own: the body's opens it.
    info = satchel.inspect(data)
    assert info["protocol"] == protocol
    assert data[info["header_size"] :][:2] == bytes([0x80, protocol])
    assert pickle.loads(data)(1) == 41
    assert child_eval(_closure(), "obj(3)", protocol=protocol) == 43


def test_all_protocols_in_one_child():
    payloads = tuple(satchel.dumps(_closure(), protocol=p) for p in (2, 3, 4, 5))
    result = child_eval(
        payloads,
        "tuple(__import__('pickle').loads(b)(p) for p, b in enumerate(obj))",
    )
    assert result == (40, 41, 42, 43)


def test_pickler_protocol_argument():
    for protocol in (2, 3, 4, 5, -1):
        f = io.BytesIO()
        satchel.Pickler(f, protocol=protocol).dump(_closure())
        expected = 5 if protocol == -1 else protocol
        assert satchel.inspect(f.getvalue())["protocol"] == expected
        assert pickle.loads(f.getvalue())(0) == 40


def test_buffer_callback_protocol_5_out_of_band():
    big = bytearray(b"x" * 1000)
    buf = pickle.PickleBuffer(big)

    def reader():
        return len(payload)

    payload = {"buf": buf, "fn": reader}
    buffers = []
    data = satchel.dumps(payload, protocol=5, buffer_callback=buffers.append)
    assert len(buffers) == 1
    assert bytes(buffers[0]) == bytes(big)
    assert len(data) < 1000  # the buffer is not in the stream
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(data)
    back = pickle.loads(data, buffers=buffers)
    assert bytes(back["buf"]) == bytes(big)
    assert back["fn"]() == 2

    # Cross-process: the buffer travels separately.
    source = f"""
        import pickle
        back = pickle.loads({data!r}, buffers=[{bytes(buffers[0])!r}])
        print(bytes(back["buf"]) == b"x" * 1000, back["fn"]())
    """
    assert run_script(source).split() == [b"True", b"2"]


def test_buffer_callback_returning_true_keeps_buffer_in_band():
    buf = pickle.PickleBuffer(bytearray(b"abc"))
    seen = []

    def keep_in_band(b):
        seen.append(b)
        return True

    data = satchel.dumps(buf, protocol=5, buffer_callback=keep_in_band)
    assert len(seen) == 1
    assert bytes(pickle.loads(data)) == b"abc"


def test_pickler_buffer_callback():
    buffers = []
    f = io.BytesIO()
    satchel.Pickler(f, protocol=5, buffer_callback=buffers.append).dump(
        [pickle.PickleBuffer(b"readonly-bytes"), _closure()]
    )
    assert len(buffers) == 1
    back = pickle.loads(f.getvalue(), buffers=buffers)
    assert bytes(back[0]) == b"readonly-bytes" and back[1](2) == 42


def test_bytearray_in_band_without_callback():
    ba = bytearray(b"\x00\x01" * 50)
    assert child_eval((ba, pickle.PickleBuffer(ba)), "(bytes(obj[0]), type(obj[0]).__name__)") == (
        bytes(ba),
        "bytearray",
    )


# ---------------------------------------------------------------------------------------------
# Files and module surface
# ---------------------------------------------------------------------------------------------


def test_dump_and_load_with_file(tmp_path):
    path = tmp_path / "obj.pkl"
    with open(path, "wb") as fh:
        assert satchel.dump(_closure(), fh) is None
    with open(path, "rb") as fh:
        f = satchel.load(fh)
    assert f(1) == 41

    with open(path, "wb") as fh:
        satchel.dump(_closure(), fh, protocol=3)
    data = path.read_bytes()
    assert satchel.inspect(data)["protocol"] == 3
    assert child_eval_bytes(data, "obj(5)") == 45


def test_dump_multiple_objects_to_one_file(tmp_path):
    path = tmp_path / "many.pkl"
    with open(path, "wb") as fh:
        satchel.dump(_closure(), fh)
        satchel.dump([1, 2], fh)
    with open(path, "rb") as fh:
        assert satchel.load(fh)(0) == 40
        assert satchel.load(fh) == [1, 2]


def test_pickle_module_and_default_protocol():
    assert satchel.pickle is pickle
    assert satchel.DEFAULT_PROTOCOL == 5
    # load is loads' twin (key=, allow=), no longer the stdlib's (tests/test_load.py).
    assert satchel.load(io.BytesIO(pickle.dumps([1, "x"]))) == [1, "x"]
    # satchel.loads checks a satchel header before running the stream; otherwise it is
    # pickle.loads, keyword arguments included.
    assert satchel.loads(pickle.dumps([1, "x"], protocol=2)) == [1, "x"]
    assert satchel.loads(pickle.dumps(b"\xff", protocol=0), encoding="latin-1") == b"\xff"
    buffers = []
    data = pickle.dumps(pickle.PickleBuffer(b"oob"), protocol=5, buffer_callback=buffers.append)
    assert bytes(satchel.loads(data, buffers=buffers)) == b"oob"


def test_picklingerror_subclasses_pickle_picklingerror():
    assert issubclass(satchel.PicklingError, pickle.PicklingError)


def test_output_loads_with_plain_pickle_in_child():
    def nested():
        data = {"x": 1}

        def get(key):
            return data[key]

        return get

    fn = nested()
    # The child has not imported satchel: plain pickle.loads must find the constructors.
    source = f"""
        import pickle, sys
        assert "satchel" not in sys.modules
        f = pickle.loads({satchel.dumps(fn)!r})
        print(f("x"))
    """
    assert run_script(source).split() == [b"1"]


def test_public_names_match_cloudpickle():
    names = [
        "dumps",
        "dump",
        "loads",
        "load",
        "Pickler",
        "CloudPickler",
        "register_pickle_by_value",
        "unregister_pickle_by_value",
        "list_registry_pickle_by_value",
        "DEFAULT_PROTOCOL",
        "pickle",
        "PicklingError",
    ]
    for name in names:
        assert hasattr(satchel, name), name

    cloudpickle = import_cloudpickle()
    public = {n for n in getattr(cloudpickle, "__all__", dir(cloudpickle)) if not n.startswith("_")}
    missing = sorted(n for n in public if not hasattr(satchel, n))
    assert missing == []
    assert satchel.DEFAULT_PROTOCOL == cloudpickle.DEFAULT_PROTOCOL


def test_dumps_signature_matches_cloudpickle():
    import inspect

    cloudpickle = import_cloudpickle()
    for name in ("dumps", "dump"):
        ours = inspect.signature(getattr(satchel, name)).parameters
        theirs = list(inspect.signature(getattr(cloudpickle, name)).parameters)
        # cloudpickle's parameters, in order, then satchel's keyword-only stream options.
        assert list(ours)[: len(theirs)] == theirs, name
        extra = list(ours)[len(theirs) :]
        assert extra == ["mode", "standalone", "compress", "key"], name
        assert all(ours[p].kind is inspect.Parameter.KEYWORD_ONLY for p in extra), name
    # Keyword use as in cloudpickle.
    data = satchel.dumps(obj=[1], protocol=4, buffer_callback=None)
    assert pickle.loads(data) == [1]


def test_dumps_does_not_keep_what_it_pickled_alive():
    # satchel.dumps reuses a pickler per thread; its memo must not outlive the call.
    import gc
    import weakref

    class Payload:
        pass

    obj = Payload()
    ref = weakref.ref(obj)
    big = [obj, *[str(i) for i in range(20_000)]]  # large enough to retire the cached pickler
    satchel.dumps([obj])
    satchel.dumps(big)
    del obj, big
    for _ in range(3):  # PyPy frees what crossed into C code (cpyext) a collection later
        gc.collect()
    assert ref() is None


def test_clear_memo_forgets_the_previous_dumps_globals():
    import io

    ns = {"BIG": b"x" * 100_000, "SMALL": 1}
    exec("def f():\n    return len(BIG)\ndef g():\n    return SMALL\n", ns)
    buf = io.BytesIO()
    p = satchel.Pickler(buf)
    p.dump(ns["f"])
    p.clear_memo()
    start = buf.tell()
    p.dump(ns["g"])
    second = buf.getvalue()[start:]
    assert len(second) < 2_000
    assert pickle.loads(second)() == 1


@pytest.mark.skipif(
    sys.implementation.name == "pypy",
    reason="PyPy's cpyext does not collect a reference cycle through a C extension's objects "
    "(the pickler's Rust reducer)",
)
def test_a_pickler_in_a_cycle_with_what_it_dumped_is_collected():
    import gc
    import io
    import weakref

    ns = {}
    exec("def f():\n    return 1\n", ns)
    ns["pickler"] = satchel.Pickler(io.BytesIO())
    ns["pickler"].dump(ns["f"])
    probe = type("Probe", (), {})()
    ns["probe"] = probe
    ref = weakref.ref(probe)
    del ns, probe
    for _ in range(3):  # PyPy frees what crossed into C code (cpyext) a collection later
        gc.collect()
    assert ref() is None
