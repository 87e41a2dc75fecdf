"""satchel: ship Python code (functions, closures, classes defined at run time) as pickle
protocol 5 streams. A drop-in replacement for cloudpickle with the same names; the reducer is
written in Rust.

Loading a pickle runs code: only load streams from sources you trust.
"""

import pickle
from pickle import load

from satchel import _satchel
from satchel._pickler import CloudPickler, Pickler
from satchel._satchel import (
    FINGERPRINT,
    FORMAT_VERSION,
    IncompatibleFormat,
    IncompatibleInterpreter,
    PicklingError,
    UnpicklingError,
    dump,
    dumps,
    inspect,
    list_registry_pickle_by_value,
    loads,
    register_pickle_by_value,
    unregister_pickle_by_value,
)

__version__ = "0.1.0"

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
    "UnpicklingError",
    "dump",
    "dumps",
    "inspect",
    "list_registry_pickle_by_value",
    "load",
    "loads",
    "pickle",
    "register_pickle_by_value",
    "unregister_pickle_by_value",
]

_satchel._register_pickler(Pickler)
