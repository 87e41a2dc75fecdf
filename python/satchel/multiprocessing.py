"""multiprocessing with satchel underneath: lambdas, closures, classes defined in ``__main__``
and suspended generators cross process boundaries (spawn by default, on every OS).

    ctx = satchel.multiprocessing.get_context()      # "spawn"; or "fork", "forkserver"
    with ctx.Pool(4) as pool:
        pool.map(lambda x: x * k, range(10))

How it is installed: the stdlib binds ``ForkingPickler`` into ``connection``, ``queues`` and
``reduction`` when each is imported, so replacing the name would depend on import order.
satchel instead sets ``reducer_override`` on the ``ForkingPickler`` class itself, which every
queue, pipe, pool and spawned process pickles with, whenever it was imported. That happens
when this module is imported, and it is process-wide: every context then pickles through
satchel (objects satchel does not handle still go through the stdlib's reducers, so
connections, sockets and shared memory keep working). ``uninstall()`` undoes it.

Children install it too: a satchel context's processes are instances of the classes below,
so a spawned or forkserver child imports this module when it loads its process object, before
it runs the target or sends a result back.
"""

import multiprocessing as _multiprocessing
from multiprocessing import context as _context
from multiprocessing import reduction as _reduction

from satchel import _satchel

__all__ = ["get_context", "install", "uninstall", "is_installed", "installed"]

_OVERRIDE = _satchel.ReducerOverride()
if hasattr(_satchel, "_cpyext_ready"):
    # PyPy: the Rust reducer behind satchel._pypy's readying, as satchel.Pickler has it.
    from satchel import _pypy

    _OVERRIDE = _pypy.reducer_override(_OVERRIDE)


def install() -> None:
    """Make multiprocessing's ForkingPickler reduce with satchel in this process (idempotent)."""
    if _reduction.ForkingPickler.__dict__.get("reducer_override") is not _OVERRIDE:
        _reduction.ForkingPickler.reducer_override = _OVERRIDE


def uninstall() -> None:
    """Give multiprocessing its own pickling back in this process."""
    if _reduction.ForkingPickler.__dict__.get("reducer_override") is _OVERRIDE:
        del _reduction.ForkingPickler.reducer_override


def is_installed() -> bool:
    """Whether multiprocessing pickles with satchel in this process (``satchel.dask`` has the
    same name)."""
    return _reduction.ForkingPickler.__dict__.get("reducer_override") is _OVERRIDE


#: The first name of ``is_installed``, kept for code that used it.
installed = is_installed


class SpawnProcess(_context.SpawnProcess):
    """A spawned process whose child pickles with satchel (it imports this module)."""

    @staticmethod
    def _Popen(process_obj):
        install()
        return _context.SpawnProcess._Popen(process_obj)


class SpawnContext(_context.SpawnContext):
    Process = SpawnProcess


_CONTEXTS: dict[str, _context.BaseContext] = {"spawn": SpawnContext()}

if hasattr(_context, "ForkProcess"):

    class ForkProcess(_context.ForkProcess):
        """A forked process: it inherits the installed reducer with the parent's memory."""

        @staticmethod
        def _Popen(process_obj):
            install()
            return _context.ForkProcess._Popen(process_obj)

    class ForkContext(_context.ForkContext):
        Process = ForkProcess

    _CONTEXTS["fork"] = ForkContext()

if hasattr(_context, "ForkServerProcess"):

    class ForkServerProcess(_context.ForkServerProcess):
        """A process forked by the fork server; it imports this module when it loads itself."""

        @staticmethod
        def _Popen(process_obj):
            install()
            return _context.ForkServerProcess._Popen(process_obj)

    class ForkServerContext(_context.ForkServerContext):
        Process = ForkServerProcess

    _CONTEXTS["forkserver"] = ForkServerContext()


def get_context(method: str | None = None) -> _context.BaseContext:
    """A multiprocessing context whose task and result traffic goes through satchel.

    ``method`` is "spawn" (the default here, on every OS, unlike the stdlib), "fork" or
    "forkserver" where the platform has them."""
    install()
    method = "spawn" if method is None else method
    try:
        return _CONTEXTS[method]
    except KeyError:
        known = ", ".join(sorted(_CONTEXTS))
        raise ValueError(
            f"cannot find context for {method!r} (this platform has {known})"
        ) from None


install()

# The stdlib module, for code that wants both (``satchel.multiprocessing.stdlib.Value``).
stdlib = _multiprocessing
