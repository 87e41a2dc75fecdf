//! By value or by reference (cloudpickle's `_should_pickle_by_reference`): an object goes by
//! reference when `module.qualname` imports back to the very same object, and by value when
//! it lives in `__main__`, in a module that is not imported, behind `<locals>`, or in a module
//! registered by value, with satchel or with cloudpickle.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyList, PyModule, PySet, PyString};
use rustc_hash::FxHashSet;

use crate::error::Error;
use crate::typeref::typerefs;

/// Module names registered by value. Registering a package covers its submodules.
static REGISTRY: Mutex<Option<FxHashSet<String>>> = Mutex::new(None);

/// `module_name` and each of its parent packages, innermost first.
fn self_and_parents(module_name: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(module_name), |name| {
        name.rfind('.').map(|i| &name[..i])
    })
}

/// Whether `module_name` or one of its parent packages is registered by value, with satchel
/// or with cloudpickle.
pub fn is_registered(py: Python<'_>, module_name: &str) -> bool {
    registered_here(module_name) || registered_with_cloudpickle(py, module_name)
}

fn registered_here(module_name: &str) -> bool {
    let Ok(guard) = REGISTRY.lock() else {
        return false;
    };
    let Some(set) = guard.as_ref().filter(|s| !s.is_empty()) else {
        return false;
    };
    self_and_parents(module_name).any(|name| set.contains(name))
}

/// cloudpickle's own registry, the set of names `cloudpickle.register_pickle_by_value` fills
/// (`cloudpickle.cloudpickle._PICKLE_BY_VALUE_MODULES`, the same in cloudpickle 2.x and 3.x),
/// when cloudpickle is imported and the set is not empty. Code that registered modules with
/// cloudpickle (distributed, Ray, user code written for cloudpickle) keeps them by value under
/// satchel. This runs for every by-reference function and class, so it never imports
/// cloudpickle: one sys.modules lookup when cloudpickle is not imported, one more dict lookup
/// when its registry is empty. The module dict is read directly, so a module `__getattr__`
/// (satchel's own cloudpickle shim has one) is never called.
fn cloudpickle_registry(py: Python<'_>) -> Option<Bound<'_, PySet>> {
    let modules = typerefs(py).sys_modules.bind(py);
    let module = modules
        .get_item(pyo3::intern!(py, "cloudpickle.cloudpickle"))
        .ok()??;
    let module = module.cast_into::<PyModule>().ok()?;
    let set = module
        .dict()
        .get_item(pyo3::intern!(py, "_PICKLE_BY_VALUE_MODULES"))
        .ok()??;
    set.cast_into::<PySet>().ok().filter(|s| !s.is_empty())
}

fn registered_with_cloudpickle(py: Python<'_>, module_name: &str) -> bool {
    let Some(set) = cloudpickle_registry(py) else {
        return false;
    };
    // A registry holds a few names: comparing with each costs less than building and hashing
    // a Python string per parent package.
    if set.len() <= 8 {
        return set.iter().any(|entry| {
            entry
                .cast::<PyString>()
                .ok()
                .and_then(|e| e.to_str().ok().map(|e| covers(e, module_name)))
                .unwrap_or(false)
        });
    }
    self_and_parents(module_name).any(|name| set.contains(name).unwrap_or(false))
}

/// Whether registering `registered` covers `module_name`: itself or a submodule.
fn covers(registered: &str, module_name: &str) -> bool {
    module_name
        .strip_prefix(registered)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
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
        if module_str == "__main__" || is_registered(py, module_str) {
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
        let what = module.str()?.to_string();
        return Err(Error::NotAModule { what }.into_pyerr(py));
    }
    module.getattr("__name__")?.extract()
}

pub fn register_by_value(module: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = module.py();
    let name = module_name(module)?;
    if !typerefs(py).sys_modules.bind(py).contains(&name)? {
        let module = module.repr()?.to_string();
        return Err(Error::NotImported { module }.into_pyerr(py));
    }
    let mut guard = REGISTRY.lock().expect("registry lock poisoned");
    guard.get_or_insert_with(FxHashSet::default).insert(name);
    Ok(())
}

/// Removes the module from satchel's registry. One registered only with cloudpickle stays
/// registered there (it is cloudpickle's to undo), and gets the error that says so.
pub fn unregister_by_value(module: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = module.py();
    let name = module_name(module)?;
    let removed = {
        let mut guard = REGISTRY.lock().expect("registry lock poisoned");
        guard.as_mut().is_some_and(|set| set.remove(&name))
    };
    if !removed {
        let repr = module.repr()?.to_string();
        let with_cloudpickle =
            cloudpickle_registry(py).is_some_and(|set| set.contains(&name).unwrap_or(false));
        let error = if with_cloudpickle {
            Error::RegisteredWithCloudpickle { module: repr }
        } else {
            Error::NotRegistered { module: repr }
        };
        return Err(error.into_pyerr(py));
    }
    Ok(())
}

/// The names registered with satchel and with cloudpickle (when it is imported), sorted.
pub fn list_registry(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    // Python is never called with the lock held (a GC pass could run arbitrary code).
    let mut names: Vec<String> = {
        let guard = REGISTRY.lock().expect("registry lock poisoned");
        guard
            .as_ref()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    };
    if let Some(set) = cloudpickle_registry(py) {
        for name in set.iter() {
            if let Ok(name) = name.extract::<String>() {
                names.push(name);
            }
        }
    }
    names.sort();
    names.dedup();
    PyList::new(py, names)
}
