//! `satchel.Pickler`'s Rust half: the reducer the C pickler calls for each object it cannot
//! write itself, the `reducer_override` descriptor that hands it out, and how a dump makes or
//! reuses a pickler. What wraps the body (header, compression, signature) is `envelope/`.
//!
//! - `Reducer` / `ReducerOverride`: per-pickler state and the descriptor (this file);
//! - `options`: the keyword options of dumps/dump/Pickler, resolved once;
//! - `writer`: the file `dumps` gives the C pickler;
//! - `body`: one dump's body, with the thread's reused pickler or a fresh one.

pub mod body;
pub mod options;
pub mod writer;

use std::sync::atomic::{AtomicUsize, Ordering};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};

use crate::diagnose;
use crate::error::catch_panic;
use crate::reduce::{self, DumpState};
use crate::typeref::typerefs;
pub use options::Options;

/// `satchel.Pickler`, registered by the Python package at import (it is a Python subclass of
/// `_pickle.Pickler`, so that users and loky can subclass it and set `dispatch_table`).
static PICKLER_CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();

pub fn register_class(cls: &Bound<'_, PyType>) {
    let _ = PICKLER_CLASS.set(cls.py(), cls.clone().unbind());
}

fn pickler_class(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    PICKLER_CLASS.get(py).map(|c| c.bind(py)).ok_or_else(|| {
        pyo3::exceptions::PyRuntimeError::new_err("import satchel, not satchel._satchel")
    })
}

/// Per-pickler state behind the reducer function the C pickler calls for each object it
/// cannot write itself (see `ffi::reducer_function`).
#[pyclass(module = "satchel._satchel", frozen)]
pub struct Reducer {
    pub state: DumpState,
    /// The address of the last object this reducer was called with: after a failed dump it is
    /// (nearly always) the object that failed, or one inside it, which is where diagnosis
    /// starts looking. Only an address, compared and never dereferenced: one plain store per
    /// call on the hot path, no reference count.
    last: AtomicUsize,
    /// The address of the exception the last failing call raised (diagnosis tells satchel's
    /// own failures from the file's). Set on the error path only.
    raised: AtomicUsize,
}

impl Reducer {
    fn new() -> Self {
        Reducer {
            state: DumpState::new(),
            last: AtomicUsize::new(0),
            raised: AtomicUsize::new(0),
        }
    }

    /// What diagnosis needs to know of this reducer's calls (diagnose.rs).
    pub fn seen(&self) -> diagnose::Seen {
        diagnose::Seen {
            last: self.last.load(Ordering::Relaxed),
            raised: self.raised.load(Ordering::Relaxed),
            own_sink: false,
        }
    }
}

/// `Pickler.reducer_override`: a descriptor, so that `super().reducer_override(obj)` works in
/// subclasses. Bound to a pickler it yields that pickler's `Reducer` (made on first access and
/// kept in the instance dict, so per-dump state is shared by every access).
#[pyclass(module = "satchel._satchel", frozen)]
pub struct ReducerOverride;

const REDUCER_ATTR: &str = "_satchel_reducer";

#[pymethods]
impl Reducer {
    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        self.state.traverse(&visit)
    }

    fn __clear__(slf: &Bound<'_, Self>) {
        slf.get().state.reset();
    }
}

/// The pickler's `Reducer` if it has made one (a pickler that never dumped has none).
pub fn existing_reducer<'py>(pickler: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, Reducer>>> {
    let dict = pickler.getattr("__dict__")?.cast_into::<PyDict>()?;
    if dict.contains(REDUCER_ATTR)? {
        return reducer_of(pickler).map(Some);
    }
    Ok(None)
}

/// What diagnosis needs of a failed pickler's calls, or nothing when it is not satchel's.
pub fn seen_by(pickler: Option<&Bound<'_, PyAny>>) -> diagnose::Seen {
    pickler
        .and_then(|p| p.getattr("__dict__").ok())
        .and_then(|d| d.cast_into::<PyDict>().ok())
        .and_then(|d| d.get_item(REDUCER_ATTR).ok().flatten())
        .and_then(|f| f.getattr("__self__").ok())
        .and_then(|r| r.cast_into::<Reducer>().ok())
        .map(|r| r.get().seen())
        .unwrap_or_default()
}

/// The pickler's reducer function (a METH_O builtin whose `__self__` is its `Reducer`).
fn reducer_for<'py>(pickler: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = pickler.py();
    // Runs once per dump (the C pickler looks reducer_override up in every dump()): interned
    // names, so no string is made and hashed each time.
    let dict = pickler
        .getattr(pyo3::intern!(py, "__dict__"))?
        .cast_into::<PyDict>()?;
    if let Some(r) = dict.get_item(pyo3::intern!(py, REDUCER_ATTR))? {
        return Ok(r);
    }
    let reducer = Bound::new(py, Reducer::new())?;
    let function = crate::ffi::reducer_function(reducer.as_any())?;
    dict.set_item(REDUCER_ATTR, &function)?;
    Ok(function)
}

/// Body of the reducer function: `reducer` is its `__self__`.
pub fn call_reducer<'py>(
    reducer: &Bound<'py, PyAny>,
    obj: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let reducer = reducer.cast::<Reducer>()?.get();
    reducer.last.store(crate::ffi::addr(obj), Ordering::Relaxed);
    let result = reduce::reduce(&reducer.state, obj);
    if let Err(err) = &result {
        let raised = err.value(obj.py()).as_ptr() as usize;
        reducer.raised.store(raised, Ordering::Relaxed);
    }
    result
}

#[pymethods]
impl ReducerOverride {
    #[new]
    fn new() -> Self {
        ReducerOverride
    }

    fn __get__<'py>(
        slf: &Bound<'py, Self>,
        instance: Option<&Bound<'py, PyAny>>,
        owner: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _ = owner;
        match instance {
            None => Ok(slf.clone().into_any()),
            Some(pickler) => catch_panic(slf.py(), false, || reducer_for(pickler)),
        }
    }

    /// `Pickler.reducer_override(pickler, obj)`, called through the class.
    fn __call__<'py>(
        &self,
        pickler: &Bound<'py, PyAny>,
        obj: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        catch_panic(obj.py(), false, || reducer_for(pickler)?.call1((obj,)))
    }
}

/// Pickle `obj`'s body into `file` with a fresh `satchel.Pickler` (used by error diagnosis).
pub fn dump_raw(obj: &Bound<'_, PyAny>, file: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = obj.py();
    let opts = Options::new(py, None, None, "nonportable", None, Some(false))?;
    let pickler = new_pickler(file, &opts, None)?;
    typerefs(py).c_dump.bind(py).call1((pickler, obj))?;
    Ok(())
}

/// A `satchel.Pickler` writing bodies to `file`. Its errors (a file without `write`) are
/// about the call: `diagnose::explain` passes them through unchanged, since the object itself
/// pickles fine.
pub fn new_pickler<'py>(
    file: &Bound<'py, PyAny>,
    opts: &Options,
    buffer_callback: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = file.py();
    let cls = pickler_class(py)?;
    let kwargs = PyDict::new(py);
    if let Some(cb) = buffer_callback.filter(|cb| !cb.is_none()) {
        kwargs.set_item("buffer_callback", cb)?;
    }
    if opts.portable {
        kwargs.set_item("mode", "portable")?;
        kwargs.set_item("standalone", false)?;
    }
    // The body only: headers are written by the caller.
    kwargs.set_item("_body_only", true)?;
    let pickler = cls.call((file, opts.protocol), Some(&kwargs))?;
    if opts.protocol >= 2 {
        reducer_of(&pickler)?.get().state.enable_plain_instances();
    }
    Ok(pickler)
}

/// The `Reducer` behind a pickler's reducer function.
pub fn reducer_of<'py>(pickler: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Reducer>> {
    Ok(reducer_for(pickler)?
        .getattr("__self__")?
        .cast_into::<Reducer>()?)
}
