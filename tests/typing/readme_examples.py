"""The README's examples as a user's typed code: `make lint` runs `mypy --strict` on this file
(it is never executed; tests/test_readme.py runs the blocks themselves)."""

import concurrent.futures
import io
import operator
import os
import pickle
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy

import satchel
import satchel.dask
import satchel.futures
import satchel.multiprocessing


def basics() -> None:
    rate = 1.25
    payload: bytes = satchel.dumps(lambda x: x * rate)
    pickle.loads(payload)(8)
    k = 3
    f: Callable[[int], int] = lambda x: x * k  # noqa: E731
    satchel.dumps(f)
    satchel.dumps(f, mode="portable")
    satchel.dumps(f, standalone=True)
    satchel.dumps([f, list(range(10))], compress=True)
    info: dict[str, Any] = satchel.inspect(satchel.dumps(f))
    assert info["needs_satchel"]
    try:
        satchel.dumps(threading.Lock())
    except satchel.PicklingError as exc:
        print(exc)


def files() -> None:
    buf = io.BytesIO()
    satchel.dump(lambda x: x + 1, buf)
    satchel.dump({"plain": "data"}, buf)
    buf.seek(0)
    satchel.load(buf)(1)
    satchel.load(buf, key=b"k", allow="data")
    with open("two.satchel", "rb") as fh:
        satchel.Unpickler(fh, allow=["operator.*"]).load()


def sessions() -> None:
    report = satchel.dump_session(
        "work.satchel", strict=False, mode="portable", compress=True, progress=False
    )
    names: list[str] = report.saved
    skipped: list[tuple[str, str]] = [(s.name, s.reason) for s in report.skipped]
    print(names, skipped, report.size)
    satchel.load_session("work.satchel")


def signing() -> None:
    secret, old_secret = os.urandom(32), os.urandom(32)
    data = satchel.dumps(lambda x: x * 2, key=secret)
    satchel.loads(data, key=secret)(21)
    satchel.loads(data, key=[secret, old_secret])(21)
    try:
        satchel.loads(data, key=old_secret)
    except satchel.SignatureError:
        pass
    getter = satchel.dumps(operator.itemgetter(1))
    satchel.loads(satchel.dumps({"a": [1.5]}), allow="data")
    satchel.loads(getter, allow=["operator.*"])
    arrays = satchel.dumps(numpy.arange(3.0))
    satchel.loads(arrays, allow=lambda module, name: module.startswith("numpy"))


def running_mean(values: list[float]) -> Iterator[float]:
    total = count = 0.0
    for v in values:
        total, count = total + v, count + 1
        yield total / count


def generators() -> None:
    gen = running_mean([2, 4, 6, 8])
    next(gen)
    satchel.dumps(gen)


def pools() -> None:
    k = 3
    ctx = satchel.multiprocessing.get_context()
    with ctx.Pool(2) as pool:
        print(pool.map(lambda x: x * k, range(5)))
    with satchel.futures.ProcessPoolExecutor(2) as ex:
        future: concurrent.futures.Future[int] = ex.submit(lambda: k + 1)
        future.result()
    satchel.multiprocessing.install()
    assert satchel.multiprocessing.is_installed()


def pickler() -> None:
    class Mine(satchel.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            return super().reducer_override(obj)

    out = io.BytesIO()
    Mine(out, 5, mode="portable", standalone=True, compress=False).dump(len)


def dask(client: Any) -> None:
    satchel.dask.install(client)
    assert satchel.dask.is_installed()
