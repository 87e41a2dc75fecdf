"""Cells (src/reduce/cell.rs): empty cells, self-referential and mutually recursive closures,
cells shared between functions, cells pickled directly, nonlocal mutation."""

import pickle
import types

import satchel
from conftest import child_eval, child_eval_bytes, echo


def make_probe():
    """A probe pickled by value (it is a local): calls ``fn(*args)`` in the child and reports
    the result or the exception, since an eval'd expression cannot catch."""

    def probe(fn, *args):
        try:
            return ("ok", fn(*args))
        except Exception as exc:  # noqa: BLE001 - reported back to the parent
            return ("raised", type(exc).__name__)

    return probe


def _counter():
    """A closure over a cell it mutates (the closure is local, so it travels by value)."""
    count = 0

    def incr():
        nonlocal count
        count += 1
        return count

    return incr


def test_empty_cell_dumped_before_assignment():
    probe = make_probe()

    def outer():
        def inner():
            return later

        # The cell of ``later`` is still empty here.
        payload = satchel.dumps((inner, probe))
        later = 5
        return payload, inner

    payload, inner = outer()
    # Dumping left the sender's cell alone, and it has been filled since.
    assert inner() == 5
    loaded, _ = pickle.loads(payload)
    assert loaded.__closure__ is not None and len(loaded.__closure__) == 1
    result = child_eval_bytes(
        payload,
        "(obj[1](obj[0]), obj[1](lambda: obj[0].__closure__[0].cell_contents),"
        " obj[0].__code__.co_freevars)",
    )
    assert result == (("raised", "NameError"), ("raised", "ValueError"), ("later",))


def test_empty_cell_never_assigned():
    probe = make_probe()

    def outer():
        def inner():
            return never

        return inner
        never = 1  # unreachable: makes ``never`` a cell variable that stays empty

    f = outer()
    assert child_eval(
        (f, probe), "(obj[1](obj[0]), obj[1](lambda: obj[0].__closure__[0].cell_contents))"
    ) == (("raised", "NameError"), ("raised", "ValueError"))


def test_cell_filled_after_inner_def():
    def outer():
        def inner():
            return value * 2

        value = 21
        return inner

    assert child_eval(outer(), "(obj(), obj.__closure__[0].cell_contents)") == (42, 21)


def test_self_referential_closure():
    def outer():
        def fact(n):
            return 1 if n <= 1 else n * fact(n - 1)

        return fact

    f = outer()
    assert f.__closure__[0].cell_contents is f
    assert child_eval(f, "(obj(6), obj.__closure__[0].cell_contents is obj)") == (720, True)
    g = echo(f)
    assert g(5) == 120 and g.__closure__[0].cell_contents is g


def test_mutually_recursive_closures():
    def outer():
        def is_even(n):
            return True if n == 0 else is_odd(n - 1)

        def is_odd(n):
            return False if n == 0 else is_even(n - 1)

        return is_even, is_odd

    even, odd = outer()
    # Both together, and one alone (the other travels through its cell).
    assert child_eval(
        (even, odd),
        "(obj[0](10), obj[1](7), obj[0](3),"
        " [c.cell_contents for c in obj[0].__closure__] == [obj[1]],"
        " [c.cell_contents for c in obj[1].__closure__] == [obj[0]])",
    ) == (True, True, False, True, True)
    assert child_eval(
        even,
        "(obj(9), obj.__closure__[0].cell_contents(9),"
        " obj.__closure__[0].cell_contents.__closure__[0].cell_contents is obj)",
    ) == (False, True, True)


def test_cells_shared_between_functions_stay_shared():
    def outer():
        n = 10

        def bump(x):
            nonlocal n
            n += x
            return n

        def peek():
            return n

        def reset():
            nonlocal n
            n = 0

        return bump, peek, reset

    funcs = outer()
    result = child_eval(
        funcs,
        "(obj[1](), obj[0](5), obj[1](), obj[2](), obj[1](), obj[0](2), obj[1](),"
        " obj[0].__closure__[0] is obj[1].__closure__[0] is obj[2].__closure__[0])",
    )
    assert result == (10, 15, 15, None, 0, 2, 2, True)
    # The sender's cell is untouched.
    assert funcs[1]() == 10


def test_shared_cell_seen_through_direct_cell_in_same_stream():
    def outer():
        box = "before"

        def read():
            return box

        return read

    read = outer()
    cell = read.__closure__[0]
    assert child_eval(
        (read, cell),
        "(obj[0](), obj[1] is obj[0].__closure__[0],"
        " setattr(obj[1], 'cell_contents', 'after'), obj[0]())",
    ) == ("before", True, None, "after")


def test_nonlocal_mutation_state_at_dump_time():
    incr = _counter()
    incr()
    incr()
    # The child continues from the state at dump time, the parent is not affected.
    assert child_eval(incr, "[obj(), obj(), obj()]") == [3, 4, 5]
    assert incr() == 3


def test_separate_dumps_give_separate_cells():
    incr = _counter()
    p1, p2 = satchel.dumps(incr), satchel.dumps(incr)
    a, b = pickle.loads(p1), pickle.loads(p2)
    assert a.__closure__[0] is not b.__closure__[0]
    assert (a(), a(), b()) == (1, 2, 1)
    assert incr() == 1


def test_cell_object_pickled_directly():
    cell = types.CellType(5)
    assert child_eval(cell, "(type(obj).__name__, obj.cell_contents)") == ("cell", 5)
    back = echo(cell)
    assert isinstance(back, types.CellType) and back.cell_contents == 5
    in_process = satchel.loads(satchel.dumps(cell))
    assert in_process is not cell and in_process.cell_contents == 5


def test_empty_cell_object_pickled_directly():
    probe = make_probe()
    cell = types.CellType()
    assert child_eval(
        (cell, probe), "(type(obj[0]).__name__, obj[1](lambda: obj[0].cell_contents))"
    ) == ("cell", ("raised", "ValueError"))


def test_self_referential_cell_and_cell_in_containers():
    cell = types.CellType()
    cell.cell_contents = cell
    other = types.CellType([1, 2])
    assert child_eval(
        (cell, [other, other], {"c": other}),
        "(obj[0].cell_contents is obj[0], obj[1][0] is obj[1][1] is obj[2]['c'],"
        " obj[1][0].cell_contents)",
    ) == (True, True, [1, 2])


def test_cell_holding_local_class_and_function():
    class Point:
        def __init__(self, x):
            self.x = x

    def helper(p):
        return p.x * 2

    def outer():
        def use(x):
            return helper(Point(x))

        return use

    assert child_eval(
        outer(),
        "(obj(4), sorted(type(c.cell_contents).__name__ for c in obj.__closure__))",
    ) == (8, ["function", "type"])


def test_cell_holding_none_is_not_empty():
    probe = make_probe()

    def outer():
        value = None

        def inner():
            return value is None

        return inner

    assert child_eval(
        (types.CellType(None), outer(), probe),
        "(obj[2](lambda: obj[0].cell_contents), obj[1](),"
        " obj[2](lambda: obj[1].__closure__[0].cell_contents))",
    ) == (("ok", None), True, ("ok", None))
