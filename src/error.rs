//! satchel's one error type: every message lives here, and the Python exception classes that
//! carry them subclass pickle's own.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use std::ffi::CStr;

use pyo3::types::PyType;

static PICKLING_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Everything satchel reports. `Display` holds every message.
pub enum Error {
    /// Pickling failed somewhere in the object graph; `path` leads from the dumped object to
    /// the part that failed, `reason` is what failed there.
    Unpicklable {
        path: Vec<String>,
        what: String,
        reason: String,
    },
    /// The object graph nests deeper than the interpreter's recursion limit, or (3.14+, whose
    /// RecursionError also guards the C stack) than the thread's stack allows.
    TooDeep {
        what: String,
    },
    /// A code object marshal refuses (one built by hand with foreign constants).
    Unmarshallable {
        what: String,
        reason: String,
    },
    /// `register_pickle_by_value` needs a module that is imported. The messages are
    /// cloudpickle's, word for word (its tests match them): `what` is `str(obj)`, `module` is
    /// `repr(module)`.
    NotAModule {
        what: String,
    },
    NotImported {
        module: String,
    },
    NotRegistered {
        module: String,
    },
    /// `satchel.unregister_pickle_by_value` of a module only cloudpickle's registry holds.
    RegisteredWithCloudpickle {
        module: String,
    },
    /// A stream's header is truncated or not what satchel writes.
    CorruptHeader {
        reason: String,
    },
    /// A compressed body does not decode.
    CorruptBody {
        reason: String,
    },
    Compression {
        reason: String,
    },
    /// An argument combination satchel refuses (standalone below protocol 3, ...).
    BadOption {
        reason: String,
    },
    /// A function whose source cannot be found cannot travel in portable mode.
    NoSource {
        what: String,
        reason: String,
    },
    /// Bytecode (a code object) cannot travel in portable mode.
    CodeInPortable {
        what: String,
    },
    /// A generator pickled from inside itself (or while another thread runs it).
    GeneratorRunning {
        what: String,
    },
    /// A started generator in portable mode: its frame is bytecode for one interpreter.
    GeneratorInPortable {
        what: String,
        line: String,
        offset: usize,
        label: String,
    },
    /// A started generator on an interpreter build whose frame layout satchel does not know.
    GeneratorUnsupported {
        what: String,
        build: String,
    },
    /// A generator whose frame is not what a suspended frame must be (a satchel bug or a
    /// layout drift the self-test did not catch).
    GeneratorFrame {
        what: String,
        reason: String,
    },
    /// A coroutine awaiting something only its event loop can resume.
    GeneratorAwaitsFuture {
        what: String,
        awaited: String,
    },
    /// A suspended generator in a stream that cannot be resumed here.
    GeneratorLoad {
        reason: String,
    },
    /// `loads(data, key=...)`: the signature is missing, truncated or does not match.
    Signature {
        reason: String,
    },
    /// `loads(data, allow=...)`: the stream names a global the caller did not allow.
    NotAllowed {
        module: String,
        name: String,
    },
    /// A file object that cannot travel as its contents (`reduce/file.rs`). Raised as the
    /// stdlib's `pickle.PicklingError`, so that `diagnose::explain` adds the path to it.
    File {
        /// The file's name, repr'd (a path, or an int for a file descriptor), and its type.
        name: String,
        refusal: FileRefusal,
    },
    /// A released memoryview has no contents left to pickle (stdlib PicklingError, as above).
    ReleasedMemoryview,
    /// Portable mode cannot rebuild this object from what it was made of.
    NotPortable {
        what: String,
        reason: String,
    },
    /// `inspect` of bytes that are not a pickle at all.
    NotAPickle {
        reason: String,
    },
    /// A getset descriptor its class no longer holds (`del cls.__weakref__`): the receiver
    /// could not find it.
    OrphanDescriptor {
        what: String,
        owner: String,
    },
    /// Pickling nests too deep for the thread's C stack (a raised recursion limit does not
    /// make room there).
    TooDeepForStack {
        what: String,
        left: usize,
    },
    /// A suspended frame whose slot holds what its bytecode can never leave there.
    GeneratorContents {
        what: String,
        slot: String,
        expected: String,
        found: String,
    },
    /// A Rust panic caught at the boundary to Python: a satchel bug, reported as the pickling
    /// (or unpickling) error it stopped, never as pyo3's `PanicException` (a BaseException).
    Panic {
        message: String,
        loading: bool,
    },
    /// Satchel's reducer failed on an object that pickles fine when tried again: it changed
    /// while it was being pickled (another thread, or a `__reduce__` that mutates it).
    Changed {
        what: String,
        reason: String,
    },
    /// Satchel's own recursion (code constants, class descriptions, diagnosis) would go past
    /// the interpreter's recursion limit or the thread's stack.
    NestedTooDeep {
        what: String,
        depth: usize,
    },
    /// PyPy: an instance of a built-in class that has no reduction of its own (a lock): its
    /// default one names a class no one can import. CPython's `object.__reduce_ex__` refuses
    /// such objects with this TypeError; satchel says the same on PyPy.
    BuiltinState {
        type_name: String,
    },
    /// A code object whose bytecode ends inside an instruction's inline caches (made with
    /// `CodeType.replace`): CPython writes past the end of memory when anything reads its
    /// `co_code` (marshal, dis, satchel's own analysis).
    MalformedBytecode {
        what: String,
    },
    /// PyPy: the pickler's recursion would use more stack than PyPy allows however high the
    /// recursion limit is (three quarters of `ulimit -s`, or the thread's stack): its own check
    /// would fire inside a cpyext call, which is fatal (`ffi::pypy::stack_too_deep`).
    TooDeepForPyPyStack {
        what: String,
        allowance: usize,
    },
}

/// Why a file cannot be pickled. Each message starts with cloudpickle's wording (its
/// `_file_reduce`), which code written against cloudpickle matches on.
pub enum FileRefusal {
    /// No `name` or `mode`: not a file opened by `open()`.
    NoName,
    Stdin,
    Closed,
    Tty,
    NotReadable {
        mode: String,
    },
    /// Not seekable (a pipe, a socket), or reading it failed.
    Unreadable {
        reason: String,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Unpicklable { path, what, reason } if path.is_empty() => {
                write!(f, "cannot pickle {what}: {reason}")
            }
            Error::Unpicklable {
                path,
                what: _,
                reason,
            } => {
                write!(f, "{}: {reason}", path.join(" -> "))
            }
            // "excessively deep recursion required" is cloudpickle's wording, which callers
            // and cloudpickle's own tests match on.
            Error::TooDeep { what } => write!(
                f,
                "cannot pickle {what}: excessively deep recursion required (it nests deeper \
                 than the recursion limit, sys.getrecursionlimit(), or this thread's C stack \
                 allows); flatten it, raise the limit, or pickle it in a thread with a larger \
                 stack"
            ),
            Error::Unmarshallable { what, reason } => write!(
                f,
                "cannot pickle the code of {what}: marshal refuses it ({reason})"
            ),
            Error::NotAModule { what } => {
                write!(f, "Input should be a module object, got {what} instead")
            }
            Error::NotImported { module } => write!(
                f,
                "{module} was not imported correctly, have you used an `import` statement to \
                 access it?"
            ),
            Error::NotRegistered { module } => {
                write!(f, "{module} is not registered for pickle by value")
            }
            Error::RegisteredWithCloudpickle { module } => write!(
                f,
                "{module} is not registered for pickle by value with satchel but with \
                 cloudpickle, whose registry satchel follows: use \
                 cloudpickle.unregister_pickle_by_value"
            ),
            Error::CorruptHeader { reason } => write!(f, "corrupt satchel header: {reason}"),
            Error::CorruptBody { reason } => write!(f, "corrupt satchel body: {reason}"),
            Error::Compression { reason } => write!(f, "cannot compress the stream: {reason}"),
            Error::BadOption { reason } => f.write_str(reason),
            Error::NoSource { what, reason } => write!(
                f,
                "cannot pickle {what} in portable mode: its source is not available ({reason}); \
                 use mode='nonportable' to ship its bytecode"
            ),
            Error::GeneratorRunning { what } => write!(
                f,
                "cannot pickle {what}: it is currently running (pickled from inside itself or \
                 while another thread runs it)"
            ),
            Error::GeneratorInPortable {
                what,
                line,
                offset,
                label,
            } => write!(
                f,
                "cannot pickle {what} in portable mode: it is suspended at line {line} (bytecode \
                 offset {offset}); a started generator's state is tied to the bytecode of \
                 {label}. Use mode='nonportable' with the same interpreter on both ends, or \
                 pickle it before its first next()"
            ),
            Error::GeneratorUnsupported { what, build } => write!(
                f,
                "cannot pickle {what}: live generator pickling is not supported on {build}; \
                 pickle it before its first next() or after it is finished"
            ),
            Error::GeneratorFrame { what, reason } => {
                write!(
                    f,
                    "cannot pickle {what}: its frame is not a suspended frame ({reason})"
                )
            }
            Error::GeneratorAwaitsFuture { what, awaited } => write!(
                f,
                "cannot pickle {what}: it is awaiting {awaited}; an asyncio Future or Task \
                 belongs to its event loop. Only coroutines suspended on picklable awaitables \
                 (other coroutines, generators) can be pickled"
            ),
            Error::Signature { reason } => write!(
                f,
                "refusing to load: {reason}; nothing in the stream was run"
            ),
            Error::NotAllowed { module, name } => write!(
                f,
                "global '{module}.{name}' is not allowed: the stream names it, and this load's \
                 allow= list does not include it (add '{module}.{name}' or '{module}.*' if it \
                 is expected)"
            ),
            Error::GeneratorLoad { reason } => {
                write!(
                    f,
                    "cannot resume the suspended generator in this stream: {reason}"
                )
            }
            Error::NotPortable { what, reason } => write!(
                f,
                "cannot pickle {what} in portable mode: {reason}; use mode='nonportable' to \
                 ship it for this interpreter version"
            ),
            Error::NotAPickle { reason } => write!(f, "not a pickle stream: {reason}"),
            Error::TooDeepForStack { what, left } => write!(
                f,
                "cannot pickle {what}: it nests too deep for this thread's stack ({} KiB left); \
                 flatten it, or pickle it in a thread with a larger stack \
                 (threading.stack_size)",
                left / 1024
            ),
            Error::GeneratorContents {
                what,
                slot,
                expected,
                found,
            } => write!(
                f,
                "cannot resume the suspended generator in this stream: {slot} of {what} must be \
                 {expected}; it holds {found}"
            ),
            Error::Panic { message, loading } => write!(
                f,
                "satchel failed while {} (an internal error, please report it: {message})",
                if *loading { "loading" } else { "pickling" }
            ),
            Error::Changed { what, reason } => write!(
                f,
                "cannot pickle {what}: {reason} (it pickles when tried again: it changed while \
                 it was being pickled, by another thread or by pickling itself)"
            ),
            Error::BuiltinState { type_name } => {
                write!(f, "cannot pickle '{type_name}' object")
            }
            Error::NestedTooDeep { what, depth } => write!(
                f,
                "cannot pickle {what}: it nests more than {depth} levels deep (the recursion \
                 limit or this thread's stack); flatten it or raise the limit"
            ),
            Error::TooDeepForPyPyStack { what, allowance } => write!(
                f,
                "cannot pickle {what}: it nests too deep for PyPy's stack, whatever the \
                 recursion limit ({} KiB: three quarters of the stack limit, `ulimit -s`, or \
                 the thread's stack); flatten it, or raise `ulimit -s` before starting PyPy",
                allowance / 1024
            ),
            Error::MalformedBytecode { what } => write!(
                f,
                "cannot pickle the code of {what}: its bytecode ends inside an instruction's \
                 inline caches, and reading such bytecode (co_code) overruns memory in \
                 CPython; it was not made by the compiler"
            ),
            Error::CodeInPortable { what } => write!(
                f,
                "cannot pickle {what} in portable mode: a code object is bytecode for one \
                 interpreter version; pickle the function instead, or use mode='nonportable'"
            ),
            Error::File { name, refusal } => match refusal {
                FileRefusal::NoName => write!(
                    f,
                    "Cannot pickle files that do not map to an actual file: {name} has no \
                     name or mode"
                ),
                FileRefusal::Stdin => f.write_str(
                    "Cannot pickle standard input: the receiver's stdin is another stream; \
                     send the data read from it instead",
                ),
                FileRefusal::Closed => write!(f, "Cannot pickle closed files: {name} is closed"),
                FileRefusal::Tty => write!(
                    f,
                    "Cannot pickle files that map to tty objects: {name} is a terminal"
                ),
                FileRefusal::NotReadable { mode } => write!(
                    f,
                    "Cannot pickle files that are not opened for reading: {name} is open with \
                     mode '{mode}'; a file travels as its contents, which it cannot read"
                ),
                FileRefusal::Unreadable { reason } => write!(
                    f,
                    "Cannot pickle file {name} as it cannot be read: {reason}; a file travels \
                     as its contents and position"
                ),
            },
            Error::ReleasedMemoryview => f.write_str(
                "the memoryview was released, so its contents are gone (pickle it before \
                 release() or the end of its with block)",
            ),
            Error::OrphanDescriptor { what, owner } => write!(
                f,
                "cannot pickle {what}: its class {owner} no longer holds it under its name (it \
                 was deleted or replaced), so a receiver could not look it up"
            ),
        }
    }
}

fn make_type(py: Python<'_>, name: &CStr, doc: &CStr, base: &str) -> PyResult<Py<PyType>> {
    let base = py.import("pickle")?.getattr(base)?.cast_into::<PyType>()?;
    PyErr::new_type(py, name, Some(doc), Some(&base), None)
}

pub fn pickling_error_type(py: Python<'_>) -> PyResult<&Py<PyType>> {
    PICKLING_ERROR.get_or_try_init(py, || {
        make_type(
            py,
            c"satchel.PicklingError",
            c"An object could not be pickled; the message names it, the reason and its path.",
            "PicklingError",
        )
    })
}

static SIGNATURE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static STDLIB_PICKLING_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `pickle.PicklingError` itself: what a reducer raises about the object it was given, so that
/// `diagnose::explain` (which passes satchel's own errors through as they are) finds the path
/// to it and re-raises it as a `satchel.PicklingError`.
fn stdlib_pickling_error_type(py: Python<'_>) -> PyResult<&Py<PyType>> {
    STDLIB_PICKLING_ERROR.get_or_try_init(py, || {
        Ok(py
            .import("pickle")?
            .getattr("PicklingError")?
            .cast_into::<PyType>()?
            .unbind())
    })
}

/// `satchel.SignatureError`, a `satchel.UnpicklingError`: a signed load refused the stream.
pub fn signature_error_type(py: Python<'_>) -> PyResult<&Py<PyType>> {
    SIGNATURE_ERROR.get_or_try_init(py, || {
        let base = unpickling_error_type(py)?;
        PyErr::new_type(
            py,
            c"satchel.SignatureError",
            Some(
                c"A signed load refused the stream: its signature is missing, truncated or wrong.",
            ),
            Some(&base),
            None,
        )
    })
}

/// `satchel.UnpicklingError` lives in the bootstrap, so a receiver without satchel raises the
/// same class from a standalone stream.
pub fn unpickling_error_type(py: Python<'_>) -> PyResult<Bound<'_, PyType>> {
    Ok(crate::bootstrap::boot(py)
        .module
        .bind(py)
        .getattr("UnpicklingError")?
        .cast_into::<PyType>()?)
}

impl Error {
    /// The Python exception for this error (PicklingError for everything raised while dumping).
    pub fn into_pyerr(self, py: Python<'_>) -> PyErr {
        let message = self.to_string();
        match self {
            Error::NotAModule { .. }
            | Error::NotImported { .. }
            | Error::NotRegistered { .. }
            | Error::RegisteredWithCloudpickle { .. }
            | Error::BadOption { .. } => pyo3::exceptions::PyValueError::new_err(message),
            Error::BuiltinState { .. } => pyo3::exceptions::PyTypeError::new_err(message),
            Error::Signature { .. } => match signature_error_type(py) {
                Ok(ty) => PyErr::from_type(ty.bind(py).clone(), message),
                Err(e) => e,
            },
            Error::File { .. } | Error::ReleasedMemoryview => {
                match stdlib_pickling_error_type(py) {
                    Ok(ty) => PyErr::from_type(ty.bind(py).clone(), message),
                    Err(e) => e,
                }
            }
            Error::CorruptHeader { .. }
            | Error::CorruptBody { .. }
            | Error::Panic { loading: true, .. }
            | Error::GeneratorLoad { .. }
            | Error::GeneratorContents { .. }
            | Error::NotAllowed { .. }
            | Error::NotAPickle { .. } => match unpickling_error_type(py) {
                Ok(ty) => PyErr::from_type(ty, message),
                Err(e) => e,
            },
            _ => match pickling_error_type(py) {
                Ok(ty) => PyErr::from_type(ty.bind(py).clone(), message),
                Err(e) => e,
            },
        }
    }

    /// Same, keeping the user's exception as `__cause__`.
    ///
    /// (`with_cause` and `into_pyerr` build the exception lazily; see `catch_panic` for the
    /// boundary that turns a Rust panic into one of these.)
    pub fn with_cause(self, py: Python<'_>, cause: PyErr) -> PyErr {
        let err = self.into_pyerr(py);
        err.set_cause(py, Some(cause));
        err
    }
}

/// Run `body`, turning a Rust panic inside it into `Error::Panic` (a `satchel.PicklingError`,
/// or `UnpicklingError` when `loading`). pyo3 would raise `pyo3_runtime.PanicException`, a
/// `BaseException` that `except Exception` (pool workers, Dask) does not catch. A
/// `PanicException` raised by other code and fetched inside `body` resumes as a panic (pyo3
/// does that on fetch) and ends here too. The release profile keeps `panic = "unwind"`.
pub fn catch_panic<T>(
    py: Python<'_>,
    loading: bool,
    body: impl FnOnce() -> PyResult<T>,
) -> PyResult<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => Err(Error::Panic {
            message: panic_message(payload.as_ref()),
            loading,
        }
        .into_pyerr(py)),
    }
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
