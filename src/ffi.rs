//! The only place that reads CPython structures directly. Everything else goes through pyo3.
//!
//! Reading fields instead of calling `getattr` matters on the hot path: a function's defaults,
//! closure or dict are plain pointers, and `func.__dict__`/`func.__annotations__` getattr would
//! even allocate empty objects as a side effect.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyFunction;

/// The address of an object: the identity key of our caches and of the pickle memo.
#[inline(always)]
pub fn addr(obj: &Bound<'_, PyAny>) -> usize {
    obj.as_ptr() as usize
}

/// The address of an object's type, for exact-type dispatch.
#[inline(always)]
pub fn type_addr(obj: &Bound<'_, PyAny>) -> usize {
    // SAFETY: `obj` is a live object (we hold a reference), so its ob_type is a valid pointer;
    // we only read the pointer value.
    unsafe { ffi::Py_TYPE(obj.as_ptr()) as usize }
}

/// Fields of a function object, borrowed from it. `None` stands for a NULL slot.
pub struct FunctionFields<'py> {
    pub code: Bound<'py, PyAny>,
    pub globals: Bound<'py, PyAny>,
    pub name: Bound<'py, PyAny>,
    pub qualname: Bound<'py, PyAny>,
    pub module: Option<Bound<'py, PyAny>>,
    pub defaults: Option<Bound<'py, PyAny>>,
    pub kwdefaults: Option<Bound<'py, PyAny>>,
    pub closure: Option<Bound<'py, PyAny>>,
    pub doc: Option<Bound<'py, PyAny>>,
    pub dict: Option<Bound<'py, PyAny>>,
    pub has_annotations: bool,
}

/// Turns a possibly-NULL borrowed pointer into an owned reference.
///
/// # Safety
/// `ptr` must be NULL or point to a live object kept alive for `'py` by its owner.
unsafe fn opt<'py>(py: Python<'py>, ptr: *mut ffi::PyObject) -> Option<Bound<'py, PyAny>> {
    // SAFETY: the caller guarantees `ptr` is NULL or a live borrowed object; from_borrowed_ptr_or_opt
    // takes a new strong reference, so the result outlives the borrow.
    unsafe { Bound::from_borrowed_ptr_or_opt(py, ptr) }
}

pub fn function_fields<'py>(func: &Bound<'py, PyFunction>) -> FunctionFields<'py> {
    let py = func.py();
    let raw = func.as_ptr() as *mut ffi::PyFunctionObject;
    // SAFETY: `func` is an exact PyFunction (the type system guarantees it), so `raw` points to a
    // PyFunctionObject of this interpreter's layout (pyo3-ffi picks the layout per version).
    // Code, globals, name and qualname are never NULL on a live function; the others may be, and
    // `opt` maps NULL to None. Each field is a borrowed reference owned by `func`, which we hold.
    unsafe {
        let f = &*raw;
        FunctionFields {
            code: Bound::from_borrowed_ptr(py, f.func_code),
            globals: Bound::from_borrowed_ptr(py, f.func_globals),
            name: Bound::from_borrowed_ptr(py, f.func_name),
            qualname: Bound::from_borrowed_ptr(py, f.func_qualname),
            module: opt(py, f.func_module),
            defaults: opt(py, f.func_defaults),
            kwdefaults: opt(py, f.func_kwdefaults),
            closure: opt(py, f.func_closure),
            doc: opt(py, f.func_doc),
            dict: opt(py, f.func_dict),
            has_annotations: !f.func_annotations.is_null(),
        }
    }
}

/// The contents of a cell, or None if it is empty.
pub fn cell_contents<'py>(cell: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
    // SAFETY: the caller passes an exact cell object (checked by classification). PyCell_Get
    // returns a new reference, or NULL without setting an error when the cell is empty.
    unsafe { Bound::from_owned_ptr_or_opt(cell.py(), ffi::PyCell_Get(cell.as_ptr())) }
}

/// Whether a type object is a heap type (defined by a class statement or `type()`).
pub fn is_heap_type(ty: &Bound<'_, PyAny>) -> bool {
    // SAFETY: classification only calls this with type objects, whose tp_flags is readable.
    unsafe {
        let tp = ty.as_ptr() as *mut ffi::PyTypeObject;
        ffi::PyType_GetFlags(tp) & ffi::Py_TPFLAGS_HEAPTYPE != 0
    }
}

/// `PyType_Check`: true for classes, including those made by metaclasses.
#[inline(always)]
pub fn is_type(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: PyType_Check only reads the flags of the object's (always valid) type.
    unsafe { ffi::PyType_Check(obj.as_ptr()) != 0 }
}

/// `PyModule_Check`: true for modules and their subclasses (lazy modules).
#[inline(always)]
pub fn is_module(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: PyModule_Check only reads the object's type and its MRO.
    unsafe { ffi::PyModule_Check(obj.as_ptr()) != 0 }
}
