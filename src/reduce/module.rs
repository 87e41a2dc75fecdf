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
    let Some(name) = module.getattr_opt("__name__")? else {
        return Ok(false);
    };
    let Ok(name_str) = name.cast::<PyString>() else {
        return Ok(false);
    };
    let imported = typerefs(py)
        .sys_modules
        .bind(py)
        .get_item(&name)?
        .is_some_and(|m| m.is(module));
    // A name UTF-8 cannot hold (lone surrogates) is never registered.
    Ok(imported && !name_str.to_str().is_ok_and(|n| byref::is_registered(py, n)))
}

pub fn reduce<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let refs = typerefs(py);
    if by_reference(obj)? {
        let name = obj.getattr("__name__")?;
        return call(&refs.import_module, PyTuple::new(py, [name])?);
    }
    // types.ModuleType wants a str: a module whose __name__ is something else (42) or missing
    // is made under a str and gets its own __name__ back (or none) with its namespace, which
    // holds it. It loaded as `module() argument 'name' must be str` before.
    let name = match obj.getattr_opt("__name__")? {
        Some(n) if n.is_instance_of::<PyString>() => n,
        Some(n) => n.str()?.into_any(),
        None => pyo3::intern!(py, "<module without __name__>")
            .clone()
            .into_any(),
    };
    let attrs = PyDict::new(py);
    // An items() list made in one C call: a str-subclass key's __hash__ runs Python code while
    // `attrs` is filled, and pyo3's dict iterator panics when its dict changes.
    for item in obj
        .getattr("__dict__")?
        .cast_into::<PyDict>()?
        .items()
        .iter()
    {
        let (k, v): (Bound<'py, PyAny>, Bound<'py, PyAny>) = item.extract()?;
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
