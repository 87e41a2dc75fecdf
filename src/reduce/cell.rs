//! Cells: filled at once when the contents are atomic; otherwise an empty cell first, its
//! contents set after it is memoized, so a cell may hold the function whose closure it belongs
//! to (recursive closures). Either way a shared cell stays one object.
//!
//! A class body's `__classdict__` cell (3.12+: PEP 695 scopes; 3.14+: every `__annotate__`
//! function of an annotated class or method) holds the class's own dict. It travels as
//! `vars(cls)`, so on the receiver it is a live view of the rebuilt class's namespace, as on
//! the sender, rather than a copy of the dict (whose `_abc_impl` of an ABC cannot pickle).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple, PyType};

use super::{call, call_then_set, DumpState, Reduced};
use crate::bootstrap::boot;
use crate::ffi;
use crate::typeref::typerefs;

pub fn reduce<'py>(state: &DumpState, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let boot = boot(py);
    match ffi::cell_contents(obj) {
        None => call(&boot.make_cell, PyTuple::empty(py)),
        Some(value) if value.is_exact_instance_of::<PyDict>() && is_class_dict(&value)? => {
            let owner = match state.class_of_dict(&value) {
                Some(cls) => Some(cls),
                None => owner_of(state, &value)?,
            };
            let value = match owner {
                // Set after the cell is memoized: the class may not be pickled yet, and its
                // state reaches this cell again.
                Some(cls) => Reduced::new(
                    py,
                    typerefs(py).vars.bind(py).clone(),
                    PyTuple::new(py, [cls])?,
                )?
                .into_any(),
                None => value,
            };
            call_then_set(
                &boot.make_cell,
                PyTuple::empty(py),
                PyTuple::new(py, [value])?.into_any(),
                &boot.cell_setstate,
            )
        }
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

/// Whether a dict looks like a class's own dict: every class dict has `__module__` (type_new
/// sets it), which module globals and keyword dicts do not. Only then is its owner looked for.
pub(super) fn is_class_dict(dict: &Bound<'_, PyAny>) -> PyResult<bool> {
    // Interned: a &str key would make and hash a new string for every cell holding a dict.
    dict.cast::<PyDict>()?
        .contains(pyo3::intern!(dict.py(), "__module__"))
}

/// The heap class whose own dict is `dict`, when this dump has not reduced it (yet): a
/// function of its body pickled before the class itself (`C.__annotate__` alone). Found among
/// the dict's referrers, which include its class (type_traverse visits tp_dict); rare, so the
/// scan's cost does not matter.
pub(super) fn owner_of<'py>(
    state: &DumpState,
    dict: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyType>>> {
    let py = dict.py();
    let referrers = py
        .import("gc")?
        .getattr("get_referrers")?
        .call1((dict,))?
        .cast_into::<PyList>()?;
    for candidate in referrers.iter() {
        let Ok(cls) = candidate.cast::<PyType>() else {
            continue;
        };
        if ffi::is_heap_type(&candidate) && ffi::type_dict_addr(cls) == ffi::addr(dict) {
            state.note_class(cls);
            return Ok(Some(cls.clone()));
        }
    }
    Ok(None)
}
