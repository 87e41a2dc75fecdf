//! satchel's Rust core: the reducer behind `satchel.Pickler.reducer_override`, the code
//! analysis caches, and `dumps`/`dump` without a Python frame.

// First: its macros (the wire module names as literals) are used by the modules below.
#[macro_use]
mod wire;

mod allow;
mod api;
mod bootstrap;
mod diagnose;
mod envelope;
mod error;
mod ffi;
mod pickler;
mod reduce;
mod typeref;

use pyo3::prelude::*;

#[pymodule]
fn _satchel(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    typeref::init(py)?;
    bootstrap::init(py)?;
    // The one place the version lives is Cargo.toml: maturin gives it to the wheel's metadata
    // (pyproject.toml's dynamic version) and the compiler to satchel.__version__.
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("BOOTSTRAP_SOURCE", api::bootstrap_source(py))?;
    m.add("BOOTSTRAP_MODULE_NAME", wire::BOOT_MODULE)?;
    m.add("PicklingError", error::pickling_error_type(py)?.bind(py))?;
    let boot = bootstrap::boot(py).module.bind(py);
    for name in [
        "UnpicklingError",
        "IncompatibleFormat",
        "IncompatibleInterpreter",
        "FORMAT_VERSION",
    ] {
        m.add(name, boot.getattr(name)?)?;
    }
    // Suspended generators resume through the bootstrap's generator_setstate, which finds
    // this function in its own module; the frame layout self-test runs now, at import.
    let resume = wrap_pyfunction!(reduce::generator::_resume_generator, m)?;
    boot.setattr("_resume_generator", &resume)?;
    m.add(
        "LIVE_GENERATORS",
        match reduce::generator::usable(py) {
            Ok(layout) => layout.tag(),
            Err(reason) => format!("unsupported: {reason}"),
        },
    )?;
    m.add(
        "OVERRIDE_BEFORE_MEMO",
        typeref::typerefs(py).override_before_memo,
    )?;
    m.add_class::<allow::AllowList>()?;
    m.add("SignatureError", error::signature_error_type(py)?.bind(py))?;
    m.add_class::<pickler::Reducer>()?;
    m.add_class::<pickler::ReducerOverride>()?;
    m.add_class::<pickler::writer::Writer>()?;
    m.add_class::<pickler::options::StreamOptions>()?;
    m.add_class::<envelope::buffers::BufferSink>()?;
    m.add_class::<ffi::OwnedBytes>()?;
    m.add_class::<reduce::Reduced>()?;
    m.add_function(wrap_pyfunction!(api::dumps, m)?)?;
    #[cfg(PyPy)]
    m.add_function(wrap_pyfunction!(_cpyext_ready, m)?)?;
    #[cfg(PyPy)]
    m.add_function(wrap_pyfunction!(_pypy_fast_unpickle, m)?)?;
    m.add_function(wrap_pyfunction!(api::loads, m)?)?;
    m.add_function(wrap_pyfunction!(api::_loads_with, m)?)?;
    m.add_function(wrap_pyfunction!(api::inspect, m)?)?;
    m.add_function(wrap_pyfunction!(api::_set_portable, m)?)?;
    m.add_function(wrap_pyfunction!(api::_set_session, m)?)?;
    m.add_function(wrap_pyfunction!(api::_take_generators, m)?)?;
    m.add_function(wrap_pyfunction!(envelope::extent::_pickle_extent, m)?)?;
    m.add_function(wrap_pyfunction!(envelope::compress::zstd_decompress, m)?)?;
    m.add_function(wrap_pyfunction!(envelope::buffers::zstd_load_buffers, m)?)?;
    m.add(
        "FINGERPRINT",
        pyo3::types::PyBytes::new(py, &envelope::fingerprint::fingerprint(py)?.digest),
    )?;
    m.add(
        "FINGERPRINT_TEXT",
        envelope::fingerprint::fingerprint(py)?.text.as_str(),
    )?;
    m.add(
        "LABEL",
        envelope::fingerprint::fingerprint(py)?.label.as_str(),
    )?;
    m.add_function(wrap_pyfunction!(api::dump, m)?)?;
    m.add_function(wrap_pyfunction!(api::_explain, m)?)?;
    m.add_function(wrap_pyfunction!(api::_reset_reducer, m)?)?;
    m.add_function(wrap_pyfunction!(api::_content_id, m)?)?;
    m.add_function(wrap_pyfunction!(api::_wire, m)?)?;
    m.add_function(wrap_pyfunction!(api::_has_header, m)?)?;
    m.add_function(wrap_pyfunction!(api::_register_pickler, m)?)?;
    m.add_function(wrap_pyfunction!(api::register_pickle_by_value, m)?)?;
    m.add_function(wrap_pyfunction!(api::unregister_pickle_by_value, m)?)?;
    m.add_function(wrap_pyfunction!(api::list_registry_pickle_by_value, m)?)?;
    m.add_function(wrap_pyfunction!(api::bootstrap_module, m)?)?;
    m.add_function(wrap_pyfunction!(bootstrap::lean_module, m)?)?;
    m.add("LEAN_MODULE_NAME", wire::LEAN_MODULE)?;
    m.add("LEAN_MODULE_1_4_NAME", wire::LEAN_MODULE_1_4)?;
    Ok(())
}

/// Does nothing with `obj`, which cpyext makes a C object of on the way in. PyPy 8.0's cpyext
/// crashes (unbounded recursion, SIGSEGV) making one of a `__dict__`/`__weakref__` getset
/// descriptor whose class it has not made one of yet; `satchel._pickler` passes the class
/// through here first.
#[cfg(PyPy)]
#[pyfunction]
fn _cpyext_ready(obj: &Bound<'_, PyAny>) {
    let _ = obj;
}

/// Whether PyPy's own unpickler may load `data` (a bytes or buffer): the stream holds nothing a
/// damaged copy of which crashes it (`envelope::pypy_scan`); else satchel uses the pure-Python
/// unpickler (`satchel._pypy.safe_loads`).
#[cfg(PyPy)]
#[pyfunction]
fn _pypy_fast_unpickle(data: &Bound<'_, PyAny>) -> PyResult<bool> {
    let view = pyo3::buffer::PyBuffer::<u8>::get(data)?;
    if !view.is_c_contiguous() {
        return Ok(false);
    }
    Ok(envelope::pypy_scan::fast_path_ok(ffi::buffer_bytes(&view)))
}
