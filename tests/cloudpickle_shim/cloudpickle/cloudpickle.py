"""``cloudpickle.cloudpickle``: satchel's public API again, as cloudpickle keeps its
implementation in this submodule and its tests reach into it."""

from satchel import *  # noqa: F403

# cloudpickle's test module imports these private helpers at module level, so a plain
# ImportError would lose every test in the module, not just the few that use a helper. Each
# name below is therefore importable, but it is no stand-in: using it raises ImportError, and
# the tests that call it fail honestly (they are in the suite's expected-failure list).
# Every other private name is an ordinary AttributeError/ImportError.
_IMPORTED_BY_THE_TEST_MODULE = frozenset(
    {
        "_extract_class_dict",
        "_lookup_module_and_qualname",
        "_make_empty_cell",
        "_should_pickle_by_reference",
        "_whichmodule",
    }
)


class _MissingHelper:
    __slots__ = ("_name",)

    def __init__(self, name):
        self._name = name

    def __call__(self, *args, **kwargs):
        raise ImportError(
            f"cloudpickle.cloudpickle.{self._name} is a private helper of cloudpickle that "
            "satchel does not provide"
        )

    def __repr__(self):
        return f"<missing cloudpickle private helper {self._name}>"


def __getattr__(name):
    if name in _IMPORTED_BY_THE_TEST_MODULE:
        return _MissingHelper(name)
    raise AttributeError(f"satchel's cloudpickle shim has no attribute {name!r}")
