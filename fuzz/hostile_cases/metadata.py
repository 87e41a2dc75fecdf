CASES = {}
CASES["class_property_int"] = """
class C:
    @property
    def __class__(self): return int
    x = 1
obj = [C()]
CHECK = "type(o[0]).__name__"
"""
CASES["class_property_raises"] = """
class C:
    @property
    def __class__(self): raise KeyboardInterrupt("cls")
obj = [C()]
"""
CASES["class_property_func_obj"] = """
class C:
    @property
    def __class__(self): return types.FunctionType
def f(): return 1
f.__dict__["__class__"] = 5
obj = [C(), f]
"""
CASES["getattr_everything_on_function_subclass_like"] = """
class C:
    def __getattr__(self, name):
        if name.startswith("__") and name not in ("__reduce_ex__", "__reduce__"):
            return lambda *a: 1
        raise AttributeError(name)
obj = [C()]
"""
for v, tag in [
    ("None", "none"),
    ("42", "int"),
    ("'x'*10_000_000", "huge"),
    ("'\\udcff'", "surrogate"),
    ("'a.b.c'", "dotted"),
    ("'os'", "os"),
    ("'sys'", "sys"),
    ("'builtins'", "builtins"),
]:
    CASES[f"func_module_{tag}"] = f"""
def f(): return 7
f.__module__ = {v}
obj = f
CHECK = "o()"
"""
    CASES[f"class_module_{tag}"] = f"""
class C:
    def m(self): return 8
C.__module__ = {v}
obj = C
CHECK = "o().m()"
"""
    CASES[f"lambda_in_class_module_{tag}"] = f"""
class C:
    __module__ = {v}
    def m(self): return 8
obj = C()
CHECK = "o.m()"
"""
CASES["func_module_str_subclass_hostile"] = """
class S(str):
    def __hash__(self): raise KeyboardInterrupt("h")
    def __eq__(self, o): raise KeyboardInterrupt("e")
def f(): return 7
f.__module__ = S("__main__")
obj = f
"""
CASES["func_module_str_subclass_hostile2"] = """
class S(str):
    def __hash__(self): return 1
    def __eq__(self, o): raise ValueError("e")
    def rpartition(self, *a): raise ValueError("rp")
    def split(self, *a): raise ValueError("sp")
def f(): return 7
f.__module__ = S("__main__")
obj = f
CHECK = "o()"
"""
CASES["class_qualname_huge"] = """
class C: pass
C.__qualname__ = "a." * 100000 + "C"
obj = C
"""
CASES["func_qualname_huge"] = """
def f(): return 3
f.__qualname__ = "<locals>." * 100000 + "f"
obj = f
CHECK = "o()"
"""
CASES["func_qualname_surrogate"] = """
def f(): return 3
f.__qualname__ = "\\udcff.\\ud800"
f.__name__ = "\\udcfe"
obj = f
CHECK = "o()"
"""
CASES["class_name_surrogate"] = """
class C: pass
C.__qualname__ = "\\udcff.\\ud800"
C.__name__ = "\\udcfe"
obj = C
"""
CASES["func_globals_dict_subclass"] = """
class G(dict):
    def __getitem__(self, k): raise KeyboardInterrupt("gi")
    def get(self, *a): raise KeyboardInterrupt("get")
    def __contains__(self, k): raise KeyboardInterrupt("contains")
    def keys(self): raise KeyboardInterrupt("keys")
    def items(self): raise KeyboardInterrupt("items")
    def __iter__(self): raise KeyboardInterrupt("iter")
    def __len__(self): raise KeyboardInterrupt("len")
def f(): return X + 1
g = G(X=1, __builtins__=__builtins__, __name__="__main__")
ff = types.FunctionType(f.__code__, g, "ff")
obj = ff
CHECK = "o()"
"""
CASES["func_globals_dict_subclass_missing"] = """
class G(dict):
    def __missing__(self, k): return 41
def f(): return X + 1
g = G(__builtins__=__builtins__)
ff = types.FunctionType(f.__code__, g, "ff")
obj = ff
CHECK = "o()"
"""
CASES["func_globals_nonstr_keys"] = """
def f(): return X + 1
g = {1: 2, (1,2): 3, b"X": 4, "X": 5, "__builtins__": __builtins__}
ff = types.FunctionType(f.__code__, g, "ff")
obj = ff
CHECK = "o()"
"""
CASES["func_globals_str_subclass_keys"] = """
class S(str):
    def __hash__(self): return str.__hash__(self)
    def __eq__(self, o): raise KeyboardInterrupt("eq")
def f(): return X + 1
g = {S("X"): 5, "__builtins__": __builtins__}
ff = types.FunctionType(f.__code__, g, "ff")
obj = ff
"""
CASES["func_globals_no_builtins"] = """
def f(): return len([X])
g = {"X": 5}
ff = types.FunctionType(f.__code__, g, "ff")
obj = ff
CHECK = "o()"
"""
CASES["func_globals_builtins_hostile"] = """
class B(dict):
    pass
def f(): return len([X])
g = {"X": 5, "__builtins__": 42}
ff = types.FunctionType(f.__code__, g, "ff")
obj = ff
"""
CASES["func_globals_builtins_dictsub"] = """
import builtins
class B(dict):
    def __getitem__(self, k): raise KeyboardInterrupt("bgi")
def f(): return len([X])
g = {"X": 5, "__builtins__": B(builtins.__dict__)}
ff = types.FunctionType(f.__code__, g, "ff")
obj = ff
"""
CASES["func_globals_name_is_weird"] = """
def f(): return X
g = {"X": 5, "__builtins__": __builtins__, "__name__": 42}
ff = types.FunctionType(f.__code__, g, "ff")
obj = ff
CHECK = "o()"
"""
CASES["func_globals_name_hostile_str"] = """
class S(str):
    def __hash__(self): raise KeyboardInterrupt("h")
def f(): return X
g = {"X": 5, "__builtins__": __builtins__, "__name__": S("__main__")}
ff = types.FunctionType(f.__code__, g, "ff")
obj = ff
"""
CASES["func_defaults_hostile_tuple_subclass"] = """
def f(a=1): return a
class T(tuple):
    def __iter__(self): raise KeyboardInterrupt("it")
    def __len__(self): raise KeyboardInterrupt("len")
    def __getitem__(self, i): raise KeyboardInterrupt("gi")
try:
    f.__defaults__ = T((5,))
except TypeError as e:
    print("cannot", e)
obj = f
CHECK = "o()"
"""
CASES["func_kwdefaults_dict_subclass"] = """
def f(*, a=1): return a
class D(dict):
    def __iter__(self): raise KeyboardInterrupt("it")
    def items(self): raise KeyboardInterrupt("items")
    def keys(self): raise KeyboardInterrupt("keys")
f.__kwdefaults__ = D(a=5)
obj = f
CHECK = "o()"
"""
CASES["func_kwdefaults_nonstr_keys"] = """
def f(*, a=1): return a
f.__kwdefaults__ = {1: 2, "a": 3}
obj = f
CHECK = "o()"
"""
CASES["func_dict_nonstr_keys"] = """
def f(): return 1
f.__dict__[1] = 2
f.__dict__["\\udcff"] = 3
obj = f
CHECK = "(o(), o.__dict__)"
"""
CASES["func_dict_subclass"] = """
def f(): return 1
class D(dict):
    def items(self): raise KeyboardInterrupt("items")
    def __iter__(self): raise KeyboardInterrupt("iter")
f.__dict__ = D(x=1)
obj = f
CHECK = "(o(), o.__dict__)"
"""
CASES["func_annotations_hostile"] = """
class A:
    def __reduce__(self): raise ValueError("ann")
def f(x: A()) -> A(): return 1
obj = f
"""
CASES["func_annotate_315"] = """
def f(x: "undefined_name_xyz") -> "also": return 1
obj = f
CHECK = "o()"
"""
CASES["func_doc_nonstr"] = """
def f(): return 1
f.__doc__ = [1,2]
obj = f
CHECK = "(o(), o.__doc__)"
"""
CASES["func_type_params"] = """
def f(): return 1
try: f.__type_params__ = (42,)
except Exception as e: print(e)
obj = f
CHECK = "o.__type_params__"
"""
CASES["func_builtin_via_module_none"] = """
import math
obj = [math.sqrt, len, print]
"""
CASES["func_code_unhashable_consts"] = """
def f(): return 1
c = f.__code__.replace(co_consts=([1,2], {1: 2}, None))
ff = types.FunctionType(c, globals())
obj = ff
CHECK = "o.__code__.co_consts"
"""
CASES["func_code_consts_hostile_obj"] = """
class H:
    def __reduce__(self): raise KeyboardInterrupt("const")
def f(): return 1
c = f.__code__.replace(co_consts=(H(), None))
ff = types.FunctionType(c, globals())
obj = ff
"""
CASES["func_code_consts_self_function"] = """
def f(): return 1
c = f.__code__.replace(co_consts=(f, None))
ff = types.FunctionType(c, globals())
obj = ff
CHECK = "o.__code__.co_consts"
"""
CASES["func_code_consts_recursive_list"] = """
def f(): return 1
L = []; L.append(L)
c = f.__code__.replace(co_consts=(L, None))
ff = types.FunctionType(c, globals())
obj = ff
CHECK = "o.__code__.co_consts"
"""
CASES["func_code_names_nonstr"] = """
def f(): return X
try:
    c = f.__code__.replace(co_names=(42,))
except Exception as e:
    print(e); c = f.__code__
ff = types.FunctionType(c, globals())
obj = ff
"""
CASES["func_code_names_str_subclass"] = """
class S(str):
    def __hash__(self): raise KeyboardInterrupt("h")
def f(): return X
try:
    c = f.__code__.replace(co_names=(S("X"),))
except Exception as e:
    print(e); c = f.__code__
X = 1
ff = types.FunctionType(c, globals())
obj = ff
"""
CASES["func_code_names_out_of_range"] = """
def f(): return X
X = 1
c = f.__code__.replace(co_names=())
ff = types.FunctionType(c, globals())
obj = ff
"""
CASES["func_code_filename_nonstr"] = """
def f(): return 1
try:
    c = f.__code__.replace(co_filename="\\udcff" * 10, co_name="\\ud800")
except Exception as e:
    print(e); c = f.__code__
ff = types.FunctionType(c, globals())
obj = ff
CHECK = "o()"
"""
CASES["func_code_bad_bytecode"] = """
def f(): return 1
c = f.__code__.replace(co_code=b"\\xff" * len(f.__code__.co_code))
ff = types.FunctionType(c, globals())
obj = ff
"""
CASES["func_code_odd_bytecode_len"] = """
def f(): return 1
try:
    c = f.__code__.replace(co_code=f.__code__.co_code + b"\\x00")
except Exception as e:
    print(e); c = f.__code__
ff = types.FunctionType(c, globals())
obj = ff
"""
CASES["func_code_empty_bytecode"] = """
def f(): return 1
try:
    c = f.__code__.replace(co_code=b"")
except Exception as e:
    print(e); c = f.__code__
ff = types.FunctionType(c, globals())
obj = ff
"""
CASES["func_code_bad_linetable"] = """
def f(): return 1
c = f.__code__.replace(co_linetable=b"\\xff" * 50)
ff = types.FunctionType(c, globals())
obj = ff
CHECK = "o()"
"""
CASES["func_code_bad_exctable"] = """
def f():
    try: return 1
    except Exception: return 2
c = f.__code__.replace(co_exceptiontable=b"\\xff" * 50)
ff = types.FunctionType(c, globals())
obj = ff
"""
CASES["func_code_flags_generator_no_yield"] = """
def f(): return 1
c = f.__code__.replace(co_flags=f.__code__.co_flags | 0x20)
ff = types.FunctionType(c, globals())
obj = ff
"""
CASES["func_code_portable_garbage"] = """
def f(): return 1
c = f.__code__.replace(co_code=b"\\xff" * len(f.__code__.co_code))
ff = types.FunctionType(c, globals())
obj = ff
KW = {"mode": "portable"}
"""
CASES["func_code_freevars_mismatch_portable"] = """
def mk():
    v = 1
    def g(): return v
    return g
g = mk()
KW = {"mode": "portable"}
g.__qualname__ = "nothing"
g.__name__ = "other"
obj = g
CHECK = "o()"
"""
CASES["func_code_firstlineno_huge_portable"] = """
def f(): return 1
c = f.__code__.replace(co_firstlineno=2**31-1)
ff = types.FunctionType(c, globals())
KW = {"mode": "portable"}
obj = ff
CHECK = "o()"
"""
CASES["func_code_firstlineno_neg_portable"] = """
def f(): return 1
try:
    c = f.__code__.replace(co_firstlineno=-5)
except Exception as e:
    print(e); c = f.__code__
ff = types.FunctionType(c, globals())
KW = {"mode": "portable"}
obj = ff
CHECK = "o()"
"""
CASES["func_code_filename_points_elsewhere_portable"] = """
import os
def f(): return 1
c = f.__code__.replace(co_filename=os.__file__)
ff = types.FunctionType(c, globals())
KW = {"mode": "portable"}
obj = ff
CHECK = "o()"
"""
CASES["func_code_filename_dir_portable"] = """
def f(): return 1
c = f.__code__.replace(co_filename="/", co_firstlineno=5)
ff = types.FunctionType(c, globals())
KW = {"mode": "portable"}
obj = ff
CHECK = "o()"
"""
CASES["func_code_filename_devzero_portable"] = """
def f(): return 1
c = f.__code__.replace(co_filename="/dev/zero", co_firstlineno=5)
ff = types.FunctionType(c, globals())
KW = {"mode": "portable"}
obj = ff
CHECK = "o()"
"""
CASES["func_code_filename_fifo_portable"] = """
import os, tempfile
d = tempfile.mkdtemp(); p = os.path.join(d, "fifo"); os.mkfifo(p)
def f(): return 1
c = f.__code__.replace(co_filename=p, co_firstlineno=5)
ff = types.FunctionType(c, globals())
KW = {"mode": "portable"}
obj = ff
CHECK = "o()"
"""
CASES["meta_getattribute_raises"] = """
class M(type):
    def __getattribute__(cls, name):
        if name in ("__dict__", "__module__", "__qualname__", "__name__", "__mro__", "__bases__"):
            raise KeyboardInterrupt(name)
        return type.__getattribute__(cls, name)
class C(metaclass=M): pass
obj = C
"""
CASES["meta_getattribute_lies"] = """
class M(type):
    def __getattribute__(cls, name):
        if name == "__dict__": return {"x": 1}
        if name == "__module__": return 42
        if name == "__qualname__": return None
        if name == "__name__": return b"bytes"
        if name == "__mro__": return (1, 2, 3)
        if name == "__bases__": return ("str",)
        return type.__getattribute__(cls, name)
class C(metaclass=M):
    y = 2
obj = C
CHECK = "o.y"
"""
CASES["meta_mro_override"] = """
class M(type):
    def mro(cls):
        return [cls, object]
class B:
    def b(self): return 1
class C(B, metaclass=M):
    y = 2
obj = C
CHECK = "(o.__mro__, o.y)"
"""
CASES["meta_mro_with_nonclass_entry_via_getattr"] = """
class M(type):
    @property
    def __mro__(cls): return (cls, 42, object)
class C(metaclass=M):
    y = 2
obj = C
CHECK = "o.y"
"""
CASES["meta_reduce_hostile"] = """
class M(type):
    def __reduce__(cls): raise KeyboardInterrupt("mr")
    def __reduce_ex__(cls, p): raise KeyboardInterrupt("mre")
class C(metaclass=M): pass
obj = C
"""
CASES["meta_dict_changes_size"] = """
class M(type):
    def __getattribute__(cls, name):
        v = type.__getattribute__(cls, name)
        if name == "__dict__":
            type.__setattr__(cls, "z%d" % len(v), 1)
        return v
class C(metaclass=M):
    y = 2
obj = C
CHECK = "o.y"
"""
CASES["meta_dict_attr_mutates_on_reduce"] = """
class H:
    def __reduce__(self):
        for i in range(200): setattr(C, "q%d" % i, i)
        try: del C.y
        except AttributeError: pass
        return (int, (3,))
class M(type): pass
class C(metaclass=M):
    a = H()
    y = 2
    b = H()
obj = C
CHECK = "sorted(o.__dict__)[:3]"
"""
CASES["meta_with_instance_attrs"] = """
class M(type):
    def __init__(cls, *a, **k):
        super().__init__(*a, **k)
        cls.__dict__  #
class C(metaclass=M): pass
C.__class__  # noop
obj = C
"""
CASES["meta_init_subclass_kwargs"] = """
class B:
    def __init_subclass__(cls, flag=None, **kw):
        super().__init_subclass__(**kw)
        cls.flag = flag
class C(B, flag=42): pass
obj = C
CHECK = "o.flag"
"""
CASES["slots_str"] = """
class C:
    __slots__ = "a"
c = C(); c.a = 5
obj = c
CHECK = "o.a"
"""
CASES["slots_dict_and_weakref"] = """
class C:
    __slots__ = ("a", "__dict__", "__weakref__")
c = C(); c.a = 5; c.b = 6
obj = c
CHECK = "(o.a, o.b)"
"""
CASES["slots_mangled"] = """
class C:
    __slots__ = ("__x", "_C__y")
    def get(self): return self.__x
c = C(); c._C__x = 5
obj = c
CHECK = "o.get()"
"""
CASES["slots_dict_doc"] = """
class C:
    __slots__ = {"a": "doc of a", "b": "doc b"}
c = C(); c.a = 5
obj = c
CHECK = "(o.a, type(o).a.__doc__)"
"""
CASES["slots_unset"] = """
class C:
    __slots__ = ("a", "b")
c = C(); c.b = 1
obj = c
CHECK = "(hasattr(o, 'a'), o.b)"
"""
CASES["slots_deleted_from_class"] = """
class C:
    __slots__ = ("a",)
c = C(); c.a = 5
del C.__slots__
obj = c
CHECK = "o.a"
"""
CASES["slots_replaced_in_class"] = """
class C:
    __slots__ = ("a",)
c = C(); c.a = 5
C.__slots__ = ("zzz", 42)
obj = c
"""
CASES["slots_iterator"] = """
class C:
    __slots__ = iter(["a", "b"])
c = C(); c.a = 5
obj = c
CHECK = "o.a"
"""
CASES["slots_subclass_of_slotted_builtin"] = """
class C(int):
    __slots__ = ()
obj = C(5)
CHECK = "o + 1"
"""
CASES["slots_descriptor_hostile"] = """
class C:
    __slots__ = ("a",)
c = C(); c.a = 5
class Bad:
    def __get__(self, obj, t): raise KeyboardInterrupt("get")
C.a_bad = Bad()
obj = c
CHECK = "o.a"
"""
for ret, tag in [
    ("None", "none"),
    ("42", "int"),
    ("(None, {'a': 1})", "tuple_none_dict"),
    ("(None, 42)", "tuple_none_int"),
    ("(1,2,3)", "tuple3"),
    ("self", "self"),
    ("iter([1])", "iter"),
    ("{1: 2}", "nonstr_keys"),
    ("{'__class__': int}", "class_key"),
    ("{'__dict__': 5}", "dict_key"),
    ("[('a', 1)]", "list_pairs"),
]:
    CASES[f"getstate_{tag}"] = f"""
class C:
    def __init__(self): self.a = 1
    def __getstate__(self): return {ret}
obj = [C()]
CHECK = "(type(o[0]).__name__, getattr(o[0], '__dict__', None))"
"""
    CASES[f"getstate_slots_{tag}"] = f"""
class C:
    __slots__ = ("a",)
    def __init__(self): self.a = 1
    def __getstate__(self): return {ret}
obj = [C()]
CHECK = "(type(o[0]).__name__, getattr(o[0], 'a', None))"
"""
CASES["getstate_kbi"] = """
class C:
    def __getstate__(self): raise KeyboardInterrupt("gs")
obj = [C()]
"""
CASES["getstate_mutates_class"] = """
class C:
    def __getstate__(self):
        C.__getstate__ = None
        C.x = 1
        return {"a": 1}
obj = [C(), C()]
"""
