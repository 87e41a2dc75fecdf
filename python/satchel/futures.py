"""concurrent.futures with satchel underneath.

    with satchel.futures.ProcessPoolExecutor() as ex:
        list(ex.map(lambda x: x * k, range(10)))

The stdlib executor on a satchel multiprocessing context (spawn by default): tasks, results and
exceptions travel through satchel, so lambdas, closures, classes defined in ``__main__`` and
suspended generators work. An exception raised in a worker comes back with the worker's
traceback text as its ``__cause__`` (the stdlib's ``_RemoteTraceback``), and satchel keeps its
``__context__``/``__cause__`` chain.
"""

from collections.abc import Callable
from concurrent.futures import process as _process
from multiprocessing.context import BaseContext
from typing import Any

from satchel import multiprocessing as _smp

__all__ = ["ProcessPoolExecutor"]


class ProcessPoolExecutor(_process.ProcessPoolExecutor):
    """``concurrent.futures.ProcessPoolExecutor`` whose default ``mp_context`` is
    ``satchel.multiprocessing.get_context()`` (spawn). Other arguments are the stdlib's."""

    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: BaseContext | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        **kwargs: Any,
    ) -> None:
        if mp_context is None:
            mp_context = _smp.get_context()
        _smp.install()
        super().__init__(max_workers, mp_context, initializer, initargs, **kwargs)
