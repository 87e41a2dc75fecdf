CASES = {}
CASES["gen_fifo_recheck"] = """
import os, tempfile
d = tempfile.mkdtemp(); p = os.path.join(d, "fifo"); os.mkfifo(p)
def f(): return 1
c = f.__code__.replace(co_filename=p, co_firstlineno=5)
ff = types.FunctionType(c, globals())
KW = {"mode": "portable"}
obj = ff
"""
CASES["gen_running_in_other_thread"] = """
import time
ev = threading.Event()
def g():
    x = 1
    yield x
    ev.set()
    time.sleep(3)
    yield 2
gen = g(); next(gen)
t = threading.Thread(target=lambda: next(gen)); t.start()
ev.wait()
obj = gen
"""
CASES["gen_running_in_other_thread_spin"] = """
ev = threading.Event()
stop = False
def g():
    yield 1
    ev.set()
    n = 0
    while not stop:
        n += 1
        if n % 1000 == 0: pass
    yield n
gen = g(); next(gen)
t = threading.Thread(target=lambda: next(gen), daemon=True); t.start()
ev.wait()
obj = gen
"""
CASES["gen_resumed_by_thread_during_dumps"] = """
def g():
    for i in range(10**9):
        yield [i] * 3
gen = g(); next(gen)
stop = threading.Event()
def spin():
    while not stop.is_set():
        try: next(gen)
        except ValueError: pass
t = threading.Thread(target=spin, daemon=True); t.start()
ok = 0
for _ in range(300):
    try: lib.dumps(gen); ok += 1
    except pickle.PicklingError: pass
stop.set(); t.join()
obj = ok > 0
"""
CASES["gen_closed_mid_dumps"] = """
class K:
    def __reduce__(self):
        gen.close()
        return (int, (1,))
def g():
    a = K()
    b = [1, 2, 3]
    try:
        yield a
    finally:
        pass
    yield b
gen = g(); next(gen)
obj = gen
CHECK = "list(o)"
"""
CASES["gen_advanced_mid_dumps"] = """
class K:
    def __reduce__(self):
        next(gen)
        return (int, (1,))
def g():
    a = K()
    yield a
    c = "changed"
    d = [object] * 5
    yield c
    yield d
gen = g(); next(gen)
obj = gen
CHECK = "list(o)"
"""
CASES["gen_advanced_mid_dumps_stack"] = """
class K:
    def __reduce__(self):
        for _ in range(3): next(gen, None)
        return (int, (1,))
def g():
    for x in [K(), 1, 2, 3, 4]:
        y = yield x
gen = g(); next(gen)
obj = gen
CHECK = "list(o)"
"""
CASES["gen_exhausted_mid_dumps"] = """
class K:
    def __reduce__(self):
        list(gen)
        return (int, (1,))
def g():
    a = K()
    yield 1
    yield 2
gen = g(); next(gen)
obj = gen
CHECK = "list(o)"
"""
CASES["gen_throw_mid_dumps"] = """
class K:
    def __reduce__(self):
        try: gen.throw(ValueError("x"))
        except ValueError: pass
        return (int, (1,))
def g():
    a = K()
    yield 1
gen = g(); next(gen)
obj = gen
CHECK = "list(o)"
"""
CASES["gen_local_del_mid_dumps_313"] = """
class K:
    def __reduce__(self):
        fr = gen.gi_frame
        try:
            loc = fr.f_locals
            loc["b"] = "replaced"
            try: del loc["c"]
            except Exception: pass
        except Exception as e: print(e)
        return (int, (1,))
def g():
    a = K()
    b = [1]
    c = [2]
    yield 1
    yield (a, b)
gen = g(); next(gen)
obj = gen
CHECK = "list(o)"
"""
CASES["gen_yield_from_gen"] = """
def inner():
    x = yield 1
    yield 2
    return 3
def outer():
    r = yield from inner()
    yield r
gen = outer(); next(gen)
obj = gen
CHECK = "list(o)"
"""
CASES["gen_yield_from_list_iter"] = """
def outer():
    yield from [1, 2, 3]
gen = outer(); next(gen)
obj = gen
CHECK = "list(o)"
"""
CASES["gen_yield_from_hostile_iter"] = """
class It:
    def __iter__(self): return self
    def __next__(self): return 1
    def __reduce__(self): raise KeyboardInterrupt("it")
def outer():
    yield from It()
gen = outer(); next(gen)
obj = gen
"""
CASES["gen_yield_from_self_chain"] = """
def outer(n):
    if n: yield from outer(n - 1)
    else: yield "bottom"
gen = outer(200); next(gen)
obj = gen
CHECK = "list(o)"
"""
CASES["gen_yield_from_chain_deep"] = """
import sys
def outer(n):
    if n: yield from outer(n - 1)
    else: yield "bottom"
gen = outer(900); next(gen)
obj = gen
CHECK = "list(o)"
"""
CASES["gen_yield_from_chain_deep_thread_small_stack"] = """
import sys
def outer(n):
    if n: yield from outer(n - 1)
    else: yield "bottom"
gen = outer(500); next(gen)
threading.stack_size(256 * 1024)
res = []
def run():
    try:
        res.append(("ok", len(lib.dumps(gen))))
    except pickle.PicklingError as e:
        res.append(("refused", str(e)[:100]))
    except BaseException as e:
        res.append(("BASE", repr(e)[:200]))
t = threading.Thread(target=run); t.start(); t.join()
obj = res
"""
CASES["gen_in_own_locals"] = """
def g():
    me = yield 1
    yield me
gen = g(); next(gen);
def h():
    me = None
    me = yield "x"
    yield me
gen2 = h(); next(gen2); gen2.send(gen2)
obj = gen2
CHECK = "next(o) is o"
"""
CASES["gen_in_own_locals_list"] = """
def g():
    box = []
    yield box
    yield box[0] is box[1]
gen = g(); box = next(gen); box.append(gen); box.append(gen)
obj = gen
CHECK = "list(o)"
"""
CASES["gen_self_via_frame"] = """
def g():
    import sys
    me = yield
    yield me
gen = g(); next(gen); gen.send(gen)
obj = [gen, gen]
CHECK = "o[0] is o[1] and next(o[0]) is o[0]"
"""
CASES["coro_unstarted"] = """
async def c(): return 1
obj = c()
CHECK = "type(o).__name__"
"""
CASES["coro_started"] = """
import types
@types.coroutine
def sus():
    yield "s"
async def c():
    await sus()
    return 5
co = c(); co.send(None)
obj = co
CHECK = "(lambda co: [co.send(None) if False else None, co])(o)"
"""
CASES["asyncgen_started"] = """
import types
async def ag():
    yield 1
    yield 2
a = ag()
try: a.asend(None).send(None)
except StopIteration: pass
obj = a
CHECK = "type(o).__name__"
"""
CASES["asyncgen_running_asend"] = """
import types
@types.coroutine
def sus():
    yield "s"
async def ag():
    await sus()
    yield 1
a = ag()
aw = a.asend(None)
aw.send(None)
obj = [a, aw]
"""
CASES["coro_awaiting_future"] = """
import asyncio
async def c(fut):
    return await fut
loop = asyncio.new_event_loop()
fut = loop.create_future()
co = c(fut);
co.send(None)
obj = co
"""
CASES["gen_in_try_finally_with_lock"] = """
lock = threading.Lock()
def g():
    with lock:
        yield 1
gen = g(); next(gen)
obj = gen
"""
CASES["gen_for_hostile_iter"] = """
class It:
    def __init__(self): self.i = 0
    def __iter__(self): return self
    def __next__(self):
        self.i += 1
        return self.i
    def __reduce__(self): return (It, ())
def g():
    for x in It():
        yield x
gen = g(); next(gen); next(gen)
obj = gen
CHECK = "next(o)"
"""
CASES["gen_frame_locals_dict_hostile"] = """
def g():
    x = 1
    yield x
gen = g(); next(gen)
f = gen.gi_frame
obj = [gen, f.f_locals]
"""
CASES["gen_gi_frame_object"] = """
def g():
    x = 1
    yield x
gen = g(); next(gen)
obj = gen.gi_frame
"""
CASES["gen_exhausted"] = """
def g():
    yield 1
gen = g(); list(gen)
obj = gen
CHECK = "list(o)"
"""
CASES["gen_in_exception_handler"] = """
def g():
    try:
        raise ValueError("v")
    except ValueError as e:
        yield e
        yield 2
gen = g(); next(gen)
obj = gen
CHECK = "list(o)"
"""
CASES["gen_code_swapped_on_function_after_start"] = """
def g():
    a = 1
    yield a
    yield a + 1
def other():
    yield 100
gen = g(); next(gen)
g.__code__ = other.__code__
obj = gen
CHECK = "list(o)"
"""
CASES["gen_name_hostile"] = """
def g():
    yield 1
    yield 2
gen = g(); next(gen)
gen.__name__ = "\\udcff"
gen.__qualname__ = "x" * 1_000_000
obj = gen
CHECK = "list(o)"
"""
CASES["gen_func_globals_mutated_mid_dumps"] = """
class K:
    def __reduce__(self):
        globals().clear()
        return (int, (1,))
def g():
    a = K()
    yield a
    yield Z
Z = 5
gen = g(); next(gen)
obj = gen
"""
CASES["gen_local_huge_list"] = """
def g():
    a = list(range(10**6))
    yield 1
    yield len(a)
gen = g(); next(gen)
obj = gen
CHECK = "list(o)"
"""
CASES["genexpr_started"] = """
ge = (x * 2 for x in range(5))
next(ge)
obj = ge
CHECK = "list(o)"
"""
CASES["genexpr_over_hostile"] = """
class It:
    def __iter__(self): return self
    def __next__(self): return 1
    def __reduce__(self): raise KeyboardInterrupt("it")
ge = (x for x in It())
next(ge)
obj = ge
"""
CASES["gen_portable_started"] = """
def g():
    yield 1
    yield 2
gen = g(); next(gen)
KW = {"mode": "portable"}
obj = gen
"""
CASES["gen_standalone_started"] = """
def g():
    yield 1
    yield 2
gen = g(); next(gen)
KW = {"standalone": True}
obj = gen
CHECK = "list(o)"
"""
CASES["gen_closure_cell_emptied_mid"] = """
def mk():
    v = 10
    def g():
        yield v
        yield v + 1
    def kill():
        nonlocal v
        del v
    return g, kill
g, kill = mk()
class K:
    def __reduce__(self):
        kill()
        return (int, (1,))
gen = g(); next(gen)
obj = [K(), gen]
CHECK = "list(o[1])"
"""
