"""Property tests over nested builtin data.

For plain builtin values satchel's reducer has nothing to do: it answers ``NotImplemented`` (or
is never asked, for the types the C pickler writes itself) and the stream is the stdlib's. So
for protocols 2..5, ``satchel.dumps(x, protocol=p)`` must equal ``pickle.dumps(x, protocol=p)``
byte for byte, and ``pickle.loads`` must give back an equal value of the same types.
"""

import io
import math
import pickle

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import satchel

PROTOCOLS = range(2, pickle.HIGHEST_PROTOCOL + 1)

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _int_from_bytes(raw):
    return int.from_bytes(raw, "little", signed=True)


# Up to 2048-bit ints (LONG1 / LONG4 territory), built from bytes to keep the strategy's repr
# short (hypothesis renders it on failure).
big_ints = st.binary(min_size=8, max_size=256).map(_int_from_bytes)
edge_ints = st.sampled_from([0, -1, 255, 256, 2**31 - 1, 2**31, -(2**31) - 1, 2**63, -(2**63) - 1])
ints = st.one_of(st.integers(), big_ints, edge_ints)


def floats(allow_nan):
    return st.floats(allow_nan=allow_nan, allow_infinity=True)


def complexes(allow_nan):
    return st.complex_numbers(allow_nan=allow_nan, allow_infinity=True)


# Hashable leaves exclude NaN: a NaN set member or dict key never compares equal to its copy.
hashable_leaves = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    floats(allow_nan=False),
    complexes(allow_nan=False),
    st.text(),
    st.binary(),
)
leaves = st.one_of(
    hashable_leaves,
    floats(allow_nan=True),
    complexes(allow_nan=True),
    st.binary().map(bytearray),
)

hashables = st.recursive(
    hashable_leaves,
    lambda inner: st.one_of(
        st.tuples(inner, inner),
        st.lists(inner, max_size=4).map(tuple),
        st.frozensets(inner, max_size=4),
    ),
    max_leaves=10,
)

data = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.lists(inner, max_size=6).map(tuple),
        st.dictionaries(hashables, inner, max_size=6),
        st.sets(hashables, max_size=6),
        st.frozensets(hashables, max_size=6),
    ),
    max_leaves=40,
)


def same(a, b):
    """Deep equality that also checks types (so ``True`` is not ``1`` and ``1.0`` is not
    ``1``), treats NaN as equal to NaN and tells ``0.0`` from ``-0.0``."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, complex):
        return same(a.real, b.real) and same(a.imag, b.imag)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        # Keys are NaN-free and hashable, so plain lookup finds the partner key; the key
        # types are checked through the (insertion-ordered) key lists.
        return (
            list(a) == list(b)
            and all(same(x, y) for x, y in zip(a, b))
            and all(same(a[k], b[k]) for k in a)
        )
    if isinstance(a, (set, frozenset)):
        # Members are NaN-free; pair each with its equal partner to compare types deeply.
        return a == b and all(any(same(x, y) for y in b if y == x) for x in a)
    return a == b


@SETTINGS
@given(data)
def test_round_trip(x):
    for proto in PROTOCOLS:
        assert same(pickle.loads(satchel.dumps(x, protocol=proto)), x), proto


@SETTINGS
@given(data)
def test_stream_is_the_stdlib_stream(x):
    # dumps of plain data needs no satchel header: it is the stdlib's stream. dump and
    # Pickler.dump write to a file and cannot know in advance, so they always write the header;
    # the body after it is the stdlib's stream.
    for proto in PROTOCOLS:
        expected = pickle.dumps(x, protocol=proto)
        assert satchel.dumps(x, protocol=proto) == expected, proto
        buf = io.BytesIO()
        satchel.dump(x, buf, protocol=proto)
        assert _body(buf.getvalue()) == expected, proto
        buf = io.BytesIO()
        satchel.Pickler(buf, protocol=proto).dump(x)
        assert _body(buf.getvalue()) == expected, proto


def _body(stream):
    return stream[satchel.inspect(stream)["header_size"] :]


def _walk(x):
    yield x
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _walk(k)
            yield from _walk(v)
    elif isinstance(x, (list, tuple, set, frozenset)):
        for item in x:
            yield from _walk(item)


@SETTINGS
@given(data)
def test_reducer_declines_builtin_data(x):
    # Why the streams are the stdlib's: asked about any part of the value, satchel's reducer
    # answers NotImplemented and the C pickler does the writing.
    reducer = satchel.Pickler(io.BytesIO()).reducer_override
    for part in _walk(x):
        assert reducer(part) is NotImplemented, part


@SETTINGS
@given(st.lists(data, min_size=1, max_size=4))
def test_shared_references_match_the_stdlib(items):
    # The same objects reached twice: memo references (GET opcodes) must be identical too,
    # and the sharing must survive the round trip.
    x = [items, items, tuple(items)]
    for proto in PROTOCOLS:
        stream = satchel.dumps(x, protocol=proto)
        assert stream == pickle.dumps(x, protocol=proto), proto
        loaded = pickle.loads(stream)
        assert loaded[0] is loaded[1]
        assert same(loaded[0], items)


def test_special_floats_match_the_stdlib():
    values = [math.nan, -math.nan, math.inf, -math.inf, 0.0, -0.0, 5e-324, 1.7976931348623157e308]
    values += [complex(math.nan, -0.0), complex(-math.inf, math.nan)]
    for proto in PROTOCOLS:
        stream = satchel.dumps(values, protocol=proto)
        assert stream == pickle.dumps(values, protocol=proto)
        assert same(pickle.loads(stream), values)
