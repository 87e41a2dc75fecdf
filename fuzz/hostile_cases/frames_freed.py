CASES = {}
CASES["gen_uaf_local_freed_by_resume"] = """
class K:
    def __reduce__(self):
        next(gen)
        return (int, (1,))
def g():
    a = K()
    b = [str(i) * 50 for i in range(200)]
    c = {"x": [1, 2, 3] * 30}
    yield 1
    b = None
    c = None
    yield 2
gen = g(); next(gen)
obj = gen
CHECK = "list(o)"
"""
CASES["gen_uaf_local_freed_by_close"] = """
class K:
    def __reduce__(self):
        gen.close()
        import gc; gc.collect()
        return (int, (1,))
def g():
    a = K()
    b = [str(i) * 50 for i in range(200)]
    yield 1
    yield b
gen = g(); next(gen)
obj = gen
CHECK = "list(o)"
"""
CASES["gen_uaf_stack_iter_freed_by_close"] = """
class K:
    def __reduce__(self):
        gen.close()
        return (int, (1,))
def g():
    for x in [K()] + [str(i) * 40 for i in range(100)]:
        yield x
gen = g(); next(gen)
obj = gen
CHECK = "list(o)"
"""
CASES["gen_uaf_stack_pending_call_args"] = """
class K:
    def __reduce__(self):
        gen.close()
        return (int, (1,))
def g():
    r = print(K(), [str(i) for i in range(50)], (yield 1), sep="")
    yield r
gen = g(); next(gen)
obj = gen
"""
CASES["gen_uaf_exc_state_freed"] = """
class K:
    def __reduce__(self):
        gen.close()
        return (int, (1,))
def g():
    try:
        raise ValueError([str(i) for i in range(50)])
    except ValueError as e:
        k = K()
        yield e
        yield k
gen = g(); next(gen)
obj = gen
"""
CASES["gen_uaf_yield_from_delegate_closed"] = """
class K:
    def __reduce__(self):
        outer.close()
        return (int, (1,))
def inner():
    k = K()
    data = [str(i) for i in range(100)]
    yield 1
    yield data
def outr():
    r = yield from inner()
    yield r
outer = outr(); next(outer)
obj = outer
"""
CASES["gen_uaf_cell_changed"] = """
class K:
    def __reduce__(self):
        setv(None)
        return (int, (1,))
def mk():
    v = [str(i) * 30 for i in range(100)]
    def g():
        k = K()
        yield v
        yield k
    def s(x):
        nonlocal v
        v = x
    return g, s
g, setv = mk()
gen = g(); next(gen)
obj = [gen, g]
"""
CASES["coro_uaf_closed"] = """
import types
@types.coroutine
def sus():
    yield "s"
class K:
    def __reduce__(self):
        co.close()
        return (int, (1,))
async def c():
    k = K()
    data = [str(i) for i in range(100)]
    await sus()
    return data
co = c(); co.send(None)
obj = co
"""
CASES["gen_frame_locals_proxy_mutation_mid_dumps"] = """
class K:
    def __reduce__(self):
        fl = gen.gi_frame.f_locals
        try:
            fl["b"] = "rebound"
        except Exception:
            pass
        return (int, (1,))
def g():
    a = K()
    b = [str(i) * 30 for i in range(100)]
    yield 1
    yield b
gen = g(); next(gen)
obj = gen
CHECK = "list(o)"
"""
CASES["gen_gc_during_dumps"] = """
import gc
class K:
    def __reduce__(self):
        gc.collect()
        return (int, (1,))
def g():
    a = K()
    cyc = []; cyc.append(cyc)
    yield 1
    yield len(cyc)
gen = g(); next(gen)
obj = [gen, gen]
CHECK = "list(o[0])"
"""
