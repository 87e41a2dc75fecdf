CASES = {}
CASES["cell_contains_itself"] = """
c = types.CellType(); c.cell_contents = c
obj = c
CHECK = "o.cell_contents is o"
"""
CASES["func_closure_cell_self"] = """
def mk():
    f = None
    def f(): return f
    return f
obj = mk()
CHECK = "o() is o"
"""
CASES["sys_modules_main_replaced_in_reduce"] = """
import sys
class K:
    def __reduce__(self):
        sys.modules["__main__"] = 42
        return (int, (1,))
def f(): return 5
obj = [K(), f, lambda: 3]
"""
CASES["sys_modules_main_none"] = """
import sys
sys.modules["__main__"] = None
def f(): return 5
obj = f
CHECK = "o()"
"""
CASES["global_module_deleted_from_sys_modules"] = """
import sys, json
class K:
    def __reduce__(self):
        del sys.modules["json"]
        return (int, (1,))
def f(x=K()): return json.dumps(1)
obj = f
CHECK = "o()"
"""
CASES["module_name_none_in_sys_modules"] = """
import sys
sys.modules["mymod_x"] = None
def f(): return 1
f.__module__ = "mymod_x"
obj = f
CHECK = "o()"
"""
CASES["builtins_module_replaced"] = """
import builtins
g = {"__builtins__": types.ModuleType("fakebuiltins"), "X": 1}
def f(): return X
ff = types.FunctionType(f.__code__, g)
obj = ff
CHECK = "o()"
"""
CASES["reduce_ex_attr_noncallable"] = """
class C:
    __reduce_ex__ = 5
obj = [C()]
"""
CASES["reduce_attr_none"] = """
class C:
    __reduce_ex__ = None
    __reduce__ = None
obj = [C()]
"""
CASES["getstate_none_attr"] = """
class C:
    __getstate__ = None
    def __init__(self): self.a = 1
obj = [C()]
CHECK = "o[0].a"
"""
CASES["copyreg_dispatch_hostile"] = """
import copyreg
class C: pass
copyreg.pickle(C, lambda o: (_ for _ in ()).throw(KeyboardInterrupt("cr")))
obj = [C()]
"""
CASES["copyreg_dispatch_returns_garbage"] = """
import copyreg
class C: pass
copyreg.pickle(C, lambda o: 42)
obj = [C()]
"""
CASES["pickler_reentrant_dump_same_pickler"] = """
import io
buf = io.BytesIO()
P = lib.Pickler(buf)
class K:
    def __reduce__(self):
        P.dump([lambda: 1, 2])
        return (int, (1,))
try:
    P.dump([lambda: 3, K(), lambda: 4])
    r = ("ok", len(buf.getvalue()))
except Exception as e:
    r = ("exc", type(e).__name__, str(e)[:100])
obj = r
"""
CASES["pickler_file_write_reentrant"] = """
class W:
    def __init__(self): self.n = 0; self.parts = []
    def write(self, b):
        self.n += 1
        if self.n == 1:
            P.dump(lambda: 9)
        self.parts.append(bytes(b))
        return len(b)
w = W()
P = lib.Pickler(w)
try:
    P.dump([lambda: 3, list(range(100000))])
    r = ("ok", len(w.parts))
except Exception as e:
    r = ("exc", type(e).__name__, str(e)[:100])
obj = r
"""
CASES["pickler_file_write_raises_kbi"] = """
class W:
    def write(self, b): raise KeyboardInterrupt("w")
P = lib.Pickler(W())
try:
    P.dump([lambda: 3])
    r = "ok"
except KeyboardInterrupt:
    r = "kbi"
obj = r
"""
CASES["pickler_file_write_returns_garbage"] = """
class W:
    def write(self, b): return "nope"
P = lib.Pickler(W())
P.dump([lambda: 3, b"x" * 100000])
obj = "done"
"""
CASES["pickler_persistent_id_kbi"] = """
class P(lib.Pickler):
    def persistent_id(self, o):
        if isinstance(o, int) and o == 7: raise KeyboardInterrupt("pid")
        return None
import io
try:
    P(io.BytesIO()).dump([lambda: 7, 7])
    r = "ok"
except KeyboardInterrupt: r = "kbi"
obj = r
"""
CASES["pickler_reducer_override_super_twice"] = """
import io
class P(lib.Pickler):
    def reducer_override(self, o):
        super().reducer_override(o)
        return super().reducer_override(o)
b = io.BytesIO()
P(b).dump([lambda: 7, 7])
obj = pickle.loads(b.getvalue())[0]()
"""
CASES["pickler_dump_after_close_like"] = """
import io
b = io.BytesIO()
p = lib.Pickler(b)
p.dump(lambda: 1)
b.close()
try:
    p.dump(lambda: 2); r = "ok"
except Exception as e: r = type(e).__name__
p.clear_memo() if hasattr(p, "clear_memo") else None
obj = r
"""
CASES["dumps_bad_protocol"] = """
r = []
for proto in (-1, 0, 1, 2, 6, 2**70, "5", None):
    try:
        d = lib.dumps(lambda: 1, protocol=proto); r.append((proto, "ok", pickle.loads(d)()))
    except Exception as e:
        r.append((proto, type(e).__name__))
obj = r
"""
CASES["dumps_bad_kwargs"] = """
r = []
for kw in ({"buffer_callback": 5}, {"compress": "yes"}, {"key": 5}, {"key": b""}, {"key": "str"}, {"mode": "x"}, {"standalone": "no"}, {"key": [b"a"]}):
    if LIB != "satchel": break
    try:
        d = lib.dumps(lambda: 1, **kw); r.append((list(kw), "ok"))
    except Exception as e:
        r.append((list(kw), type(e).__name__, str(e)[:60]))
obj = r
"""
CASES["loads_bad_kwargs"] = """
r = []
d = lib.dumps(lambda: 1)
if LIB == "satchel":
    for kw in ({"key": 5}, {"key": [5]}, {"allow": 5}, {"allow": ["\\udcff"]}, {"buffers": 5}, {"buffers": [5]}, {"allow": [None]}):
        try:
            lib.loads(d, **kw); r.append((list(kw), "ok"))
        except Exception as e:
            r.append((list(kw), type(e).__name__, str(e)[:60]))
obj = r
"""
CASES["register_by_value_hostile_module"] = """
m = types.ModuleType("hostile_mod")
m.__name__ = 42
import sys
r = []
try:
    lib.register_pickle_by_value(m); r.append("registered")
except Exception as e:
    r.append((type(e).__name__, str(e)[:80]))
obj = r
"""
CASES["register_by_value_then_module_mutated"] = """
import sys
m = types.ModuleType("hmod2")
sys.modules["hmod2"] = m
exec("def f():\\n    return 5\\n", m.__dict__)
lib.register_pickle_by_value(m)
del sys.modules["hmod2"]
obj = m.f
CHECK = "o()"
"""
CASES["function_name_changed_to_nonidentifier"] = """
def f(): return 1
f.__name__ = "not an identifier!"
f.__qualname__ = "a b.c d"
obj = f
CHECK = "o()"
"""
CASES["portable_lambda_on_same_line"] = """
a, b = (lambda: 1), (lambda: 2)
KW = {"mode": "portable"}
obj = [a, b]
CHECK = "[x() for x in o]"
"""
CASES["portable_func_source_edited_file"] = """
import tempfile, importlib.util, os
d = tempfile.mkdtemp(); p = os.path.join(d, "modx.py")
open(p, "w").write("def f():\\n    return 1\\n")
spec = importlib.util.spec_from_file_location("modx", p); m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
open(p, "w").write("def f():\\n    return 2\\n")
import linecache; linecache.checkcache()
m.f.__module__ = "__main__"
KW = {"mode": "portable"}
obj = m.f
CHECK = "o()"
"""
CASES["exception_with_hostile_args"] = """
class E(Exception):
    def __init__(self, a, b): super().__init__(a); self.b = b
e = E(1, 2)
e.__traceback__ = None
e.__cause__ = e
obj = e
CHECK = "type(o).__name__"
"""
CASES["exception_context_cycle"] = """
try:
    try: raise ValueError("a")
    except ValueError as a: raise KeyError("b")
except KeyError as b:
    b.__context__.__context__ = b
    obj = b
CHECK = "repr(o)"
"""
CASES["weakref_to_function"] = """
import weakref
def f(): return 1
obj = weakref.ref(f)
"""
CASES["mappingproxy_of_class"] = """
class C: x = 1
obj = [C.__dict__, C]
CHECK = "o[0]['x']"
"""
CASES["mappingproxy_hostile_mapping"] = """
class M(dict):
    def keys(self): raise KeyboardInterrupt("k")
    def items(self): raise KeyboardInterrupt("i")
obj = types.MappingProxyType(M(a=1))
"""
CASES["property_hostile_fget"] = """
class C:
    p = property(lambda self: 1, None, None, doc=5)
obj = C
CHECK = "o().p"
"""
CASES["classmethod_wrapping_noncallable"] = """
class C:
    a = classmethod(5)
    b = staticmethod(None)
obj = C
CHECK = "type(o.__dict__['a']).__name__"
"""
CASES["lru_cache_hostile_wrapped"] = """
import functools
class W:
    def __call__(self, x): return x
    def __reduce__(self): raise KeyboardInterrupt("w")
obj = functools.lru_cache(W())
"""
CASES["lru_cache_of_method"] = """
import functools
class C:
    @functools.lru_cache(maxsize=None)
    def m(self, x): return x + 1
obj = C
CHECK = "o().m(1)"
"""
CASES["memoryview_released"] = """
m = memoryview(b"abc"); m.release()
obj = m
"""
CASES["memoryview_of_mutating_bytearray"] = """
b = bytearray(b"abc" * 1000)
m = memoryview(b)[::2]
obj = [m, lambda: 1]
CHECK = "bytes(o[0][:4])"
"""
CASES["file_object_closed"] = """
f = open("/dev/null"); f.close()
obj = f
"""
CASES["file_object_fifo"] = """
import os, tempfile
d = tempfile.mkdtemp(); p = os.path.join(d, "ff"); os.mkfifo(p)
fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
f = os.fdopen(fd, "r")
obj = f
"""
CASES["file_object_devzero"] = """
f = open("/dev/zero", "rb")
obj = f
"""
CASES["file_object_huge_sparse"] = """
import tempfile
t = tempfile.NamedTemporaryFile(delete=False)
t.truncate(8 << 30); t.close()
f = open(t.name, "rb")
obj = f
"""
CASES["itertools_hostile"] = """
import itertools
class It:
    def __iter__(self): return self
    def __next__(self): return 1
    def __reduce__(self): raise KeyboardInterrupt("it")
obj = itertools.islice(It(), 5)
"""
CASES["itertools_tee_self"] = """
import itertools
a, b = itertools.tee(iter([1,2,3]))
next(a)
obj = [a, b]
CHECK = "(list(o[0]), list(o[1]))"
"""
CASES["dictview_of_mutating"] = """
d = {i: i for i in range(10)}
class K:
    def __reduce__(self):
        d.clear()
        return (int, (1,))
d["k"] = K()
obj = [d.items(), d.keys(), d.values()]
"""
CASES["typevar_hostile_bound"] = """
import typing
class B:
    def __reduce__(self): raise ValueError("b")
T = typing.TypeVar("T", bound=B())
obj = T
"""
CASES["newtype_with_lambda_supertype"] = """
import typing
N = typing.NewType("N", int)
N.__supertype__ = lambda: 1
obj = N
"""
