//! Bound methods, classmethod/staticmethod objects and properties: rebuilt from their parts
//! (the C pickler refuses the last three; a method rebuilt from its function and instance does
//! not depend on the function being reachable by name).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::call;
use crate::typeref::typerefs;

pub fn reduce_method<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let args = PyTuple::new(py, [obj.getattr("__func__")?, obj.getattr("__self__")?])?;
    call(&typerefs(py).method_type, args)
}

pub fn reduce_descriptor<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let refs = typerefs(py);
    let ctor = if crate::ffi::type_addr(obj) == refs.classmethod {
        refs.classmethod_type.bind(py)
    } else {
        refs.staticmethod_type.bind(py)
    };
    let func = obj.getattr("__func__")?;
    // Since 3.10 these wrap like functools.wraps: __doc__, __wrapped__ ... live in __dict__.
    let state = match obj.getattr_opt("__dict__")? {
        Some(d) if d.cast::<PyDict>().is_ok_and(|d| !d.is_empty()) => d,
        _ => py.None().into_bound(py),
    };
    Ok(PyTuple::new(
        py,
        [ctor.clone(), PyTuple::new(py, [func])?.into_any(), state],
    )?
    .into_any())
}

pub fn reduce_property<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let args = PyTuple::new(
        py,
        [
            obj.getattr("fget")?,
            obj.getattr("fset")?,
            obj.getattr("fdel")?,
            obj.getattr("__doc__")?,
        ],
    )?;
    call(&typerefs(py).property_type, args)
}
