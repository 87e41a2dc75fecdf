//! Code objects (nonportable mode): marshal bytes. The interpreter fingerprint pins the marshal
//! format, so marshal carries every CodeType field of every version (3.11's co_linetable and
//! co_exceptiontable, 3.12's and 3.13's changes) without satchel listing them: the one place
//! that knows per-version fields is CPython's marshal itself. Tracebacks keep co_filename and
//! line numbers because they are part of the marshalled code.
//!
//! Determinism: marshal writes a frozenset constant (`x in {"a", "b"}`) in hash order, which
//! changes with PYTHONHASHSEED. Such constants travel as sorted tuples with their paths and are
//! turned back into frozensets by `make_code`.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyFrozenSet, PyTuple};

use super::{call, globals};
use crate::bootstrap::boot;
use crate::error::Error;

pub fn reduce<'py>(
    state: &super::DumpState,
    code: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = code.py();
    if state.portable() {
        let what = code
            .getattr("co_qualname")
            .map(|q| format!("the code object of '{q}'"))
            .unwrap_or_else(|_| "a code object".into());
        return Err(Error::CodeInPortable { what }.into_pyerr(py));
    }
    let (data, fixups) = marshalled(code)?;
    call(
        &boot(py).make_code,
        PyTuple::new(py, [data.into_any(), fixups.into_any()])?,
    )
}

/// marshal bytes and frozenset paths of `code`, cached with its analysis.
pub fn marshalled<'py>(
    code: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyTuple>)> {
    marshalled_with(&*globals::code_info(code)?, code)
}

/// `marshalled` with the analysis already in hand.
pub fn marshalled_with<'py>(
    info: &globals::CodeInfo,
    code: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyTuple>)> {
    let py = code.py();
    if let Some((data, fixups)) = info.marshalled.get() {
        return Ok((data.bind(py).clone(), fixups.bind(py).clone()));
    }
    let mut paths = Vec::new();
    let canonical = canonical_code(code, &mut Vec::new(), &mut paths)?;
    let data = pyo3::marshal::dumps(&canonical, marshal_version(canonical.py())).map_err(|e| {
        let what = code
            .getattr("co_qualname")
            .map(|q| format!("'{q}'"))
            .unwrap_or_else(|_| "a code object".into());
        Error::Unmarshallable {
            what,
            reason: e.to_string(),
        }
        .with_cause(py, e)
    })?;
    let paths: Vec<Bound<'py, PyTuple>> = paths
        .iter()
        .map(|p| PyTuple::new(py, p))
        .collect::<PyResult<_>>()?;
    let fixups = PyTuple::new(py, paths)?;
    // Two threads may both compute it; the first stored result is the one every dump uses.
    let stored = info
        .marshalled
        .get_or_init(|| (data.clone().unbind(), fixups.clone().unbind()));
    Ok((stored.0.bind(py).clone(), stored.1.bind(py).clone()))
}

/// `code` with frozenset constants (in nested code and constant tuples too) replaced by sorted
/// tuples; `paths` collects where each one was.
fn canonical_code<'py>(
    code: &Bound<'py, PyAny>,
    prefix: &mut Vec<usize>,
    paths: &mut Vec<Vec<usize>>,
) -> PyResult<Bound<'py, PyAny>> {
    let consts = code.getattr("co_consts")?.cast_into::<PyTuple>()?;
    let before = paths.len();
    let new_consts = canonical_items(&consts, code, prefix, paths)?;
    if paths.len() == before {
        return Ok(code.clone());
    }
    let kwargs = pyo3::types::PyDict::new(code.py());
    kwargs.set_item("co_consts", new_consts)?;
    code.call_method("replace", (), Some(&kwargs))
}

/// Recursive over nested constant tuples and nested code objects: each level is guarded
/// (`ffi::stack::guard`), so 30,000 nested tuples give a PicklingError, not a segfault.
fn canonical_items<'py>(
    items: &Bound<'py, PyTuple>,
    code: &Bound<'py, PyAny>,
    prefix: &mut Vec<usize>,
    paths: &mut Vec<Vec<usize>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let py = items.py();
    let _level = crate::ffi::stack::guard(py, prefix.len(), || {
        code.getattr("co_qualname")
            .map(|q| format!("the constants of the code of '{q}'"))
            .unwrap_or_else(|_| "the constants of a code object".into())
    })?;
    let code_type = code.get_type();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        prefix.push(i);
        let new = if item.get_type().is(&code_type) {
            canonical_code(&item, prefix, paths)?
        } else if let Ok(fs) = item.cast::<PyFrozenSet>() {
            paths.push(prefix.clone());
            PyTuple::new(fs.py(), super::stdlib::sorted_items(fs)?)?.into_any()
        } else if let Ok(t) = item.cast::<PyTuple>() {
            canonical_items(t, code, prefix, paths)?.into_any()
        } else {
            item
        };
        prefix.pop();
        out.push(new);
    }
    PyTuple::new(py, out)
}

/// This interpreter's own marshal format (`marshal.version`): 3.14 needs version 5 for the
/// slice constants it folds (`xs[1:]`), which pyo3's fixed VERSION (4) cannot write.
fn marshal_version(py: Python<'_>) -> i32 {
    static VERSION: pyo3::sync::PyOnceLock<i32> = pyo3::sync::PyOnceLock::new();
    *VERSION.get_or_init(py, || {
        py.import("marshal")
            .and_then(|m| m.getattr("version")?.extract())
            .unwrap_or(pyo3::marshal::VERSION)
    })
}
