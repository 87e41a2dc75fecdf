"""pytest plugin for the inner run of loky's tests (``-p satchel_loky_check``): checks before
any test that loky's pickler is satchel's (``Pickler`` subclassed by loky), under the name
given in $SATCHEL_EXPECT_LOKY_PICKLER ("satchel" through LOKY_PICKLER, "cloudpickle" through
the shim)."""

import os


def pytest_sessionstart(session):
    from loky.backend.reduction import get_loky_pickler, get_loky_pickler_name, set_loky_pickler

    import satchel

    set_loky_pickler()
    name, cls = get_loky_pickler_name(), get_loky_pickler()
    expected = os.environ["SATCHEL_EXPECT_LOKY_PICKLER"]
    if name != expected or not issubclass(cls, satchel.Pickler):
        raise RuntimeError(f"loky's pickler is {name!r} ({cls.__mro__}), not satchel's")
