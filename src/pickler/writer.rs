//! The file `dumps` gives the C pickler.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::error::catch_panic;
use crate::typeref::typerefs;

/// The file `dumps` gives the C pickler: it keeps the chunks the pickler writes and hands a
/// single chunk back as is, where BytesIO would copy it in and copy it out again.
#[pyclass(module = "satchel._satchel", frozen)]
pub struct Writer {
    chunks: Mutex<Vec<Py<PyAny>>>,
}

#[pymethods]
impl Writer {
    #[new]
    pub fn new() -> Self {
        Writer {
            chunks: Mutex::new(Vec::new()),
        }
    }

    /// Called by the pickler with bytes, or (for large buffers) a memoryview, which is copied
    /// because its owner may change it after the call.
    fn write(&self, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        catch_panic(data.py(), false, || self.keep(data))
    }

    pub fn getvalue<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        catch_panic(py, false, || self.joined(py))
    }
}

impl Writer {
    fn keep(&self, data: &Bound<'_, PyAny>) -> PyResult<usize> {
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

    fn joined<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let chunks = std::mem::take(&mut *self.chunks.lock().expect("writer lock"));
        if chunks.len() == 1 {
            return Ok(chunks[0].bind(py).clone().cast_into::<PyBytes>()?);
        }
        // bytes.join: one uninitialised allocation and a copy of each chunk. PyBytes::new_with
        // zero-fills its buffer first, which cost 1% of a 1.6 MB plain-data dump.
        let parts = pyo3::types::PyList::new(py, chunks)?;
        PyBytes::new(py, b"")
            .call_method1(pyo3::intern!(py, "join"), (parts,))?
            .cast_into::<PyBytes>()
            .map_err(Into::into)
    }
}
