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
    /// The object graph nests deeper than the interpreter's recursion limit.
    TooDeep {
        what: String,
    },
    /// A code object marshal refuses (one built by hand with foreign constants).
    Unmarshallable {
        what: String,
        reason: String,
    },
    /// `register_pickle_by_value` needs a module that is imported.
    NotAModule {
        what: String,
    },
    NotImported {
        name: String,
    },
    NotRegistered {
        name: String,
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
    /// A code object whose bytecode ends inside an instruction's inline caches (made with
    /// `CodeType.replace`): CPython writes past the end of memory when anything reads its
    /// `co_code` (marshal, dis, satchel's own analysis).
    MalformedBytecode {
        what: String,
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
            Error::TooDeep { what } => write!(
                f,
                "cannot pickle {what}: it nests deeper than the recursion limit \
                 (sys.getrecursionlimit()); flatten it or raise the limit"
            ),
            Error::Unmarshallable { what, reason } => write!(
                f,
                "cannot pickle the code of {what}: marshal refuses it ({reason})"
            ),
            Error::NotAModule { what } => {
                write!(f, "register_pickle_by_value expects a module, got {what}")
            }
            Error::NotImported { name } => write!(
                f,
                "module '{name}' is not in sys.modules: import it before registering it by value"
            ),
            Error::NotRegistered { name } => {
                write!(f, "module '{name}' is not registered for pickling by value")
            }
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
            Error::NestedTooDeep { what, depth } => write!(
                f,
                "cannot pickle {what}: it nests more than {depth} levels deep (the recursion \
                 limit or this thread's stack); flatten it or raise the limit"
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
            | Error::BadOption { .. } => pyo3::exceptions::PyValueError::new_err(message),
            Error::Signature { .. } => match signature_error_type(py) {
                Ok(ty) => PyErr::from_type(ty.bind(py).clone(), message),
                Err(e) => e,
            },
            Error::CorruptHeader { .. }
            | Error::CorruptBody { .. }
            | Error::Panic { loading: true, .. }
            | Error::GeneratorLoad { .. }
            | Error::NotAllowed { .. } => match unpickling_error_type(py) {
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
