"""pytest plugin for the inner run of loky's or joblib's tests (``-p satchel_loky_check``):
checks before any test that loky's pickler (the loky package named in $SATCHEL_LOKY_PACKAGE,
``loky`` or joblib's ``joblib.externals.loky``) is satchel's ``Pickler`` subclassed by loky,
under the name given in $SATCHEL_EXPECT_LOKY_PICKLER ("satchel" through LOKY_PICKLER,
"cloudpickle" through the shim)."""

import importlib
import os


def pytest_sessionstart(session):
    import satchel

    package = os.environ.get("SATCHEL_LOKY_PACKAGE", "loky")
    reduction = importlib.import_module(f"{package}.backend.reduction")
    reduction.set_loky_pickler()
    name, cls = reduction.get_loky_pickler_name(), reduction.get_loky_pickler()
    expected = os.environ["SATCHEL_EXPECT_LOKY_PICKLER"]
    if name != expected or not issubclass(cls, satchel.Pickler):
        raise RuntimeError(f"{package}'s pickler is {name!r} ({cls.__mro__}), not satchel's")
