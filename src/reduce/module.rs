//! Modules: by reference (imported again on load) unless registered by value or not importable,
//! in which case their namespace travels and loads into a fresh module object that is never put
//! in the receiver's sys.modules.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use super::{byref, call, call_then_set};
use crate::bootstrap::boot;
use crate::typeref::typerefs;

/// Whether a module travels by reference: it is the module imported under its name, and it is
/// not registered by value. (Functions use this too, to know a module global is flat.)
pub fn by_reference(module: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = module.py();
    let name = module.getattr("__name__")?;
    let Ok(name_str) = name.cast::<PyString>() else {
        return Ok(false);
    };
    let imported = typerefs(py)
        .sys_modules
        .bind(py)
        .get_item(&name)?
        .is_some_and(|m| m.is(module));
    Ok(imported && !byref::is_registered(py, name_str.to_str()?))
}

pub fn reduce<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let refs = typerefs(py);
    let name = obj.getattr("__name__")?;
    if by_reference(obj)? {
        return call(&refs.import_module, PyTuple::new(py, [name])?);
    }
    let attrs = PyDict::new(py);
    for (k, v) in obj.getattr("__dict__")?.cast_into::<PyDict>()?.iter() {
        if k.cast::<PyString>()
            .is_ok_and(|k| k.to_str().is_ok_and(|k| k != "__builtins__"))
        {
            attrs.set_item(k, v)?;
        }
    }
    let boot = boot(py);
    call_then_set(
        &boot.make_module,
        PyTuple::new(py, [name])?,
        PyTuple::new(py, [attrs])?.into_any(),
        &boot.module_setstate,
    )
}
