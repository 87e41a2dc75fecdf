"""satchel demo: ship a lambda, a closure and an instance of a class defined in __main__ to a
child process started with the spawn method (the only start method on Windows), where the
stdlib pickler would refuse all three. Then checkpoint a generator half-way and finish it in
another child. Then compare dumps/loads times with cloudpickle.

Run it with `make demo`.
"""

import multiprocessing
import pickle
import statistics
import time

import satchel

RATE = 1.25  # a module global that the lambda reads: it travels with the function


class Account:  # defined in __main__: travels by value
    def __init__(self, owner, balance):
        self.owner = owner
        self.balance = balance

    def grow(self, years):
        return round(self.balance * RATE**years, 2)


def make_counter(start):
    count = start

    def step(by=1):
        nonlocal count
        count += by
        return count

    return step


def run_in_child(payload, results):
    """Runs in the spawned child: plain pickle.loads is enough (satchel is installed there)."""
    lam, counter, account = pickle.loads(payload)
    results.put((lam(8), [counter(), counter(5)], account.grow(2), type(account).__qualname__))


def ship():
    lam = lambda x: x * RATE
    payload = satchel.dumps((lam, make_counter(10), Account("ada", 100.0)))
    try:
        pickle.dumps(lam)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:  # why satchel exists
        print(f"stdlib pickle refuses the lambda: {type(exc).__name__}: {exc}")
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    child = ctx.Process(target=run_in_child, args=(payload, results))
    child.start()
    lam_result, counter_results, grown, cls_name = results.get(timeout=60)
    child.join()
    print(f"shipped {len(payload)} bytes to a spawned child (pid {child.pid}); it computed:")
    print(f"  lambda(8)            = {lam_result}")
    print(f"  closure counter      = {counter_results}")
    print(f"  {cls_name}.grow(2)   = {grown}")
    assert (lam_result, counter_results, grown) == (10.0, [11, 16], 156.25)


def timings():
    tasks = [(lambda x, k=k: x * k + RATE, (k,)) for k in range(2000)]
    rows = [("satchel", satchel.dumps)]
    try:
        import cloudpickle

        rows.append((f"cloudpickle {cloudpickle.__version__}", cloudpickle.dumps))
    except ImportError:
        print("(cloudpickle is not installed: no comparison)")
    print("\n2000 one-task dumps/loads, median of 5 runs, per task:")
    results = {}
    for name, dumps in rows:
        dump_times, load_times = [], []
        for _ in range(5):
            t0 = time.perf_counter()
            payloads = [dumps(t) for t in tasks]
            t1 = time.perf_counter()
            for p in payloads:
                pickle.loads(p)
            t2 = time.perf_counter()
            dump_times.append((t1 - t0) / len(tasks))
            load_times.append((t2 - t1) / len(tasks))
        results[name] = (
            statistics.median(dump_times),
            statistics.median(load_times),
            len(payloads[0]),
        )
        d, lo, size = results[name]
        print(f"  {name:<20} dumps {d * 1e6:6.2f} us   loads {lo * 1e6:6.2f} us   {size} bytes")
    if len(results) == 2:
        (sd, sl, ss), (cd, cl, cs) = results.values()
        print(
            f"  satchel/cloudpickle: dumps {sd / cd:.2f}x, loads {sl / cl:.2f}x, bytes {ss / cs:.2f}x"
        )


def running_mean(values):
    """A suspended generator carries its whole frame: the loop's iterator, the locals."""
    total = count = 0
    for v in values:
        total += v
        count += 1
        yield total / count


def resume_in_child(payload, results):
    gen = pickle.loads(payload)
    results.put(list(gen))


def checkpoint():
    gen = running_mean([2, 4, 6, 8, 10, 12])
    first = [next(gen), next(gen), next(gen)]
    payload = satchel.dumps(gen)  # suspended after the third value
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    child = ctx.Process(target=resume_in_child, args=(payload, results))
    child.start()
    rest = results.get(timeout=60)
    child.join()
    print(f"\na generator checkpointed after {first} ({len(payload)} bytes)")
    print(f"  resumed in a spawned child: {rest}; the original goes on: {list(gen)}")
    assert rest == [5.0, 6.0, 7.0] == list(running_mean([2, 4, 6, 8, 10, 12]))[3:]


def show_error():
    import threading

    lock = threading.Lock()

    def task():
        with lock:
            return 1

    try:
        satchel.dumps(task)
    except satchel.PicklingError as exc:
        print(f"\nan unpicklable closure gives a clear error:\n  {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    ship()
    checkpoint()
    timings()
    show_error()
