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
            PyTuple::new(fs.py(), super::determinism::sorted_items(fs)?)?.into_any()
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
/// have overrun the original. Bytecode with INSTRUMENTED_LINE, INSTRUMENTED_INSTRUCTION or
/// ENTER_EXECUTOR units is refused unless the monitoring data or executors the getter reads for
/// them exist (`ffi::frame::deinstrument`); when they do, it is instrumented code the
/// interpreter made, and is not probed.
pub fn check_bytecode(code: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = code.py();
    let Some(raw) = code.getattr_opt(pyo3::intern!(py, "_co_code_adaptive"))? else {
        return Ok(()); // PyPy: co_code is plain bytes
    };
    let Ok(raw) = raw.cast_into::<PyBytes>() else {
        return Ok(());
    };
    let ops = probe_opcodes(py)?;
    let raw = raw.as_bytes();
    let what = || {
        code.getattr("co_qualname")
            .map(|q| format!("'{q}'"))
            .unwrap_or_else(|_| "a code object".into())
    };
    if raw
        .chunks_exact(2)
        .any(|unit| ops.unprobed.contains(&unit[0]))
    {
        // Maybe instrumented (sys.monitoring, tracing) or optimized code, or only cache
        // entries whose bytes look like such opcodes: walk the instructions to tell. An
        // INSTRUMENTED_LINE / INSTRUMENTED_INSTRUCTION / ENTER_EXECUTOR instruction makes the
        // getter read monitoring data or executors, which the interpreter made for code it ran
        // and a code object built from arbitrary bytes lacks. Real instrumented code is trusted
        // (a probe copy would lack that data too); with no known layout, as before.
        use crate::ffi::frame::{active, deinstrument, Deinstrument};
        let Ok(layout) = active(py) else {
            return Ok(());
        };
        let special = |op: u8| {
            let op = i32::from(op);
            op == layout.op_instrumented_line
                || op == layout.op_instrumented_instruction
                || op == layout.op_enter_executor
        };
        let mut found: Vec<(u8, u8)> = Vec::new();
        let mut at = 0;
        while let Some(unit) = raw.get(at..at + 2) {
            if special(unit[0]) {
                found.push((unit[0], unit[1]));
                break; // what follows depends on the original instruction
            }
            at += 2 * (1 + usize::from(ops.caches[usize::from(unit[0])]));
        }
        match deinstrument(code, &found, layout) {
            Deinstrument::Missing => {
                return Err(Error::MalformedBytecode { what: what() }.into_pyerr(py))
            }
            Deinstrument::Nothing => {} // only table-deinstrumented opcodes: probe
            Deinstrument::Present => return Ok(()),
        }
    }
    let nop = ops.nop;
    let pad: Vec<u8> = std::iter::repeat_n([nop, 0], PROBE_PAD).flatten().collect();
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("co_code", PyBytes::new(py, &[raw, &pad[..]].concat()))?;
    // The probe needs the bytecode only. Without its constants, the code constructor does not
    // walk them: it interns strings in nested constant tuples by unbounded C recursion, which
    // ran off a thread's small stack (threading.stack_size) before any depth check of satchel's.
    kwargs.set_item("co_consts", PyTuple::empty(py))?;
    let Ok(probe) = code.call_method("replace", (), Some(&kwargs)) else {
        return Ok(());
    };
    let deopted = probe.getattr("co_code")?.cast_into::<PyBytes>()?;
    if deopted.as_bytes().get(raw.len()..) == Some(&pad[..]) {
        return Ok(());
    }
    Err(Error::MalformedBytecode { what: what() }.into_pyerr(py))
}

/// What `check_bytecode` needs of this interpreter's opcodes, read once from `dis`/`opcode`.
struct ProbeOpcodes {
    nop: u8,
    /// ENTER_EXECUTOR and INSTRUMENTED_*: seen in a unit, the instructions are walked.
    unprobed: Vec<u8>,
    /// Inline cache entries after each opcode (a specialized or instrumented one has its
    /// base instruction's).
    caches: [u8; 256],
}

fn probe_opcodes(py: Python<'_>) -> PyResult<&ProbeOpcodes> {
    static OPCODES: pyo3::sync::PyOnceLock<ProbeOpcodes> = pyo3::sync::PyOnceLock::new();
    OPCODES.get_or_try_init(py, || {
        let dis = py.import("dis")?;
        let opcode = py.import("opcode")?;
        let opmap = match dis.getattr_opt("_all_opmap")? {
            Some(m) => m,
            None => opcode.getattr("opmap")?,
        };
        let opmap = opmap.cast_into::<pyo3::types::PyDict>()?;
        let nop: u8 = opmap.get_item("NOP")?.map_or(Ok(9), |v| v.extract())?;
        // specialized name -> base name (3.11+: `opcode._specializations`).
        let mut base = std::collections::HashMap::<String, String>::new();
        if let Some(specs) = opcode.getattr_opt("_specializations")? {
            for item in specs.call_method0("items")?.try_iter()? {
                let (name, specialized): (String, Bound<'_, PyAny>) = item?.extract()?;
                for s in specialized.try_iter()? {
                    base.insert(s?.extract()?, name.clone());
                }
            }
        }
        // 3.11/3.12: a list by opcode; 3.13+: a mapping by name.
        let entries = opcode.getattr_opt("_inline_cache_entries")?;
        let by_op = entries
            .as_ref()
            .is_some_and(|e| e.is_instance_of::<pyo3::types::PyList>());
        let mut unprobed = Vec::new();
        let mut caches = [0u8; 256];
        for item in opmap.items().iter() {
            let (name, op): (String, i64) = item.extract()?;
            let Ok(op) = u8::try_from(op) else {
                continue;
            };
            if name == "ENTER_EXECUTOR" || name.starts_with("INSTRUMENTED_") {
                unprobed.push(op);
            }
            let mut of = base.get(&name).cloned().unwrap_or_else(|| name.clone());
            if let Some(plain) = of.strip_prefix("INSTRUMENTED_") {
                if opmap.contains(plain)? {
                    of = plain.to_owned();
                }
            }
            let Some(entries) = &entries else { continue };
            let count = if by_op {
                match opmap.get_item(&of)? {
                    Some(base_op) => entries.get_item(base_op).and_then(|c| c.extract()),
                    None => Ok(0),
                }
            } else {
                entries
                    .call_method1("get", (&of, 0))
                    .and_then(|c| c.extract())
            };
            caches[usize::from(op)] = count.unwrap_or(0);
        }
        Ok(ProbeOpcodes {
            nop,
            unprobed,
            caches,
        })
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
