//! Which globals a code object reads, and the per-code-object analysis cache.
//!
//! The cache is keyed by the code object's address and holds a weak reference to it: an entry
//! is used only while that weak reference still points at the same object, so a dead code
//! object whose address is reused can never hand its analysis to a new one. Dead entries are
//! swept when the map doubles.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple, PyWeakrefReference};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::ffi::addr;
use crate::typeref::{typerefs, TypeRefs};

/// What satchel needs to know about one code object, computed once.
pub struct CodeInfo {
    weak: Py<PyWeakrefReference>,
    /// Names read, written or deleted as globals, by it and by nested code, in first-seen order.
    pub global_names: Py<PyTuple>,
    /// Every name in `co_names` of it and of nested code (attribute chains like `os.path`).
    pub all_names: Py<PyTuple>,
    /// What FunctionType derives from this code: `co_name`, `co_qualname`, and the doc
    /// (`co_consts[0]` when it is a str, else None).
    pub name: Py<PyAny>,
    pub qualname: Py<PyAny>,
    pub doc: Py<PyAny>,
    /// marshal bytes and frozenset fixups, filled by `code::reduce` on first use.
    pub marshalled: std::sync::OnceLock<(Py<PyBytes>, Py<PyTuple>)>,
}

struct Cache {
    map: FxHashMap<usize, std::sync::Arc<CodeInfo>>,
    sweep_at: usize,
}

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

/// The cached analysis of `code`, computing it on a miss. Python is never called while the
/// cache lock is held (another thread could take the GIL and block on it).
pub fn code_info(code: &Bound<'_, PyAny>) -> PyResult<std::sync::Arc<CodeInfo>> {
    let key = addr(code);
    let cached = {
        let guard = CACHE.lock().expect("code cache lock poisoned");
        guard.as_ref().and_then(|c| c.map.get(&key).cloned())
    };
    if let Some(info) = cached {
        if info
            .weak
            .bind(code.py())
            .upgrade()
            .is_some_and(|o| o.is(code))
        {
            return Ok(info);
        }
    }
    let info = std::sync::Arc::new(analyse(code)?);
    let mut dead_candidates = Vec::new();
    // Dropped after the lock is released: dropping Python references can run Python code.
    let _replaced;
    {
        let mut guard = CACHE.lock().expect("code cache lock poisoned");
        let cache = guard.get_or_insert_with(|| Cache {
            map: FxHashMap::default(),
            sweep_at: 1024,
        });
        _replaced = cache.map.insert(key, info.clone());
        if cache.map.len() >= cache.sweep_at {
            dead_candidates = cache.map.iter().map(|(k, v)| (*k, v.clone())).collect();
        }
    }
    if !dead_candidates.is_empty() {
        sweep(code.py(), dead_candidates);
    }
    Ok(info)
}

#[cold]
fn sweep(py: Python<'_>, entries: Vec<(usize, std::sync::Arc<CodeInfo>)>) {
    let dead: Vec<usize> = entries
        .into_iter()
        .filter(|(_, info)| info.weak.bind(py).upgrade().is_none())
        .map(|(k, _)| k)
        .collect();
    let mut removed = Vec::with_capacity(dead.len());
    {
        let mut guard = CACHE.lock().expect("code cache lock poisoned");
        if let Some(cache) = guard.as_mut() {
            removed.extend(dead.iter().filter_map(|k| cache.map.remove(k)));
            cache.sweep_at = (cache.map.len() * 2).max(1024);
        }
    }
    drop(removed); // after the lock, as in code_info
}

fn analyse(code: &Bound<'_, PyAny>) -> PyResult<CodeInfo> {
    let py = code.py();
    let refs = typerefs(py);
    let mut globals: Vec<Bound<'_, PyString>> = Vec::new();
    let mut all: Vec<Bound<'_, PyString>> = Vec::new();
    let mut seen_globals = FxHashSet::default();
    let mut seen_all = FxHashSet::default();
    walk(
        code,
        refs,
        &mut globals,
        &mut seen_globals,
        &mut all,
        &mut seen_all,
        0,
    )?;
    let consts = code.getattr("co_consts")?.cast_into::<PyTuple>()?;
    let doc = match consts.get_item(0) {
        Ok(c) if c.is_instance_of::<PyString>() => c.unbind(),
        _ => py.None(),
    };
    Ok(CodeInfo {
        name: code.getattr("co_name")?.unbind(),
        qualname: code
            .getattr(if refs.function_derives_qualname {
                "co_qualname"
            } else {
                "co_name"
            })?
            .unbind(),
        doc,
        weak: PyWeakrefReference::new(code)?.unbind(),
        global_names: PyTuple::new(py, globals)?.unbind(),
        all_names: PyTuple::new(py, all)?.unbind(),
        marshalled: std::sync::OnceLock::new(),
    })
}

fn walk<'py>(
    code: &Bound<'py, PyAny>,
    refs: &TypeRefs,
    globals: &mut Vec<Bound<'py, PyString>>,
    seen_globals: &mut FxHashSet<Vec<u8>>,
    all: &mut Vec<Bound<'py, PyString>>,
    seen_all: &mut FxHashSet<Vec<u8>>,
    depth: usize,
) -> PyResult<()> {
    // Nested code objects (a def in a def...) recurse: guarded like code.rs's constants.
    let _level = crate::ffi::stack::guard(code.py(), depth, || {
        code.getattr("co_qualname")
            .map(|q| format!("the code of '{q}'"))
            .unwrap_or_else(|_| "a code object".into())
    })?;
    // Before anything reads co_code: reading a malformed one overruns memory (code.rs).
    super::code::check_bytecode(code)?;
    let names = code.getattr("co_names")?.cast_into::<PyTuple>()?;
    for name in names.iter() {
        let name = name.cast_into::<PyString>()?;
        if seen_all.insert(name_key(&name)?) {
            all.push(name);
        }
    }
    let bytecode = code.getattr("co_code")?.cast_into::<PyBytes>()?;
    // Code without CO_NEWLOCALS (a class body nested in the function) reads globals with
    // LOAD_NAME: `class K: attr = G` inside a function needs G too.
    let class_body = code.getattr("co_flags")?.extract::<u32>()? & CO_NEWLOCALS == 0;
    for index in global_name_indices(bytecode.as_bytes(), refs, class_body) {
        if let Ok(name) = names.get_item(index) {
            let name = name.cast_into::<PyString>()?;
            if seen_globals.insert(name_key(&name)?) {
                globals.push(name);
            }
        }
    }
    let code_type = code.get_type();
    for constant in code.getattr("co_consts")?.cast_into::<PyTuple>()?.iter() {
        if constant.get_type().is(&code_type) {
            walk(
                &constant,
                refs,
                globals,
                seen_globals,
                all,
                seen_all,
                depth + 1,
            )?;
        }
    }
    Ok(())
}

/// A name as bytes that identify it: its UTF-8, or for a name with lone surrogates (which
/// UTF-8 cannot hold, and which `marshal` and cloudpickle carry fine) its "surrogatepass"
/// encoding, which no valid UTF-8 name has.
fn name_key(name: &Bound<'_, PyString>) -> PyResult<Vec<u8>> {
    match name.to_str() {
        Ok(s) => Ok(s.as_bytes().to_vec()),
        Err(_) => Ok(name
            .call_method1("encode", ("utf-8", "surrogatepass"))?
            .cast_into::<PyBytes>()?
            .as_bytes()
            .to_vec()),
    }
}

/// `co_flags` bit of code that gets a fresh locals dict (functions; not class bodies).
const CO_NEWLOCALS: u32 = 0x2;

/// Indices into `co_names` of the global loads, stores and deletes in 3.11+ wordcode.
/// LOAD_GLOBAL's oparg carries the name index shifted left by one (3.11, CPython gh-93429;
/// not on PyPy 3.11, whose bytecode is 3.10's: `TypeRefs::load_global_shift`).
fn global_name_indices(bytecode: &[u8], refs: &TypeRefs, class_body: bool) -> Vec<usize> {
    let mut out = Vec::new();
    let mut extended: usize = 0;
    for pair in bytecode.chunks_exact(2) {
        let (op, arg) = (pair[0], extended << 8 | pair[1] as usize);
        if op == refs.op_extended_arg {
            extended = arg;
            continue;
        }
        extended = 0;
        if op == refs.op_load_global {
            out.push(arg >> refs.load_global_shift);
        } else if op == refs.op_store_global
            || op == refs.op_delete_global
            || (class_body && refs.op_load_name.contains(&op))
        {
            out.push(arg);
        }
    }
    out
}
