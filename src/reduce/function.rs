//! Functions, lambdas and closures by value: a skeleton `FunctionType(code, base_globals, name,
//! closure)` first, then its state (the globals it reads, defaults, attributes).
//!
//! The closure passes the function's own cell objects, so cells shared between functions stay
//! shared (cloudpickle passes fresh cells and loses that), and a cell that holds the function
//! itself works because cells are filled after they are memoized (see `cell.rs`).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFunction, PyInt, PyList, PyString, PyTuple};

use super::{byref, call_then_set, globals, not_implemented, DumpState};
use crate::bootstrap::boot;
use crate::ffi::{self, addr};
use crate::typeref::typerefs;

/// Module attributes that relative imports and `__file__` users need in a rebuilt globals dict
/// (the same four cloudpickle keeps).
const BASE_GLOBALS: [&str; 4] = ["__package__", "__name__", "__path__", "__file__"];

pub fn reduce<'py>(state: &DumpState, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let func = obj.cast::<PyFunction>()?;
    let f = ffi::function_fields(func);
    if byref::importable_as(obj, f.module.as_ref(), &f.qualname)? {
        return Ok(not_implemented(py));
    }
    let info = globals::code_info(&f.code)?;
    let globals_dict = f.globals.cast::<PyDict>()?;

    let fglobals = PyDict::new(py);
    for name in info.global_names.bind(py).iter() {
        if let Some(value) = globals_dict.get_item(&name)? {
            fglobals.set_item(name, value)?;
        }
    }
    let submodules = submodules(&fglobals, f.closure.as_ref(), info.all_names.bind(py))?;

    let none = || py.None().into_bound(py);
    let closure = f.closure.clone().unwrap_or_else(none);
    let args = PyTuple::new(
        py,
        [
            f.code.clone(),
            base_globals(state, globals_dict)?.into_any(),
            f.name.clone(),
            closure,
        ],
    )?;

    let annotations = if f.has_annotations {
        obj.getattr("__annotations__")?
    } else {
        none()
    };
    let fdict = match f.dict {
        Some(d) if d.cast::<PyDict>().is_ok_and(|d| !d.is_empty()) => d,
        _ => none(),
    };
    let mut fields = vec![
        fglobals.into_any(),
        f.defaults.unwrap_or_else(none),
        f.kwdefaults.unwrap_or_else(none),
        annotations,
        f.qualname.clone(),
        f.module.unwrap_or_else(none),
        f.doc.unwrap_or_else(none),
        fdict,
    ];
    // Optional trailing fields, omitted when empty to keep one-task streams small.
    let type_params = type_params(obj)?;
    if !submodules.is_empty() || type_params.is_some() {
        fields.push(PyTuple::new(py, submodules)?.into_any());
        fields.push(type_params.unwrap_or_else(none));
    }
    let boot = boot(py);
    call_then_set(
        &boot.make_function,
        args,
        PyTuple::new(py, fields)?.into_any(),
        &boot.function_setstate,
    )
}

/// The globals dict the stream builds for functions of one module: one per module per dump, so
/// functions of one module share it within a dump and never across dumps.
fn base_globals<'py>(
    state: &DumpState,
    globals: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyDict>> {
    let py = globals.py();
    let registry = state.globals_ref.bind(py);
    let key = PyInt::new(py, addr(globals.as_any()));
    if let Some(entry) = registry.get_item(&key)? {
        return Ok(entry
            .cast_into::<PyTuple>()?
            .get_item(1)?
            .cast_into::<PyDict>()?);
    }
    let base = PyDict::new(py);
    for name in BASE_GLOBALS {
        if let Some(value) = globals.get_item(name)? {
            base.set_item(name, value)?;
        }
    }
    registry.set_item(key, (globals, &base))?;
    Ok(base)
}

/// Submodules the code reaches by attribute from a module it holds (`os.path`, `xml.dom`):
/// pickling them by reference makes the receiver import them (cloudpickle's
/// `_find_imported_submodules`).
fn submodules<'py>(
    fglobals: &Bound<'py, PyDict>,
    closure: Option<&Bound<'py, PyAny>>,
    names: &Bound<'py, PyTuple>,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let py = fglobals.py();
    let mut roots: Vec<Bound<'py, PyAny>> = fglobals
        .values()
        .iter()
        .filter(|v| ffi::is_module(v))
        .collect();
    if let Some(closure) = closure {
        for cell in closure.cast::<PyTuple>()?.iter() {
            if let Some(v) = ffi::cell_contents(&cell) {
                if ffi::is_module(&v) {
                    roots.push(v);
                }
            }
        }
    }
    let mut found = Vec::new();
    if roots.is_empty() || names.is_empty() {
        return Ok(found);
    }
    let modules = typerefs(py).sys_modules.bind(py);
    let queue = PyList::empty(py);
    for root in roots {
        queue.append(root)?;
    }
    let mut i = 0;
    while i < queue.len() {
        let module = queue.get_item(i)?;
        i += 1;
        let Ok(prefix) = module.getattr("__name__") else {
            continue;
        };
        let Ok(prefix) = prefix.cast_into::<PyString>() else {
            continue;
        };
        for name in names.iter() {
            let full = format!(
                "{}.{}",
                prefix.to_str()?,
                name.cast::<PyString>()?.to_str()?
            );
            if let Some(sub) = modules.get_item(&full)? {
                if !sub.is_none() && !found.iter().any(|f: &Bound<'py, PyAny>| f.is(&sub)) {
                    queue.append(&sub)?;
                    found.push(sub);
                }
            }
        }
    }
    Ok(found)
}

/// `__type_params__` (PEP 695, 3.12+) when non-empty.
fn type_params<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    if !typerefs(obj.py()).has_type_params {
        return Ok(None);
    }
    let params = obj.getattr("__type_params__")?;
    Ok(if params.cast::<PyTuple>().is_ok_and(|t| t.is_empty()) {
        None
    } else {
        Some(params)
    })
}
