"""Dask distributed through satchel: ``satchel.dask.install(client)``.

Every pickle that distributed writes goes through ``distributed.protocol.pickle.dumps`` (task
specs, arguments, results, ``client.run`` functions, plugins). ``install`` replaces that
function, and the copies imported by name (``distributed.client.dumps``,
``distributed.scheduler.dumps``...), with :func:`dumps`, which writes with ``satchel.dumps``,
same signature and out-of-band buffers. It does so in the client's process at once, on the
scheduler through a ``SchedulerPlugin`` (the scheduler unpickles the client's graph and pickles
each task again for its worker) and on every worker, present and future, through a
``WorkerPlugin`` (results and data sent between workers). ``loads`` stays distributed's own:
plain ``pickle.loads`` reads satchel streams wherever satchel is installed.

A worker unpickles a task while reading the scheduler's message stream, and distributed closes
a worker whose stream fails to load. So a task spec that needs satchel (its stream has a header)
travels wrapped: the receiver loads the inner stream itself and, on failure (a worker on another
interpreter raises ``IncompatibleInterpreter``), runs instead a task that raises that error,
naming the task and the worker. The client's future raises it; the worker stays up.

A result a worker cannot pickle (a closure over a lock) would reach the client as distributed's
``TypeError: Could not serialize object``, satchel's message buried in a traceback's text. On
workers, such a result is sent instead as a stream that raises ``satchel.PicklingError`` (its
message, naming the worker) where it is loaded: ``future.result()`` raises it.
"""

from __future__ import annotations

import io
import logging
import pickle
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import distributed.protocol.pickle as _dpickle
from dask._task_spec import GraphNode, Task
from distributed.diagnostics.plugin import SchedulerPlugin, WorkerPlugin
from distributed.protocol.serialize import dask_deserialize, dask_serialize

import satchel
from satchel import _satchel

__all__ = ["PLUGIN_NAME", "SatchelSchedulerPlugin", "SatchelWorkerPlugin", "dumps", "install"]
__all__ += ["is_installed", "uninstall"]

logger = logging.getLogger(__name__)

#: Name of both plugins on the cluster.
PLUGIN_NAME = "satchel"

_STOCK_DUMPS = _dpickle.dumps
_LOCK = threading.Lock()
_PATCHED: list = []  # modules whose ``dumps`` this process replaced
# This worker's address, set by SatchelWorkerPlugin: results it cannot pickle raise on load.
_WORKER_ADDRESS = None


class _DaskPickler(satchel.Pickler):
    """The fallback of distributed's own dumps: types with a dask serializer go through it."""

    def reducer_override(self, obj):
        if not _dpickle._always_use_pickle_for(obj):
            try:
                serialize = dask_serialize.dispatch(type(obj))
                deserialize = dask_deserialize.dispatch(type(obj))
                return deserialize, serialize(obj)
            except TypeError:
                pass
        return super().reducer_override(obj)


def dumps(
    x: Any,
    *,
    buffer_callback: Callable[[pickle.PickleBuffer], Any] | None = None,
    protocol: int = _dpickle.HIGHEST_PROTOCOL,
) -> bytes:
    """``distributed.protocol.pickle.dumps`` written with satchel (same signature)."""
    buffers: list = []
    kwargs = {"protocol": protocol or _dpickle.HIGHEST_PROTOCOL}
    if kwargs["protocol"] >= 5 and buffer_callback is not None:
        kwargs["buffer_callback"] = buffers.append
    try:
        result = satchel.dumps(x, **kwargs)
    except Exception:
        buffers.clear()
        result = _dumps_with_dask_serializers(x, kwargs)
        if result is None:
            logger.exception("Failed to serialize %s.", x)
            if _WORKER_ADDRESS is not None and not isinstance(x, GraphNode):
                return _deferred_error(sys.exc_info()[1])
            raise  # satchel's error: it names the object and the path to it
    if isinstance(x, GraphNode) and _has_header(result):
        result, buffers = _guard_task(x.key, result, buffers, kwargs)
    if buffer_callback is not None:
        for b in buffers:
            buffer_callback(b)
    return result


def _dumps_with_dask_serializers(x, kwargs):
    try:
        f = io.BytesIO()
        _DaskPickler(f, **kwargs).dump(x)
        return f.getvalue()
    except Exception:  # noqa: BLE001 (the caller raises satchel's first error instead)
        return None


def _has_header(data) -> bool:
    # satchel's own header parser (plain pickles, the common case, are told apart at once).
    return _satchel._has_header(data)


class _Guarded:
    __slots__ = ("key", "stream", "buffers")

    def __init__(self, key, stream, buffers):
        self.key, self.stream, self.buffers = key, stream, buffers

    def __reduce__(self):
        return _load_task, (self.key, self.stream, self.buffers)


def _guard_task(key, stream, buffers, kwargs):
    outer: list = []
    if "buffer_callback" in kwargs:
        # The inner stream and its buffers travel out of band: no copy.
        stream = pickle.PickleBuffer(stream)
        kwargs = dict(kwargs, buffer_callback=outer.append)
    return pickle.dumps(_Guarded(key, stream, buffers), **kwargs), outer


def _load_task(key, stream, buffers):
    """Load a wrapped task spec; if this process cannot, a task that raises why."""
    try:
        return pickle.loads(stream, buffers=buffers)
    except Exception as error:
        logger.error("satchel: cannot load task %r on this worker", key, exc_info=True)
        return Task(key, _raise_load_error, key, error)


class _DumpError:
    """What a worker sends for an object it cannot pickle: loading it raises the error."""

    __slots__ = ("message",)

    def __init__(self, message):
        self.message = message

    def __reduce__(self):
        return _raise_dump_error, (self.message,)


def _deferred_error(error):
    message = f"{error} (on worker {_WORKER_ADDRESS}, which could not pickle it)"
    return pickle.dumps(_DumpError(message), protocol=_dpickle.HIGHEST_PROTOCOL)


def _raise_dump_error(message):
    raise satchel.PicklingError(message)


def _raise_load_error(key, error):
    try:
        from distributed import get_worker

        where = f"worker {get_worker().address}"
    except ValueError:
        where = "this worker"
    try:
        wrapped = type(error)(f"task {key!r} could not be loaded on {where}: {error}")
    except TypeError:  # an exception class with another signature: raise it as it is
        raise error from None
    raise wrapped from error


def _patch() -> None:
    """Replace distributed's pickle ``dumps`` with satchel's in this process (idempotent)."""
    with _LOCK:
        for name, module in list(sys.modules.items()):
            if name.partition(".")[0] != "distributed" or module is None:
                continue
            if getattr(module, "dumps", None) is _STOCK_DUMPS:
                module.dumps = dumps
                _PATCHED.append(module)
        worker = sys.modules.get("distributed.worker")
        if worker is not None:  # functions pickled before the patch
            worker.cache_dumps.clear()


def _unpatch() -> None:
    """Undo :func:`_patch` in this process."""
    with _LOCK:
        while _PATCHED:
            module = _PATCHED.pop()
            if getattr(module, "dumps", None) is dumps:
                module.dumps = _STOCK_DUMPS
        worker = sys.modules.get("distributed.worker")
        if worker is not None:
            worker.cache_dumps.clear()


def is_installed() -> bool:
    """Whether distributed pickles with satchel in this process."""
    return _dpickle.dumps is dumps


class SatchelWorkerPlugin(WorkerPlugin):
    """Makes a worker pickle with satchel; the scheduler hands it to workers that join later."""

    name = PLUGIN_NAME
    idempotent = True

    def setup(self, worker):
        global _WORKER_ADDRESS
        _WORKER_ADDRESS = worker.address
        _patch()

    def teardown(self, worker):
        global _WORKER_ADDRESS
        _WORKER_ADDRESS = None
        _unpatch()


class SatchelSchedulerPlugin(SchedulerPlugin):
    """Makes the scheduler pickle the task specs it sends to workers with satchel."""

    name = PLUGIN_NAME
    idempotent = True

    def start(self, scheduler):
        _patch()


def install(client: Any) -> Awaitable[None] | None:
    """Ship task functions and data through satchel on ``client``'s whole cluster.

    Patches this process, the scheduler and every worker, including workers that join later.
    Idempotent. With an asynchronous client, returns an awaitable.
    """
    _patch()
    if client.asynchronous:
        return _install_async(client)
    client.register_plugin(SatchelSchedulerPlugin())
    client.register_plugin(SatchelWorkerPlugin())
    return None


async def _install_async(client):
    await client.register_plugin(SatchelSchedulerPlugin())
    await client.register_plugin(SatchelWorkerPlugin())


def uninstall(client: Any) -> Awaitable[None] | None:
    """Undo :func:`install`: distributed's own pickling again, here and on the cluster."""
    if client.asynchronous:
        return _uninstall_async(client)
    try:
        client.unregister_worker_plugin(PLUGIN_NAME)  # its teardown unpatches each worker
        client.unregister_scheduler_plugin(PLUGIN_NAME)
        client.run_on_scheduler(_unpatch)
    finally:
        _unpatch()
    return None


async def _uninstall_async(client):
    try:
        await client.unregister_worker_plugin(PLUGIN_NAME)
        await client.unregister_scheduler_plugin(PLUGIN_NAME)
        await client.run_on_scheduler(_unpatch)
    finally:
        _unpatch()
