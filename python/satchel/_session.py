"""Session snapshots: ``satchel.dump_session`` and ``satchel.load_session``.

``dump_session(path)`` saves the globals of ``__main__`` (or of a given module, or of the
IPython user namespace when called inside IPython) to one file; ``load_session(path)`` puts
them back. Both return a :class:`SessionReport`.

What is saved
-------------
Every global except the namespace's own machinery:

- dunder names (``__name__``, ``__builtins__``, ``__doc__``, ``__spec__``, ...);
- inside IPython (``module=None``), IPython's names: those in ``shell.user_ns_hidden`` still
  bound to IPython's value (``In``, ``Out``, ``exit``, ``quit``, ``get_ipython``, ``open``...)
  and the history and output-cache names ``_``, ``__``, ``___``, ``_i``, ``_ii``, ``_iii``,
  ``_iN``, ``_N``, ``_ih``, ``_oh``, ``_dh``. Other names starting with ``_`` are saved.

These are listed in ``report.excluded``. Each other global is tried on its own first (pickled
to a counting sink, large buffers out of band so nothing big is copied); one that fails is
left out and listed in ``report.skipped`` with the reason, unless ``strict=True``, which
raises ``satchel.PicklingError`` naming the first one. The rest go into **one** pickle, so
objects shared between globals stay shared after loading.

Functions (and methods) whose globals are the session namespace are pickled by value
*without* their globals: on loading, their ``__globals__`` is the namespace they are restored
into, exactly as in the original session. They see the restored globals and each other, and a
global that was skipped (a lock) is simply absent (NameError when used). Everything else is
satchel's usual pickling: modules and objects importable by name by reference, classes
defined in the session by value.

File format (``satchel-session/1``)
-----------------------------------
The file is one satchel stream (``satchel.inspect`` and ``python -m satchel inspect`` read its
header), written by ``satchel.Pickler`` with the given ``mode``, ``compress`` (zstd, the
default) and ``standalone``. Its body is a dict::

    {"format": "satchel-session/1", "module": "__main__", "producer": "CPython 3.11.7",
     "created": 1700000000.0, "imports": [],
     "skipped": [("lock", "cannot pickle '_thread.lock' object"), ...],
     "saved": {"name": value, ...}, "complete": True}

``imports`` is empty in snapshots written now (each function carries the submodules it reaches
through a module global, ``xml.etree.ElementTree.parse`` with only ``xml`` bound, as
``satchel.dumps`` does); ``load_session`` still imports what older snapshots list there. A
session function is encoded exactly as ``satchel.dumps`` encodes a function (``docs/FORMAT.md``:
one ``function`` call, or ``make_function`` then ``function_setstate``), except that its globals
are not sent: in place of its rebuilt globals dict the stream holds ``NS``, ``vars(dict.get(
sys.modules, "_satchel_session_namespace", importlib.import_module("__main__")))``, and its
``__module__`` always travels. ``load_session`` binds that key to the target namespace while it
loads; a plain ``pickle.loads`` of the file binds functions to ``__main__``. A standalone
snapshot carries the bootstrap those constructors live in, so it loads on an interpreter
without satchel: ``vars(__main__).update(pickle.loads(data)["saved"])``.

The file is written atomically: to a temporary file ``.NAME.XXXXXXXX.tmp`` in the destination
directory (locked with ``flock`` while it is written), flushed and fsynced, then renamed over
``path``. A failed or interrupted dump removes the temporary file and leaves any previous
snapshot untouched; one that a killed dump left (SIGKILL) is removed by the next dump to the
same path, which takes only unlocked files of that pattern that the user owns. A new snapshot's
mode follows the umask; an existing one keeps its mode. There is no default path.

Loading a snapshot runs code, like any pickle: load only files you trust.
"""

import contextlib
import importlib
import mmap
import os
import platform
import re
import stat
import sys
import threading
import time
import types
from collections.abc import Iterable

import satchel
from satchel import _satchel
from satchel._pickler import Pickler

_pypy = None
if hasattr(_satchel, "_cpyext_ready"):
    from satchel import _pypy

FORMAT = "satchel-session/1"
#: The ``sys.modules`` key through which a loading stream finds its target namespace.
NAMESPACE_KEY = "_satchel_session_namespace"

#: Seconds between two updates of the progress line (the first and last always show).
PROGRESS_INTERVAL = 0.05
#: With ``progress=None``, seconds a save runs before its progress line appears.
PROGRESS_DELAY = 0.5

_DUNDER = re.compile(r"__.*__\Z", re.DOTALL)
_IPYTHON_NAMES = re.compile(r"(_+|_i+|_i?\d+|_ih|_oh|_dh|In|Out|exit|quit|get_ipython)\Z")


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------


class Skipped(tuple[str, str]):
    """A global left out of a snapshot: ``(name, reason)``, also as attributes."""

    __slots__ = ()

    def __new__(cls, name: str, reason: str) -> "Skipped":
        return super().__new__(cls, (name, reason))

    @property
    def name(self) -> str:
        return self[0]

    @property
    def reason(self) -> str:
        return self[1]

    def __repr__(self) -> str:
        return f"Skipped(name={self[0]!r}, reason={self[1]!r})"


def format_size(n):
    """``1536`` -> ``'1.5 KB'`` (powers of 1000: what ``ls -lh --si`` and file managers say)."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


class SessionReport:
    """What ``dump_session`` saved, or what ``load_session`` restored.

    - ``action``: ``"saved"`` or ``"loaded"``; ``path``: the file; ``size``: its size in bytes;
    - ``module``: the name of the namespace the snapshot was taken from;
    - ``saved``: the names saved (restored, for ``load_session``), in namespace order;
    - ``skipped``: a list of :class:`Skipped` ``(name, reason)``, the globals left out;
    - ``excluded``: names that are not part of a session (dunders, IPython's own names);
    - ``sizes``: ``{name: approximate pickled bytes}`` (``dump_session`` only; an object
      shared by several globals counts for the first);
    - ``warnings``: problems that did not stop a load (a submodule that failed to import).
    """

    def __init__(
        self,
        action: str,
        path: str,
        size: int,
        module: str | None,
        saved: Iterable[str],
        skipped: Iterable[tuple[str, str]],
        excluded: Iterable[str] = (),
        sizes: dict[str, int] | None = None,
    ) -> None:
        self.action = action
        self.path = path
        self.size = size
        self.module = module
        self.saved: list[str] = list(saved)
        self.skipped: list[Skipped] = [Skipped(*s) for s in skipped]
        self.excluded: list[str] = list(excluded)
        self.sizes: dict[str, int] = dict(sizes or {})
        self.warnings: list[str] = []

    def __str__(self) -> str:
        where = "to" if self.action == "saved" else "from"
        count = len(self.saved)
        lines = [
            f"satchel: {self.action} {count} object{'s' * (count != 1)} "
            f"({format_size(self.size)}) {where} {self.path}"
        ]
        if self.skipped:
            verb = "skipped" if self.action == "saved" else "skipped when saved"
            lines.append(f"{verb} {len(self.skipped)}:")
            lines.extend(f"  {s.name}: {s.reason}" for s in self.skipped)
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)

    def __repr__(self):
        return (
            f"<SessionReport {self.action} {len(self.saved)} skipped {len(self.skipped)} "
            f"{format_size(self.size)} {self.path!r}>"
        )


# ---------------------------------------------------------------------------------------------
# Stdlib-only reductions
# ---------------------------------------------------------------------------------------------


class _Call:
    """Pickles as ``func(*args)``: a reduction made of stdlib callables, built at dump time.
    Callable only so that the pickler accepts it as the callable of another reduction."""

    __slots__ = ("func", "args")

    def __init__(self, func, *args):
        self.func = func
        self.args = args

    def __reduce__(self):
        return self.func, self.args

    def __call__(self, *args, **kwargs):
        raise TypeError("a satchel pickling placeholder is not callable")


_import = importlib.import_module
#: The namespace a loading snapshot restores into (see the module docstring).
_NAMESPACE = _Call(
    vars,
    _Call(
        dict.get,
        _Call(getattr, _Call(_import, "sys"), "modules"),
        NAMESPACE_KEY,
        _Call(_import, "__main__"),
    ),
)
_FUNCTION = _Call(getattr, _Call(_import, "types"), "FunctionType")
#: The last entry of a snapshot, ``"complete": True``; the progress line shows the end there.
_COMPLETE = _Call(bool, 1)


class _SessionPickler(Pickler):
    """``satchel.Pickler`` that pickles functions of the session namespace ``ns`` without
    their globals, bound on loading to the namespace being restored (``_NAMESPACE``). The Rust
    reducer encodes them (``satchel.dumps``'s function encoding, told by ``_set_session``)."""

    def __init__(self, file, ns, *, mode, compress=False, standalone=None, buffer_callback=None):
        super().__init__(
            file,
            5,
            buffer_callback,
            mode=mode,
            standalone=standalone,
            compress=compress,
        )
        if _pypy is not None:
            _pypy.ready_values(ns)  # ns crosses into C, its getset descriptor values with it
        _satchel._set_session(self, ns, _NAMESPACE)
        self._satchel_reduce = super().reducer_override
        #: ``{id(value): message}`` for the top-level values, and the callback they trigger.
        self.ticks = None
        self.on_tick = None

    def reducer_override(self, obj):
        if self.ticks is not None:
            message = self.ticks.get(id(obj))
            if message is not None:
                self.on_tick(message, force=obj is _COMPLETE)
        if type(obj) is _Call:
            return obj.func, obj.args
        return self._satchel_reduce(obj)


class _CountingSink:
    """A file that keeps only the number of bytes written to it."""

    __slots__ = ("count",)

    def __init__(self):
        self.count = 0

    def write(self, data):
        n = memoryview(data).nbytes
        self.count += n
        return n

    def buffer(self, buf):
        # buffer_callback: count the buffer and keep it out of band (nothing is copied).
        self.count += memoryview(buf).nbytes


def _trial_pickler(ns, mode):
    sink = _CountingSink()
    pickler = _SessionPickler(sink, ns, mode=mode, buffer_callback=sink.buffer)
    return pickler, sink


def _try(pickler, value):
    """Pickle ``value`` with a trial pickler; the exception, or None when it pickles."""
    try:
        pickler.dump(value)
    except Exception as exc:  # noqa: BLE001 - any failure means "left out", with its reason
        pickler.clear_memo()  # the memo may hold objects whose pickling did not complete
        return exc
    return None


# ---------------------------------------------------------------------------------------------
# Namespaces
# ---------------------------------------------------------------------------------------------


def _ipython_shell():
    """The running IPython shell, if any (IPython is never imported here)."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    if get is None:
        return None
    try:
        shell = get()
    except Exception:  # noqa: BLE001 - a half-torn-down IPython is no shell
        return None
    if shell is None or not isinstance(getattr(shell, "user_ns", None), dict):
        return None
    return shell


def _namespace(module):
    """``(namespace dict, its name, the IPython shell or None)``."""
    if module is not None:
        ns = vars(module)
        return ns, ns.get("__name__", getattr(module, "__name__", None)), None
    shell = _ipython_shell()
    if shell is not None:
        return shell.user_ns, shell.user_ns.get("__name__", "__main__"), shell
    main = sys.modules["__main__"]
    return vars(main), "__main__", None


def _split(ns, shell):
    """``([(name, value)], excluded names)``: the session's globals and the rest."""
    hidden = getattr(shell, "user_ns_hidden", None) or {} if shell is not None else {}
    items, excluded = [], []
    for name, value in list(ns.items()):
        if not isinstance(name, str) or _DUNDER.match(name):
            excluded.append(name)
        elif shell is not None and (
            _IPYTHON_NAMES.match(name) or (name in hidden and hidden[name] is value)
        ):
            excluded.append(name)
        else:
            items.append((name, value))
    return items, excluded


class _Holder:
    """An object whose ``vars()`` is a given dict (the target of a load)."""


_bind_lock = threading.RLock()


@contextlib.contextmanager
def _namespace_bound(ns):
    holder = _Holder()
    holder.__dict__ = ns
    with _bind_lock:
        missing = object()
        previous = sys.modules.get(NAMESPACE_KEY, missing)
        sys.modules[NAMESPACE_KEY] = holder
        try:
            yield
        finally:
            if previous is missing:
                sys.modules.pop(NAMESPACE_KEY, None)
            else:
                sys.modules[NAMESPACE_KEY] = previous


# ---------------------------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------------------------


class _Progress:
    """One status line on stderr, rewritten with ``\\r``. ``enabled=None``: only when stderr
    is a terminal, and only once the save has taken ``delay`` seconds (small sessions print
    nothing)."""

    def __init__(self, enabled):
        stream = sys.stderr
        delay = PROGRESS_DELAY
        if enabled is None:
            isatty = getattr(stream, "isatty", None)
            try:
                enabled = bool(isatty and isatty())
            except (OSError, ValueError):
                enabled = False
        else:
            delay = 0.0
        self.enabled = bool(enabled) and stream is not None
        self.stream = stream
        self.start = time.monotonic()
        self.delay = delay
        self.interval = PROGRESS_INTERVAL
        self.last = float("-inf")
        self.width = 0

    def __call__(self, text, force=False):
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.start < self.delay or (not force and now - self.last < self.interval):
            return
        self.last = now
        line = f"satchel: {text}"
        self.stream.write("\r" + line + " " * max(0, self.width - len(line)))
        self.stream.flush()
        self.width = len(line)

    def close(self):
        if self.enabled and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()


# ---------------------------------------------------------------------------------------------
# dump_session
# ---------------------------------------------------------------------------------------------


def _strict_error(name, exc):
    return satchel.PicklingError(f"global {name!r}: {exc}")


def _reason(exc):
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, satchel.PicklingError) else f"{type(exc).__name__}: {text}"


def _classify(items, ns, mode, strict, progress):
    """Try each global: ``(saved {name: value}, skipped, sizes)``."""
    pickler, sink = _trial_pickler(ns, mode)
    saved, skipped, sizes = {}, [], {}
    total = len(items)
    for index, (name, value) in enumerate(items, 1):
        progress(
            f"[{index}/{total}] pickling {name} ({format_size(sink.count)} so far)",
            force=index in (1, total),
        )
        before = sink.count
        exc = _try(pickler, _in_stream(value, ns))
        if exc is None:
            saved[name] = value
            sizes[name] = sink.count - before
        elif strict:
            raise _strict_error(name, exc) from exc
        else:
            skipped.append((name, _reason(exc)))
    return saved, skipped, sizes


def _tick_messages(stream, sizes, compress):
    """The status line for each top-level value of the final dump, by ``id``, shown when the
    pickler first meets it (values the C pickler writes itself, such as a plain list, show
    none), then the compression at the end."""
    total, estimate = len(stream), sum(sizes.get(n, 0) for n in stream)
    messages = {"start": f"writing {total} objects (~{format_size(estimate)})"}
    for index, (name, value) in enumerate(stream.items(), 1):
        size = format_size(sizes.get(name, 0))
        messages[id(value)] = (
            f"[{index}/{total}] writing {name} ({size} of ~{format_size(estimate)})"
        )
    finishing = "compressing" if compress else "writing"
    messages[id(_COMPLETE)] = f"{finishing} ~{format_size(estimate)}"
    return messages


def _in_stream(value, ns):
    """What the stream holds for a global: the namespace itself becomes its placeholder."""
    return _NAMESPACE if value is ns else value


def _culprit(saved, ns, mode):
    """After the whole dump failed although each global pickled in the trial: the global to
    blame, ``(name, exception)``, or None when no set of globals fails (an I/O error)."""
    names = list(saved)
    for name in names:  # on its own, with a fresh memo
        exc = _try(_trial_pickler(ns, mode)[0], _in_stream(saved[name], ns))
        if exc is not None:
            return name, exc

    def fails(k):
        part = {n: _in_stream(saved[n], ns) for n in names[:k]}
        return _try(_trial_pickler(ns, mode)[0], part)

    exc = fails(len(names))
    if exc is None:
        return None
    low, high = 1, len(names)  # the shortest failing prefix: fails(high), not fails(low - 1)
    while low < high:
        mid = (low + high) // 2
        if fails(mid) is None:
            low = mid + 1
        else:
            high = mid
    return names[high - 1], fails(high) or exc


#: Temporary files of a dump to ``path`` are ``.NAME.XXXXXXXX.tmp`` beside it (the random part
#: is what ``tempfile`` draws from).
_TMP_RANDOM = r"[a-z0-9_]{8}"
_TMP_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789_"


def _temporary_file(directory, base):
    """``(fd, name)`` of a new ``.BASE.XXXXXXXX.tmp`` in ``directory``, locked (``flock``) for as
    long as ``fd`` is open, so that another dump's cleanup (``_remove_stale``) knows it is in
    use. Created with mode 0o666: the umask applies, as it does to any new file (``mkstemp``
    made every first snapshot 0o600)."""
    import secrets

    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_BINARY", 0)
    for _ in range(100):
        random = "".join(secrets.choice(_TMP_ALPHABET) for _ in range(8))
        name = os.path.join(directory, f".{base}.{random}.tmp")
        try:
            fd = os.open(name, flags, 0o666)
        except FileExistsError:
            continue
        if _lock(fd) and _still_named(fd, name):
            return fd, name
        # Another dump's cleanup took it between our create and our lock: start again.
        os.close(fd)
    raise FileExistsError(f"no unused temporary file name for {base!r} in {directory!r}")


def _lock(fd):
    """Lock ``fd`` for this process (released when it closes or the process dies); True where
    there is no ``flock`` (nothing to coordinate with)."""
    try:
        import fcntl
    except ImportError:  # Windows
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        return False
    return True


def _still_named(fd, name):
    try:
        return os.path.samestat(os.fstat(fd), os.stat(name))
    except OSError:
        return False


def _remove_stale(directory, base):
    """Remove the temporary files earlier dumps to ``.../base`` left behind: only names of
    this very pattern, owned by this user, that no live process holds locked (a dump killed
    with SIGKILL leaves one; each was as large as the snapshot). Best effort: errors are
    ignored."""
    try:
        import fcntl
    except ImportError:
        return
    pattern = re.compile(re.escape(f".{base}.") + _TMP_RANDOM + r"\.tmp\Z")
    try:
        names = [n for n in os.listdir(directory) if pattern.match(n)]
    except OSError:
        return
    for name in names:
        full = os.path.join(directory, name)
        try:
            fd = os.open(full, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a dump in progress holds it
            if _still_named(fd, full):
                os.unlink(full)
        except OSError:
            pass
        finally:
            os.close(fd)


def _write_atomically(path, write):
    """``write(file)`` into a temporary file beside ``path``, fsync, rename over ``path``
    (over the file a symlink points to, so that the link stays a link). Temporary files that
    earlier, killed, dumps to the same path left behind are removed first."""
    path = os.path.realpath(path)
    directory = os.path.dirname(path)
    base = os.path.basename(path)
    _remove_stale(directory, base)
    fd, tmp = _temporary_file(directory, base)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
            with contextlib.suppress(OSError):
                os.chmod(tmp, os.stat(path).st_mode & 0o7777)  # keep an existing file's mode
            os.replace(tmp, path)  # before the file (and its lock) is closed
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError, AttributeError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def dump_session(
    path: str | os.PathLike[str],
    *,
    module: types.ModuleType | None = None,
    strict: bool = False,
    mode: str = "nonportable",
    compress: bool = True,
    standalone: bool | None = None,
    progress: bool | None = None,
) -> SessionReport:
    """Snapshot a namespace to ``path`` and return a :class:`SessionReport`.

    The namespace is ``module``'s, else IPython's user namespace when called inside IPython,
    else ``__main__``'s. A global that cannot be pickled is left out and listed in
    ``report.skipped`` with the reason; with ``strict=True`` the first one raises
    ``satchel.PicklingError`` naming it, and nothing is written. ``mode``, ``compress`` and
    ``standalone`` mean what they mean for ``satchel.dumps`` (``mode="portable"`` snapshots
    load on other Python versions). The file is replaced atomically: a failed or interrupted
    dump leaves a previous snapshot as it was. ``progress``: a status line on stderr (None: on
    a terminal, once the save takes more than half a second).
    """
    if mode not in ("nonportable", "portable"):
        raise ValueError(f"mode must be 'nonportable' or 'portable', not {mode!r}")
    path = os.fspath(path)
    ns, module_name, shell = _namespace(module)
    items, excluded = _split(ns, shell)
    show = _Progress(progress)
    try:
        saved, skipped, sizes = _classify(items, ns, mode, strict, show)
        payload = {
            "format": FORMAT,
            "module": module_name,
            "producer": f"{platform.python_implementation()} {platform.python_version()}",
            "created": time.time(),
            # Each function names the submodules it reaches itself (its "submodules"); the key
            # stays for the format, and for snapshots written before that.
            "imports": [],
            "skipped": skipped,
            "saved": saved,
        }

        def write(file):
            while True:
                file.seek(0)
                file.truncate()
                stream = {n: _in_stream(v, ns) for n, v in saved.items()}
                payload["saved"] = stream
                payload["complete"] = _COMPLETE
                pickler = _SessionPickler(
                    file, ns, mode=mode, compress=compress, standalone=standalone
                )
                if show.enabled:
                    pickler.ticks = _tick_messages(stream, sizes, compress)
                    pickler.on_tick = show
                    show(pickler.ticks.pop("start"), force=True)
                try:
                    pickler.dump(payload)
                except Exception as exc:
                    found = _culprit(saved, ns, mode)
                    if found is None:
                        raise
                    name, why = found
                    if strict:
                        raise _strict_error(name, why) from exc
                    del saved[name]
                    skipped.append((name, _reason(why)))
                    continue
                finally:
                    del pickler
                show(f"syncing {format_size(file.tell())} to disk", force=True)
                return

        _write_atomically(path, write)
    finally:
        show.close()
    return SessionReport(
        "saved", path, os.path.getsize(path), module_name, saved, skipped, excluded, sizes
    )


# ---------------------------------------------------------------------------------------------
# load_session
# ---------------------------------------------------------------------------------------------


#: Files at least this large are read into anonymous memory that asks for huge pages: a fresh
#: bytes object of 26 MB costs a page fault per 4 KiB, which was a fifth of a snapshot's load.
_HUGE_MIN = 1 << 20
#: Reads of a file that keeps changing under the loader before it gives up.
_READ_ATTEMPTS = 3


def _same_file_state(before, after):
    return (before.st_ino, before.st_size, before.st_mtime_ns, before.st_ctime_ns) == (
        after.st_ino,
        after.st_size,
        after.st_mtime_ns,
        after.st_ctime_ns,
    )


def _read_into(file, size):
    """``size`` bytes of ``file`` in a private buffer (read-only to the loader), or None when
    the file ended sooner (it was shortened meanwhile)."""
    if size < _HUGE_MIN or not hasattr(mmap, "MADV_HUGEPAGE"):
        data = file.read()
        return data if len(data) == size else None
    memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    with contextlib.suppress(OSError):
        memory.madvise(mmap.MADV_HUGEPAGE)
    view = memoryview(memory)
    done = 0
    while done < size:  # one read(2) returns at most 2 GiB
        n = file.readinto(view[done:])
        if not n:
            view.release()
            memory.close()
            return None
        done += n
    view.release()
    # Read-only: satchel.loads parses a read-only buffer in place, as it does bytes.
    return memoryview(memory).toreadonly()


@contextlib.contextmanager
def _snapshot_bytes(path):
    """The file's bytes, read into memory of our own. A shared mapping of the file (what this
    did before) dies of SIGBUS when another program shortens the file while it loads (`cp`,
    `truncate`, `rsync --inplace` onto it); a copy cannot be touched. A file whose size or
    times changed during the read is read again (a rewrite in place), up to three times."""
    for _ in range(_READ_ATTEMPTS):
        with open(path, "rb") as file:
            before = os.fstat(file.fileno())
            data = _read_into(file, before.st_size)
            after = os.fstat(file.fileno())
        if data is not None and _same_file_state(before, after):
            break
        if isinstance(data, memoryview):
            data.release()
    else:
        raise satchel.UnpicklingError(f"{path}: the file kept changing while it was read")
    try:
        yield data
    finally:
        if isinstance(data, memoryview):
            # Loaded objects copy what they keep (out-of-band buffers are decoded into new
            # ones); should anything still export the memory, the collector frees it instead.
            memory = data.obj
            data.release()
            with contextlib.suppress(BufferError):
                memory.close()


def load_session(
    path: str | os.PathLike[str], *, module: types.ModuleType | None = None
) -> SessionReport:
    """Restore a snapshot written by :func:`dump_session` into ``module``'s namespace, else
    IPython's user namespace inside IPython, else ``__main__``'s; return its report.

    The saved globals are assigned over the namespace (other names stay). Functions saved
    with the session get the restored namespace as their globals. A nonportable snapshot made
    by another interpreter build raises ``satchel.IncompatibleInterpreter`` before anything is
    built or assigned.
    """
    path = os.fspath(path)
    ns, _, _ = _namespace(module)
    with _snapshot_bytes(path) as data, _namespace_bound(ns):
        size = len(data)
        try:
            payload = satchel.loads(data)
        except EOFError as exc:  # an empty or cut-short plain pickle
            raise satchel.UnpicklingError(f"{path}: the snapshot ends early ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise satchel.UnpicklingError(f"{path}: not a satchel session snapshot ({found!r})")
    saved = payload["saved"]
    report = SessionReport(
        "loaded", path, size, payload.get("module"), saved, payload.get("skipped", ())
    )
    for name in payload.get("imports", ()):
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - the session loads; the report says why not this
            report.warnings.append(f"could not import {name}: {type(exc).__name__}: {exc}")
    ns.update(saved)
    return report
