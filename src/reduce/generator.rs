//! Generators and coroutines that are not running (docs/FORMAT.md). A not-yet-started one is
//! its function and the arguments it was called with: `make_generator(func, args, kwargs)`,
//! which works in both modes (in portable mode the function travels as source). A finished one
//! is an exhausted generator. A suspended one needs its frame state: that is issue 4 (live
//! generators); until then it is refused with a clear error, as is a running one.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::{byref, call};
use crate::bootstrap::boot;
use crate::error::Error;

/// CO_VARARGS and CO_VARKEYWORDS (Include/cpython/code.h).
const CO_VARARGS: u32 = 0x4;
const CO_VARKEYWORDS: u32 = 0x8;

pub fn reduce<'py>(obj: &Bound<'py, PyAny>, kind: &str) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let (frame_attr, running_attr, suspended_attr) = match kind {
        "coroutine" => ("cr_frame", "cr_running", "cr_suspended"),
        _ => ("gi_frame", "gi_running", "gi_suspended"),
    };
    let what = format!("{kind} '{}'", obj.getattr("__qualname__")?);
    let frame = obj.getattr(frame_attr)?;
    if frame.is_none() {
        return call(&boot(py).exhausted_generator, PyTuple::empty(py));
    }
    if obj.getattr(running_attr)?.is_truthy()? {
        return Err(Error::GeneratorState {
            what,
            state: "running".into(),
        }
        .into_pyerr(py));
    }
    if obj.getattr(suspended_attr)?.is_truthy()? {
        return Err(Error::GeneratorState {
            what,
            state: "suspended".into(),
        }
        .into_pyerr(py));
    }
    let code = frame.getattr("f_code")?;
    let locals = frame.getattr("f_locals")?.cast_into::<PyDict>()?;
    let func = function_of(obj, &code, &frame, &locals)?;
    let (args, kwargs) = arguments(&code, &locals)?;
    call(
        &boot(py).make_generator,
        PyTuple::new(py, [func, args.into_any(), kwargs.into_any()])?,
    )
}

/// The generator's function: the function object its frame holds (CPython keeps it there,
/// 3.11-3.14; gc.get_referents sees it), so closure cells shared with other functions stay
/// shared; else the importable original when its code is this code; else one rebuilt from the
/// code, the frame's globals and its free variables' values.
fn function_of<'py>(
    obj: &Bound<'py, PyAny>,
    code: &Bound<'py, PyAny>,
    frame: &Bound<'py, PyAny>,
    locals: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let function_type = py.import("types")?.getattr("FunctionType")?;
    let referents = py.import("gc")?.getattr("get_referents")?.call1((obj,))?;
    for candidate in referents.try_iter()? {
        let candidate = candidate?;
        if candidate.get_type().is(&function_type) && candidate.getattr("__code__")?.is(code) {
            return Ok(candidate);
        }
    }
    let globals = frame.getattr("f_globals")?;
    let module = globals.get_item("__name__").ok();
    let qualname = obj.getattr("__qualname__")?;
    if let Some(module) = module.as_ref() {
        if let Some(original) = lookup(module, &qualname) {
            if original.getattr("__code__").is_ok_and(|c| c.is(code))
                && byref::importable(&original)?
            {
                return Ok(original);
            }
        }
    }
    let cells = PyList::empty(py);
    let cell_type = py.import("types")?.getattr("CellType")?;
    for name in code.getattr("co_freevars")?.cast_into::<PyTuple>()?.iter() {
        let cell = match locals.get_item(&name)? {
            Some(value) => cell_type.call1((value,))?,
            None => cell_type.call0()?,
        };
        cells.append(cell)?;
    }
    let closure = if cells.is_empty() {
        py.None().into_bound(py)
    } else {
        cells.to_tuple().into_any()
    };
    let function_type = py.import("types")?.getattr("FunctionType")?;
    let func =
        function_type.call1((code, globals, obj.getattr("__name__")?, py.None(), closure))?;
    func.setattr("__qualname__", qualname)?;
    Ok(func)
}

fn lookup<'py>(
    module: &Bound<'py, PyAny>,
    qualname: &Bound<'py, PyAny>,
) -> Option<Bound<'py, PyAny>> {
    let py = module.py();
    let mut current = py
        .import("sys")
        .ok()?
        .getattr("modules")
        .ok()?
        .get_item(module)
        .ok()?;
    for part in qualname.to_string().split('.') {
        current = current.getattr(part).ok()?;
    }
    Some(current)
}

/// The call's arguments, from a frame that has not started: positional (and *args) in order,
/// keyword-only and **kwargs by name.
fn arguments<'py>(
    code: &Bound<'py, PyAny>,
    locals: &Bound<'py, PyDict>,
) -> PyResult<(Bound<'py, PyTuple>, Bound<'py, PyDict>)> {
    let py = code.py();
    let names = code.getattr("co_varnames")?.cast_into::<PyTuple>()?;
    let argcount: usize = code.getattr("co_argcount")?.extract()?;
    let kwonly: usize = code.getattr("co_kwonlyargcount")?.extract()?;
    let flags: u32 = code.getattr("co_flags")?.extract()?;
    let value = |i: usize| -> PyResult<Bound<'py, PyAny>> {
        let name = names.get_item(i)?;
        locals.get_item(&name)?.ok_or_else(|| {
            pyo3::exceptions::PyValueError::new_err(format!("argument {name} is not bound"))
        })
    };
    let mut args = Vec::new();
    for i in 0..argcount {
        args.push(value(i)?);
    }
    let kwargs = PyDict::new(py);
    let mut next = argcount + kwonly;
    if flags & CO_VARARGS != 0 {
        args.extend(value(next)?.cast_into::<PyTuple>()?.iter());
        next += 1;
    }
    for i in argcount..argcount + kwonly {
        kwargs.set_item(names.get_item(i)?, value(i)?)?;
    }
    if flags & CO_VARKEYWORDS != 0 {
        kwargs.update(value(next)?.cast_into::<PyDict>()?.as_mapping())?;
    }
    Ok((PyTuple::new(py, args)?, kwargs))
}
