//! memoryview: the C pickler refuses it, cloudpickle sends `bytes(view.tobytes())` and the
//! receiver gets bytes. satchel sends the same bytes and gives a memoryview back:
//! `memoryview(data)`, or `methodcaller("cast", format, shape)(memoryview(data))` for any other
//! format or shape (a 1-D view's shape left out). All stdlib callables, so a stdlib-only receiver rebuilds it.
//!
//! - `data` is bytes for a read-only view and bytearray for a writable one, so the loaded view
//!   is as writable as the original. When the view shows the whole of a bytes (bytearray)
//!   object, contiguously, `data` is that object itself: pickled with it in one stream, the
//!   view stays a view of it. Otherwise `data` is a copy of what the view shows and nothing
//!   more (a slice never ships the rest of its buffer).
//! - A non-contiguous view (a slice with a step, a transposed array) loads as a C-contiguous
//!   view with the same format, shape and elements (`tolist()` is equal); its strides are not
//!   kept: no view shares memory across a process boundary anyway.
//! - A format `memoryview.cast` cannot make (only native single-character formats: not '<i',
//!   'T{...}' structs or 'Zd'), or a shape with a zero in it, loads as a flat unsigned-byte view
//!   of the same bytes (`tobytes()` is equal; `format` and `shape` are not).
//! - A released memoryview is an error.

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyTuple};

use super::{call, Reduced};
use crate::error::Error;
use crate::typeref::typerefs;

pub fn reduce<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let refs = typerefs(py);
    // Every attribute of a released view raises ValueError.
    let Ok(format) = obj.getattr("format") else {
        return Err(Error::ReleasedMemoryview.into_pyerr(py));
    };
    let shape = obj.getattr("shape")?.cast_into::<PyTuple>()?;
    let readonly = obj.getattr("readonly")?.is_truthy()?;
    let data = data_of(obj, readonly)?;
    let flat = shape.len() == 1 && format.extract::<&str>()? == "B";
    let memoryview = refs.memoryview_type.bind(py);
    if flat {
        return call(&refs.memoryview_type, PyTuple::new(py, [data])?);
    }
    // What the receiver will do, tried here on the data itself (a view, no copy): the formats
    // and shapes `cast` accepts are the interpreter's to decide.
    let view = memoryview.call1((&data,))?;
    if view.call_method1("cast", (&format, &shape)).is_err() {
        return call(&refs.memoryview_type, PyTuple::new(py, [data])?);
    }
    // A 1-D view's shape follows from its length: left out (shorter, and PyPy 3.9 mishandles
    // an explicit one on a writable view).
    let cast = if shape.len() == 1 {
        refs.methodcaller.bind(py).call1(("cast", format))?
    } else {
        refs.methodcaller.bind(py).call1(("cast", format, shape))?
    };
    let inner = Reduced::new(py, memoryview.clone(), PyTuple::new(py, [data])?)?;
    Ok(PyTuple::new(py, [cast, PyTuple::new(py, [inner])?.into_any()])?.into_any())
}

/// The bytes the view shows, in C order: its exporting object when that is exactly them.
fn data_of<'py>(obj: &Bound<'py, PyAny>, readonly: bool) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let exporter = obj.getattr("obj")?;
    let same_kind = if readonly {
        exporter.is_exact_instance_of::<PyBytes>()
    } else {
        exporter.is_exact_instance_of::<PyByteArray>()
    };
    // A C-contiguous view as long as its exporter starts where it does: it is all of it.
    if same_kind
        && obj.getattr("c_contiguous")?.is_truthy()?
        && obj.getattr("nbytes")?.extract::<usize>()? == exporter.len()?
    {
        return Ok(exporter);
    }
    if readonly {
        obj.call_method0("tobytes")
    } else {
        typerefs(py).bytearray_type.bind(py).call1((obj,))
    }
}
