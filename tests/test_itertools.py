"""itertools iterators mid-iteration (they sit on suspended generators' stacks). satchel
reduces them itself on every version: CPython 3.14 removed their pickling and 3.12/3.13 warn.
Each is advanced, dumped, and its next items compared with an untouched twin's, in a fresh
process that has no warnings enabled but loads with plain pickle."""

import itertools as it
import warnings

import pytest

import satchel
from conftest import child_eval_bytes

CASES = {
    "count": lambda: it.count(5),
    "count-step": lambda: it.count(5, 2),
    "count-float": lambda: it.count(1.5, 0.25),
    "count-big": lambda: it.count(2**70),
    "repeat": lambda: it.repeat("a", 4),
    "repeat-endless": lambda: it.repeat("b"),
    "islice": lambda: it.islice(range(20), 2, 15, 3),
    "islice-open": lambda: it.islice(it.count(), 1, None),
    "islice-short": lambda: it.islice(range(5), 3),
    "chain": lambda: it.chain([1, 2], [3], [4, 5]),
    "chain-from-iterable": lambda: it.chain.from_iterable([[1], [2, 3]]),
    "cycle": lambda: it.cycle([1, 2, 3]),
    "cycle-empty": lambda: it.cycle([]),
}


@pytest.mark.parametrize("steps", [0, 1, 2, 4, 7])
@pytest.mark.parametrize("name", sorted(CASES))
def test_resumes_where_it_was(name, steps):
    obj, twin = CASES[name](), CASES[name]()
    for _ in range(steps):
        next(obj, None)
        next(twin, None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DeprecationWarning from the stdlib reducers
        data = satchel.dumps(obj)
    expected = list(it.islice(twin, 12))
    assert child_eval_bytes(data, "list(__import__('itertools').islice(obj, 12))") == expected
    assert list(it.islice(obj, 12)) == expected  # the original is untouched


def test_streams_need_no_satchel():
    """The reductions are plain itertools calls: the stream is the stdlib's, no header."""
    data = satchel.dumps(it.islice(it.cycle([1, 2]), 1, None))
    assert b"_satchel_boot" not in data
    assert satchel.inspect(data)["satchel_header"] is False
