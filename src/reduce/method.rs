//! Bound methods, classmethod/staticmethod objects and properties: rebuilt from their parts
//! (the C pickler refuses the last three; a method rebuilt from its function and instance does
//! not depend on the function being reachable by name). The deprecated `abc.abstractclassmethod`,
//! `abstractstaticmethod` and `abstractproperty` are rebuilt the same way under their own type,
//! which marks them abstract again (cloudpickle's `_classmethod_reduce`; for the property it
//! rebuilds a plain `property`, which forgets that it was abstract).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::{byref, call};
use crate::typeref::typerefs;

/// A bound method: `getattr(self, name)` when `self` (a class) or its class is importable and
/// the lookup gives back this very function bound to this very object (the stdlib's own
/// reduction: the function then needs no pickling at all); else `MethodType(func, self)`.
///
/// A class rebuilt by value gets its attributes only when its state is applied, after
/// everything in that state is built: a class dict holding its own bound classmethods
/// (`A.handlers = {"n": A.up}`, pydantic's validators) would otherwise ask the skeleton for
/// an attribute it does not have yet. `MethodType` needs only the function and the object,
/// which exist by then (DESIGN.md §5). It also means the method runs the function that
/// travelled with it, not whatever a receiver's tracked class holds (cloudpickle's
/// `_method_reduce`).
pub fn reduce_method<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let refs = typerefs(py);
    let func = obj.getattr("__func__")?;
    let owner = obj.getattr("__self__")?;
    let owner_class = if crate::ffi::is_type(&owner) {
        owner.clone()
    } else {
        owner.get_type().into_any()
    };
    if let Ok(name) = func.getattr("__name__") {
        if byref::importable(&owner_class)? {
            if let Ok(again) = owner.getattr(name.cast::<pyo3::types::PyString>()?) {
                let same = again.getattr("__func__").is_ok_and(|f| f.is(&func))
                    && again.getattr("__self__").is_ok_and(|s| s.is(&owner));
                if same {
                    return call(&refs.getattr, PyTuple::new(py, [owner, name])?);
                }
            }
        }
    }
    call(&refs.method_type, PyTuple::new(py, [func, owner])?)
}

/// A classmethod or staticmethod (or their abstract subclasses, classified by exact type):
/// `type(obj)(func)`, the type by reference.
pub fn reduce_descriptor<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let ctor = obj.get_type().into_any();
    let func = obj.getattr("__func__")?;
    // Since 3.10 these wrap like functools.wraps: __doc__, __wrapped__ ... live in __dict__.
    let state = match obj.getattr_opt("__dict__")? {
        Some(d) if d.cast::<PyDict>().is_ok_and(|d| !d.is_empty()) => d,
        _ => py.None().into_bound(py),
    };
    Ok(PyTuple::new(py, [ctor, PyTuple::new(py, [func])?.into_any(), state])?.into_any())
}

/// A property or abstractproperty: `type(obj)(fget, fset, fdel, doc)`.
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
    Ok(PyTuple::new(py, [obj.get_type().into_any(), args.into_any()])?.into_any())
}
