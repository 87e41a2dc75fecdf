"""``satchel.loads(data, allow=...)``: the body is unpickled by a C unpickler whose
``find_class`` asks satchel's ``AllowList`` first (src/allow.rs)."""

import _compat_pickle
import io
import pickle

from satchel import _satchel

_pypy = None
if hasattr(_satchel, "_cpyext_ready"):
    from satchel import _pypy


class _Allowing:
    def __init__(self, file, allowed, **kwargs):
        super().__init__(file, **kwargs)
        self._allowed = allowed

    def find_class(self, module, name):
        # Protocol 0-2 streams name Python 2 modules (__builtin__.set); the unpickler maps them
        # to their Python 3 names, and the check is about those.
        checked = _compat_pickle.NAME_MAPPING.get((module, name))
        if checked is None:
            checked = (_compat_pickle.IMPORT_MAPPING.get(module, module), name)
        self._allowed(*checked)
        return super().find_class(module, name)


class _Unpickler(_Allowing, pickle.Unpickler):
    pass


# PyPy: the pure-Python unpickler, which a damaged stream cannot crash (satchel._pypy).
_SafeUnpickler = _Unpickler
if _pypy is not None:

    class _SafeUnpickler(_Allowing, _pypy.SafeUnpickler):
        pass


def load(body, allowed, kwargs):
    unpickler = _Unpickler
    if _pypy is not None:
        body, unpickler = _pypy.pick(body, _Unpickler, _SafeUnpickler)
    obj = unpickler(io.BytesIO(body), allowed, **kwargs).load()
    # PyPy: what the load returns crosses into C (satchel._pypy).
    return obj if _pypy is None else _pypy.loaded(obj)
