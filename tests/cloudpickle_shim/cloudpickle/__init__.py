"""satchel standing in for ``cloudpickle``, so that cloudpickle's own test suite runs against
satchel (``tests/test_cloudpickle_suite.py``). Only satchel's public API is re-exported: a
test that needs one of cloudpickle's private helpers fails on it (``cloudpickle.cloudpickle``
says how)."""

from satchel import *  # noqa: F403
from satchel import __all__ as _satchel_all

from . import cloudpickle  # noqa: F401  (the ``cloudpickle.cloudpickle`` module, as upstream)

# The release whose test suite runs against this shim (cloudpickle's tests never read it).
__version__ = "3.1.0"

__all__ = ["__version__", *_satchel_all]
