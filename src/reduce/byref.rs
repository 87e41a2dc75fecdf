//! By value or by reference (cloudpickle's `_should_pickle_by_reference`): an object goes by
//! reference when `module.qualname` imports back to the very same object, and by value when
//! it lives in `__main__`, in a module that is not imported, behind `<locals>`, or in a module
//! registered by value.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};
use rustc_hash::FxHashSet;

use crate::error::Error;
use crate::typeref::typerefs;

/// Module names registered by value. Registering a package covers its submodules.
static REGISTRY: Mutex<Option<FxHashSet<String>>> = Mutex::new(None);

/// Whether `module_name` or one of its parent packages is registered by value.
pub fn is_registered(module_name: &str) -> bool {
    let Ok(guard) = REGISTRY.lock() else {
        return false;
    };
    let Some(set) = guard.as_ref().filter(|s| !s.is_empty()) else {
        return false;
    };
    let mut name = module_name;
    loop {
        if set.contains(name) {
            return true;
        }
        match name.rfind('.') {
            Some(i) => name = &name[..i],
            None => return false,
        }
    }
}

/// True when `module_name.qualname` resolves, through an imported module that is not
/// `__main__` nor registered by value, to `obj` itself.
pub fn importable_as(
    obj: &Bound<'_, PyAny>,
    module_name: Option<&Bound<'_, PyAny>>,
    qualname: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    let py = obj.py();
    let Some(module_name) = module_name else {
        return Ok(false);
    };
    let Ok(module_name) = module_name.cast::<PyString>() else {
        return Ok(false);
    };
    let Ok(qualname) = qualname.cast::<PyString>() else {
        return Ok(false);
    };
    // A name with lone surrogates (not UTF-8) is never registered (registration takes str
    // names UTF-8 can hold) nor "__main__"; sys.modules may still hold it.
    if let Ok(module_str) = module_name.to_str() {
        if module_str == "__main__" || is_registered(module_str) {
            return Ok(false);
        }
    }
    let Some(module) = typerefs(py).sys_modules.bind(py).get_item(module_name)? else {
        return Ok(false);
    };
    if module.is_none() {
        return Ok(false);
    }
    let mut current = module;
    let Ok(qualname) = qualname.to_str() else {
        // Lone surrogates: split by Python, looked up the same way.
        let parts = qualname.call_method1(pyo3::intern!(py, "split"), (".",))?;
        for part in parts.cast_into::<PyList>()?.iter() {
            match current.getattr(part.cast_into::<PyString>()?) {
                Ok(next) => current = next,
                Err(_) => return Ok(false),
            }
        }
        return Ok(current.is(obj));
    };
    for part in qualname.split('.') {
        if part == "<locals>" {
            return Ok(false);
        }
        match current.getattr(part) {
            Ok(next) => current = next,
            Err(_) => return Ok(false),
        }
    }
    Ok(current.is(obj))
}

/// `importable_as` with the object's own `__module__` and `__qualname__` (or `__name__`).
pub fn importable(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = obj.py();
    let module = obj.getattr(pyo3::intern!(py, "__module__")).ok();
    let name = match obj.getattr(pyo3::intern!(py, "__qualname__")) {
        Ok(q) => q,
        Err(_) => match obj.getattr("__name__") {
            Ok(n) => n,
            Err(_) => return Ok(false),
        },
    };
    importable_as(obj, module.as_ref(), &name)
}

fn module_name(module: &Bound<'_, PyAny>) -> PyResult<String> {
    let py = module.py();
    if !crate::ffi::is_module(module) {
        let what = module.get_type().name()?.to_string();
        return Err(Error::NotAModule {
            what: format!("an object of type {what}"),
        }
        .into_pyerr(py));
    }
    module.getattr("__name__")?.extract()
}

pub fn register_by_value(module: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = module.py();
    let name = module_name(module)?;
    if !typerefs(py).sys_modules.bind(py).contains(&name)? {
        return Err(Error::NotImported { name }.into_pyerr(py));
    }
    let mut guard = REGISTRY.lock().expect("registry lock poisoned");
    guard.get_or_insert_with(FxHashSet::default).insert(name);
    Ok(())
}

pub fn unregister_by_value(module: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = module.py();
    let name = module_name(module)?;
    let removed = {
        let mut guard = REGISTRY.lock().expect("registry lock poisoned");
        guard.as_mut().is_some_and(|set| set.remove(&name))
    };
    if !removed {
        return Err(Error::NotRegistered { name }.into_pyerr(py));
    }
    Ok(())
}

pub fn list_registry(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    // Python is never called with the lock held (a GC pass could run arbitrary code).
    let mut names: Vec<String> = {
        let guard = REGISTRY.lock().expect("registry lock poisoned");
        guard
            .as_ref()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    };
    names.sort();
    PyList::new(py, names)
}
