"""Methods and method-like objects: bound methods (of dynamic instances and of builtins),
classmethod/staticmethod/property objects, functools wrappers (partial, lru_cache,
singledispatch), weak mappings and mappingproxy."""

import functools
import types
import weakref

import satchel
from conftest import after_collection, child_eval, echo, run_script


def test_bound_method_of_dynamic_instance():
    class Acc:
        def __init__(self):
            self.items = []

        def add(self, x):
            self.items.append(x)
            return len(self.items)

    a = Acc()
    a.add("first")
    result = child_eval(
        (a.add, a),
        "(obj[0]('x'), obj[0]('y'), obj[1].items, obj[0].__self__ is obj[1],"
        " obj[0].__func__ is type(obj[1]).add, type(obj[0]).__name__)",
    )
    assert result == (2, 3, ["first", "x", "y"], True, True, "method")

    m = echo(a.add)
    assert m("z") == 2 and m.__self__.items == ["first", "z"]


def test_bound_method_alone_carries_its_instance_and_class():
    class Greeter:
        def __init__(self, name):
            self.name = name

        def greet(self, other):
            return f"{self.name} greets {other}"

    assert child_eval(Greeter("ann").greet, "obj('bob')") == "ann greets bob"


def test_bound_method_of_dynamic_class_classmethod():
    class Factory:
        made = 0

        @classmethod
        def make(cls, n):
            return [cls.__name__] * n

    assert child_eval(Factory.make, "(obj(2), obj.__self__.__name__)") == (
        ["Factory", "Factory"],
        "Factory",
    )


def test_bound_methods_of_builtin_objects():
    lst = [1]
    d = {"k": "v"}
    s = {1, 2}
    result = child_eval(
        (lst, lst.append, d, d.get, s.__contains__, "abc".upper),
        "(obj[1](2), obj[0], obj[1].__self__ is obj[0], obj[3]('k'), obj[3]('missing', 'dflt'),"
        " obj[3].__self__ is obj[2], obj[4](2), obj[4](3), obj[5]())",
    )
    assert result == (None, [1, 2], True, "v", "dflt", True, True, False, "ABC")

    # Alone, the method brings its own receiver.
    assert child_eval([].append, "(obj(5), obj.__self__)") == (None, [5])
    assert child_eval({}.get, "obj('x', 0)") == 0


def test_classmethod_and_staticmethod_objects_directly():
    def cm_impl(cls, x):
        return (cls.__name__, x)

    def sm_impl(x, y):
        return x * y

    cm = classmethod(cm_impl)
    sm = staticmethod(sm_impl)
    result = child_eval(
        (cm, sm),
        "(type(obj[0]).__name__, type(obj[1]).__name__, obj[1].__func__(6, 7),"
        " (lambda K: (K.c(1), K.s(2, 3), K().s(4, 5)))(type('K', (), {'c': obj[0], 's': obj[1]})),"
        " obj[0].__func__.__name__)",
    )
    assert result == ("classmethod", "staticmethod", 42, (("K", 1), 6, 20), "cm_impl")

    assert echo(sm).__func__(2, 5) == 10


def test_staticmethod_keeps_wrapped_attributes():
    def helper():
        """Helper docs."""
        return "h"

    sm = staticmethod(helper)
    result = child_eval(sm, "(obj.__doc__, obj.__wrapped__(), obj.__func__.__name__)")
    assert result == ("Helper docs.", "h", "helper")


def test_property_objects_directly():
    def getter(self):
        return self._v * 10

    def setter(self, v):
        self._v = v

    prop = property(getter, setter, None, "a documented property")
    result = child_eval(
        prop,
        "(lambda K: (lambda k: (setattr(k, 'p', 4), k.p, K.p.__doc__, K.p.fdel))(K()))"
        "(type('K', (), {'p': obj}))",
    )
    assert result == (None, 40, "a documented property", None)

    ro = property(lambda self: "ro")
    assert child_eval(ro, "(obj.fget(None), obj.fset, obj.fdel)") == ("ro", None, None)


def test_functools_partial_of_lambdas():
    offset = 100
    add = functools.partial(lambda a, b, c=0: a + b + c + offset, 1, c=10)
    nested = functools.partial(functools.partial(lambda *a, **k: (a, sorted(k)), 1, x=1), 2, y=2)
    result = child_eval(
        (add, nested),
        "(obj[0](2), obj[0].args, obj[0].keywords, obj[1](3), type(obj[0]).__name__)",
    )
    assert result == (113, (1,), {"c": 10}, ((1, 2, 3), ["x", "y"]), "partial")


def test_local_lru_cache_function():
    calls = []

    @functools.lru_cache(maxsize=32)
    def fib(n):
        calls.append(n)
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    fib(10)  # warm the cache here: the child starts empty
    result = child_eval(
        fib,
        "(obj(20), obj.cache_info().misses, obj(20), obj.cache_info().hits > 0,"
        " obj.cache_info().maxsize, obj.cache_parameters(), obj.__wrapped__.__name__,"
        " obj.cache_clear(), obj.cache_info().currsize)",
    )
    assert result == (6765, 21, 6765, True, 32, {"maxsize": 32, "typed": False}, "fib", None, 0)


def test_local_lru_cache_unbounded_typed():
    @functools.cache
    def square(x):
        return x * x

    @functools.lru_cache(typed=True)
    def ident(x):
        return type(x).__name__

    result = child_eval(
        (square, ident),
        "(obj[0](9), obj[0](9), obj[0].cache_info().hits, obj[0].cache_parameters()['maxsize'],"
        " obj[1](1), obj[1](1.0), obj[1].cache_info().currsize, obj[1].cache_parameters())",
    )
    assert result == (81, 81, 1, None, "int", "float", 2, {"maxsize": 128, "typed": True})


def test_local_singledispatch_function():
    @functools.singledispatch
    def describe(obj):
        return "object"

    @describe.register
    def _(obj: int):
        return f"int {obj}"

    @describe.register(list)
    def _(obj):
        return f"list of {len(obj)}"

    class Special:
        pass

    @describe.register(Special)
    def _(obj):
        return "special"

    describe(3)  # populate the dispatch cache here
    result = child_eval(
        (describe, Special()),
        "(obj[0](5), obj[0]([1, 2]), obj[0]('s'), obj[0](obj[1]), obj[0](True),"
        " sorted(k.__name__ for k in obj[0].registry),"
        " obj[0].dispatch(int).__name__ == '_', obj[0].register(str, lambda o: 'str ' + o) is not None,"
        " obj[0]('x'))",
    )
    assert result == (
        "int 5",
        "list of 2",
        "object",
        "special",
        "int True",
        ["Special", "int", "list", "object"],
        True,
        True,
        "str x",
    )


def test_singledispatchmethod_in_dynamic_class():
    class Formatter:
        @functools.singledispatchmethod
        def fmt(self, arg):
            return "any"

        @fmt.register
        def _(self, arg: int):
            return "int"

    assert child_eval(Formatter(), "(obj.fmt(1), obj.fmt('a'))") == ("int", "any")


def test_weak_key_dictionary_keys_kept_alive_by_stream():
    class Key:
        def __init__(self, name):
            self.name = name

    k1, k2, orphan = Key("k1"), Key("k2"), Key("orphan")
    wkd = weakref.WeakKeyDictionary({k1: 1, k2: 2, orphan: 3})
    # k1 and k2 travel in the same stream; "orphan" is held only by the weak mapping.
    result = child_eval(
        (k1, [k2], wkd),
        after_collection(
            "(type(obj[2]).__name__, len(obj[2]), obj[2][obj[0]], obj[2][obj[1][0]],"
            " sorted(k.name for k in obj[2].keys()))"
        ),
    )
    assert result == ("WeakKeyDictionary", 2, 1, 2, ["k1", "k2"])


def test_weak_key_dictionary_is_still_weak_in_child():
    class Key:
        pass

    k = Key()
    wkd = weakref.WeakKeyDictionary({k: "v"})
    source = f"""
        import gc, pickle
        holder = pickle.loads({satchel.dumps([k, wkd])!r})
        wkd = holder[1]
        print(len(wkd))
        del holder[0]
        gc.collect()
        print(len(wkd))
    """
    assert run_script(source).split() == [b"1", b"0"]


def test_weak_value_dictionary():
    class Val:
        def __init__(self, v):
            self.v = v

    v1, v2 = Val(1), Val(2)
    wvd = weakref.WeakValueDictionary({"a": v1, "b": v2})
    result = child_eval(
        (wvd, v1),
        after_collection(
            "(type(obj[0]).__name__, sorted(obj[0].keys()), obj[0]['a'] is obj[1], obj[0]['a'].v)"
        ),
    )
    assert result == ("WeakValueDictionary", ["a"], True, 1)


def test_weak_set():
    class Member:
        def __init__(self, n):
            self.n = n

    m1, m2, m3 = Member(1), Member(2), Member(3)
    ws = weakref.WeakSet([m1, m2, m3])
    result = child_eval(
        {"set": ws, "keep": (m1, m3)},
        after_collection(
            "(type(obj['set']).__name__, len(obj['set']), sorted(m.n for m in obj['set']),"
            " all(m in obj['set'] for m in obj['keep']))"
        ),
    )
    assert result == ("WeakSet", 2, [1, 3], True)


def test_mappingproxy():
    d = {"a": 1, "b": [2]}
    proxy = types.MappingProxyType(d)
    result = child_eval(
        (d, proxy),
        "(type(obj[1]).__name__, obj[1]['a'], obj[0].__setitem__('z', 9), obj[1]['z'],"
        " obj[1]['b'] is obj[0]['b'], sorted(obj[1]))",
    )
    assert result == ("mappingproxy", 1, None, 9, True, ["a", "b", "z"])

    alone = child_eval(types.MappingProxyType({"x": 1}), "(dict(obj), type(obj).__name__)")
    assert alone == ({"x": 1}, "mappingproxy")


def test_a_class_dict_proxy_stays_the_live_namespace_of_its_class():
    """On PyPy too, where an ABC's namespace holds weak sets of weak references (its pure-Python
    ``_abc``), which do not pickle: the proxy used to travel as a copy that failed to load with
    a bare TypeError (``ReferenceType.__new__() missing 1 required positional argument``)."""
    import abc

    class Base(abc.ABC):  # its namespace holds _abc_impl, which cannot pickle as data
        limit = 3

        @abc.abstractmethod
        def run(self): ...

    # Alone, the proxy brings its class (by value) along; with the class, it is its namespace.
    alone = child_eval(Base.__dict__, "(type(obj).__name__, obj['limit'], 'run' in obj)")
    assert alone == ("mappingproxy", 3, True)
    both = child_eval(
        (Base, Base.__dict__),
        "(setattr(obj[0], 'extra', 7), obj[1]['extra'], obj[1]['limit'],"
        " sorted(obj[0].__abstractmethods__))",
    )
    assert both == (None, 7, 3, ["run"])


def test_a_copy_of_a_class_dict_stays_a_copy():
    class Plain:
        limit = 3

    copy = types.MappingProxyType(dict(Plain.__dict__))
    result = child_eval(
        (Plain, copy), "(setattr(obj[0], 'extra', 7), 'extra' in obj[1], obj[1]['limit'])"
    )
    assert result == (None, False, 3)


def test_builtin_descriptors_load_as_the_same_objects():
    # cloudpickle reduces getset_descriptor objects to getattr(objclass, name); member,
    # method and slot-wrapper descriptors pickle by name through their own __reduce__.
    class Slotted:
        __slots__ = ("a",)

    slot = child_eval(Slotted.__dict__["a"], "(type(obj).__name__, obj.__name__)")
    assert slot == ("member_descriptor", "a")

    descriptors = (int.real, types.FunctionType.__dict__["__code__"], str.upper)
    result = child_eval(
        descriptors,
        "(obj[0] is int.real, obj[1] is type(lambda: 0).__dict__['__code__'],"
        " obj[2] is str.upper, obj[0].__get__(5))",
    )
    assert result == (True, True, True, 5)


def test_method_in_process_round_trip():
    class Local:
        def f(self):
            return id(self) != 0

    inst = Local()
    m = satchel.loads(satchel.dumps(inst.f))
    assert m() is True
    assert type(m.__self__) is Local
