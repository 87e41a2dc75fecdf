"""``satchel.load`` and ``satchel.Unpickler``: the file twins of ``satchel.loads``.

They read exactly one stream from the file (its header, its body and, when one follows, its
signature), leaving the file at the next one as ``pickle.load`` does, and load it as
``satchel.loads`` does: the signature is verified (``key=``) and the header checked before
anything in the stream runs, and ``allow=`` limits the globals it may name.
"""

import _compat_pickle
import _pickle
import io

from satchel import _satchel

# The signature trailer (docs/FORMAT.md, "Signature"): magic, then a 32-byte HMAC.
_MAGIC = b"SATCHEL-SIG1"
_TRAILER = len(_MAGIC) + 32


def read_stream(file, signed=False):
    """The bytes of the next stream in ``file``: one pickle, and the signature after it if
    there is one (``signed``: the caller expects one). Reads no further than that: a whole
    frame or argument at a time, a line for the text opcodes of protocols 0-1."""
    data = bytearray()
    at = 0
    while True:
        kind, at, need = _satchel._pickle_extent(data, at)
        if kind == 0:
            break
        more = file.readline() if kind == 2 else file.read(need - len(data))
        if not more:
            if not data:
                raise EOFError("Ran out of input")
            raise _satchel.UnpicklingError(
                f"the stream ends after {len(data)} bytes, before its STOP opcode: truncated"
            )
        data += more
    data += _trailer(file, signed)
    return data


def _trailer(file, signed):
    """The signature trailer right after a stream, if there is one, without reading past the
    stream when there is not (seek back, or peek; a file that can do neither is read only
    when a signature is expected)."""
    peek = getattr(file, "peek", None)
    if peek is not None:
        try:
            ahead = peek(_TRAILER)
        except (OSError, ValueError):
            ahead = None
        if ahead is not None:
            return file.read(_TRAILER) if ahead[: len(_MAGIC)] == _MAGIC else b""
    seekable = getattr(file, "seekable", None)
    if seekable is not None and seekable():
        start = file.tell()
        ahead = file.read(_TRAILER)
        if ahead[: len(_MAGIC)] == _MAGIC:
            return ahead
        file.seek(start)
        return b""
    return file.read(_TRAILER) if signed else b""


def load(file, *, key=None, allow=None, **kwargs):
    """Read one stream from ``file`` and load it: ``satchel.loads(stream, key=, allow=, ...)``.

    ``file`` needs ``read`` and ``readline``, as for ``pickle.load``; it is left just after the
    stream (and its signature), so a file holding several streams loads them one by one.
    """
    data = read_stream(file, signed=key is not None)
    # Read-only, so that loads reads it in place and parses its header (a writable buffer
    # would go to pickle.loads as it is).
    return _satchel.loads(memoryview(data).toreadonly(), key=key, allow=allow, **kwargs)


class Unpickler(_pickle.Unpickler):
    """``pickle.Unpickler`` for satchel streams, with ``loads``' ``key=`` and ``allow=``.

    Each ``load()`` reads one stream from the file (see :func:`load`), verifies its signature
    and checks its header before anything runs, then unpickles its body with this unpickler's
    hooks: override ``find_class`` (it runs after the ``allow=`` check) or define
    ``persistent_load``, as with ``pickle.Unpickler``. satchel's own constructors are always
    allowed.
    """

    def __init__(
        self,
        file,
        *,
        key=None,
        allow=None,
        fix_imports=True,
        encoding="ASCII",
        errors="strict",
        buffers=None,
    ):
        super().__init__(
            file, fix_imports=fix_imports, encoding=encoding, errors=errors, buffers=buffers
        )
        self._satchel_file = file
        self._satchel_key = key
        self._satchel_allowed = None if allow is None else _satchel.AllowList(allow)
        self._satchel_kwargs = {"fix_imports": fix_imports, "encoding": encoding}
        self._satchel_kwargs["errors"] = errors
        if buffers is not None:
            self._satchel_kwargs["buffers"] = buffers

    def find_class(self, module, name):
        if self._satchel_allowed is not None:
            # The names checked are the Python 3 ones (as for loads(allow=)).
            checked = _compat_pickle.NAME_MAPPING.get((module, name))
            if checked is None:
                checked = (_compat_pickle.IMPORT_MAPPING.get(module, module), name)
            self._satchel_allowed(*checked)
        return super().find_class(module, name)

    def load(self):
        data = read_stream(self._satchel_file, signed=self._satchel_key is not None)
        return _satchel._loads_with(
            memoryview(data).toreadonly(),
            self._unpickle_body,
            key=self._satchel_key,
            **self._satchel_kwargs,
        )

    def _unpickle_body(self, body, kwargs):
        return _Body(io.BytesIO(body), self, **kwargs).load()


class _Body(_pickle.Unpickler):
    """Unpickles a checked stream's body with the hooks of the ``Unpickler`` that read it."""

    def __init__(self, file, outer, **kwargs):
        self._outer = outer
        # Before __init__, which looks the hook up once.
        persistent_load = getattr(outer, "persistent_load", None)
        if persistent_load is not None:
            self.persistent_load = persistent_load
        super().__init__(file, **kwargs)

    def find_class(self, module, name):
        return self._outer.find_class(module, name)
