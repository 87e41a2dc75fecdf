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
    let version = marshal_version(py);
    let unmarshallable = |e: PyErr| {
        let what = code
            .getattr("co_qualname")
            .map(|q| format!("'{q}'"))
            .unwrap_or_else(|_| "a code object".into());
        Error::Unmarshallable {
            what,
            reason: e.to_string(),
        }
        .with_cause(py, e)
    };
    let first = pyo3::marshal::dumps(&canonical, version).map_err(unmarshallable)?;
    // marshal flags an object for back-references when its reference count is above one
    // (w_ref in CPython's Python/marshal.c), so the bytes depend on who else holds each
    // constant: the compiler shares equal constant tuples across a whole module, a code object
    // loaded from a stream shares only what the stream shared. A fresh load of the first
    // bytes holds exactly the sharing inside this code, and its marshal bytes are the same in
    // every process, whatever the code's history (cloudpickle's
    // test_dynamic_func_deterministic_roundtrip). Once per code object: the result is cached.
    let fresh = pyo3::marshal::loads(py, first.as_bytes()).map_err(unmarshallable)?;
    let data = pyo3::marshal::dumps(&fresh, version).map_err(unmarshallable)?;
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

/// Units of padding after a probe's bytecode: more than any instruction's inline caches (10
/// on 3.11, 9 on 3.12-3.15).
const PROBE_PAD: usize = 16;

/// Refuse a code object whose bytecode ends inside an instruction's inline caches.
///
/// CPython's `co_code` getter (`_PyCode_GetCode` -> `deopt_code`, 3.11 to 3.15) writes each
/// instruction's cache entries after it without checking the length, so reading `co_code`
/// of `f.__code__.replace(co_code=bytes([LOAD_GLOBAL, 0]))` overruns the heap (found by
/// fuzz/fuzz_dumps.py; marshal and dis read it the same way). The raw units
/// (`_co_code_adaptive`, which is not deoptimized) go into a probe with NOP padding: CPython's
/// own deoptimization of the probe writes CACHE units into the padding exactly when it would
/// have overrun the original. Code the interpreter is running with executors or monitoring
/// (ENTER_EXECUTOR, INSTRUMENTED_*) came from the compiler and is not probed.
pub fn check_bytecode(code: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = code.py();
    let Some(raw) = code.getattr_opt(pyo3::intern!(py, "_co_code_adaptive"))? else {
        return Ok(()); // PyPy: co_code is plain bytes
    };
    let Ok(raw) = raw.cast_into::<PyBytes>() else {
        return Ok(());
    };
    let (nop, unprobed) = probe_opcodes(py)?;
    let raw = raw.as_bytes();
    if raw.chunks_exact(2).any(|unit| unprobed.contains(&unit[0])) {
        return Ok(());
    }
    let pad: Vec<u8> = std::iter::repeat_n([*nop, 0], PROBE_PAD)
        .flatten()
        .collect();
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("co_code", PyBytes::new(py, &[raw, &pad[..]].concat()))?;
    let Ok(probe) = code.call_method("replace", (), Some(&kwargs)) else {
        return Ok(());
    };
    let deopted = probe.getattr("co_code")?.cast_into::<PyBytes>()?;
    if deopted.as_bytes().get(raw.len()..) == Some(&pad[..]) {
        return Ok(());
    }
    let what = code
        .getattr("co_qualname")
        .map(|q| format!("'{q}'"))
        .unwrap_or_else(|_| "a code object".into());
    Err(Error::MalformedBytecode { what }.into_pyerr(py))
}

/// NOP, and the opcodes whose code is not probed (`check_bytecode`), read once.
fn probe_opcodes(py: Python<'_>) -> PyResult<&(u8, Vec<u8>)> {
    static OPCODES: pyo3::sync::PyOnceLock<(u8, Vec<u8>)> = pyo3::sync::PyOnceLock::new();
    OPCODES.get_or_try_init(py, || {
        let dis = py.import("dis")?;
        let opmap = match dis.getattr_opt("_all_opmap")? {
            Some(m) => m,
            None => py.import("opcode")?.getattr("opmap")?,
        };
        let opmap = opmap.cast_into::<pyo3::types::PyDict>()?;
        let nop: u8 = opmap.get_item("NOP")?.map_or(Ok(9), |v| v.extract())?;
        let mut unprobed = Vec::new();
        for item in opmap.items().iter() {
            let (name, op): (String, i64) = item.extract()?;
            if (name == "ENTER_EXECUTOR" || name.starts_with("INSTRUMENTED_")) && op < 256 {
                unprobed.push(op as u8);
            }
        }
        Ok((nop, unprobed))
    })
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
