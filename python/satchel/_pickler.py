"""satchel.Pickler: a real subclass of the C pickler whose reducer_override is Rust."""

import _pickle
import pickle
from collections.abc import Callable
from typing import Any, Literal, Protocol

from satchel import _satchel


class _WritableFile(Protocol):
    def write(self, data: bytes, /) -> object: ...


def _new_ignores_keywords():
    try:
        _pickle.Pickler.__new__(_pickle.Pickler, None, _satchel_probe=True)
    except TypeError:
        return False
    return True


_NEW_IGNORES_KEYWORDS = _new_ignores_keywords()
_CPYEXT_READY = getattr(_satchel, "_cpyext_ready", None)
if _CPYEXT_READY is not None:
    # PyPy: what crosses into C must not take a class's getset descriptor there before the
    # class (satchel._pypy).
    from satchel import _pypy


class Pickler(_pickle.Pickler):
    """A ``_pickle.Pickler`` that pickles functions, closures and dynamic classes by value.

    Each ``dump`` writes a satchel header (format check, interpreter fingerprint, and with
    ``standalone`` the bootstrap itself) before the body. ``mode``, ``standalone`` and
    ``compress`` mean what they mean for ``satchel.dumps``; with ``compress=True`` each body is
    buffered and written compressed.

    Subclasses may override ``reducer_override`` and call ``super().reducer_override(obj)``,
    define ``persistent_id``, or set a ``dispatch_table`` (per instance or per class): the C
    pickler consults ``reducer_override`` first, then the dispatch table.
    """

    # A Rust descriptor: bound to a pickler it yields that pickler's Rust reducer, which the C
    # pickler then calls for every object it does not write itself. No Python frame per object.
    reducer_override = _satchel.ReducerOverride()

    if _CPYEXT_READY is not None:
        # PyPy: the Rust reducer behind satchel._pypy's readying (a Python frame per object).
        reducer_override = _pypy.reducer_override(reducer_override)

    def __init__(
        self,
        file: _WritableFile,
        protocol: int | None = None,
        buffer_callback: Callable[[pickle.PickleBuffer], Any] | None = None,
        *,
        mode: Literal["nonportable", "portable"] = "nonportable",
        standalone: bool | None = None,
        compress: bool | None = None,
        _body_only: bool = False,
    ) -> None:
        options = _satchel.StreamOptions(
            protocol, buffer_callback, mode, standalone, compress, _body_only
        )
        self._satchel_options = options
        self._satchel_file = file
        # With compression the C pickler writes into a buffer, flushed compressed by dump(),
        # and (protocol 5) hands large buffers to a sink that compresses them apart.
        self._satchel_buffer = _satchel.Writer() if options.compressed else None
        target = file if self._satchel_buffer is None else self._satchel_buffer
        self._satchel_sink = options.buffer_sink() if options.compressed else None
        if self._satchel_sink is not None:
            buffer_callback = self._satchel_sink
        super().__init__(target, options.protocol, buffer_callback=buffer_callback)
        if options.portable:
            _satchel._set_portable(self)

    if not _NEW_IGNORES_KEYWORDS:
        # PyPy's _pickle.Pickler.__new__ parses the constructor's arguments itself (CPython's
        # is PyType_GenericNew, which ignores them) and rejects satchel's keywords; __init__
        # passes on what the base class takes. Defined only there: it costs a Python frame.
        def __new__(cls, *args, **kwargs):
            return super().__new__(cls)

    def dump(self, obj: Any) -> None:
        # A subclass whose __init__ skipped ours: the C pickler reports the missing __init__.
        options = getattr(self, "_satchel_options", None)
        if options is None:
            return super().dump(obj)
        if getattr(self, "_satchel_dumping", False):
            # dump() again from inside dump() (a __reduce__ calling it on this Pickler, or
            # another thread): CPython 3.11-3.13's C pickler segfaults; 3.14+ say this.
            raise RuntimeError("Pickler object is already used")
        self._satchel_dumping = True
        try:
            return self._satchel_dump(options, obj)
        finally:
            self._satchel_dumping = False

    def _satchel_dump(self, options: Any, obj: Any) -> None:
        try:
            if self._satchel_buffer is not None:
                # Each compressed body is unpickled on its own (fresh memo), and nothing of a
                # failed dump (partial body, buffers, memo) may reach the next one.
                try:
                    super().dump(obj)
                except BaseException:
                    if self._satchel_sink is not None:
                        self._satchel_sink.clear()
                    raise
                finally:
                    body = self._satchel_buffer.getvalue()
                    generators = _satchel._take_generators(self)
                    self.clear_memo()
                options.write_compressed(self._satchel_file, body, self._satchel_sink, generators)
                return None
            header = options.header()
            if header is not None:
                self._satchel_file.write(header)
            return super().dump(obj)
        except Exception as exc:
            # The memo may hold part of what failed: the reducer's per-dump record of what
            # it wrote must not claim more than the memo has (src/reduce/memo.rs).
            _satchel._reset_reducer(self)
            # A subclass may pickle what satchel.Pickler cannot (persistent_id, its own
            # dispatch_table), so only the classic "cannot pickle" errors get a path there.
            if type(self) is not Pickler and not isinstance(exc, (TypeError, pickle.PicklingError)):
                raise
            if _CPYEXT_READY is not None:
                _pypy.ready(obj, lists=True)  # the explanation walks obj in C
            explained = _satchel._explain(obj, exc, self)
            if explained is exc:
                raise
            raise explained from exc

    if _satchel.OVERRIDE_BEFORE_MEMO:
        # PyPy: the reducer keeps a record of what the memo holds (src/reduce/memo.rs), which
        # a memo set from outside would contradict.
        @property
        def memo(self):
            return _pickle.Pickler.memo.__get__(self)

        @memo.setter
        def memo(self, value):
            _pickle.Pickler.memo.__set__(self, value)
            _satchel._reset_reducer(self)

        @property
        def fast(self):
            return _pickle.Pickler.fast.__get__(self)

        @fast.setter
        def fast(self, value):
            # Without a memo, a reduction whose state refers back to its object cannot be
            # written by a pickler that asks reducer_override before its memo.
            if value:
                raise ValueError(
                    "satchel.Pickler has no fast mode on this interpreter: its pickler asks "
                    "reducer_override about memoized objects, which needs the memo"
                )
            _pickle.Pickler.fast.__set__(self, value)

    def clear_memo(self) -> None:
        """Forget what was pickled, including the per-dump globals satchel shares between
        functions (they were written to the stream along with the memo)."""
        super().clear_memo()
        _satchel._reset_reducer(self)


#: cloudpickle's name for the same class.
CloudPickler = Pickler
