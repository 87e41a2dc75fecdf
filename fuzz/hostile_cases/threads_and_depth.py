CASES = {}
MUT = """
stop = threading.Event()
import random
def mut():
    r = random.Random(1)
    while not stop.is_set():
        try:
            MUTATE(r)
        except Exception:
            pass
t = threading.Thread(target=mut, daemon=True); t.start()
res = {"ok": 0, "refused": 0}
import time
end = time.time() + 4
while time.time() < end:
    try:
        d = lib.dumps(TARGET())
        pickle.loads(d)
        res["ok"] += 1
    except pickle.PicklingError as e:
        res["refused"] += 1
        res.setdefault("msg", str(e)[:200])
    except RuntimeError as e:
        res["rt"] = res.get("rt", 0) + 1
        res.setdefault("rtmsg", str(e)[:200])
stop.set(); t.join()
obj = res
"""


def mk(name, setup, mutate, target):
    CASES[name] = (
        setup
        + "\ndef MUTATE(r):\n"
        + "\n".join("    " + line for line in mutate.strip().splitlines())
        + "\ndef TARGET():\n    return "
        + target
        + "\n"
        + MUT
    )


mk(
    "thr_list",
    "L = [lambda: 1 for _ in range(500)]",
    """
if r.random() < 0.5: L.append(lambda: 2)
elif L: L.pop(r.randrange(len(L)))""",
    "L",
)
mk(
    "thr_dict",
    "D = {i: (lambda: i) for i in range(500)}",
    """
k = r.randrange(1000)
if k in D: del D[k]
else: D[k] = lambda: k""",
    "D",
)
mk(
    "thr_set",
    "S = {i for i in range(2000)}",
    """
k = r.randrange(4000)
if k in S: S.discard(k)
else: S.add(k)""",
    "[S, lambda: 1]",
)
mk(
    "thr_frozenset_in_code",
    "S = set(range(100))\ndef f(x): return x in S",
    """
k = r.randrange(400)
if k in S: S.discard(k)
else: S.add(k)""",
    "f",
)
mk(
    "thr_class_dict",
    "class C:\n    pass\nfor i in range(300): setattr(C, 'a%d' % i, lambda self: 1)",
    """
k = 'a%d' % r.randrange(600)
if hasattr(C, k): delattr(C, k)
else: setattr(C, k, lambda self: 2)""",
    "C",
)
mk(
    "thr_module_dict",
    "m = types.ModuleType('dynm')\nfor i in range(300): setattr(m, 'a%d' % i, lambda: 1)\nlib.register_pickle_by_value(m) if False else None",
    """
k = 'a%d' % r.randrange(600)
if hasattr(m, k): delattr(m, k)
else: setattr(m, k, lambda: 2)""",
    "m",
)
mk(
    "thr_globals",
    "G = globals()\nfor i in range(300): G['g%d' % i] = i\nsrc = 'def f():\\n    return ' + ' + '.join('g%d' % i for i in range(300))\nexec(src)",
    """
k = 'g%d' % r.randrange(300)
if k in G: del G[k]
else: G[k] = 1""",
    "f",
)
mk(
    "thr_kwdefaults",
    "def f(*, a=1): return a\nf.__kwdefaults__ = {('k%d' % i): i for i in range(300)}",
    """
k = 'k%d' % r.randrange(600)
d = f.__kwdefaults__
if k in d: del d[k]
else: d[k] = 1""",
    "f",
)
mk(
    "thr_func_dict",
    "def f(): return 1\nfor i in range(300): setattr(f, 'k%d' % i, i)",
    """
k = 'k%d' % r.randrange(600)
if hasattr(f, k): delattr(f, k)
else: setattr(f, k, 2)""",
    "f",
)
mk(
    "thr_closure_cells",
    "def mk():\n    v = [1]\n    def g(): return v\n    def s(x):\n        nonlocal v\n        v = x\n    def k():\n        nonlocal v\n        del v\n    return g, s, k\ng, s, k = mk()",
    """
if r.random() < 0.5: s([r.random()] * 10)
else: k()""",
    "[g, g.__closure__[0]]",
)
mk(
    "thr_code_swap",
    "def f(): return 1\ndef h(): return [2, 3]\ncodes = [f.__code__, h.__code__]\nff = types.FunctionType(f.__code__, globals())",
    """
ff.__code__ = r.choice(codes)
ff.__defaults__ = r.choice([None, (1,), (lambda: 3,)])""",
    "ff",
)
mk(
    "thr_class_bases",
    "class A: pass\nclass B: pass\nclass C(A):\n    x = 1",
    """
C.__bases__ = r.choice([(A,), (B,), (A, B)])
C.__name__ = r.choice(['C', 'D'])
C.__qualname__ = r.choice(['C', 'x.<locals>.D'])""",
    "C",
)
mk(
    "thr_instance_dict",
    "class C: pass\nc = C()\nfor i in range(300): setattr(c, 'a%d' % i, [i])",
    """
k = 'a%d' % r.randrange(600)
if hasattr(c, k): delattr(c, k)
else: setattr(c, k, [2])""",
    "c",
)
mk(
    "thr_bytearray",
    "B = bytearray(b'x' * 100000)",
    """
if r.random() < 0.5: B.extend(b'y' * 1000)
else: del B[:1000]""",
    "[B, lambda: 1]",
)
mk(
    "thr_bytearray_compress",
    "B = bytearray(b'x' * 3_000_000)",
    """
if r.random() < 0.5: B.extend(b'y' * 100000)
elif len(B) > 200000: del B[:100000]""",
    "[B, lambda: 1]",
)
CASES["thr_bytearray_compress_kw"] = CASES["thr_bytearray_compress"].replace(
    "lib.dumps(TARGET())", "lib.dumps(TARGET(), **({'compress': True} if LIB == 'satchel' else {}))"
)
mk(
    "thr_numpy_resize",
    "import numpy as np\nA = np.zeros(1_000_000)",
    """
A.resize(r.choice([10, 1_000_000, 2_000_000]), refcheck=False)""",
    "[A, lambda: 1]",
)
CASES["thr_picklebuffer_oob"] = """
B = bytearray(b"x" * 5_000_000)
stop = threading.Event()
def mut():
    while not stop.is_set():
        try:
            B.extend(b"y" * 100000)
            del B[:100000]
        except BufferError:
            pass
t = threading.Thread(target=mut, daemon=True); t.start()
res = {"ok": 0, "refused": 0}
for _ in range(20):
    bufs = []
    try:
        d = lib.dumps([pickle.PickleBuffer(B), lambda: 1], protocol=5, buffer_callback=bufs.append)
        res["ok"] += 1
    except pickle.PicklingError as e:
        res["refused"] += 1
stop.set(); t.join()
obj = res
"""
for kind, make in [
    ("list", "x = [x]"),
    ("tuple", "x = (x,)"),
    ("dict", "x = {1: x}"),
    ("set_fs", "x = frozenset([x, 1])"),
    ("lambda_closure", "x = (lambda y: (lambda: y))(x)"),
    ("partial", "x = __import__('functools').partial(len, x)"),
    ("instance", "o = C(); o.x = x; x = o"),
    ("class_chain", "x = type('K', (x,), {}) if isinstance(x, type) else type('K', (), {'v': x})"),
    ("class_attr", "x = type('K', (), {'v': x})"),
    ("code_const", "x = (x,) if not isinstance(x, int) else (x,)"),
    ("method", "o = C(); o.x = x; x = o.m"),
    ("nested_funcs_def", "x = (lambda y: (lambda: y))(x)"),
]:
    for depth in (990, 3000, 100000):
        for where in ("main", "thread_small"):
            CASES[f"deep_{kind}_{depth}_{where}"] = f'''
import sys
class C:
    def m(self): return 1
x = 0
for _ in range({depth}):
    {make}
WHERE = "{where}"
if WHERE == "main":
    obj = x
else:
    threading.stack_size(64 * 1024)
    res = []
    def run():
        try:
            d = lib.dumps(x); res.append(("ok", len(d)))
        except pickle.PicklingError as e:
            res.append(("refused", str(e)[:150]))
        except RecursionError as e:
            res.append(("recursion", str(e)[:150]))
        except BaseException as e:
            res.append(("BASE", repr(e)[:200]))
    t = threading.Thread(target=run); t.start(); t.join()
    obj = res
'''
CASES["deep_code_consts_func_main"] = """
src = "def f(): return " + "(" * 180 + "1," + ")" * 180
exec(src)
obj = f
CHECK = "len(str(o()))"
"""
CASES["deep_nested_defs"] = """
src = ""
n = 19
for i in range(n):
    src += "    " * i + f"def f{i}():\\n"
src += "    " * n + "return 1\\n"
for i in range(n - 1, 0, -1):
    src += "    " * i + f"return f{i}\\n"
exec(src)
obj = f0
"""
CASES["deep_class_mro_chain"] = """
K = object
for i in range(900):
    K = type("K%d" % i, (K,), {"v": i})
obj = K
CHECK = "o.v"
"""
CASES["deep_class_mro_chain_thread"] = """
K = object
for i in range(900):
    K = type("K%d" % i, (K,), {"v": i})
threading.stack_size(128 * 1024)
res = []
def run():
    try:
        d = lib.dumps(K); res.append(("ok", len(d)))
    except pickle.PicklingError as e:
        res.append(("refused", str(e)[:150]))
    except BaseException as e:
        res.append(("BASE", repr(e)[:200]))
t = threading.Thread(target=run); t.start(); t.join()
obj = res
"""
CASES["deep_recursionlimit_low"] = """
import sys
sys.setrecursionlimit(60)
def mk(v): return lambda: v
x = 0
for _ in range(40): x = mk(x)
obj = x
"""
CASES["deep_recursionlimit_high"] = """
import sys
sys.setrecursionlimit(10**6)
x = 0
for _ in range(200000): x = [x]
obj = x
"""
CASES["deep_recursionlimit_high_closures"] = """
import sys
sys.setrecursionlimit(10**6)
def mk(v): return lambda: v
x = 0
for _ in range(100000): x = mk(x)
obj = x
"""
CASES["deep_recursionlimit_high_classes"] = """
import sys
sys.setrecursionlimit(10**6)
x = 0
for _ in range(50000): x = type("K", (), {"v": x})
obj = x
"""
CASES["deep_recursionlimit_high_gen"] = """
import sys
sys.setrecursionlimit(10**6)
def outer(n):
    if n: yield from outer(n - 1)
    else: yield "bottom"
gen = outer(20000)
try:
    next(gen)
except RecursionError as e:
    print("cannot start", e)
obj = gen
"""
