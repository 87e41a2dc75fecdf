"""The compat matrix's producer: builds every object of the battery, dumps each in every
variant, and writes the streams and a manifest.

    python -I -S compat-matrix/battery.py --out DIR [--sys-path P]... [--objects a,b]

Run by a producer interpreter, with satchel (and numpy, optionally) reachable through
``--sys-path``. The objects are built inside functions of this file, which runs as
``__main__``, so satchel pickles them by value; their source is this file, found through
linecache, which is what portable mode ships.

Each object has a ``check``: an expression over ``obj`` whose value (plain data, compared
after a JSON round trip) the consumer must reproduce. The expected value is the producer's own,
computed after every variant was dumped (a generator is consumed by its check).

A dump that raises is recorded (class and message), not fatal. Progress goes to stderr, one
line per dump, so a producer that crashes names the dump it died in.
"""

import abc
import argparse
import collections
import dataclasses
import enum
import functools
import json
import os
import platform
import shutil
import sys
import tempfile
import traceback
import typing

#: A module global the lambda reads: it travels by value with the lambda.
OFFSET = 100

#: The key the `signed` object is signed with (`dumps(..., key=KEY)`); consumer.py loads it
#: with this key through satchel.loads, and checks that another key is refused.
SIGNING_KEY = b"compat-matrix signing key"

#: The module the battery registers by value (`register_pickle_by_value`): written to a
#: directory that exists only while the producer dumps, so no consumer can import it.
BY_VALUE_MODULE = "satchel_matrix_byvalue"
BY_VALUE_SOURCE = '''"""A module satchel pickles by value: the compat matrix's battery."""

RATE = 7


class Meter:
    def __init__(self, units):
        self.units = units

    def cost(self):
        return self.units * RATE


def total(*units):
    return sum(Meter(n).cost() for n in units)
'''

VARIANTS = [
    (mode, standalone, compress)
    for mode in ("nonportable", "portable")
    for standalone in (False, True)
    for compress in (False, True)
]


def variant_name(mode, standalone, compress):
    return "{}-{}{}".format(
        mode, "standalone" if standalone else "lean", "-zstd" if compress else ""
    )


# ---------------------------------------------------------------------------------------------
# The battery. Keep every factory's source stable: committed fixtures carry it.
# ---------------------------------------------------------------------------------------------


def make_plain_data():
    return {
        "ints": [1, 2, 3],
        "text": "satchel \u2713",
        "nested": {
            "tuple": (1, "a", None, True),
            "bytes": b"\x00\xff",
            "float": 1.5,
            "big": 2**70,
            "frozenset": frozenset({3, 1, 2}),
        },
    }


def make_lambda():
    scale = 3
    return lambda x, k=2: x * k * scale + OFFSET


def make_counter(start):
    count = start
    log = []

    def bump(step=1):
        nonlocal count
        count += step
        log.append(step)
        return count

    def peek():
        return count, list(log)

    return bump, peek


def make_closure():
    return make_counter(10)


def make_recursive():
    def fact(n):
        return 1 if n <= 1 else n * fact(n - 1)

    def is_even(n):
        return True if n == 0 else is_odd(n - 1)

    def is_odd(n):
        return False if n == 0 else is_even(n - 1)

    return fact, is_even


def make_classes():
    class Shape:
        sides = 0

        def __init__(self, name):
            self.name = name

        def describe(self):
            return f"{self.name} with {self.sides} sides"

        @classmethod
        def unit(cls):
            return cls("unit")

    class Square(Shape):
        sides = 4

        def __init__(self, name, size=1):
            super().__init__(name)
            self._size = size

        @property
        def size(self):
            return self._size

        @size.setter
        def size(self, value):
            if value < 0:
                raise ValueError("negative size")
            self._size = value

        @property
        def area(self):
            return self._size**2

        def describe(self):
            return super().describe() + f", area {self.area}"

        @staticmethod
        def kind():
            return "square"

    return Square, Square("sq", 3)


def make_dataclass():
    @dataclasses.dataclass(order=True)
    class Point:
        x: int
        y: int = 0
        tags: list = dataclasses.field(default_factory=list, compare=False)

        def norm1(self):
            return abs(self.x) + abs(self.y)

    return Point, Point(1, -2, ["a"])


def make_enum():
    class Color(enum.Enum):
        RED = 1
        GREEN = 2
        BLUE = 3

        def shout(self):
            return self.name + "!"

    class Perm(enum.IntFlag):
        R = 4
        W = 2
        X = 1

    return Color, Color.GREEN, Perm.R | Perm.W


def make_partial():
    def power(base, exp, *, scale=1):
        return scale * base**exp

    return functools.partial(power, 2, scale=3)


def make_generator_not_started():
    def countdown(n, step=1):
        while n > 0:
            yield n
            n -= step

    return countdown(5, step=2)


def make_generator_suspended():
    def running_mean(values):
        total = count = 0
        for v in values:
            total, count = total + v, count + 1
            yield total / count

    gen = running_mean([2, 4, 6, 8])
    next(gen)
    next(gen)
    return gen


def make_numpy_small():
    import numpy

    return numpy.arange(12, dtype=numpy.int32).reshape(3, 4), lambda a: a.sum(axis=0)


def make_numpy_array():
    import numpy

    return numpy.arange(1_000_000, dtype=numpy.float64) * 0.5  # 8 MB


def make_numpy_closure():
    import numpy

    weights = numpy.linspace(0.0, 1.0, 262_144)  # 2 MiB

    def weighted(x):
        return float((weights * x).sum())

    return weighted


def make_namedtuples():
    Pair = collections.namedtuple("Pair", "left right", defaults=["r"])

    class Card(typing.NamedTuple):
        """A playing card."""

        rank: int
        suit: str = "spades"

        def label(self):
            return f"{self.rank} of {self.suit}"

    return Pair, Pair(1), Card, Card(7)


def make_abc_slots():
    class Shape(abc.ABC):
        __slots__ = ()

        @abc.abstractmethod
        def area(self): ...

        def twice(self):
            return 2 * self.area()

        @classmethod
        def instantiable(cls):
            try:
                cls()
            except TypeError:
                return False
            return True

    class Rect(Shape):
        __slots__ = ("w", "h")

        def __init__(self, w=1, h=1):
            self.w, self.h = w, h

        def area(self):
            return self.w * self.h

    class Virtual:
        def area(self):
            return 0

    Shape.register(Virtual)
    return Shape, Rect, Rect(2, 5), Virtual


def make_module_by_value(satchel):
    """Functions and an instance of a module registered by value, from a directory that is
    gone once the dumps are done. Returns (obj, cleanup)."""
    directory = tempfile.mkdtemp(prefix="satchel-matrix-")
    with open(os.path.join(directory, BY_VALUE_MODULE + ".py"), "w") as f:
        f.write(BY_VALUE_SOURCE)
    sys.path.insert(0, directory)
    module = __import__(BY_VALUE_MODULE)
    satchel.register_pickle_by_value(module)

    def cleanup():
        satchel.unregister_pickle_by_value(module)
        sys.path.remove(directory)
        shutil.rmtree(directory, ignore_errors=True)

    return (module.total, module.Meter(3), module.Meter), cleanup


def make_signed():
    def checksum(data, modulus=251):
        return sum(data) % modulus

    return checksum


@dataclasses.dataclass
class Item:
    name: str
    factory: object
    check: str
    numpy: bool = False
    fixture: bool = True  # small enough to commit under compat-matrix/fixtures/
    key: bytes = None  # dumped with key= (signed); consumer.py loads it with that key
    needs_satchel: bool = False  # the factory takes the satchel module, returns (obj, cleanup)


OBJECTS = [
    Item(
        "plain_data",
        make_plain_data,
        "[sorted(obj), obj['text'], list(obj['nested']['tuple']), obj['nested']['bytes'].hex(),"
        " obj['nested']['float'], str(obj['nested']['big']), sorted(obj['nested']['frozenset'])]",
    ),
    Item("lambda", make_lambda, "[obj(1), obj(2, k=10), obj.__name__, list(obj.__defaults__)]"),
    Item("closure_shared_cells", make_closure, "[obj[0](), obj[0](5), obj[1]()]"),
    Item("recursive_functions", make_recursive, "[obj[0](20), obj[1](11), obj[1](10)]"),
    Item(
        "class_property_super",
        make_classes,
        "[obj[1].describe(), obj[0].unit().describe(), obj[0].kind(), obj[1].size,"
        " setattr(obj[1], 'size', 5) or obj[1].area, type(obj[1]) is obj[0],"
        " obj[0].__qualname__, [c.__name__ for c in obj[0].__mro__]]",
    ),
    Item(
        "dataclass",
        make_dataclass,
        "[repr(obj[1]), obj[1].norm1(), obj[0](1, -2) == obj[1], obj[0](0, 5) < obj[1],"
        " obj[0](7).tags, [f.name for f in __import__('dataclasses').fields(obj[0])]]",
    ),
    Item(
        "enum",
        make_enum,
        "[obj[1].name, obj[1].value, obj[1].shout(), [m.name for m in obj[0]],"
        " obj[0](2) is obj[1], obj[0]['BLUE'].value, int(obj[2]), bool(obj[2] & 2),"
        " obj[0].__qualname__]",
    ),
    Item(
        "namedtuple",
        make_namedtuples,
        "[list(obj[1]), list(obj[0]._fields), obj[0](2, 'x')._replace(left=3)._asdict(),"
        " obj[3].label(), obj[2](1).suit, obj[2].__doc__, list(obj[2].__annotations__),"
        " type(obj[3]) is obj[2], list(obj[3]), obj[0].__qualname__]",
    ),
    Item(
        "abc_slots",
        make_abc_slots,
        "[obj[2].area(), obj[2].twice(), isinstance(obj[2], obj[0]), issubclass(obj[1], obj[0]),"
        " hasattr(obj[2], '__dict__'), [obj[2].w, obj[2].h], list(obj[1].__slots__),"
        " sorted(obj[0].__abstractmethods__), obj[0].instantiable(), obj[1].instantiable(),"
        " issubclass(obj[3], obj[0]), isinstance(obj[3](), obj[0]), type(obj[2]) is obj[1]]",
    ),
    Item(
        "module_by_value",
        make_module_by_value,
        "[obj[0](1, 2), obj[1].cost(), obj[2](5).cost(), type(obj[1]) is obj[2],"
        " obj[0].__module__, obj[2].__module__, obj[0].__globals__['RATE'],"
        " obj[0].__globals__['Meter'] is obj[2]]",
        needs_satchel=True,
    ),
    Item(
        "signed",
        make_signed,
        "[obj(b'satchel'), obj(bytes(range(100)), modulus=7), obj.__name__]",
        key=SIGNING_KEY,
    ),
    Item("partial", make_partial, "[obj(5), list(obj.args), obj.keywords, obj.func.__name__]"),
    Item("generator_not_started", make_generator_not_started, "list(obj)"),
    Item("generator_suspended", make_generator_suspended, "list(obj)"),
    Item("numpy_small", make_numpy_small, "[obj[0].tolist(), obj[1](obj[0]).tolist()]", numpy=True),
    Item(
        "numpy_array",
        make_numpy_array,
        "[list(obj.shape), str(obj.dtype), float(obj.sum()), float(obj[-1])]",
        numpy=True,
        fixture=False,
    ),
    Item(
        "numpy_closure",
        make_numpy_closure,
        "[round(obj(2.0), 3), obj.__name__]",
        numpy=True,
        fixture=False,
    ),
]


def normalize(value):
    """Plain data as JSON sees it: what a consumer's value is compared with."""
    return json.loads(json.dumps(value))


def describe(exc):
    cls = type(exc)
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "message": str(exc)[:600]}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--sys-path", action="append", default=[])
    parser.add_argument("--objects", help="comma-separated names (default: all)")
    args = parser.parse_args(argv)
    sys.path[:0] = args.sys_path
    import satchel
    from satchel import _satchel

    try:
        import numpy
    except ImportError:
        numpy = None
    wanted = set(args.objects.split(",")) if args.objects else None
    os.makedirs(args.out, exist_ok=True)
    manifest = {
        "producer": {
            "label": _satchel.LABEL,
            "fingerprint": satchel.FINGERPRINT.hex(),
            "format_version": satchel.FORMAT_VERSION,
            "satchel_version": satchel.__version__,
            "satchel_file": satchel.__file__,
            "implementation": sys.implementation.name,
            "python": platform.python_version(),
            "numpy": numpy.__version__ if numpy else None,
            # A frame layout ("cpython-3.11"), or why there is none: suspended generators
            # dump in nonportable mode only with one (rules.expect_dump).
            "live_generators": str(getattr(_satchel, "LIVE_GENERATORS", None)),
        },
        "objects": [],
        "streams": [],
    }
    for item in OBJECTS:
        if wanted is not None and item.name not in wanted:
            continue
        entry = {
            "name": item.name,
            "check": item.check,
            "numpy": item.numpy,
            "fixture": item.fixture,
        }
        if item.key is not None:
            entry["key"] = item.key.hex()
        manifest["objects"].append(entry)
        if item.numpy and numpy is None:
            entry["na"] = "numpy is not installed on the producer"
            continue
        cleanup = None
        try:
            if item.needs_satchel:
                obj, cleanup = item.factory(satchel)
            else:
                obj = item.factory()
        except Exception as exc:  # noqa: BLE001 (a battery bug: reported, the others still run)
            entry["build_error"] = describe(exc)
            continue
        for mode, standalone, compress in VARIANTS:
            name = variant_name(mode, standalone, compress)
            stream = {
                "object": item.name,
                "variant": name,
                "mode": mode,
                "standalone": standalone,
                "compress": compress,
                "file": None,
            }
            print(f"dump {item.name} {name}", file=sys.stderr, flush=True)
            try:
                data = satchel.dumps(
                    obj, mode=mode, standalone=standalone, compress=compress, key=item.key
                )
            except Exception as exc:  # noqa: BLE001 (every failure is an outcome to record)
                stream["dump_error"] = describe(exc)
                manifest["streams"].append(stream)
                continue
            filename = f"{item.name}.{name}.pkl"
            with open(os.path.join(args.out, filename), "wb") as f:
                f.write(data)
            stream["file"] = filename
            stream["size"] = len(data)
            info = satchel.inspect(data)
            if not info["satchel_header"]:
                info = None  # no header: the stdlib's own pickle
            stream["header"] = info is not None
            if info is not None:
                stream["needs_satchel"] = bool(info.get("needs_satchel"))
                stream["compression"] = info.get("compression")
                stream["header_mode"] = info.get("mode")
                stream["header_standalone"] = bool(info.get("standalone"))
                stream["signed"] = bool(info.get("signed"))
            manifest["streams"].append(stream)
        if cleanup is not None:
            cleanup()
        try:
            entry["expected"] = normalize(
                eval(compile(item.check, "<check>", "eval"), {"obj": obj})
            )
        except Exception as exc:  # noqa: BLE001 (every failure is an outcome to record)
            entry["check_error"] = describe(exc)
            traceback.print_exc()
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    print("done", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
