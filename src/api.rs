//! The Python-facing entry points: dumps/dump, the `reducer_override` descriptor that
//! `satchel.Pickler` carries, and the by-value registry.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyString, PyType};

use crate::diagnose;
use crate::reduce::{self, DumpState};
use crate::typeref::typerefs;

/// `satchel.Pickler`, registered by the Python package at import (it is a Python subclass of
/// `_pickle.Pickler`, so that users and loky can subclass it and set `dispatch_table`).
static PICKLER_CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();

#[pyfunction]
pub fn _register_pickler(cls: &Bound<'_, PyType>) -> PyResult<()> {
    let _ = PICKLER_CLASS.set(cls.py(), cls.clone().unbind());
    Ok(())
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
    state: DumpState,
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

/// `satchel.Pickler.clear_memo` also forgets the per-dump globals: they were written to the
/// stream with the memo, and a reused pickler must write them again (or not at all).
#[pyfunction]
pub fn _reset_reducer(pickler: &Bound<'_, PyAny>) -> PyResult<()> {
    let dict = pickler.getattr("__dict__")?.cast_into::<PyDict>()?;
    if dict.contains(REDUCER_ATTR)? {
        reducer_of(pickler)?.get().state.reset();
    }
    Ok(())
}

/// The pickler's reducer function (a METH_O builtin whose `__self__` is its `Reducer`).
fn reducer_for<'py>(pickler: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = pickler.py();
    let dict = pickler.getattr("__dict__")?.cast_into::<PyDict>()?;
    if let Some(r) = dict.get_item(REDUCER_ATTR)? {
        return Ok(r);
    }
    let reducer = Bound::new(
        py,
        Reducer {
            state: DumpState::new(),
        },
    )?;
    let function = crate::ffi::reducer_function(reducer.as_any())?;
    dict.set_item(REDUCER_ATTR, &function)?;
    Ok(function)
}

/// Body of the reducer function: `reducer` is its `__self__`.
pub fn call_reducer<'py>(
    reducer: &Bound<'py, PyAny>,
    obj: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let reducer = reducer.cast::<Reducer>()?;
    reduce::reduce(&reducer.get().state, obj)
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
            Some(pickler) => reducer_for(pickler),
        }
    }

    /// `Pickler.reducer_override(pickler, obj)`, called through the class.
    fn __call__<'py>(
        &self,
        pickler: &Bound<'py, PyAny>,
        obj: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        reducer_for(pickler)?.call1((obj,))
    }
}

/// Pickle `obj` into `file` with a fresh `satchel.Pickler`, without a Python frame.
pub fn dump_raw(
    obj: &Bound<'_, PyAny>,
    file: &Bound<'_, PyAny>,
    protocol: Option<&Bound<'_, PyAny>>,
    buffer_callback: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let pickler = new_pickler(file, protocol, buffer_callback)?;
    typerefs(obj.py())
        .c_dump
        .bind(obj.py())
        .call1((pickler, obj))?;
    Ok(())
}

/// A `satchel.Pickler`. Its errors (bad protocol, buffer_callback below protocol 5, a file
/// without `write`) are about the call: `diagnose::explain` passes them through unchanged,
/// since the object itself pickles fine.
fn new_pickler<'py>(
    file: &Bound<'py, PyAny>,
    protocol: Option<&Bound<'py, PyAny>>,
    buffer_callback: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = file.py();
    let cls = pickler_class(py)?;
    let none = py.None().into_bound(py);
    let protocol = protocol.unwrap_or(&none);
    let pickler = match buffer_callback {
        Some(cb) if !cb.is_none() => {
            let kwargs = PyDict::new(py);
            kwargs.set_item("buffer_callback", cb)?;
            cls.call((file, protocol), Some(&kwargs))?
        }
        _ => cls.call1((file, protocol))?,
    };
    if newobj_protocol(protocol) {
        reducer_of(&pickler)?.get().state.enable_plain_instances();
    }
    Ok(pickler)
}

/// Whether `protocol` (None = the default 5, negative = the highest) takes `object.__reduce_ex__`'s
/// NEWOBJ path, which is the only one `reduce::instance` reproduces; 0 and 1 go through
/// `copyreg._reduce_ex` instead.
fn newobj_protocol(protocol: &Bound<'_, PyAny>) -> bool {
    protocol.is_none()
        || protocol
            .extract::<i64>()
            .is_ok_and(|p| !(0..2).contains(&p))
}

/// The `Reducer` behind a pickler's reducer function.
fn reducer_of<'py>(pickler: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Reducer>> {
    Ok(reducer_for(pickler)?
        .getattr("__self__")?
        .cast_into::<Reducer>()?)
}

/// The file `dumps` gives the C pickler: it keeps the chunks the pickler writes and hands a
/// single chunk back as is, where BytesIO would copy it in and copy it out again.
#[pyclass(module = "satchel._satchel", frozen)]
pub struct Writer {
    chunks: Mutex<Vec<Py<PyAny>>>,
}

#[pymethods]
impl Writer {
    #[new]
    fn new() -> Self {
        Writer {
            chunks: Mutex::new(Vec::new()),
        }
    }

    /// Called by the pickler with bytes, or (for large buffers) a memoryview, which is copied
    /// because its owner may change it after the call.
    fn write(&self, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        let py = data.py();
        let chunk = if data.is_exact_instance_of::<PyBytes>() {
            data.clone()
        } else {
            typerefs(py).bytes_type.bind(py).call1((data,))?
        };
        let len = chunk.len()?;
        self.chunks
            .lock()
            .expect("writer lock")
            .push(chunk.unbind());
        Ok(len)
    }

    fn getvalue<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let chunks = std::mem::take(&mut *self.chunks.lock().expect("writer lock"));
        if chunks.len() == 1 {
            return Ok(chunks[0].bind(py).clone().cast_into::<PyBytes>()?);
        }
        let parts: Vec<Bound<'py, PyBytes>> = chunks
            .iter()
            .map(|c| c.bind(py).clone().cast_into::<PyBytes>())
            .collect::<Result<_, _>>()?;
        let total = parts.iter().map(|p| p.as_bytes().len()).sum();
        PyBytes::new_with(py, total, |buf| {
            let mut at = 0;
            for p in &parts {
                let b = p.as_bytes();
                buf[at..at + b.len()].copy_from_slice(b);
                at += b.len();
            }
            Ok(())
        })
    }
}

/// One pickler and writer per thread, reused by `dumps`: building a `_pickle.Pickler` costs
/// more than pickling a small task. A nested `dumps` (from a `__reduce__` running inside one)
/// finds the slot empty and builds its own.
struct Cached {
    protocol: Py<PyAny>,
    pickler: Py<PyAny>,
    clear_memo: Py<PyAny>,
    writer: Py<Writer>,
    reducer: Py<Reducer>,
}

/// Outputs up to this size leave the reused pickler's memo small enough to clear cheaply.
const REUSE_MAX_OUTPUT: usize = 8 * 1024;

thread_local! {
    static CACHED: std::cell::RefCell<Option<Cached>> = const { std::cell::RefCell::new(None) };
}

fn dumps_cached<'py>(
    obj: &Bound<'py, PyAny>,
    protocol: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let py = obj.py();
    let refs = typerefs(py);
    let cached = CACHED.with(|c| c.borrow_mut().take()).filter(|c| {
        let p = c.protocol.bind(py);
        p.is(protocol) || p.eq(protocol).unwrap_or(false)
    });
    let cached = match cached {
        Some(c) => c,
        None => {
            let writer = Bound::new(py, Writer::new())?;
            let pickler = pickler_class(py)?.call1((&writer, protocol))?;
            let reducer = reducer_of(&pickler)?;
            if newobj_protocol(protocol) {
                reducer.get().state.enable_plain_instances();
            }
            Cached {
                protocol: protocol.clone().unbind(),
                // The C method itself: satchel.Pickler.clear_memo (Python) also resets the
                // reducer, which this cache does directly.
                clear_memo: refs
                    .c_clear_memo
                    .bind(py)
                    .call_method1("__get__", (&pickler,))?
                    .unbind(),
                pickler: pickler.unbind(),
                writer: writer.unbind(),
                reducer: reducer.unbind(),
            }
        }
    };
    let writer = cached.writer.bind(py);
    let result = refs.c_dump.bind(py).call1((cached.pickler.bind(py), obj));
    let value = writer.get().getvalue(py);
    // Keep the pickler only after a clean, small dump. Clearing the memo now releases what
    // this dump referenced; a small output means a small memo table, which clear_memo walks
    // whole and CPython never shrinks (one big dump would slow every later one).
    let small = value
        .as_ref()
        .is_ok_and(|v| v.as_bytes().len() <= REUSE_MAX_OUTPUT);
    if result.is_ok() && small && cached.clear_memo.bind(py).call0().is_ok() {
        cached.reducer.get().state.reset();
        CACHED.with(|c| *c.borrow_mut() = Some(cached));
    }
    result?;
    value
}

#[pyfunction]
#[pyo3(signature = (obj, protocol=None, buffer_callback=None))]
pub fn dumps<'py>(
    obj: &Bound<'py, PyAny>,
    protocol: Option<&Bound<'py, PyAny>>,
    buffer_callback: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let py = obj.py();
    let result = match buffer_callback {
        Some(cb) if !cb.is_none() => {
            let writer = Bound::new(py, Writer::new())?;
            dump_raw(obj, writer.as_any(), protocol, buffer_callback)
                .and_then(|_| writer.get().getvalue(py))
        }
        _ => {
            let none = py.None().into_bound(py);
            dumps_cached(obj, protocol.unwrap_or(&none))
        }
    };
    result.map_err(|err| diagnose::explain(obj, err))
}

#[pyfunction]
#[pyo3(signature = (obj, file, protocol=None, buffer_callback=None))]
pub fn dump(
    obj: &Bound<'_, PyAny>,
    file: &Bound<'_, PyAny>,
    protocol: Option<&Bound<'_, PyAny>>,
    buffer_callback: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    dump_raw(obj, file, protocol, buffer_callback).map_err(|err| diagnose::explain(obj, err))
}

/// The content-derived id of a class, or None when it gets a random one (for tests).
#[pyfunction]
pub fn _content_id(cls: &Bound<'_, pyo3::types::PyType>) -> PyResult<Option<String>> {
    reduce::content_id(cls)
}

/// Turn an error raised by `Pickler.dump` into a satchel.PicklingError with a path.
#[pyfunction]
pub fn _explain(obj: &Bound<'_, PyAny>, err: Bound<'_, PyAny>) -> PyErr {
    diagnose::explain(obj, PyErr::from_value(err))
}

#[pyfunction]
pub fn register_pickle_by_value(module: &Bound<'_, PyAny>) -> PyResult<()> {
    reduce::register_by_value(module)
}

#[pyfunction]
pub fn unregister_pickle_by_value(module: &Bound<'_, PyAny>) -> PyResult<()> {
    reduce::unregister_by_value(module)
}

#[pyfunction]
pub fn list_registry_pickle_by_value(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PySet>> {
    pyo3::types::PySet::new(py, reduce::list_registry(py)?.iter())
}

#[pyfunction]
pub fn bootstrap_module(py: Python<'_>) -> Py<PyAny> {
    crate::bootstrap::boot(py).module.clone_ref(py).into_any()
}

pub fn bootstrap_source(py: Python<'_>) -> Bound<'_, PyString> {
    PyString::new(py, crate::bootstrap::SOURCE)
}
