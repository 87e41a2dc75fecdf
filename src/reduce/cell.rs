//! Cells: filled at once when the contents are atomic; otherwise an empty cell first, its
//! contents set after it is memoized, so a cell may hold the function whose closure it belongs
//! to (recursive closures). Either way a shared cell stays one object.

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::{call, call_then_set};
use crate::bootstrap::boot;
use crate::ffi;

pub fn reduce<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let boot = boot(py);
    match ffi::cell_contents(obj) {
        None => call(&boot.make_cell, PyTuple::empty(py)),
        Some(value) if super::function::is_flat_value(&value) => {
            call(&boot.make_cell, PyTuple::new(py, [value])?)
        }
        Some(value) => {
            // A frozenset would pickle in hash order.
            let value = super::determinism::sorted_sets(&value)?.unwrap_or(value);
            call_then_set(
                &boot.make_cell,
                PyTuple::empty(py),
                PyTuple::new(py, [value])?.into_any(),
                &boot.cell_setstate,
            )
        }
    }
}
