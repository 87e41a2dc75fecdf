//! PyPy's side of `ffi`: what CPython reads from structs, PyPy's cpyext answers only through
//! attributes. cpyext's `PyFunctionObject` has no fields beyond the code (PyPy keeps function
//! state on its own objects, `pypy/module/cpyext/funcobject.py`), and it has no `PyCell_Get`:
//! both go through the documented attributes, which on PyPy are plain field reads of the
//! interpreter's own objects.

use pyo3::prelude::*;
use pyo3::types::PyFunction;

use super::FunctionFields;

/// `obj.name`, with None standing for what CPython keeps as NULL.
fn field<'py>(obj: &Bound<'py, PyAny>, name: &str) -> Option<Bound<'py, PyAny>> {
    obj.getattr(name).ok().filter(|v| !v.is_none())
}

pub fn function_fields<'py>(func: &Bound<'py, PyFunction>) -> FunctionFields<'py> {
    let py = func.py();
    let obj = func.as_any();
    // These four exist on every function (PyPy's getters cannot fail on an exact function);
    // None, should one ever be missing, makes the caller's own checks raise a clear TypeError.
    let required = |name: &str| {
        obj.getattr(name)
            .unwrap_or_else(|_| py.None().into_bound(py))
    };
    // PyPy fills `__annotations__` (and `__dict__`) on first access, as CPython does; only a
    // non-empty one is worth sending, which is what a NULL slot means on CPython.
    let annotations = field(obj, "__annotations__");
    let has_annotations = annotations
        .as_ref()
        .is_some_and(|a| a.len().map_or(true, |n| n != 0));
    FunctionFields {
        code: required("__code__"),
        globals: required("__globals__"),
        name: required("__name__"),
        qualname: required("__qualname__"),
        // CPython's func_module may hold None itself (a module without `__name__`).
        module: obj.getattr("__module__").ok(),
        defaults: field(obj, "__defaults__"),
        kwdefaults: field(obj, "__kwdefaults__"),
        closure: field(obj, "__closure__"),
        doc: obj.getattr("__doc__").ok(),
        dict: field(obj, "__dict__"),
        has_annotations,
    }
}

/// The contents of a cell, or None if it is empty (`cell_contents` raises ValueError then).
pub fn cell_contents<'py>(cell: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
    cell.getattr(pyo3::intern!(cell.py(), "cell_contents")).ok()
}

/// Whether a class is a heap type, as the interpreter says (`__flags__`): cpyext's `tp_flags`
/// has `Py_TPFLAGS_HEAPTYPE` on some built-in classes (`_thread.lock`), which satchel would then
/// try to pickle by value.
pub fn is_heap_type(ty: &Bound<'_, PyAny>) -> bool {
    const HEAPTYPE: u64 = 1 << 9;
    ty.getattr(pyo3::intern!(ty.py(), "__flags__"))
        .and_then(|f| f.extract::<u64>())
        .is_ok_and(|f| f & HEAPTYPE != 0)
}
