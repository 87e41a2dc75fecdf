"""A slice of the compat matrix (compat-matrix/MATRIX.md) that runs in the test suite: CPython
3.11 (this venv, with the satchel under test) ↔ Debian's CPython 3.11.2, and both → PyPy when
it is installed (`make interpreters`), every mode, with the same battery, consumer and rules as
`make matrix` (compat-matrix/matrix.py), minus the big numpy objects.

Producers: this interpreter and Debian's 3.11.2, each with the satchel under test
(``python/``, built for CPython 3.11: Debian's 3.11.2 has the same ABI). Consumers: both, with
satchel and stdlib-only (``-I -S``), and PyPy stdlib-only. Every outcome must be a load or the
error satchel's design promises (rules.expect_*), or a known bug (rules.KNOWN_ISSUES); a crash,
a hang or a wrong value fails, and so does an outcome nobody predicted. Interpreters that are
missing are skipped, with the reason.
"""

import collections
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "compat-matrix"))
import interpreters as registry  # noqa: E402
import matrix  # noqa: E402
import rules  # noqa: E402

SATCHEL = REPO / "python"  # the satchel under test (cp311): `make build` put its binary here
DEBIAN = "/usr/bin/python3.11"
OBJECTS = [o for o in matrix.OBJECT_NOTES if o not in ("numpy_array", "numpy_closure")]


def _numpy_path():
    try:
        import numpy
    except ImportError:
        return None
    return str(pathlib.Path(numpy.__file__).resolve().parent.parent)


@pytest.fixture(scope="module")
def slice_results(tmp_path_factory):
    if not list(SATCHEL.glob("satchel/_satchel*.so")):
        pytest.skip(f"satchel is not built in {SATCHEL} (make build)")
    here = registry.from_path(sys.executable, name="venv-{}.{}.{}".format(*sys.version_info[:3]))
    if here is None or here.version != (3, 11) or here.impl != "cpython":
        # Its producers import python/'s cp311 build; PyPy as a producer is `make matrix`'s.
        pytest.skip(
            f"the slice runs on CPython 3.11 (this is {sys.implementation.name} "
            f"{sys.version.split()[0]})"
        )
    found = registry.discover()
    debian = next((i for i in found if i.path == DEBIAN and i.version == (3, 11)), None)
    if debian is None:
        pytest.skip(f"Debian's CPython 3.11 ({DEBIAN}) is not installed")
    path = (str(SATCHEL),) + ((_numpy_path(),) if _numpy_path() else ())
    producers = [matrix.Producer(here, path), matrix.Producer(debian, path)]
    columns = []
    for interp in (here, debian):
        columns.append(registry.Column(interp, True, path, numpy=len(path) > 1))
        columns.append(registry.Column(interp, False))
    pypys = [i for i in found if i.impl == "pypy"]  # bookworm's 3.9, and sid's when provisioned
    for pypy in pypys:
        columns.append(registry.Column(pypy, False))
    work = tmp_path_factory.mktemp("compat-slice")
    results = matrix.run_matrix(producers, columns, work, objects=OBJECTS)
    return results, here, debian, pypys


def _cells(results):
    cells = collections.defaultdict(list)
    for o in results.outcomes:
        if o.column != "dump" and o.key != "na":
            cells[(o.variant, o.producer, o.column)].append(o)
    return cells


def test_no_crash_hang_or_wrong_value(slice_results):
    results = slice_results[0]
    assert not results.harness_errors
    assert not results.bugs, [
        (o.producer, o.column, o.variant, o.object, o.key, o.detail) for o in results.bugs
    ]


def test_every_outcome_is_promised_or_a_known_bug(slice_results):
    results = slice_results[0]
    unexpected = [
        (
            o.producer,
            o.variant,
            o.object,
            o.column,
            matrix.display(o.key),
            matrix.display(o.expected),
        )
        for o in results.unexpected
    ]
    assert not unexpected


def test_same_bytecode_loads_both_ways(slice_results):
    """3.11.7 and Debian's 3.11.2 share a fingerprint: every nonportable stream, lean or
    standalone, compressed or not, loads on the other with satchel."""
    results, here, debian, _ = slice_results
    cells = _cells(results)
    for producer, consumer in ((here, debian), (debian, here)):
        for variant in matrix.VARIANTS:
            if not variant.startswith("nonportable"):
                continue
            outcomes = cells[(variant, producer.name, consumer.name + "+satchel")]
            assert outcomes and all(o.key == rules.OK for o in outcomes), (variant, outcomes)


def test_standalone_without_satchel(slice_results):
    """Standalone, uncompressed: everything but a suspended generator loads with the stdlib."""
    results, here, debian, _ = slice_results
    cells = _cells(results)
    for producer, consumer in ((here, debian), (debian, here)):
        for variant in ("nonportable-standalone", "portable-standalone"):
            for o in cells[(variant, producer.name, consumer.name + "+stdlib")]:
                want = "needs-satchel-generator" if o.object == "generator_suspended" else rules.OK
                assert o.key == want, o


def test_pypy(slice_results):
    results, here, _, pypys = slice_results
    if not pypys:
        pytest.skip("no PyPy installed (make interpreters: apt-get install pypy3)")
    cells = _cells(results)
    for pypy in pypys:
        column = pypy.name + "+stdlib"
        nonportable = cells[("nonportable-standalone", here.name, column)]
        assert {o.key for o in nonportable if o.object != "plain_data"} == {
            "incompatible-interpreter"
        }
        portable = cells[("portable-standalone", here.name, column)]
        assert portable
        for o in portable:
            assert o.key == rules.OK or o.known, o
