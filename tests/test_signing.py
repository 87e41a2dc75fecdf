"""Signed streams (key=) and allowlisted loading (allow=).

A signed stream is the stream plus b"SATCHEL-SIG1" and an HMAC-SHA256 over it; satchel.loads
with the key checks it before a single opcode runs. The "nothing ran" checks use a stream that
would write a marker file when loaded."""

import os
import pickle

import pytest

import satchel
from conftest import child_eval_bytes, needs_live_generators, run_script

KEY = b"correct horse battery staple"


def _marker_stream(path, key=KEY):
    """A stream whose loading creates `path` (a __reduce__ that calls open)."""

    class Touch:
        def __reduce__(self):
            return (open, (path, "w"))

    return satchel.dumps([Touch(), lambda x: x + 1], key=key)


def test_round_trip_and_plain_pickle_still_reads_it():
    k = 5
    data = satchel.dumps(lambda x: x * k, key=KEY)
    assert satchel.inspect(data)["signed"] is True
    assert satchel.loads(data, key=KEY)(2) == 10
    # The signature sits after STOP: a receiver that does not verify can still load it.
    assert child_eval_bytes(data, "obj(3)") == 15


def test_plain_data_signed_without_header():
    data = satchel.dumps({"a": [1, 2]}, key=KEY)
    assert pickle.loads(data) == {"a": [1, 2]}
    assert satchel.loads(data, key=KEY) == {"a": [1, 2]}


@pytest.mark.parametrize("kwargs", [{}, {"standalone": True}, {"compress": True}])
def test_every_stream_kind_signs(kwargs):
    k = 2
    data = satchel.dumps(lambda x: x**k, key=KEY, **kwargs)
    assert satchel.loads(data, key=KEY)(3) == 9


def _refused(data, tmp_path, key=KEY):
    with pytest.raises(satchel.SignatureError) as info:
        satchel.loads(data, key=key)
    assert isinstance(info.value, pickle.UnpicklingError)
    assert isinstance(info.value, satchel.UnpicklingError)
    assert not os.path.exists(tmp_path / "ran"), "something in the stream ran"
    return str(info.value)


def test_wrong_key(tmp_path):
    data = _marker_stream(str(tmp_path / "ran"))
    assert "does not match" in _refused(data, tmp_path, key=b"another key")


def test_every_tampered_byte_is_refused(tmp_path):
    data = _marker_stream(str(tmp_path / "ran"))
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x40
        _refused(bytes(bad), tmp_path)


def test_missing_and_truncated_signature(tmp_path):
    data = _marker_stream(str(tmp_path / "ran"))
    unsigned = data[:-44]
    assert satchel.inspect(unsigned)["signed"] is False
    assert "not signed" in _refused(unsigned, tmp_path)
    for cut in (1, 16, 31, 43):
        assert "not signed" in _refused(data[:-cut], tmp_path)


def test_key_rotation_accepts_any_listed_key(tmp_path):
    data = satchel.dumps([1, 2, 3], key=b"old key")
    assert satchel.loads(data, key=[b"new key", b"old key"]) == [1, 2, 3]
    with pytest.raises(satchel.SignatureError):
        satchel.loads(data, key=[b"new key", b"newer key"])


@pytest.mark.parametrize("key", [b"", 42, "text"])
def test_bad_keys_are_refused(key):
    with pytest.raises((ValueError, TypeError)):
        satchel.dumps(1, key=key)


def test_out_of_band_buffers_cannot_be_signed():
    with pytest.raises(ValueError, match="unsigned"):
        satchel.dumps(pickle.PickleBuffer(b"x" * 10), protocol=5, buffer_callback=print, key=KEY)


def test_dump_to_a_file_signs_the_whole_stream(tmp_path):
    path = tmp_path / "signed.pkl"
    with open(path, "wb") as f:
        satchel.dump(lambda: "ok", f, key=KEY)
    assert satchel.loads(path.read_bytes(), key=KEY)() == "ok"


@needs_live_generators
def test_signed_generator_resumes_in_a_child():
    def gen():
        yield 1
        yield 2
        yield 3

    g = gen()
    next(g)
    data = satchel.dumps(g, key=KEY)
    out = run_script(
        f"""
import satchel, sys
g = satchel.loads(sys.stdin.buffer.read() if False else {data!r}, key={KEY!r})
print(list(g))
"""
    )
    assert out.decode().strip() == "[2, 3]"


# ---------------------------------------------------------------------------------------------
# allow=
# ---------------------------------------------------------------------------------------------


def test_data_preset_loads_plain_data():
    import collections
    import datetime
    import decimal
    import fractions
    import uuid

    value = [
        {1, 2},
        frozenset({3}),
        bytearray(b"ab"),
        complex(1, 2),
        collections.OrderedDict(a=1),
        collections.deque([1]),
        datetime.datetime(2026, 11, 21, 12, 0, tzinfo=datetime.UTC),
        decimal.Decimal("1.5"),
        fractions.Fraction(1, 3),
        uuid.UUID(int=7),
    ]
    for protocol in (2, 3, 4, 5):
        assert satchel.loads(satchel.dumps(value, protocol=protocol), allow="data") == value


def test_refused_global_is_named(tmp_path):
    data = pickle.dumps(os.getcwd)
    with pytest.raises(satchel.UnpicklingError, match=r"'posix\.getcwd' is not allowed"):
        satchel.loads(data, allow="data")


def test_refused_before_it_runs(tmp_path):
    class Touch:
        def __reduce__(self):
            return (open, (str(tmp_path / "ran"), "w"))

    with pytest.raises(satchel.UnpicklingError, match="io.open"):
        satchel.loads(pickle.dumps(Touch()), allow="data")
    assert not (tmp_path / "ran").exists()


def test_entries_wildcards_and_callables():
    data = pickle.dumps(os.path.join)
    assert satchel.loads(data, allow=["posixpath.join"]) is os.path.join
    assert satchel.loads(data, allow=["posixpath.*"]) is os.path.join
    assert satchel.loads(data, allow=lambda m, n: m == "posixpath") is os.path.join
    with pytest.raises(satchel.UnpicklingError):
        satchel.loads(data, allow=lambda m, n: False)
    with pytest.raises(ValueError, match="allow="):
        satchel.loads(data, allow=["join"])


def test_satchel_constructors_are_always_allowed():
    k = 4
    data = satchel.dumps(lambda x: x + k)
    assert satchel.loads(data, allow=[])(1) == 5


def test_signed_and_allowed_together():
    data = satchel.dumps({"n": 1}, key=KEY)
    assert satchel.loads(data, key=KEY, allow="data") == {"n": 1}
