"""Type stubs for satchel's Rust extension (hand-written; keep in sync with src/lib.rs)."""

import pickle
from collections.abc import Callable, Iterable
from typing import IO, Any

__version__: str
BOOTSTRAP_SOURCE: str
BOOTSTRAP_MODULE_NAME: str
LEAN_MODULE_NAME: str
FORMAT_VERSION: str
FINGERPRINT: bytes
FINGERPRINT_TEXT: str
LABEL: str
LIVE_GENERATORS: str
OVERRIDE_BEFORE_MEMO: bool

class PicklingError(pickle.PicklingError): ...
class UnpicklingError(pickle.UnpicklingError): ...
class IncompatibleFormat(UnpicklingError): ...
class IncompatibleInterpreter(UnpicklingError): ...
class SignatureError(UnpicklingError): ...
class Reducer: ...

_Key = bytes | bytearray | memoryview
#: allow=: "data", entries "module.name" / "module.*" (submodules too) / "data", or a
#: callable allow(module, name) -> bool.
_Allow = str | Iterable[str] | Callable[[str, str], object]

class AllowList:
    def __init__(self, spec: _Allow) -> None: ...
    def __call__(self, module: str, name: str) -> None: ...

class ReducerOverride:
    def __init__(self) -> None: ...
    def __get__(self, instance: Any, owner: Any = None) -> Any: ...
    def __call__(self, pickler: Any, obj: Any) -> Any: ...

class Reduced:
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]: ...

def dumps(
    obj: Any,
    protocol: int | None = None,
    buffer_callback: Callable[[pickle.PickleBuffer], Any] | None = None,
    *,
    mode: str = "nonportable",
    standalone: bool | None = None,
    compress: bool | None = None,
    key: _Key | None = None,
) -> bytes: ...
def dump(
    obj: Any,
    file: IO[bytes],
    protocol: int | None = None,
    buffer_callback: Callable[[pickle.PickleBuffer], Any] | None = None,
    *,
    mode: str = "nonportable",
    standalone: bool | None = None,
    compress: bool | None = None,
    key: _Key | None = None,
) -> None: ...
def loads(
    data: bytes | bytearray | memoryview,
    /,
    *,
    key: _Key | list[_Key] | None = None,
    allow: _Allow | None = None,
    **kwargs: Any,
) -> Any: ...
def inspect(data: bytes | bytearray | memoryview) -> dict[str, Any]: ...
def lean_module() -> Any: ...
def _loads_with(
    data: bytes | memoryview,
    unpickle: Callable[[Any, dict[str, Any]], Any],
    /,
    *,
    key: _Key | list[_Key] | None = None,
    **kwargs: Any,
) -> Any: ...
def _pickle_extent(data: bytes | bytearray | memoryview, at: int) -> tuple[int, int, int]: ...
def _take_generators(pickler: Any) -> bool: ...
def register_pickle_by_value(module: Any) -> None: ...
def unregister_pickle_by_value(module: Any) -> None: ...
def list_registry_pickle_by_value() -> set[str]: ...
def bootstrap_module() -> Any: ...
def _explain(obj: Any, err: BaseException, pickler: Any = None) -> BaseException: ...
def _register_pickler(cls: type) -> None: ...
