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
            # A subclass may pickle what satchel.Pickler cannot (persistent_id, its own
            # dispatch_table), so only the classic "cannot pickle" errors get a path there.
            if type(self) is not Pickler and not isinstance(exc, (TypeError, pickle.PicklingError)):
                raise
            explained = _satchel._explain(obj, exc)
            if explained is exc:
                raise
            raise explained from exc

    def clear_memo(self):
        """Forget what was pickled, including the per-dump globals satchel shares between
        functions (they were written to the stream along with the memo)."""
        super().clear_memo()
        _satchel._reset_reducer(self)


#: cloudpickle's name for the same class.
CloudPickler = Pickler
