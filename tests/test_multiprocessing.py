"""satchel under multiprocessing (spawn), concurrent.futures, loky and joblib.

Every case runs as the ``__main__`` script of a fresh interpreter (run_script), so the
lambdas, closures and classes it defines are ``__main__`` objects, exactly what the stdlib
pickler refuses. Each script reports the pids of the workers it started; after it exits the
test checks that none of them is still running. Every wait is bounded."""

import json
import sys
import time

import pytest

from conftest import import_or_skip_with_cloudpickle, needs_live_generators, run_script

psutil = pytest.importorskip("psutil")  # the scripts count their workers with it

PRELUDE = """
import json, sys, psutil

def workers():
    # Our children, minus the resource trackers (stdlib's and loky's) and the fork server:
    # one per parent process, not workers, and they exit with the parent.
    helpers = ("resource_tracker", "forkserver")
    return [
        p.pid
        for p in psutil.Process().children(recursive=True)
        if not any(h in " ".join(p.cmdline()) for h in helpers)
    ]

def report(result, pids):
    print(json.dumps({"result": result, "pids": sorted(set(pids)), "left": workers()}))
"""


def run(body, timeout=120, env=None):
    out = run_script(PRELUDE + body, timeout=timeout, env=env)
    line = out.decode().strip().splitlines()[-1]
    data = json.loads(line)
    assert data["left"] == [], f"workers still running after shutdown: {data['left']}"
    deadline = time.monotonic() + 10
    alive = [pid for pid in data["pids"] if psutil.pid_exists(pid)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in alive if psutil.pid_exists(pid)]
    assert not alive, f"worker processes outlived their script: {alive}"
    return data["result"]


def test_executor_maps_lambdas_and_main_class_methods():
    result = run(
        """
from satchel.futures import ProcessPoolExecutor

class Scaler:
    def __init__(self, k):
        self.k = k
    def scale(self, x):
        return x * self.k

k = 7
with ProcessPoolExecutor(2) as ex:
    lam = list(ex.map(lambda x: x * k, range(5), timeout=60))
    meth = list(ex.map(Scaler(3).scale, range(5), timeout=60))
    pids = [p.pid for p in ex._processes.values()]
report([lam, meth], pids)
"""
    )
    assert result == [[0, 7, 14, 21, 28], [0, 3, 6, 9, 12]]


def test_executor_exception_carries_the_worker_traceback():
    result = run(
        """
from satchel.futures import ProcessPoolExecutor

class TaskFailed(Exception):
    pass

def task(x):
    try:
        {}[x]
    except KeyError:
        raise TaskFailed(f"no {x}")

with ProcessPoolExecutor(1) as ex:
    fut = ex.submit(task, "key")
    try:
        fut.result(timeout=60)
    except Exception as exc:
        cause = str(exc.__cause__)
        out = [type(exc).__name__, str(exc), repr(exc.__context__),
               "Traceback" in cause and "in task" in cause]
    pids = [p.pid for p in ex._processes.values()]
report(out, pids)
"""
    )
    # The chain survives a PyPy receiver too: a stream made on PyPy sets it with setattr.
    assert result == ["TaskFailed", "no key", "KeyError('key')", True]


@needs_live_generators
def test_pool_maps_closures_and_finishes_a_suspended_generator():
    result = run(
        """
import satchel.multiprocessing as smp

def adder(j):
    return lambda x: x + j

def squares(n):
    for i in range(n):
        yield i * i

ctx = smp.get_context()
gen = squares(6)
first = [next(gen), next(gen)]
with ctx.Pool(2) as pool:
    out = [
        pool.map(adder(100), range(4)),
        list(pool.imap(adder(1), range(3))),
        pool.apply_async(adder(5), (1,)).get(60),
        first + pool.apply_async(list, (gen,)).get(60),
    ]
    pids = [p.pid for p in pool._pool]
    pool.close()
    pool.join()
report(out, pids)
"""
    )
    assert result == [[100, 101, 102, 103], [1, 2, 3], 6, [0, 1, 4, 9, 16, 25]]


def test_process_queue_and_pipe_carry_code_both_ways():
    result = run(
        """
import satchel.multiprocessing as smp

ctx = smp.get_context()
q = ctx.Queue()
p1 = ctx.Process(target=lambda: q.put(lambda: "from the child"))
p1.start()
from_queue = q.get(timeout=60)()
p1.join(60)

def child(conn):
    f = conn.recv()
    conn.send((f(2), lambda: "through the pipe"))

a, b = ctx.Pipe()
p2 = ctx.Process(target=child, args=(b,))
p2.start()
a.send(lambda x: x ** 10)
value, back = a.recv()
p2.join(60)
report([from_queue, value, back(), p1.exitcode, p2.exitcode], [p1.pid, p2.pid])
"""
    )
    assert result == ["from the child", 1024, "through the pipe", 0, 0]


def test_installed_whatever_the_import_order():
    """multiprocessing (and a queue) first, satchel later: still satchel's pickling."""
    result = run(
        """
import multiprocessing
q0 = multiprocessing.get_context("spawn").SimpleQueue()
import satchel.multiprocessing as smp

ctx = smp.get_context()
k = 3
with ctx.Pool(1) as pool:
    out = pool.apply(lambda: k * 2)
    pids = [p.pid for p in pool._pool]
    pool.close()
    pool.join()
report([out, smp.is_installed()], pids)
"""
    )
    assert result == [6, True]


def test_stdlib_process_pool_refuses_lambdas_without_satchel():
    """The baseline: the stdlib executor cannot ship a lambda (so the tests above mean
    something)."""
    result = run(
        """
import concurrent.futures, multiprocessing
with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as ex:
    try:
        ex.submit(lambda: 1).result(timeout=60)
        out = "shipped"
    except Exception as exc:
        out = type(exc).__name__
    pids = [p.pid for p in ex._processes.values()]
report(out, pids)
"""
    )
    assert result == "PicklingError"


def test_joblib_parallel_runs_lambdas_through_loky_with_satchel():
    import_or_skip_with_cloudpickle("joblib")
    result = run(
        """
from joblib import Parallel, delayed
from joblib.externals.loky import get_reusable_executor
from joblib.externals.loky.backend import reduction

class Offset:
    def __init__(self, k):
        self.k = k

k = 3
off = Offset(10)
out = Parallel(n_jobs=2, timeout=60)(delayed(lambda x: x * k + off.k)(i) for i in range(6))
ex = get_reusable_executor()
pids = list(ex._processes)
name = reduction.get_loky_pickler_name()
ex.shutdown(wait=True, kill_workers=True)
report([out, name], pids)
""",
        env={"LOKY_PICKLER": "satchel"},
    )
    assert result == [[10, 13, 16, 19, 22, 25], "satchel"]


@needs_live_generators
def test_loky_set_loky_pickler_ships_a_suspended_generator():
    import_or_skip_with_cloudpickle("loky")
    result = run(
        """
import loky

loky.set_loky_pickler("satchel")

def countdown(n):
    while n:
        yield n
        n -= 1

gen = countdown(5)
next(gen)
ex = loky.get_reusable_executor(max_workers=2)
k = 4
out = [list(ex.map(lambda x: x + k, range(3), timeout=60)), ex.submit(list, gen).result(60)]
pids = list(ex._processes)
ex.shutdown(wait=True, kill_workers=True)
report(out, pids)
"""
    )
    assert result == [[4, 5, 6], [4, 3, 2, 1]]


@pytest.mark.skipif(sys.platform == "win32", reason="fork is POSIX only")
def test_fork_and_forkserver_contexts():
    result = run(
        """
import satchel.multiprocessing as smp

k = 2
out, pids = [], []
for method in ("fork", "forkserver"):
    with smp.get_context(method).Pool(1) as pool:
        out.append(pool.map(lambda x: x * k, range(3)))
        pids += [p.pid for p in pool._pool]
        pool.close()
        pool.join()
report(out, pids)
"""
    )
    assert result == [[0, 2, 4], [0, 2, 4]]
