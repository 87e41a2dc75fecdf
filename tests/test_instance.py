"""Plain instances (src/reduce/instance.rs): on satchel's own picklers the Rust reducer builds
the reduction object.__reduce_ex__ would, so the bytes must be exactly the stdlib's, and any
class that changes how its instances pickle must still be asked."""

import copyreg
import io
import pickle

import pytest

import satchel

PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)


class Plain:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class Empty:
    pass


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self, a, b):
        self.a, self.b = a, b


class WithState(Plain):
    def __getstate__(self):
        return {"only": self.__dict__.get("x")}


class WithReduce(Plain):
    def __reduce__(self):
        return (WithReduce, (), {"r": 1})


class WithNewArgs:
    def __new__(cls, n):
        obj = super().__new__(cls)
        obj.n = n
        return obj

    def __getnewargs__(self):
        return (self.n,)


class ListSub(list):
    pass


class DictSub(dict):
    pass


def _samples():
    loop = Plain(name="loop")
    loop.me = loop
    return [
        Plain(a=1, b="two", c=[3.0, None]),
        Empty(),
        [Plain(x=i) for i in range(5)],
        loop,
        Slotted(1, [2]),
        WithState(x=7, y=8),
        WithReduce(z=1),
        WithNewArgs(4),
        ListSub([1, 2]),
        DictSub(a=1),
        {"nested": (Plain(k=Empty()), Slotted("s", None))},
    ]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bytes_are_the_stdlib_pickler_bytes(protocol):
    for sample in _samples():
        try:
            expected = pickle.dumps(sample, protocol=protocol)
        except TypeError as exc:  # slots below protocol 2: satchel fails the same way
            with pytest.raises(type(exc)):
                satchel.dumps(sample, protocol=protocol)
            continue
        assert satchel.dumps(sample, protocol=protocol) == expected, sample
        buf = io.BytesIO()
        satchel.dump(sample, buf, protocol=protocol)
        stream = buf.getvalue()  # a file stream starts with satchel's header
        assert stream[satchel.inspect(stream)["header_size"] :] == expected, sample


def test_a_reduce_added_after_first_use_is_honoured():
    class Late:
        def __init__(self):
            self.v = 1

    first = pickle.loads(satchel.dumps(Late()))
    assert first.v == 1
    Late.__reduce__ = lambda self: (dict, (), None, None, iter([("late", True)]))
    assert pickle.loads(satchel.dumps(Late())) == {"late": True}


def test_copyreg_registration_is_honoured():
    class Registered:
        pass

    copyreg.pickle(Registered, lambda obj: (dict, ((("via", "copyreg"),),)))
    try:
        assert pickle.loads(satchel.dumps(Registered())) == {"via": "copyreg"}
    finally:
        del copyreg.dispatch_table[Registered]


def test_a_user_pickler_dispatch_table_still_sees_plain_instances():
    buf = io.BytesIO()
    p = satchel.Pickler(buf)
    p.dispatch_table = {Plain: lambda obj: (str, ("from dispatch_table",))}
    p.dump(Plain(a=1))
    assert pickle.loads(buf.getvalue()) == "from dispatch_table"
