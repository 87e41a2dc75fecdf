CASES = {}


def case(name):
    def deco(src):
        CASES[name] = src

    return deco


CASES["reduce_1tuple"] = """
class C:
    def __reduce__(self): return (list,)
obj = [C()]
"""
CASES["reduce_7tuple"] = """
class C:
    def __reduce__(self): return (list, (), None, None, None, None, None)
obj = [C()]
"""
CASES["reduce_noncallable"] = """
class C:
    def __reduce__(self): return (42, ())
obj = [C()]
"""
CASES["reduce_returns_self"] = """
class C:
    def __reduce__(self): return self
obj = [C()]
"""
CASES["reduce_returns_none"] = """
class C:
    def __reduce__(self): return None
obj = [C()]
"""
CASES["reduce_args_not_tuple"] = """
class C:
    def __reduce__(self): return (list, [1,2])
obj = [C()]
"""
CASES["reduce_args_self"] = """
class C:
    def __reduce__(self): return (type(self), (self,))
obj = [C()]
"""
CASES["reduce_huge_args"] = """
class C:
    def __reduce__(self): return (tuple, (tuple(range(2_000_000)),))
obj = C()
"""
CASES["reduce_str_missing_global"] = """
class C:
    def __reduce__(self): return "no_such_name_here"
obj = [C()]
"""
CASES["reduce_str_nonstr_module"] = """
class C:
    __module__ = 42
    def __reduce__(self): return "C"
obj = [C()]
"""
CASES["reduce_kbi"] = """
class C:
    def __reduce__(self): raise KeyboardInterrupt("hostile")
obj = [C()]
"""
CASES["reduce_systemexit"] = """
class C:
    def __reduce__(self): raise SystemExit(3)
obj = [C()]
"""
CASES["reduce_genexit"] = """
class C:
    def __reduce__(self): raise GeneratorExit("g")
obj = [C()]
"""
CASES["reduce_ex_kbi_in_function_default"] = """
class C:
    def __reduce_ex__(self, p): raise KeyboardInterrupt("hostile")
def f(x=C()): return x
obj = f
"""
CASES["reduce_kbi_in_closure_cell"] = """
class C:
    def __reduce_ex__(self, p): raise SystemExit("hostile")
c = C()
def mk():
    v = c
    return lambda: v
obj = mk()
"""
CASES["reduce_kbi_in_class_attr"] = """
class C:
    def __reduce_ex__(self, p): raise KeyboardInterrupt("hostile")
class D:
    attr = C()
obj = D
"""
CASES["reduce_kbi_in_global"] = """
class C:
    def __reduce_ex__(self, p): raise KeyboardInterrupt("hostile")
G = C()
def f(): return G
obj = f
"""
CASES["reduce_mutates_list"] = """
L = []
class C:
    def __reduce__(self):
        L.clear()
        return (int, (1,))
L.extend([C(), 1, 2, 3, C()])
obj = L
"""
CASES["reduce_mutates_dict"] = """
D = {}
class C:
    def __reduce__(self):
        D.clear(); D.update({i: i for i in range(50)})
        return (int, (1,))
D.update({"a": C(), "b": 2, "c": C()})
obj = D
"""
CASES["reduce_mutates_set_of_function_globals"] = """
class C:
    def __reduce__(self):
        globals().pop("G2", None)
        return (int, (1,))
G1 = C()
G2 = [1,2,3]
def f(): return G1, G2
obj = f
"""
CASES["reduce_deletes_globals_dict"] = """
class C:
    def __reduce__(self):
        for k in list(globals()):
            if k.startswith("G"): del globals()[k]
        return (int, (1,))
G1 = C()
G2 = [1,2,3]
G3 = 4
def f(): return G1, G2, G3
obj = f
"""
CASES["reduce_adds_globals_many"] = """
class C:
    def __reduce__(self):
        for i in range(1000): globals()["Z%d" % i] = i
        return (int, (1,))
G1 = C()
G2 = [1,2,3]
def f(): return G1, G2
obj = f
"""
CASES["reduce_reenter_dumps_other"] = """
class C:
    def __reduce__(self):
        lib.dumps(lambda: 1)
        return (int, (1,))
obj = [lambda: 2, C(), lambda: 3]
"""
CASES["reduce_reenter_dumps_self"] = """
class C:
    def __reduce__(self):
        lib.dumps(self)
        return (int, (1,))
obj = [C()]
"""
CASES["reduce_reenter_dumps_parent"] = """
class C:
    def __reduce__(self):
        lib.dumps(obj)
        return (int, (1,))
def f(): return 1
obj = [f, C()]
"""
CASES["reduce_thread_dumps"] = """
def f(): return 1
class C:
    def __reduce__(self):
        res = []
        t = threading.Thread(target=lambda: res.append(lib.dumps([f, obj[0]])))
        t.start(); t.join()
        return (int, (len(res),))
obj = [f, C()]
"""
CASES["reduce_thread_dumps_self"] = """
class C:
    n = 0
    def __reduce__(self):
        C.n += 1
        if C.n < 4:
            res = []
            t = threading.Thread(target=lambda: res.append(lib.dumps(self)))
            t.start(); t.join()
        return (int, (1,))
obj = [C()]
"""
CASES["reduce_state_nondict"] = """
class C:
    def __reduce__(self): return (C, (), 42)
obj = [C()]
"""
CASES["reduce_listitems_noniter"] = """
class C(list):
    def __reduce__(self): return (C, (), None, 42)
obj = [C()]
"""
CASES["reduce_dictitems_bad_pairs"] = """
class C(dict):
    def __reduce__(self): return (C, (), None, None, iter([1,2,3]))
obj = [C()]
"""
CASES["reduce_listitems_raises_kbi"] = """
def it():
    yield 1
    raise KeyboardInterrupt("mid")
class C(list):
    def __reduce__(self): return (C, (), None, it())
obj = [C()]
"""
CASES["reduce_newobj_notclass"] = """
import copyreg
class C:
    def __reduce__(self): return (copyreg.__newobj__, (42,))
obj = [C()]
"""
CASES["reduce_newobj_empty"] = """
import copyreg
class C:
    def __reduce__(self): return (copyreg.__newobj__, ())
obj = [C()]
"""
CASES["reduce_state_setter_noncallable"] = """
class C:
    def __reduce__(self): return (C, (), {}, None, None, 42)
obj = [C()]
"""
CASES["reduce_ex_recursion"] = """
class C:
    def __reduce_ex__(self, p): return (C, (), None, None, None, None) if False else self.__reduce_ex__(p)
obj = [C()]
"""
CASES["reduce_returns_lambda_callable"] = """
class C:
    def __reduce__(self): return ((lambda a: a * 2), (21,))
obj = [C()]
"""
CASES["reduce_chain_deep_5000"] = """
class C:
    def __init__(self, n): self.n = n
    def __reduce__(self):
        return (C, (C(self.n - 1) if self.n else None,))
obj = C(5000)
"""
CASES["reduce_returns_str_subclass"] = """
class S(str):
    def __hash__(self): raise KeyboardInterrupt("hash")
class C:
    def __reduce__(self): return S("C")
obj = [C()]
"""
CASES["reduce_returns_tuple_subclass"] = """
class T(tuple):
    def __len__(self): return 2
    def __getitem__(self, i): raise KeyboardInterrupt
class C:
    def __reduce__(self): return T((list, ()))
obj = [C()]
"""
CASES["reduce_ex_returns_generator_callable"] = """
def g(): yield 1
class C:
    def __reduce__(self): return (g(), ())
obj = [C()]
"""
CASES["reduce_of_function_attr"] = """
class C:
    def __reduce__(self): raise KeyboardInterrupt("attr")
def f(): pass
f.extra = C()
obj = f
"""
CASES["reduce_mutates_kwdefaults"] = """
class C:
    def __reduce__(self):
        f.__kwdefaults__ = None
        f.__defaults__ = None
        f.__dict__.clear()
        return (int, (1,))
def f(a=1, *, b=2): return a, b
f.__defaults__ = (C(),)
f.__kwdefaults__ = {"b": C(), "c": C()}
f.x = C(); f.y = C()
obj = f
"""
CASES["reduce_swaps_code"] = """
def other(): return "other"
class C:
    def __reduce__(self):
        f.__code__ = other.__code__
        return (int, (1,))
def f(a=C()): return "f"
obj = f
"""
CASES["reduce_swaps_code_closure"] = """
def mk(v):
    def g(): return ("g", v)
    def h(): return ("h", v, v)
    return g, h
g, h = mk(1)
class C:
    def __reduce__(self):
        g.__code__ = h.__code__
        return (int, (1,))
g.__defaults__ = (C(),)
obj = g
"""
CASES["reduce_empties_cell"] = """
def mk():
    v = 1
    def g(): return v
    def kill():
        nonlocal v
        del v
    return g, kill
g, kill = mk()
class C:
    def __reduce__(self):
        kill()
        return (int, (1,))
g.__defaults__ = (C(),)
obj = g
"""
CASES["reduce_empties_cell_after"] = """
def mk():
    v = 1
    w = 2
    def g(a=None): return v, w
    def kill():
        nonlocal v, w
        del v
        del w
    return g, kill
g, kill = mk()
class C:
    def __reduce__(self):
        kill()
        return (int, (1,))
g.__kwdefaults__ = {}
g.attr = C()
obj = [g, g.__closure__[0], g.__closure__[1]]
"""
CASES["reduce_replaces_cell"] = """
def mk():
    v = 1
    def g(): return v
    def setv(x):
        nonlocal v
        v = x
    return g, setv
g, setv = mk()
class C:
    def __reduce__(self):
        setv([C2() for _ in range(3)])
        return (int, (1,))
class C2:
    def __reduce__(self):
        setv(None)
        return (int, (2,))
setv(C())
obj = g
"""
CASES["reduce_code_replaced_in_closure_cell_gen"] = """
def mk():
    v = 1
    def g(): return v
    return g
g = mk()
class C:
    def __reduce__(self):
        g.__closure__[0].cell_contents = self
        return (int, (1,))
g.__closure__[0].cell_contents = C()
obj = g
"""
CASES["reduce_class_dict_mutation"] = """
class C:
    def __reduce__(self):
        for i in range(100): setattr(D, "x%d" % i, i)
        return (int, (1,))
class D:
    a = C()
    b = 1
    c = C()
obj = D
"""
CASES["reduce_class_dict_delete"] = """
class C:
    def __reduce__(self):
        for k in ("b", "c", "d", "meth"):
            try: delattr(D, k)
            except AttributeError: pass
        return (int, (1,))
class D:
    a = C()
    b = 1
    c = C()
    d = 3
    def meth(self): return 1
obj = D
"""
CASES["reduce_class_bases_change"] = """
class B1: pass
class B2: pass
class C:
    def __reduce__(self):
        D.__bases__ = (B2,)
        return (int, (1,))
class D(B1):
    a = C()
obj = D
"""
CASES["reduce_module_dict_mutation"] = """
m = types.ModuleType("dynmod")
class C:
    def __reduce__(self):
        for i in range(100): setattr(m, "x%d" % i, i)
        return (int, (1,))
m.a = C(); m.b = 2; m.c = C()
obj = m
"""
CASES["reduce_module_dict_delete"] = """
m = types.ModuleType("dynmod")
class C:
    def __reduce__(self):
        m.__dict__.clear()
        return (int, (1,))
m.a = C(); m.b = 2; m.c = C()
obj = m
"""
CASES["reduce_modname_changes"] = """
class C:
    def __reduce__(self):
        f.__module__ = "os"
        f.__qualname__ = "path"
        return (int, (1,))
def f(x=C()): return 1
obj = [f, f]
"""
CASES["reduce_class_name_changes"] = """
class C:
    def __reduce__(self):
        D.__name__ = "E"; D.__qualname__ = "x.<locals>.E"; D.__module__ = "os"
        return (int, (1,))
class D:
    a = C()
obj = [D, D]
"""
