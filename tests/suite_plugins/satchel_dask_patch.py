"""pytest plugin for the inner run of distributed's tests (``-p satchel_dask_patch``): every
pickle distributed writes goes through ``satchel.dask.dumps``, as on a cluster after
``satchel.dask.install(client)``. Applied before the test modules import ``dumps`` by name."""


def pytest_configure(config):
    import distributed.protocol.pickle

    import satchel.dask

    satchel.dask._patch()  # this process only: what install() does on every worker
    if distributed.protocol.pickle.dumps is not satchel.dask.dumps:
        raise RuntimeError("satchel.dask did not replace distributed.protocol.pickle.dumps")
