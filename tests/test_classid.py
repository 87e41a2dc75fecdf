"""Content-derived class ids (``src/reduce/classid.rs``): two definitions that differ in anything
that changes behaviour get different ids, the same definition gets the same id in every process,
and describing a class never panics, whatever user code does meanwhile.

A receiver that already holds a class under an id hands that class back for any stream with the
same id, so an id shared by two definitions silently runs the wrong one."""

import os
import pickle
import random
import sys
import textwrap
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import satchel
from satchel import _satchel


def _class(body, name="C"):
    """A class from source, as a notebook cell or ``exec`` defines one (module "cell")."""
    ns = {"__name__": "cell"}
    exec(compile(f"class {name}:\n" + textwrap.indent(body, "    "), "<cell>", "exec"), ns)
    return ns[name]


def _id(body):
    cid = _satchel._content_id(_class(body))
    assert cid is not None, "expected a describable class"
    return cid


# Each pair used to share one id (main at 6639562), because the description was joined text that
# left out the signature shape and the types of constants.
COLLISIONS = [
    pytest.param(
        "def m(self, args): return args", "def m(self, *args): return args", id="args-varargs"
    ),
    pytest.param("def m(self, kw): return kw", "def m(self, **kw): return kw", id="kw-varkw"),
    pytest.param("def m(self, x, y): return x", "def m(self, x, *, y): return x", id="kwonly"),
    pytest.param("def m(self, x, y): return x", "def m(self, x, /, y): return x", id="posonly"),
    pytest.param(
        "def m(self, x, *, y): return x", "def m(self, x, /, y): return x", id="kwonly-posonly"
    ),
    pytest.param("s = {1, 2}", "s = frozenset({1, 2})", id="set-frozenset"),
    pytest.param("s = 'abc'", "s = b'abc'", id="str-bytes"),
    pytest.param("s = 'x' * 300", "s = b'x' * 300", id="long-str-bytes"),
    pytest.param("s = 10**300", "s = str(10**300)", id="bigint-str"),
    pytest.param("s = 10**5000", "s = 10**5000 + 1", id="bigint-beyond-str-limit"),
    pytest.param("s = 1", "s = 1.0", id="int-float"),
    pytest.param("s = 1", "s = True", id="int-bool"),
    pytest.param("s = 0.0", "s = -0.0", id="zero-negative-zero"),
    pytest.param("s = (1, 2)", "s = [1, 2]", id="tuple-list"),
    pytest.param("s = ((1, 2), 3)", "s = (1, (2, 3))", id="nesting"),
    pytest.param("s = ('a', 'b')", "s = ('a,b',)", id="tuple-joined"),
    pytest.param("a = 1\nb = 2", "locals()['a=1;b'] = 2", id="two-attrs-one-name"),
    pytest.param("a = 'b'", "ab = ''", id="key-value-split"),
    pytest.param("def m(self): return 1", "async def m(self): return 1", id="coroutine-flag"),
    pytest.param(
        "def m(self): return 1", "def m(self):\n    return 1\n    yield", id="generator-flag"
    ),
    pytest.param("def m(self, x=1): return x", "def m(self, x=2): return x", id="defaults"),
    pytest.param("def m(self, *, x=1): return x", "def m(self, *, x=2): return x", id="kwdefaults"),
    pytest.param(
        "def m(self):\n    try: return 1\n    except ValueError: return 2",
        "def m(self):\n    try: return 1\n    except TypeError: return 2",
        id="except-clause",
    ),
    pytest.param("import math\nf = math.sqrt", "import cmath\nf = cmath.sqrt", id="builtin-module"),
    pytest.param("s = {'a': 1, 'b': 2}", "s = {'b': 2, 'a': 1}", id="dict-order"),
    pytest.param(
        "@property\ndef p(self): return 1", "@staticmethod\ndef p(self): return 1", id="descriptor"
    ),
]


@pytest.mark.parametrize(("one", "other"), COLLISIONS)
def test_definitions_that_differ_get_different_ids(one, other):
    assert _id(one) != _id(other)


@pytest.mark.parametrize(("one", "other"), COLLISIONS)
def test_the_same_definition_gets_the_same_id(one, other):
    assert _id(one) == _id(one)
    assert _id(other) == _id(other)


def test_metaclass_is_part_of_the_id():
    class Meta(type):
        pass

    plain = _satchel._content_id(type("C", (), {"__module__": "cell"}))
    meta = _satchel._content_id(Meta("C", (), {"__module__": "cell"}))
    assert plain != meta


def test_a_class_holding_itself_and_a_method_twice_is_described():
    c = _class("def m(self): return 1\nn = m")
    c.me = c
    c.instance = c()
    assert _satchel._content_id(c) is not None
    other = _class("def m(self): return 1\nn = m")
    other.me = other
    other.instance = other()
    assert _satchel._content_id(c) == _satchel._content_id(other)
    other.n = lambda self: 1
    assert _satchel._content_id(c) != _satchel._content_id(other)


# --- property: differing bodies, differing ids --------------------------------------------------

_NAMES = st.sampled_from(["a", "b", "c", "x", "y", "args", "kw"])
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.binary(max_size=6),
)
# Set elements and dict keys: never bools and ints together (True == 1 would merge them).
_hashables = st.one_of(st.integers(-50, 50), st.text(max_size=4))
_values = st.recursive(
    _scalars | st.frozensets(_hashables, max_size=4) | st.sets(_hashables, min_size=1, max_size=4),
    lambda inner: st.one_of(
        st.tuples(inner, inner),
        st.lists(inner, max_size=3),
        st.dictionaries(_hashables, inner, max_size=3),
    ),
    max_leaves=6,
)


@st.composite
def _methods(draw):
    names = draw(st.lists(_NAMES, unique=True, max_size=4))
    split = sorted(draw(st.lists(st.integers(0, len(names)), min_size=2, max_size=2)))
    posonly, normal, kwonly = names[: split[0]], names[split[0] : split[1]], names[split[1] :]
    return (
        tuple(posonly),
        tuple(normal),
        draw(st.booleans()),  # *args
        tuple(kwonly),
        draw(st.booleans()),  # **kw
        draw(st.integers(0, 3)),  # what it returns
    )


def _render_method(name, spec):
    posonly, normal, varargs, kwonly, varkw, result = spec
    params = ["self", *posonly]
    if posonly:
        params.append("/")
    params += normal
    if varargs:
        params.append("*rest")
    elif kwonly:
        params.append("*")
    params += kwonly
    if varkw:
        params.append("**extra")
    return f"def {name}({', '.join(params)}):\n    return {result}\n"


def _strict(value):
    """A key equal for two values exactly when they are the same value of the same types."""
    kind = type(value).__name__
    if isinstance(value, (set, frozenset)):
        return (kind, tuple(sorted((_strict(v) for v in value), key=repr)))
    if isinstance(value, (tuple, list)):
        return (kind, tuple(_strict(v) for v in value))
    if isinstance(value, dict):
        return (kind, tuple((_strict(k), _strict(v)) for k, v in value.items()))
    return (kind, repr(value))


_bodies = st.tuples(
    st.dictionaries(_NAMES.map(lambda n: "attr_" + n), _values, max_size=3),
    st.dictionaries(_NAMES.map(lambda n: "m_" + n), _methods(), max_size=2),
)


def _render(body):
    attrs, methods = body
    lines = [f"{name} = {value!r}" for name, value in attrs.items()]
    lines += [_render_method(name, spec) for name, spec in methods.items()]
    return "\n".join(lines) or "pass"


def _key(body):
    attrs, methods = body
    return (sorted((k, _strict(v)) for k, v in attrs.items()), sorted(methods.items()))


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_bodies, _bodies)
def test_property_differing_bodies_get_differing_ids(one, other):
    id_one, id_other = _id(_render(one)), _id(_render(other))
    if _key(one) == _key(other):
        assert id_one == id_other
    else:
        assert id_one != id_other, (_render(one), _render(other))


def _retyped(value):
    """The same content under another type: what joined text could not tell apart."""
    if isinstance(value, frozenset):
        return set(value) or [None]
    if isinstance(value, set):
        return frozenset(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 1e300 else str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, dict):
        return list(value.items())
    return 0


@st.composite
def _near_pairs_from(draw, body):
    """``body`` with one small change (a near miss is where joined text or a missing field
    collides)."""
    attrs, methods = body
    attrs, methods = dict(attrs), dict(methods)
    choices = ["add_attr"] + (["retype", "rename"] if attrs else [])
    choices += ["reshape"] if methods else []
    change = draw(st.sampled_from(choices))
    if change == "add_attr":
        attrs["attr_new"] = draw(_values)
    elif change == "retype":
        name = draw(st.sampled_from(sorted(attrs)))
        attrs[name] = _retyped(attrs[name])
    elif change == "rename":
        name = draw(st.sampled_from(sorted(attrs)))
        attrs[name + "_"] = attrs.pop(name)
    else:
        name = draw(st.sampled_from(sorted(methods)))
        posonly, normal, varargs, kwonly, varkw, result = methods[name]
        names = posonly + normal + kwonly
        cut = sorted(draw(st.lists(st.integers(0, len(names)), min_size=2, max_size=2)))
        methods[name] = (
            names[: cut[0]],
            names[cut[0] : cut[1]],
            draw(st.booleans()),
            names[cut[1] :],
            draw(st.booleans()),
            result,
        )
    return (attrs, methods)


@settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.data())
def test_property_near_miss_bodies_get_differing_ids(data):
    one = data.draw(_bodies)
    other = data.draw(_near_pairs_from(one))
    id_one, id_other = _id(_render(one)), _id(_render(other))
    if _key(one) == _key(other):
        assert id_one == id_other
    else:
        assert id_one != id_other, (_render(one), _render(other))


def _random_bodies(n, seed):
    """Class bodies for the cross-process check (hypothesis examples cannot leave the test)."""
    rng = random.Random(seed)
    bodies = []
    for _ in range(n):
        attrs = {
            f"attr_{i}": rng.choice(
                [
                    rng.randint(-(10**30), 10**30),
                    rng.random(),
                    "s" * rng.randint(0, 300),
                    frozenset(rng.sample(["a", "b", "c", "d", "e", "f"], rng.randint(0, 6))),
                    {rng.choice("xyz"): (1, b"\x00"), "k": None},
                    set(rng.sample(range(100), 5)),
                ]
            )
            for i in range(rng.randint(0, 4))
        }
        names = rng.sample(["a", "b", "c", "x", "y"], rng.randint(0, 4))
        cut = sorted(rng.randint(0, len(names)) for _ in range(2))
        spec = (
            tuple(names[: cut[0]]),
            tuple(names[cut[0] : cut[1]]),
            rng.random() < 0.5,
            tuple(names[cut[1] :]),
            rng.random() < 0.5,
            rng.randint(0, 3),
        )
        bodies.append(_render((attrs, {"m": spec})))
    return bodies


_CHILD_IDS = r"""
import sys, textwrap
from satchel import _satchel
ids = []
for body in eval(sys.stdin.read()):
    ns = {"__name__": "cell"}
    exec(compile("class C:\n" + textwrap.indent(body, "    "), "<cell>", "exec"), ns)
    ids.append(_satchel._content_id(ns["C"]))
print(repr(ids))
"""


@pytest.mark.parametrize("seed", ["0", "4242"])
def test_identical_bodies_in_different_processes_get_identical_ids(seed):
    import subprocess

    bodies = _random_bodies(60, int(seed))
    here = [_id(body) for body in bodies]
    assert len(set(here)) == len(set(bodies))
    child = subprocess.run(
        [sys.executable, "-c", _CHILD_IDS],
        input=repr(bodies).encode(),
        capture_output=True,
        check=True,
        timeout=120,
        env={**os.environ, "PYTHONHASHSEED": seed},
    )
    assert eval(child.stdout) == here  # noqa: S307 (our own child's repr of a list of str)


# --- the describer never panics -----------------------------------------------------------------


def _outcomes(action, n):
    """Run ``action`` n times; count results and exception type names."""
    counts = {}
    for _ in range(n):
        try:
            action()
            key = "ok"
        except pickle.PicklingError:
            key = "PicklingError"
        except BaseException as e:  # noqa: BLE001 (what escapes is the point)
            key = type(e).__module__ + "." + type(e).__qualname__
        counts[key] = counts.get(key, 0) + 1
    return counts


class _SlowReduce:
    """A value whose reduction runs Python code, so another thread gets the GIL meanwhile."""

    def __init__(self, v):
        self.v = v

    def __reduce__(self):
        sum(range(30))
        return (_SlowReduce, (self.v,))


def test_threads_mutating_class_dicts_during_dumps_never_panic():
    def make():
        class Mutated:
            registry = {k: _SlowReduce(k) for k in range(40)}

            def method(self):
                return 1

        for i in range(20):
            setattr(Mutated, f"attr{i}", _SlowReduce(i))
        return Mutated

    current = [make()]
    stop = threading.Event()

    def mutate():
        i = 0
        while not stop.is_set():
            i += 1
            cls = current[0]
            setattr(cls, f"x{i % 50}", _SlowReduce(i))
            if i % 2 == 0:
                try:
                    delattr(cls, f"x{(i * 7) % 50}")
                except AttributeError:
                    pass

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    thread = threading.Thread(target=mutate)
    thread.start()
    try:

        def dump_new_class():
            # A new class each time: every dump describes it from scratch.
            current[0] = make()
            satchel.dumps(current[0])

        counts = _outcomes(dump_new_class, 1500)
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(old)
    assert set(counts) <= {"ok", "PicklingError"}, counts
    assert counts.get("ok", 0) > 0


def test_reduce_ex_registering_itself_in_a_class_attribute_dict():
    # cloudpickle raises RuntimeError here; satchel used to let a pyo3 PanicException (a
    # BaseException) out of dumps.
    def make():
        class Registry:
            entries = {}

        class Hostile:
            def __reduce_ex__(self, protocol):
                Registry.entries[len(Registry.entries)] = Hostile()
                return (Hostile, ())

        Registry.entries["first"] = Hostile()
        return Registry

    counts = _outcomes(lambda: satchel.dumps(make()), 20)
    assert counts == {"PicklingError": 20}
    with pytest.raises(satchel.PicklingError, match="entries"):
        satchel.dumps(make())


def test_hostile_values_make_the_id_random_not_an_error():
    class Raises:
        def __reduce_ex__(self, protocol):
            raise ValueError("no")

    c = _class("x = 1")
    c.bad = Raises()
    assert _satchel._content_id(c) is None
