"""dict and OrderedDict views (``src/reduce/dictview.rs``): ``d.keys()``, ``d.values()``,
``d.items()`` load in a fresh interpreter as views of the same types, through plain
``pickle.loads``, in both modes and without satchel on the receiver."""

import collections
import threading

import pytest

import satchel
from conftest import OTHER_PYTHONS, child_eval, child_eval_bytes, stdlib_eval

# In the child: each view's type name, and what it shows.
SHOW = "[(type(v).__name__, list(v)) for v in obj]"


def test_dict_views_cross_process():
    d = {"a": 1, "b": [2, 3], 3: None}
    result = child_eval([d.keys(), d.values(), d.items()], SHOW)
    assert result == [
        ("dict_keys", ["a", "b", 3]),
        ("dict_values", [1, [2, 3], None]),
        ("dict_items", [("a", 1), ("b", [2, 3]), (3, None)]),
    ]


def test_ordered_dict_views_stay_ordered_dict_views():
    od = collections.OrderedDict([("z", 1), ("a", 2), ("m", 3)])
    od.move_to_end("z")
    expr = (
        "[(type(v) is type(getattr(__import__('collections').OrderedDict(), n)()), list(v))"
        " for v, n in zip(obj, ['keys', 'values', 'items'])]"
    )
    result = child_eval([od.keys(), od.values(), od.items()], expr)
    assert result == [
        (True, ["a", "m", "z"]),
        (True, [2, 3, 1]),
        (True, [("a", 2), ("m", 3), ("z", 1)]),
    ]


def views_in_a_closure():
    """A function holding views, so the stream names bootstrap constructors (it has a
    header, and a standalone one carries the bootstrap)."""
    d = {"x": 1, "y": 2}
    od = collections.OrderedDict(b=1, a=2)
    views = (d.keys(), d.values(), d.items(), od.keys(), od.values(), od.items())

    def get():
        return [(type(v).__name__, list(v)) for v in views]

    return get, get()


EXPECTED_NAMES = ["dict_keys", "dict_values", "dict_items"]


@pytest.mark.parametrize("mode", ["nonportable", "portable"])
def test_views_in_a_function_both_modes(mode):
    get, expected = views_in_a_closure()
    payload = satchel.dumps(get, mode=mode)
    assert child_eval_bytes(payload, "obj()") == expected
    # Without satchel: portable streams are standalone by default; nonportable on request.
    standalone = payload if mode == "portable" else satchel.dumps(get, standalone=True)
    assert satchel.inspect(standalone)["standalone"]
    result = stdlib_eval(standalone, "obj()")
    assert result == expected
    assert [name for name, _ in result[:3]] == EXPECTED_NAMES


@pytest.mark.parametrize("name", sorted(OTHER_PYTHONS))
def test_portable_views_load_on_other_interpreters(name):
    get, expected = views_in_a_closure()
    result = stdlib_eval(satchel.dumps(get, mode="portable"), "obj()", OTHER_PYTHONS[name])
    # PyPy names OrderedDict's views differently; the contents are what must match.
    assert [items for _, items in result] == [items for _, items in expected]
    assert [name for name, _ in result[:3]] == EXPECTED_NAMES


def test_items_view_pickled_with_its_dict_stays_its_view():
    d = {"a": 1}
    expr = "(obj[0].__setitem__('new', 2), sorted(obj[1]), obj[2] is obj[1])[1:]"
    assert child_eval([d, d.items(), d.items()], expr) == (
        [("a", 1), ("new", 2)],
        False,  # two view objects in the sender: two here, of one dict
    )


def test_one_view_twice_is_one_object():
    v = {"a": 1}.values()
    assert child_eval([v, v], "obj[0] is obj[1]") is True


def test_keys_and_values_views_ship_only_what_they_show():
    # As cloudpickle: the rest of the dict may be large or secret.
    d = {"user": "SECRET-VALUE", "SECRET-KEY": 1}
    assert b"SECRET-VALUE" not in satchel.dumps(d.keys())
    assert b"SECRET-KEY" not in satchel.dumps({"SECRET-KEY": 1, "x": 2}.values())
    result = child_eval(d.keys(), "(list(obj), sorted(set(dict(obj.mapping).values()), key=repr))")
    assert result == (["user", "SECRET-KEY"], [None])


def test_items_view_of_a_subclass_is_a_view_of_a_plain_dict():
    dd = collections.defaultdict(list, a=[1])
    expr = "(type(obj).__name__, list(obj), type(__import__('gc').get_referents(obj)[0]).__name__)"
    assert child_eval(dd.items(), expr) == ("dict_items", [("a", [1])], "dict")


def test_views_holding_functions_and_classes():
    class Point:
        def __init__(self, x):
            self.x = x

    d = {"double": lambda v: 2 * v, "Point": Point}
    expr = "(list(obj[0])[0](3), list(obj[0])[1](4).x, dict(obj[1])['double'](5))"
    assert child_eval([d.values(), d.items()], expr) == (6, 4, 10)


def test_error_path_goes_through_the_view():
    d = {"ok": 1, "lock": threading.Lock()}
    with pytest.raises(satchel.PicklingError) as info:
        satchel.dumps({"held": d.values()})
    message = str(info.value)
    assert "item ['held'] -> value 1 of the view" in message
    assert "lock" in message
