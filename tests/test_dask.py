"""satchel.dask on a real ``distributed.LocalCluster`` (worker processes, one cluster for the
module). The objects under test are defined inside the test functions, so satchel pickles them
by value; a suspended generator proves that satchel, not cloudpickle, carried a task. The
fixture checks at teardown that no worker process is left."""

import operator
import os
import pickle
import sys
import threading

import pytest

psutil = pytest.importorskip("psutil")
pytest.importorskip("distributed")

from distributed import Client, LocalCluster, wait  # noqa: E402

import satchel  # noqa: E402
import satchel.dask  # noqa: E402
from conftest import import_cloudpickle  # noqa: E402
from pythons import OTHER_LABEL, describe  # noqa: E402

TIMEOUT = 60  # seconds, for every result and wait

# Run on one worker (with exec, a builtin, so they travel as plain pickles whatever its
# fingerprint): make its satchel bootstrap believe it is another interpreter, then undo it.
_PRETEND_OTHER_INTERPRETER = f"""
import hashlib
import _satchel_boot_1 as boot
boot._saved_identity = (boot.FINGERPRINT, boot._FINGERPRINT_HEX, boot.LABEL)
boot.FINGERPRINT = hashlib.sha256(b"some other interpreter").digest()[:16]
boot._FINGERPRINT_HEX = boot.FINGERPRINT.hex()
boot.LABEL = {OTHER_LABEL!r}
"""
_RESTORE_INTERPRETER = """
import _satchel_boot_1 as boot
boot.FINGERPRINT, boot._FINGERPRINT_HEX, boot.LABEL = boot.__dict__.pop("_saved_identity")
"""


def _is_resource_tracker(proc):
    # multiprocessing's resource tracker lives as long as this process, by design.
    try:
        return any("resource_tracker" in part for part in proc.cmdline())
    except psutil.Error:
        return False


def _children():
    return {p for p in psutil.Process().children(recursive=True) if not _is_resource_tracker(p)}


@pytest.fixture(scope="module")
def cluster():
    cluster = LocalCluster(
        processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None
    )
    client = Client(cluster)
    started = _children()
    try:
        pids = set(client.run(os.getpid).values())
        assert pids <= {p.pid for p in started}, "workers are not child processes"
        satchel.dask.install(client)
        yield client, cluster
    finally:
        children = started | _children()  # with the workers the tests added
        try:
            if satchel.dask.is_installed():
                satchel.dask.uninstall(client)  # leaves this process as distributed made it
        finally:
            client.close()
            cluster.close()
        assert not satchel.dask.is_installed()
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"processes left after closing the cluster: {alive}"


def _installed_everywhere(client):
    workers = client.run(satchel.dask.is_installed)
    return (
        satchel.dask.is_installed()
        and client.run_on_scheduler(satchel.dask.is_installed)
        and all(workers.values())
    )


def test_installed_on_client_scheduler_and_workers(cluster):
    client, _ = cluster
    import distributed.client
    import distributed.protocol.pickle

    assert distributed.protocol.pickle.dumps is satchel.dask.dumps
    assert distributed.client.dumps is satchel.dask.dumps
    assert len(client.run(satchel.dask.is_installed)) == 2
    assert _installed_everywhere(client)
    satchel.dask.install(client)  # idempotent
    assert _installed_everywhere(client)


def test_closure(cluster):
    client, _ = cluster
    k = 7
    scale = lambda x: x * k
    assert satchel.inspect(satchel.dumps(scale))["mode"] == "nonportable"
    assert client.submit(scale, 6).result(timeout=TIMEOUT) == 42

    def make_adder(n):
        return lambda x: x + n

    add = make_adder(100)
    workers = sorted(client.scheduler_info()["workers"])
    futures = [client.submit(add, i, workers=[w]) for i, w in enumerate(workers)]
    wait(futures, timeout=TIMEOUT)
    assert client.gather(futures) == [100 + i for i in range(len(workers))]


def test_map(cluster):
    client, _ = cluster
    offset = 1000
    futures = client.map(lambda x: x * x + offset, range(200))
    wait(futures, timeout=TIMEOUT)
    assert client.gather(futures) == [x * x + offset for x in range(200)]
    total = client.submit(sum, futures)
    assert total.result(timeout=TIMEOUT) == sum(x * x + offset for x in range(200))


def test_main_class_instance(cluster):
    client, _ = cluster

    class Account:  # travels by value, like a class defined in __main__
        fee = 2

        def __init__(self, balance):
            self.balance = balance

        def deposit(self, amount):
            return Account(self.balance + amount - self.fee)

    result = client.submit(Account.deposit, Account(10), 5).result(timeout=TIMEOUT)
    assert type(result) is Account and result.balance == 13  # one class per definition
    assert result.deposit(1).balance == 12  # the class came back by value and works here

    [remote] = client.scatter([Account(50)])  # as data, not inside a task
    assert client.submit(lambda a: a.deposit(10).balance, remote).result(timeout=TIMEOUT) == 58


def _countdown():
    def countdown(n):
        seen = []
        while n > 0:
            seen.append(n)
            yield n, list(seen)
            n -= 1

    return countdown


def test_suspended_generator_from_client(cluster):
    client, _ = cluster
    countdown = _countdown()
    gen = countdown(4)
    assert next(gen) == (4, [4]) and next(gen) == (3, [4, 3])
    assert satchel.inspect(satchel.dumps(gen))["suspended_generators"]
    with pytest.raises(TypeError):
        pickle.dumps(gen)  # neither pickle nor cloudpickle could ship this task
    finished = client.submit(lambda g: list(g), gen, pure=False).result(timeout=TIMEOUT)
    assert finished == [(2, [4, 3, 2]), (1, [4, 3, 2, 1])]
    assert next(gen) == (2, [4, 3, 2])  # the client's copy is untouched


def test_suspended_generator_from_worker(cluster):
    client, _ = cluster
    countdown = _countdown()

    def started(n):
        gen = countdown(n)
        next(gen)
        return gen

    # The worker pickles the generator it returns: its own dumps is satchel's too.
    gen = client.submit(started, 3, pure=False).result(timeout=TIMEOUT)
    assert list(gen) == [(2, [3, 2]), (1, [3, 2, 1])]


def test_incompatible_interpreter_error_on_client(cluster):
    client, _ = cluster
    before = client.run(os.getpid)
    bad, good = sorted(before)[:2]
    client.run(exec, _PRETEND_OTHER_INTERPRETER, {}, workers=[bad])
    try:
        k = 3
        future = client.submit(lambda x: x * k, 5, workers=[bad], allow_other_workers=False)
        with pytest.raises(satchel.IncompatibleInterpreter) as info:
            future.result(timeout=TIMEOUT)
        message = str(info.value)
        assert isinstance(info.value, pickle.UnpicklingError)
        assert f"could not be loaded on worker {bad}" in message
        assert future.key in message
        assert f"stream made by {describe(satchel._satchel.LABEL)}" in message
        assert f"this is {describe(OTHER_LABEL)}" in message

        # client.run goes through another path (an RPC): an error too, and the worker survives.
        with pytest.raises(Exception, match="IncompatibleInterpreter"):
            client.run(lambda: k, workers=[bad])

        # The worker is alive, the same process, and runs what it can load.
        assert client.run(os.getpid) == before
        assert set(client.scheduler_info()["workers"]) == set(before)
        plain = client.submit(operator.add, 1, 2, workers=[bad], allow_other_workers=False)
        assert plain.result(timeout=TIMEOUT) == 3
        assert client.submit(lambda: k, workers=[good]).result(timeout=TIMEOUT) == 3
    finally:
        client.run(exec, _RESTORE_INTERPRETER, {}, workers=[bad])
    again = client.submit(lambda x: x * k, 6, workers=[bad], allow_other_workers=False)
    assert again.result(timeout=TIMEOUT) == 18


def test_task_needing_a_module_the_worker_lacks(cluster, tmp_path, monkeypatch):
    """The most common load failure: the task reads a module only the client has. The
    future raises the loading error (naming the task and the worker), not distributed's."""
    client, _ = cluster
    (tmp_path / "only_on_the_client.py").write_text("FACTOR = 4\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import only_on_the_client

    try:
        future = client.submit(lambda x: x * only_on_the_client.FACTOR, 2, pure=False)
        with pytest.raises(ModuleNotFoundError, match="only_on_the_client") as info:
            future.result(timeout=TIMEOUT)
        message = str(info.value)
        assert f"task {future.key!r} could not be loaded on worker tcp://" in message
        assert client.submit(operator.add, 1, 2).result(timeout=TIMEOUT) == 3
    finally:
        sys.modules.pop("only_on_the_client", None)


def test_result_a_worker_cannot_pickle_raises_satchels_error(cluster):
    """A result the worker cannot pickle: ``.result()`` raises satchel.PicklingError with the
    path to the culprit and the worker, not distributed's ``TypeError: Could not serialize``."""
    client, _ = cluster
    before = client.run(os.getpid)

    def make():
        lock = threading.Lock()
        return lambda: lock

    future = client.submit(make, pure=False)
    with pytest.raises(satchel.PicklingError) as info:
        future.result(timeout=TIMEOUT)
    message = str(info.value)
    assert "closure cell 'lock'" in message and "_thread.lock" in message
    assert "on worker tcp://" in message
    assert client.run(os.getpid) == before  # every worker survived


def test_worker_joining_later(cluster):
    client, cluster_ = cluster
    before = set(client.scheduler_info()["workers"])
    cluster_.scale(len(before) + 1)
    client.wait_for_workers(len(before) + 1, timeout=TIMEOUT)
    [new] = set(client.scheduler_info()["workers"]) - before
    assert client.run(satchel.dask.is_installed, workers=[new]) == {new: True}

    countdown = _countdown()
    gen = countdown(3)
    next(gen)

    def finish_and_restart(g):
        fresh = countdown(2)
        next(fresh)
        return list(g), fresh  # the result holds a suspended generator too

    future = client.submit(finish_and_restart, gen, workers=[new], allow_other_workers=False)
    rest, fresh = future.result(timeout=TIMEOUT)
    assert rest == [(2, [3, 2]), (1, [3, 2, 1])]
    assert list(fresh) == [(1, [2, 1])]
    assert client.who_has(future)[future.key] == (new,)


def test_uninstall_and_reinstall(cluster):
    client, _ = cluster
    satchel.dask.uninstall(client)
    try:
        assert not satchel.dask.is_installed()
        assert not client.run_on_scheduler(satchel.dask.is_installed)
        assert not any(client.run(satchel.dask.is_installed).values())
        k = 5
        assert client.submit(lambda x: x + k, 1).result(timeout=TIMEOUT) == 6  # cloudpickle
    finally:
        satchel.dask.install(client)
    assert _installed_everywhere(client)
    gen = _countdown()(2)
    assert client.submit(list, gen, pure=False).result(timeout=TIMEOUT) == [
        (2, [2]),
        (1, [2, 1]),
    ]


def test_pickle_by_value_when_registered(cluster, tmp_path, monkeypatch):
    """distributed's own test_pickle_by_value_when_registered, under satchel: a module that
    code registered with cloudpickle goes by value through satchel too, and so runs on a worker
    that cannot import it (the module's folder is on this process's sys.path only)."""
    import importlib
    import sys
    import uuid

    import distributed.protocol.pickle as dpickle

    cloudpickle = import_cloudpickle()
    client, _ = cluster
    assert dpickle.dumps is satchel.dask.dumps
    name = f"satchel_dask_mymodule_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{name}.py").write_text("def myfunc(x):\n    return x + 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # here only: the workers are already running
    module = importlib.import_module(name)
    try:
        plain = pickle.dumps(module.myfunc, protocol=pickle.HIGHEST_PROTOCOL)
        # By reference (a worker would fail to import it, as it would with cloudpickle; a task
        # spec that fails to load breaks the worker's stream, so that is not sent).
        assert dpickle.dumps(module.myfunc) == plain

        cloudpickle.register_pickle_by_value(module)
        try:
            assert len(dpickle.dumps(module.myfunc)) > len(plain)
            future = client.submit(module.myfunc, 1, pure=False)
            assert future.result(timeout=TIMEOUT) == 2
        finally:
            cloudpickle.unregister_pickle_by_value(module)
    finally:
        sys.modules.pop(name, None)


# In this process, without the cluster: the wire format of satchel.dask.dumps.


def test_dumps_wraps_only_task_specs_that_need_satchel():
    from dask._task_spec import Task
    from distributed.protocol.pickle import loads

    np = pytest.importorskip("numpy")
    k = 2
    task = Task("key-1", lambda a: float(a.sum()) * k, np.arange(10.0))
    assert b"_load_task" in satchel.dask.dumps(task)
    for protocol in (5, 4):  # out of band (the stream too) and in band
        buffers = []
        data = satchel.dask.dumps(task, protocol=protocol, buffer_callback=buffers.append)
        assert (len(buffers) == 2) is (protocol == 5)  # the inner stream and the array
        loaded = loads(data, buffers=buffers)
        assert type(loaded) is Task and loaded.key == "key-1" and loaded({}) == 90.0

    plain = Task("key-2", operator.add, 1, 2)  # no satchel header: left as satchel wrote it
    assert satchel.dask.dumps(plain) == satchel.dumps(plain)
    assert satchel.dask.dumps(k) == pickle.dumps(k, protocol=5)


def test_dumps_falls_back_to_dask_serializers():
    import threading

    from distributed.protocol.pickle import loads
    from distributed.protocol.serialize import dask_deserialize, dask_serialize

    class Guarded:  # satchel cannot pickle its lock; a dask serializer can ship it
        def __init__(self, value):
            self.value, self.lock = value, threading.Lock()

    dask_serialize.register(Guarded)(lambda x: ({}, [pickle.dumps(x.value)]))
    dask_deserialize.register(Guarded)(lambda header, frames: Guarded(pickle.loads(frames[0])))
    k = 3
    value, scale = loads(satchel.dask.dumps([Guarded(5), lambda x: x * k]))
    assert value.value == 5 and scale(2) == 6
    with pytest.raises(satchel.PicklingError, match="_thread.lock"):
        satchel.dask.dumps(threading.Lock())
