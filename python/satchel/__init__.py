"""satchel: ship Python code (functions, closures, classes defined at run time) as pickle
protocol 5 streams. A drop-in replacement for cloudpickle with the same names; the reducer is
written in Rust.

Loading a pickle runs code: only load streams from sources you trust.
"""

import os
import pickle
import sys
import types
import warnings
from typing import TYPE_CHECKING, Any, Literal

from satchel import _pickler, _satchel
from satchel._load import Unpickler, load
from satchel._pickler import CloudPickler, Pickler
from satchel._satchel import (
    FINGERPRINT,
    FORMAT_VERSION,
    IncompatibleFormat,
    IncompatibleInterpreter,
    PicklingError,
    SignatureError,
    UnpicklingError,
    dump,
    dumps,
    inspect,
    list_registry_pickle_by_value,
    loads,
    register_pickle_by_value,
    unregister_pickle_by_value,
)

if _pickler._CPYEXT_READY is not None:
    # PyPy: the object crosses into C here, its tuples' items with it (satchel._pypy).
    import functools as _functools

    from satchel import _pypy

    def _ready_first(function):
        @_functools.wraps(function)
        def call(obj, *args, **kwargs):
            _pypy.ready(obj, deep=False)
            return function(obj, *args, **kwargs)

        return call

    dumps = _ready_first(dumps)
    dump = _ready_first(dump)

#: The package version (Cargo.toml holds it; the wheel's metadata says the same).
__version__ = _satchel.__version__

#: satchel writes protocol 5 unless told otherwise, as cloudpickle does.
DEFAULT_PROTOCOL = pickle.HIGHEST_PROTOCOL

__all__ = [
    "DEFAULT_PROTOCOL",
    "FINGERPRINT",
    "FORMAT_VERSION",
    "CloudPickler",
    "IncompatibleFormat",
    "IncompatibleInterpreter",
    "Pickler",
    "PicklingError",
    "SignatureError",
    "Unpickler",
    "UnpicklingError",
    "dump",
    "dump_session",
    "dumps",
    "inspect",
    "is_tornado_coroutine",
    "list_registry_pickle_by_value",
    "load",
    "load_session",
    "loads",
    "pickle",
    "register_pickle_by_value",
    "unregister_pickle_by_value",
]

_satchel._register_pickler(Pickler)

if TYPE_CHECKING:
    from satchel._session import SessionReport


def is_tornado_coroutine(func: object) -> bool:
    """Whether ``func`` is a Tornado coroutine function (cloudpickle's, deprecated there too).

    satchel needs nothing special for them: a ``@tornado.gen.coroutine`` function pickles like
    any other wrapper. Use ``tornado.gen.is_coroutine_function`` directly.
    """
    warnings.warn(
        "is_tornado_coroutine is deprecated (as in cloudpickle 3); use "
        "tornado.gen.is_coroutine_function directly instead.",
        category=DeprecationWarning,
        stacklevel=2,
    )
    gen = sys.modules.get("tornado.gen")  # never imports tornado, as cloudpickle does not
    if gen is None or not hasattr(gen, "is_coroutine_function"):
        return False
    return gen.is_coroutine_function(func)


def dump_session(
    path: str | os.PathLike[str],
    *,
    module: types.ModuleType | None = None,
    strict: bool = False,
    mode: Literal["nonportable", "portable"] = "nonportable",
    compress: bool = True,
    standalone: bool | None = None,
    progress: bool | None = None,
) -> "SessionReport":
    """Snapshot the session (``__main__``, a module, or IPython's user namespace) to ``path``,
    atomically; one unpicklable global is skipped and reported, not fatal (see
    ``satchel._session``)."""
    from satchel._session import dump_session as impl

    return impl(
        path,
        module=module,
        strict=strict,
        mode=mode,
        compress=compress,
        standalone=standalone,
        progress=progress,
    )


def load_session(
    path: str | os.PathLike[str], *, module: types.ModuleType | None = None
) -> "SessionReport":
    """Restore a snapshot written by :func:`dump_session`; returns its report."""
    from satchel._session import load_session as impl

    return impl(path, module=module)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext satchel``: the ``%satchel save PATH`` / ``%satchel load PATH`` magics."""
    from satchel._ipython import load_ipython_extension as impl

    return impl(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from satchel._ipython import unload_ipython_extension as impl

    return impl(ipython)
