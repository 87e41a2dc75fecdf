"""Errors: an unpicklable object anywhere in the graph raises satchel.PicklingError (a
pickle.PicklingError) whose message gives the path to it and the failing type, with the
original exception as __cause__; very deep graphs fail cleanly instead of crashing."""

import io
import pickle
import socket
import sys
import threading

import pytest

import satchel
from conftest import run_script


def _lock_error():
    try:
        pickle.dumps(threading.Lock())
    except Exception as exc:  # noqa: BLE001
        return type(exc)
    raise AssertionError("a lock pickled")


#: What refuses a lock: plain pickle's TypeError on CPython. PyPy's own pickler fails on the
#: lock's class instead (a PicklingError: ``_thread.lock`` is not importable by that name);
#: satchel refuses the lock itself there, with CPython's TypeError (tests/test_pypy.py).
LOCK_ERROR = _lock_error() if sys.implementation.name != "pypy" else TypeError

_GLOBAL_LOCK = threading.Lock()


def _raises(obj):
    with pytest.raises(satchel.PicklingError) as info:
        satchel.dumps(obj)
    return info.value


def test_picklingerror_class():
    assert issubclass(satchel.PicklingError, pickle.PicklingError)
    assert issubclass(satchel.PicklingError, pickle.PickleError)


def test_closure_over_lock():
    lock = threading.Lock()

    def task():
        with lock:
            return 1

    err = _raises(task)
    assert isinstance(err, pickle.PicklingError)
    msg = str(err)
    assert "closure cell 'lock' of function" in msg
    assert "task" in msg
    assert "_thread.lock" in msg
    assert isinstance(err.__cause__, LOCK_ERROR)
    assert "_thread.lock" in str(err.__cause__)


def test_closure_over_socket():
    conn = socket.socket()
    try:

        def task():
            return conn.recv(1)

        err = _raises(task)
        msg = str(err)
        assert "closure cell 'conn' of function" in msg
        assert "task" in msg
        assert "socket" in msg
        assert isinstance(err.__cause__, TypeError)
    finally:
        conn.close()


def test_spec_example_closure_cell_attribute_socket():
    class Connection:
        def __init__(self):
            self.host = "localhost"
            self.sock = socket.socket()

    conn = Connection()
    try:

        def task():
            return conn.host

        err = _raises(task)
        msg = str(err)
        assert "closure cell 'conn' of function" in msg
        assert "task" in msg
        assert "attribute 'sock'" in msg
        assert "socket" in msg
        # The path is ordered from the dumped object down to the failing part.
        assert msg.index("closure cell 'conn'") < msg.index("attribute 'sock'")
        assert "attribute 'host'" not in msg
        assert isinstance(err.__cause__, TypeError)
        assert isinstance(err, pickle.PicklingError)
    finally:
        conn.sock.close()


def test_unpicklable_global_read_by_function():
    def uses_global():
        return _GLOBAL_LOCK.locked()

    err = _raises(uses_global)
    msg = str(err)
    assert "global '_GLOBAL_LOCK'" in msg
    assert "uses_global" in msg
    assert "_thread.lock" in msg
    assert isinstance(err.__cause__, LOCK_ERROR)


def test_unpicklable_item_nested_in_list_in_dict():
    lock = threading.Lock()
    data = {"fine": [1, 2, 3], "config": [1, "two", lock, 4]}
    err = _raises(data)
    msg = str(err)
    assert "'config'" in msg
    assert "item 2" in msg
    assert "'fine'" not in msg
    assert "_thread.lock" in msg
    assert isinstance(err.__cause__, LOCK_ERROR)


def test_unpicklable_in_tuple_and_set_containers():
    lock = threading.Lock()
    err = _raises(("a", ("b", lock)))
    assert "item 1 -> item 1" in str(err)
    assert "_thread.lock" in str(err)


def test_unpicklable_top_level_object():
    err = _raises(threading.Lock())
    assert "_thread.lock" in str(err)
    assert isinstance(err.__cause__, LOCK_ERROR)


def test_unpicklable_default_argument():
    lock = threading.Lock()

    def with_default(x, guard=lock):
        return x

    msg = str(_raises(with_default))
    assert "default" in msg and "with_default" in msg and "_thread.lock" in msg


def test_unpicklable_class_attribute():
    class Holder:
        guard = threading.Lock()

        def method(self):
            return 1

    msg = str(_raises(Holder))
    assert "attribute 'guard'" in msg
    assert "Holder" in msg
    assert "_thread.lock" in msg


def test_unpicklable_class_attribute_reached_through_instance():
    # The instance itself is fine; what fails is its (by-value) class. The path must lead
    # there rather than blame the instance.
    class Worker:
        guard = threading.Lock()

        def __init__(self):
            self.n = 1

    msg = str(_raises(Worker()))
    assert "attribute 'guard'" in msg
    assert "_thread.lock" in msg


def test_unpicklable_behind_bound_method():
    class Service:
        def __init__(self):
            self.lock = threading.Lock()

        def run(self):
            return 1

    msg = str(_raises(Service().run))
    assert "attribute 'lock'" in msg
    assert "_thread.lock" in msg


def test_nested_closures_path():
    lock = threading.Lock()

    def inner():
        return lock

    def outer():
        return inner()

    msg = str(_raises(outer))
    assert "closure cell 'inner' of function" in msg
    assert "closure cell 'lock' of function" in msg
    assert msg.index("'inner'") < msg.index("'lock'")


def test_pickler_dump_raises_picklingerror_with_path():
    lock = threading.Lock()

    def task():
        return lock

    with pytest.raises(satchel.PicklingError) as info:
        satchel.Pickler(io.BytesIO()).dump(task)
    msg = str(info.value)
    assert "closure cell 'lock' of function" in msg
    assert "_thread.lock" in msg
    assert isinstance(info.value.__cause__, LOCK_ERROR)

    with pytest.raises(satchel.PicklingError) as info:
        satchel.CloudPickler(io.BytesIO(), protocol=4).dump({"k": [lock]})
    assert "item 0" in str(info.value) and "'k'" in str(info.value)


def test_dump_to_file_raises_picklingerror_with_path():
    lock = threading.Lock()

    def task():
        return lock

    with pytest.raises(satchel.PicklingError) as info:
        satchel.dump(task, io.BytesIO())
    assert "closure cell 'lock' of function" in str(info.value)


def test_error_from_custom_reduce_keeps_cause():
    class Refuses:
        def __reduce__(self):
            raise ValueError("I refuse to be pickled")

    def task():
        return refuser

    refuser = Refuses()
    with pytest.raises(pickle.PicklingError) as info:
        satchel.dumps(task)
    assert "closure cell 'refuser' of function" in str(info.value)
    assert "I refuse to be pickled" in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)


def test_pickler_still_usable_after_error():
    lock = threading.Lock()
    with pytest.raises(satchel.PicklingError):
        satchel.dumps([lock])
    k = 3
    assert pickle.loads(satchel.dumps(lambda: k))() == 3


_DEEP_SCRIPT = r"""
import sys
import satchel

kind = sys.argv[1]
depth = 100_000

if kind == "list":
    obj = []
    for _ in range(depth):
        obj = [obj]
elif kind == "dict":
    obj = {}
    for _ in range(depth):
        obj = {"k": obj}
elif kind == "instances":
    def make():
        class Node:
            def __init__(self, child):
                self.child = child
        return Node
    Node = make()
    obj = None
    for _ in range(depth):
        obj = Node(obj)
elif kind == "closures":
    def wrap(f):
        def g():
            return f
        return g
    obj = lambda: 0
    for _ in range(depth):
        obj = wrap(obj)

try:
    data = satchel.dumps(obj)
except satchel.PicklingError as e:
    msg = str(e).lower()
    # The recursion limit's words, or the stack's: satchel checks the room left before each
    # function, which can fire before the interpreter's own check (3.15's is stack-based).
    print("error", "recursion" in msg or "too deep for this thread's stack" in msg)
else:
    print("ok", len(data) > 0)
"""


@pytest.mark.parametrize("kind", ["list", "dict", "instances", "closures"])
def test_very_deep_structure_never_crashes(kind):
    out = run_script(_DEEP_SCRIPT, kind).split()
    assert out in ([b"ok", b"True"], [b"error", b"True"]), out


def test_file_errors_pass_through_with_a_sane_cause():
    class Full:
        def write(self, data):
            raise OSError("disk full")

    with pytest.raises(OSError) as info:
        satchel.Pickler(Full()).dump([1, 2, 3])
    assert info.value.__cause__ is not info.value
    assert not isinstance(info.value, satchel.PicklingError)


def test_subclass_persistent_id_is_not_second_guessed():
    import threading

    class Full:
        def write(self, data):
            raise OSError("disk full")

    class Persisting(satchel.Pickler):
        def persistent_id(self, obj):
            return "lock" if isinstance(obj, type(threading.Lock())) else None

    with pytest.raises(OSError, match="disk full"):
        Persisting(Full()).dump({"lock": threading.Lock()})


@pytest.mark.skipif(
    sys.implementation.name == "pypy",
    reason="PyPy's pickler turns the RecursionError into \"Can't pickle Loop object\" with no "
    "cause: nothing says it was recursion (the dump still fails with a PicklingError)",
)
def test_recursion_during_pickling_uses_cloudpickles_words():
    # cloudpickle's test_recursion_during_pickling; its message ("excessively deep recursion
    # required") is matched by code written against cloudpickle, so satchel's includes it.
    class Loop:
        def __getattribute__(self, name):
            return getattr(self, name)

    for protocol in (2, 5):
        with pytest.raises(satchel.PicklingError) as info:
            satchel.dumps(Loop(), protocol=protocol)
        message = str(info.value)
        assert "excessively deep recursion required" in message
        assert "<locals>.Loop'" in message  # names the object
        assert isinstance(info.value, RecursionError)  # except RecursionError still works
        assert isinstance(info.value.__cause__, RecursionError)
