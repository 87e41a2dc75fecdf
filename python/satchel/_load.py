"""``satchel.load`` and ``satchel.Unpickler``: the file twins of ``satchel.loads``.

They read exactly one stream from the file (its header, its body and, when one follows, its
signature), leaving the file at the next one as ``pickle.load`` does, and load it as
``satchel.loads`` does: the signature is verified (``key=``) and the header checked before
anything in the stream runs, and ``allow=`` limits the globals it may name.
"""

import _compat_pickle
import _pickle
import io
import pickle
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from satchel import _satchel

_pypy = None
if hasattr(_satchel, "_cpyext_ready"):
    from satchel import _pypy

_Key = bytes | bytearray | memoryview
#: allow=: "data", entries "module.name" / "module.*", or a callable allow(module, name).
_Allow = str | Iterable[str] | Callable[[str, str], object]


class _ReadableFile(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...
    def readline(self) -> bytes: ...


# The signature trailer (docs/FORMAT.md, "Signature"): magic, then a 32-byte HMAC.
_MAGIC = b"SATCHEL-SIG1"
_TRAILER = len(_MAGIC) + 32


def read_stream(file, signed=False):
    """The bytes of the next stream in ``file``: one pickle, and the signature after it if
    there is one (``signed``: the caller expects one). The file is left just after them.

    A seekable file is read in growing chunks and put back at the stream's end; any other (a
    pipe, a socket) is read no further than the stream: a whole frame or argument at a time, a
    line for the text opcodes of protocols 0-1."""
    if _seekable(file):
        return _read_seekable(file)
    data = bytearray()
    at = 0
    while True:
        kind, at, need = _satchel._pickle_extent(data, at)
        if kind == 0:
            break
        if kind == 2:
            more = file.readline()
            data += more
        else:
            more = _read_into(file, data, need - len(data))
        if not more:
            _ran_out(data)
    data += _trailer(file, signed)
    return data


def _read_seekable(file):
    start = file.tell()
    data = bytearray()
    at = 0
    chunk = 1 << 16
    while True:
        kind, at, need = _satchel._pickle_extent(data, at)
        if kind == 0:
            break
        if not _read_into(file, data, max(chunk, need - len(data))):
            _ran_out(data)
        chunk = min(chunk * 2, 1 << 26)
    end = at
    if len(data) < end + _TRAILER:
        data += file.read(end + _TRAILER - len(data))
    if data[end : end + len(_MAGIC)] == _MAGIC and len(data) >= end + _TRAILER:
        end += _TRAILER
    del data[end:]
    file.seek(start + end)
    return data


def _read_into(file, data, n):
    """Append up to ``n`` bytes of ``file`` to ``data``; how many came. A large read goes
    straight into ``data`` (one copy, as pickle.load makes) when the file can readinto."""
    readinto = getattr(file, "readinto", None)
    if n < 1 << 20 or readinto is None:
        more = file.read(n)
        data += more
        return len(more)
    old = len(data)
    data += bytes(n)  # zeroed lazily by the allocator: untouched pages cost nothing
    got = 0
    with memoryview(data) as whole:
        while got < n:
            with whole[old + got :] as rest:
                step = readinto(rest)
            if not step:
                break
            got += step
    del data[old + got :]
    return got


def _ran_out(data):
    if not data:
        raise EOFError("Ran out of input")
    raise _satchel.UnpicklingError(
        f"the stream ends after {len(data)} bytes, before its STOP opcode: truncated"
    )


def _seekable(file):
    seekable = getattr(file, "seekable", None)
    return seekable is not None and seekable()


def _ahead(file, n):
    """The next ``n`` bytes of ``file`` without consuming them, or None if it can neither
    peek nor seek."""
    peek = getattr(file, "peek", None)
    if peek is not None:
        try:
            return peek(n)[:n]
        except (OSError, ValueError):
            pass
    if _seekable(file):
        start = file.tell()
        ahead = file.read(n)
        file.seek(start)
        return ahead
    return None


def _trailer(file, signed):
    """The signature trailer right after a stream read from a file that cannot seek, if
    there is one, without reading past the stream when there is not (peek; a file that
    cannot peek is read for one only when a signature is expected)."""
    peek = getattr(file, "peek", None)
    if peek is not None:
        try:
            ahead = peek(_TRAILER)
        except (OSError, ValueError):
            ahead = None
        if ahead is not None:
            return file.read(_TRAILER) if ahead[: len(_MAGIC)] == _MAGIC else b""
    return file.read(_TRAILER) if signed else b""


def load(
    file: _ReadableFile,
    *,
    key: _Key | list[_Key] | None = None,
    allow: _Allow | None = None,
    **kwargs: Any,
) -> Any:
    """Read one stream from ``file`` and load it: ``satchel.loads(stream, key=, allow=, ...)``.

    ``file`` needs ``read`` and ``readline``, as for ``pickle.load``; it is left just after the
    stream (and its signature), so a file holding several streams loads them one by one.
    Without ``key=`` and ``allow=``, the stream is unpickled straight from the file, as
    ``pickle.load`` does (its header's opcodes run the same checks).
    """
    # PyPy: through loads, which does not hand a stream to PyPy's own unpickler unless it is
    # sure a damaged one cannot crash it (satchel._pypy).
    if key is None and allow is None and _pypy is None and not _foreign_major(file):
        obj = pickle.load(file, **kwargs)
        ahead = _ahead(file, _TRAILER)
        if ahead is not None and ahead[: len(_MAGIC)] == _MAGIC and len(ahead) == _TRAILER:
            file.read(_TRAILER)  # a signature nobody asked to verify
        return obj
    data = read_stream(file, signed=key is not None)
    # Read-only, so that loads reads it in place and parses its header (a writable buffer
    # would go to pickle.loads as it is).
    return _satchel.loads(_readonly(data), key=key, allow=allow, **kwargs)


def _foreign_major(file):
    """Whether the next stream names another format major's bootstrap (``_satchel_boot_2``):
    loads parses its header to say IncompatibleFormat, where pickle.load would fail to import
    the module."""
    ahead = _ahead(file, 32)
    if not ahead:
        return False
    opening = ahead[2:] if ahead[:1] == b"\x80" else ahead
    ours = b"c" + _satchel.BOOTSTRAP_MODULE_NAME.encode() + b"\n"
    return opening.startswith(b"c_satchel_boot_") and not opening.startswith(ours)


def _readonly(data):
    return data if isinstance(data, memoryview) else memoryview(data).toreadonly()


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
        file: _ReadableFile,
        *,
        key: _Key | list[_Key] | None = None,
        allow: _Allow | None = None,
        fix_imports: bool = True,
        encoding: str = "ASCII",
        errors: str = "strict",
        buffers: Iterable[Any] | None = None,
    ) -> None:
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

    def load(self) -> Any:
        data = read_stream(self._satchel_file, signed=self._satchel_key is not None)
        return _satchel._loads_with(
            _readonly(data),
            self._unpickle_body,
            key=self._satchel_key,
            **self._satchel_kwargs,
        )

    def _unpickle_body(self, body, kwargs):
        body_class = _Body
        # PyPy: PyPy's own unpickler for a body whose signature was verified (key=: before
        # this runs) or that a damaged copy of could not crash it (satchel._pypy).
        if _pypy is not None and self._satchel_key is None:
            body, body_class = _pypy.pick(body, _Body, _UnverifiedBody)
        obj = body_class(io.BytesIO(body), self, **kwargs).load()
        # PyPy: what the load returns crosses into C (satchel._pypy).
        return obj if _pypy is None else _pypy.loaded(obj)


class _BodyHooks:
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


class _Body(_BodyHooks, _pickle.Unpickler):
    pass


# PyPy: the pure-Python unpickler, which a damaged stream cannot crash (satchel._pypy).
_UnverifiedBody = _Body
if _pypy is not None:

    class _UnverifiedBody(_BodyHooks, _pypy.SafeUnpickler):
        pass
