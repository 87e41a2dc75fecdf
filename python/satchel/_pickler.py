"""satchel.Pickler: a real subclass of the C pickler whose reducer_override is Rust."""

import _pickle
import pickle

from satchel import _satchel


class Pickler(_pickle.Pickler):
    """A ``_pickle.Pickler`` that pickles functions, closures and dynamic classes by value.

    Subclasses may override ``reducer_override`` and call ``super().reducer_override(obj)``,
    define ``persistent_id``, or set a ``dispatch_table`` (per instance or per class): the C
    pickler consults ``reducer_override`` first, then the dispatch table.
    """

    # A Rust descriptor: bound to a pickler it yields that pickler's Rust reducer, which the C
    # pickler then calls for every object it does not write itself. No Python frame per object.
    reducer_override = _satchel.ReducerOverride()

    def __init__(self, file, protocol=None, buffer_callback=None):
        if protocol is None:
            protocol = pickle.HIGHEST_PROTOCOL
        super().__init__(file, protocol, buffer_callback=buffer_callback)

    def dump(self, obj):
        try:
            return super().dump(obj)
        except Exception as exc:
            raise _satchel._explain(obj, exc) from exc


#: cloudpickle's name for the same class.
CloudPickler = Pickler
