//! The Python-facing functions of `satchel._satchel`: dumps/dump, loads/inspect, the by-value
//! registry and the hooks `satchel.Pickler` calls. Each is a thin shell: the pickler lives in
//! `pickler/`, the stream around the body in `envelope/`, the reductions in `reduce/`.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyType};

use crate::diagnose;
use crate::envelope::{self, key, unwrap, wrap};
use crate::error::catch_panic;
use crate::pickler::{self, body, Options};
use crate::reduce;
use crate::typeref::typerefs;

/// Registered by the Python package at import: `satchel.Pickler` (a Python subclass of
/// `_pickle.Pickler`, so that users and loky can subclass it and set `dispatch_table`).
#[pyfunction]
pub fn _register_pickler(cls: &Bound<'_, PyType>) -> PyResult<()> {
    pickler::register_class(cls);
    Ok(())
}

/// `satchel.Pickler.clear_memo` also forgets the per-dump globals: they were written to the
/// stream with the memo, and a reused pickler must write them again (or not at all).
#[pyfunction]
pub fn _reset_reducer(pickler: &Bound<'_, PyAny>) -> PyResult<()> {
    if let Some(reducer) = pickler::existing_reducer(pickler)? {
        reducer.get().state.reset();
    }
    Ok(())
}

#[pyfunction]
#[pyo3(signature = (obj, protocol=None, buffer_callback=None, *, mode="nonportable", standalone=None, compress=None, key=None))]
#[allow(clippy::too_many_arguments)]
pub fn dumps<'py>(
    obj: &Bound<'py, PyAny>,
    protocol: Option<&Bound<'py, PyAny>>,
    buffer_callback: Option<&Bound<'py, PyAny>>,
    mode: &str,
    standalone: Option<bool>,
    compress: Option<bool>,
    key: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    catch_panic(obj.py(), false, || {
        dumps_impl(
            obj,
            protocol,
            buffer_callback,
            mode,
            standalone,
            compress,
            key,
        )
    })
}

#[allow(clippy::too_many_arguments)]
fn dumps_impl<'py>(
    obj: &Bound<'py, PyAny>,
    protocol: Option<&Bound<'py, PyAny>>,
    buffer_callback: Option<&Bound<'py, PyAny>>,
    mode: &str,
    standalone: Option<bool>,
    compress: Option<bool>,
    key: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let py = obj.py();
    let key = key::signing_key(py, key, buffer_callback)?;
    let opts = Options::new(py, protocol, buffer_callback, mode, standalone, compress)?;
    let sink = wrap::buffer_sink(py, &opts)?;
    let body = if let Some(sink) = &sink {
        body::fresh(obj, &opts, Some(sink.as_any()))
    } else if opts.out_of_band {
        body::fresh(obj, &opts, buffer_callback)
    } else {
        body::reused(obj, &opts)
    };
    let (body, marks) = body?;
    let held = sink.map(|s| s.get().take()).unwrap_or_default();
    let stream = wrap::finish(py, &opts, &body, marks, &held)?;
    match key {
        None => Ok(stream),
        Some(key) => Ok(wrap::signed(py, &key, stream.as_bytes())),
    }
}

#[pyfunction]
#[pyo3(signature = (obj, file, protocol=None, buffer_callback=None, *, mode="nonportable", standalone=None, compress=None, key=None))]
#[allow(clippy::too_many_arguments)]
pub fn dump(
    obj: &Bound<'_, PyAny>,
    file: &Bound<'_, PyAny>,
    protocol: Option<&Bound<'_, PyAny>>,
    buffer_callback: Option<&Bound<'_, PyAny>>,
    mode: &str,
    standalone: Option<bool>,
    compress: Option<bool>,
    key: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    catch_panic(obj.py(), false, || {
        dump_impl(
            obj,
            file,
            protocol,
            buffer_callback,
            mode,
            standalone,
            compress,
            key,
        )
    })
}

#[allow(clippy::too_many_arguments)]
fn dump_impl(
    obj: &Bound<'_, PyAny>,
    file: &Bound<'_, PyAny>,
    protocol: Option<&Bound<'_, PyAny>>,
    buffer_callback: Option<&Bound<'_, PyAny>>,
    mode: &str,
    standalone: Option<bool>,
    compress: Option<bool>,
    key: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let py = obj.py();
    if key.is_some_and(|k| !k.is_none()) {
        // The MAC covers the whole stream: it is made whole first, then written.
        let data = dumps(
            obj,
            protocol,
            buffer_callback,
            mode,
            standalone,
            compress,
            key,
        )?;
        file.call_method1("write", (data,))?;
        return Ok(());
    }
    let opts = Options::new(py, protocol, buffer_callback, mode, standalone, compress)?;
    if opts.compress == Some(true) {
        // The body must be whole to be compressed; streaming dumps never compress on their own.
        let sink = wrap::buffer_sink(py, &opts)?;
        let (body, marks) = body::fresh(obj, &opts, sink.as_ref().map(|s| s.as_any()))?;
        let held = sink.map(|s| s.get().take()).unwrap_or_default();
        wrap::write_compressed(py, file, &opts, &body, &held, Some(marks))?;
        return Ok(());
    }
    file.call_method1(
        "write",
        (wrap::header(py, opts.protocol, opts.flags(false, None))?,),
    )?;
    let pickler = pickler::new_pickler(file, &opts, buffer_callback)?;
    let reducer = pickler::reducer_of(&pickler)?;
    if let Err(err) = typerefs(py).c_dump.bind(py).call1((&pickler, obj)) {
        let seen = reducer.get().seen();
        drop((pickler, reducer));
        return Err(diagnose::explain(obj, err, seen));
    }
    Ok(())
}

/// Whether the pickler's dump so far wrote a started generator's frame (and clears its marks):
/// `satchel.Pickler` passes it to `write_compressed` before `clear_memo` forgets it.
#[pyfunction]
pub fn _take_generators(pickler: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(pickler::reducer_of(pickler)?
        .get()
        .state
        .take_marks()
        .generators)
}

/// Mark a pickler's reducer as portable (functions travel as source).
#[pyfunction]
pub fn _set_portable(pickler: &Bound<'_, PyAny>) -> PyResult<()> {
    pickler::reducer_of(pickler)?.get().state.set_portable();
    Ok(())
}

/// Make a pickler a session snapshot's (`satchel._session`): functions whose globals are
/// `namespace` travel by value without their globals, with `placeholder` (which loads as the
/// namespace being restored) in their place. Everything else about them is `dumps`'s encoding.
#[pyfunction]
pub fn _set_session(
    pickler: &Bound<'_, PyAny>,
    namespace: &Bound<'_, PyDict>,
    placeholder: &Bound<'_, PyAny>,
) -> PyResult<()> {
    // `_SessionPickler.__init__` calls this once per pickler: a pickler dumps one session.
    pickler::reducer_of(pickler)?
        .get()
        .state
        .set_session(namespace.clone().unbind(), placeholder.clone().unbind());
    Ok(())
}

/// `satchel.loads`. A satchel stream's header is read here, its check runs here (the installed
/// bootstrap's `check`, so a standalone stream's payload is neither decompressed nor run), and
/// only the body is unpickled. A truncated or corrupt header is an UnpicklingError about the
/// header. Anything else is pickle.loads, keyword arguments included.
#[pyfunction]
#[pyo3(signature = (data, /, *, key=None, allow=None, **kwargs))]
pub fn loads<'py>(
    data: &Bound<'py, PyAny>,
    key: Option<&Bound<'py, PyAny>>,
    allow: Option<&Bound<'py, PyAny>>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    catch_panic(data.py(), true, || loads_impl(data, key, allow, kwargs))
}

fn loads_impl<'py>(
    data: &Bound<'py, PyAny>,
    key: Option<&Bound<'py, PyAny>>,
    allow: Option<&Bound<'py, PyAny>>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = data.py();
    let allowed = match allow.filter(|a| !a.is_none()) {
        Some(spec) => Some(Bound::new(py, crate::allow::AllowList::new(spec)?)?.into_any()),
        None => None,
    };
    unwrap::loads(data, key, allowed, None, kwargs)
}

/// `satchel.Unpickler.load` (python/satchel/_load.py): `loads`, except that the body is
/// unpickled by `unpickle(body, kwargs)`, the caller's own unpickler.
#[pyfunction]
#[pyo3(signature = (data, unpickle, /, *, key=None, **kwargs))]
pub fn _loads_with<'py>(
    data: &Bound<'py, PyAny>,
    unpickle: &Bound<'py, PyAny>,
    key: Option<&Bound<'py, PyAny>>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    unwrap::loads(data, key, None, Some(unpickle), kwargs)
}

/// `satchel.inspect`: what a stream's header says, without running anything.
#[pyfunction]
pub fn inspect<'py>(data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    catch_panic(data.py(), true, || envelope::inspect::inspect(data))
}

/// The content-derived id of a class, or None when it gets a random one (for tests).
#[pyfunction]
pub fn _content_id(cls: &Bound<'_, pyo3::types::PyType>) -> PyResult<Option<String>> {
    reduce::content_id(cls)
}

/// Turn an error raised by `Pickler.dump` into a satchel.PicklingError with a path; `pickler`
/// is the one that failed (its reducer knows the last object it saw).
#[pyfunction]
#[pyo3(signature = (obj, err, pickler=None))]
pub fn _explain(
    obj: &Bound<'_, PyAny>,
    err: Bound<'_, PyAny>,
    pickler: Option<&Bound<'_, PyAny>>,
) -> PyErr {
    let py = obj.py();
    let seen = pickler::seen_by(pickler);
    match catch_panic(py, false, || {
        Ok(diagnose::explain(obj, PyErr::from_value(err), seen))
    }) {
        Ok(e) | Err(e) => e,
    }
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

/// The wire constants as satchel's Rust side has them (tests compare them with the bootstrap).
#[pyfunction]
pub fn _wire(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    crate::wire::table(py)
}

/// Whether `data` opens with a satchel header (a corrupt one counts as none): what
/// `satchel.dask` asks of each task's stream, without reading header bytes itself.
#[pyfunction]
pub fn _has_header(data: &Bound<'_, PyBytes>) -> bool {
    envelope::header::parse(data.as_bytes()).is_ok()
}
