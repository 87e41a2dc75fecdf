//! Functions, lambdas and closures by value.
//!
//! Two encodings (docs/FORMAT.md):
//! - flat, one call: `function(code, base_globals, closure, globals_read, defaults, extra)`,
//!   when every value in the state is atomic or an imported module, so nothing can refer back
//!   to the function. This is the task-shipping case and the fast path.
//! - skeleton then state: `make_function(code, base_globals, closure)` memoized first, then
//!   `function_setstate(f, (globals_read, defaults, extra))`, for everything else (recursion,
//!   functions that call each other, self-referencing defaults).
//!
//! `code` is the marshal bytes object cached per code object, so the pickle memo writes it
//! once per stream however many functions share it. The closure passes the function's own cell
//! objects, so cells shared between functions stay shared (cloudpickle passes fresh cells and
//! loses that). `extra` carries only what FunctionType does not derive by itself.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFunction, PyList, PyString, PyTuple};

use super::{byref, call_then_set, code, globals, not_implemented, DumpState};
use crate::bootstrap::boot;
use crate::ffi::{self, type_addr};
use crate::typeref::{typerefs, TypeRefs};

/// Module attributes that a rebuilt globals dict keeps even when the code does not read them
/// by name: relative imports inside the function read `__package__` implicitly.
const BASE_GLOBALS: [&str; 2] = ["__name__", "__package__"];

pub fn reduce<'py>(state: &DumpState, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let refs = typerefs(py);
    let func = obj.cast::<PyFunction>()?;
    let f = ffi::function_fields(func);
    // PyPy implements builtins such as `object.__new__` and `str.join` as functions whose code
    // is a `builtin-code`, with no bytecode: builtins, which the pickler writes by reference.
    if !has_bytecode(&f, refs) {
        return Ok(not_implemented(py));
    }
    // The bootstrap's own constructors (in every reduction satchel makes) are importable.
    if f.globals.is(boot(py).globals.bind(py)) {
        return Ok(not_implemented(py));
    }
    // A session snapshot's function (`dump_session`) always travels by value, without the
    // globals it reads: on loading, its globals are the namespace being restored.
    let session = state.session_globals(&f.globals);
    if session.is_none() && byref::importable_as(obj, f.module.as_ref(), &f.qualname)? {
        return Ok(not_implemented(py));
    }
    let info = globals::code_info(&f.code)?;
    let globals_dict = f.globals.cast::<PyDict>()?;

    let mut flat = true;
    let fglobals = PyDict::new(py);
    for name in info.global_names.bind(py).iter() {
        if let Some(value) = globals_dict.get_item(&name)? {
            // A module global (`math`) is flat when it goes by reference: decided once per
            // dump, not once per function.
            let flat_value = if ffi::is_module(&value) {
                state.module_by_reference(&value)
            } else {
                is_flat(&value, refs, 0)
            };
            let value = if flat_value {
                value
            } else {
                flat = session.is_some() && flat;
                // A frozenset global would pickle in hash order.
                super::determinism::sorted_sets(&value)?.unwrap_or(value)
            };
            fglobals.set_item(name, value)?;
        }
    }
    let none = || py.None().into_bound(py);
    // Sets in defaults (`allowed=frozenset({...})`) would pickle in hash order.
    let defaults = match &f.defaults {
        Some(d) if is_flat(d, refs, 0) => d.clone(),
        Some(d) => {
            flat = false;
            super::determinism::sorted_sets(d)?.unwrap_or_else(|| d.clone())
        }
        None => none(),
    };
    if let Some(closure) = &f.closure {
        for cell in closure.cast::<PyTuple>()?.iter() {
            flat = flat && ffi::cell_contents(&cell).is_none_or(|v| is_flat(&v, refs, 0));
        }
    }

    let (base, module_name, fresh) = match &session {
        None => {
            let (base, name, fresh) = base_globals(state, globals_dict)?;
            (base.into_any(), name, fresh)
        }
        Some(placeholder) => (placeholder.clone(), None, false),
    };
    // A session function's `__module__` is always sent: the namespace it is restored into
    // may have another `__name__`.
    let extra = extra(
        state,
        obj,
        &f,
        &info,
        module_name.as_ref(),
        &fglobals,
        session.is_some(),
    )?;
    if session.is_some() {
        // Its globals were read only to find the submodules it reaches (in `extra`).
        fglobals.clear();
    }
    let (extra, extra_flat) = extra;
    flat = flat && extra_flat;

    let boot = boot(py);
    if state.portable() {
        return portable(obj, &f, flat, fresh, base, fglobals, defaults, extra);
    }
    let (data, fixups) = code::marshalled_with(&info, &f.code)?;
    let code_arg = if fixups.is_empty() {
        data.into_any()
    } else {
        f.code.clone()
    };
    let closure = f.closure.clone().unwrap_or_else(none);
    let extra = extra.map(|e| e.into_any()).unwrap_or_else(none);
    let parts = Parts {
        flat,
        fresh,
        base,
        fglobals,
        defaults,
        extra,
    };
    let skeleton =
        |code: &Bound<'py, PyAny>, base: &Bound<'py, PyAny>, closure: &Bound<'py, PyAny>| {
            PyTuple::new(py, [code.clone(), base.clone(), closure.clone()])
        };
    emit(
        parts,
        &boot.function,
        [code_arg, closure],
        &boot.make_function,
        skeleton,
    )
}

/// Whether a function's code is a code object (not a PyPy `builtin-code`).
pub fn has_bytecode(f: &ffi::FunctionFields<'_>, refs: &TypeRefs) -> bool {
    type_addr(&f.code) == refs.code
}

/// What both encodings of a function share: the one-call form when its state is flat, else
/// skeleton then state (`function_setstate`).
struct Parts<'py> {
    flat: bool,
    fresh: bool,
    /// The globals the function gets: its module's dict for this dump, or a session's
    /// placeholder.
    base: Bound<'py, PyAny>,
    fglobals: Bound<'py, PyDict>,
    defaults: Bound<'py, PyAny>,
    extra: Bound<'py, PyAny>,
}

/// `one_call(code, base_globals, closure, globals_read, defaults, extra)` when flat, else
/// `skeleton_ctor(*skeleton_args(code, base_globals, closure))` with the state set afterwards.
/// `code_closure` is the (code, closure) pair: a closure tuple, or cells by name (portable).
fn emit<'py>(
    p: Parts<'py>,
    one_call: &Py<PyAny>,
    code_closure: [Bound<'py, PyAny>; 2],
    skeleton_ctor: &Py<PyAny>,
    skeleton_args: impl FnOnce(
        &Bound<'py, PyAny>,
        &Bound<'py, PyAny>,
        &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyTuple>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = p.base.py();
    let [code, closure] = code_closure;
    if p.flat {
        // The first function of its module in this dump writes its (flat) globals straight
        // into the shared dict, which the stream has not written yet: one dict fewer.
        let fglobals = if p.fresh {
            p.base.cast::<PyDict>()?.update(p.fglobals.as_mapping())?;
            py.None().into_bound(py)
        } else {
            p.fglobals.into_any()
        };
        let args = PyTuple::new(py, [code, p.base, closure, fglobals, p.defaults, p.extra])?;
        return super::call(one_call, args);
    }
    let args = skeleton_args(&code, &p.base, &closure)?;
    let state = PyTuple::new(py, [p.fglobals.into_any(), p.defaults, p.extra])?;
    call_then_set(
        skeleton_ctor,
        args,
        state.into_any(),
        &boot(py).function_setstate,
    )
}

/// Dicts up to this size are checked item by item for `is_flat`; larger ones are not flat.
const FLAT_DICT_MAX: usize = 16;

/// Values that cannot lead back to the function: atomic values, tuples and small dicts of
/// them, and modules that travel by reference.
fn is_flat(value: &Bound<'_, PyAny>, refs: &TypeRefs, depth: u8) -> bool {
    let ty = type_addr(value);
    if refs.atomic.contains(&ty) {
        return true;
    }
    if ty == refs.tuple && depth < 3 {
        return value
            .cast::<PyTuple>()
            .is_ok_and(|t| t.iter().all(|v| is_flat(&v, refs, depth + 1)));
    }
    // A small dict of such values (a closure's lookup table, an options default) cannot lead
    // back to the function either: it goes in the one-call form rather than skeleton + state.
    if ty == refs.dict_type.as_ptr() as usize && depth < 3 {
        return value.cast::<PyDict>().is_ok_and(|d| {
            d.len() <= FLAT_DICT_MAX
                && d.iter()
                    .all(|(k, v)| is_flat(&k, refs, depth + 1) && is_flat(&v, refs, depth + 1))
        });
    }
    if ffi::is_module(value) {
        return super::module::by_reference(value).unwrap_or(false);
    }
    false
}

/// `is_flat` for callers outside this module.
pub fn is_flat_value(value: &Bound<'_, PyAny>) -> bool {
    is_flat(value, typerefs(value.py()), 0)
}

/// Extra attributes are flat when their values are (a kwdefaults or __dict__ dict included).
fn is_flat_extra(value: &Bound<'_, PyAny>, refs: &TypeRefs) -> bool {
    match value.cast::<PyDict>() {
        Ok(d) => d.values().iter().all(|v| is_flat(&v, refs, 0)),
        Err(_) => is_flat(value, refs, 0),
    }
}

/// The globals dict the stream builds for functions of one module: one per module per dump, so
/// functions of one module share it within a dump and never across dumps. Returns it and the
/// module name it carries (FunctionType derives `__module__` from it).
fn base_globals<'py>(
    state: &DumpState,
    globals: &Bound<'py, PyDict>,
) -> PyResult<(Bound<'py, PyDict>, Option<Bound<'py, PyAny>>, bool)> {
    let py = globals.py();
    let (base, fresh) = state.base_globals(globals, || {
        let base = PyDict::new(py);
        let names = [
            pyo3::intern!(py, BASE_GLOBALS[0]),
            pyo3::intern!(py, BASE_GLOBALS[1]),
        ];
        for name in names {
            if let Some(value) = globals.get_item(name)? {
                if !value.is_none() {
                    base.set_item(name, value)?;
                }
            }
        }
        Ok(base)
    })?;
    let name = base.get_item(pyo3::intern!(py, "__name__"))?;
    Ok((base, name, fresh))
}

/// The attributes FunctionType would not derive by itself, or None when there are none, and
/// whether every value is flat (`is_flat_extra`), decided as they are put.
fn extra<'py>(
    state: &DumpState,
    obj: &Bound<'py, PyAny>,
    f: &ffi::FunctionFields<'py>,
    info: &globals::CodeInfo,
    module_name: Option<&Bound<'py, PyAny>>,
    fglobals: &Bound<'py, PyDict>,
    always_module: bool,
) -> PyResult<(Option<Bound<'py, PyDict>>, bool)> {
    let py = obj.py();
    let refs = typerefs(py);
    let mut extra: Option<Bound<'py, PyDict>> = None;
    let mut all_flat = true;
    // `flat`: already known for this value, else None (then `is_flat_extra` decides).
    let mut put =
        |k: &Bound<'py, PyString>, v: Bound<'py, PyAny>, flat: Option<bool>| -> PyResult<()> {
            all_flat = all_flat && flat.unwrap_or_else(|| is_flat_extra(&v, refs));
            extra.get_or_insert_with(|| PyDict::new(py)).set_item(k, v)
        };
    if !eq(&f.name, info.name.bind(py))? {
        put(pyo3::intern!(py, "__name__"), f.name.clone(), None)?;
    }
    if !eq(&f.qualname, info.qualname.bind(py))? {
        put(pyo3::intern!(py, "__qualname__"), f.qualname.clone(), None)?;
    }
    let module = f.module.clone().unwrap_or_else(|| py.None().into_bound(py));
    let derived_module = module_name
        .cloned()
        .unwrap_or_else(|| py.None().into_bound(py));
    if always_module || !eq(&module, &derived_module)? {
        put(pyo3::intern!(py, "__module__"), module, None)?;
    }
    // FunctionType takes the doc from co_consts[0] when it is a str.
    let derived_doc = info.doc.bind(py);
    let doc = f.doc.clone().unwrap_or_else(|| py.None().into_bound(py));
    if !eq(&doc, derived_doc)? {
        put(pyo3::intern!(py, "__doc__"), doc, None)?;
    }
    // 3.14 (PEP 649) fills annotations lazily from __annotate__, leaving the slot NULL until
    // first access: there, always ask (forward references travel as text: annotations_of).
    if f.has_annotations || typerefs(py).lazy_annotations {
        let annotations = super::portable_class::annotations_of(obj)?;
        if annotations.cast::<PyDict>().is_ok_and(|d| !d.is_empty()) {
            put(pyo3::intern!(py, "__annotations__"), annotations, None)?;
        }
    }
    if let Some(kw) = &f.kwdefaults {
        if !kw.is_none() {
            // Flat values hold no set: nothing for sorted_sets to reorder. A flat dict's
            // values are flat for `is_flat_extra` too.
            let (kw, flat) = if is_flat(kw, refs, 0) {
                (kw.clone(), Some(true))
            } else {
                let kw = super::determinism::sorted_sets(kw)?.unwrap_or_else(|| kw.clone());
                (kw, None)
            };
            put(pyo3::intern!(py, "__kwdefaults__"), kw, flat)?;
        }
    }
    if let Some(d) = &f.dict {
        if d.cast::<PyDict>().is_ok_and(|d| !d.is_empty()) {
            put(pyo3::intern!(py, "__dict__"), d.clone(), None)?;
        }
    }
    if let Some(params) = type_params(obj)? {
        put(pyo3::intern!(py, "__type_params__"), params, None)?;
    }
    let names = info.all_names.bind(py);
    let closure_modules = f.closure.as_ref().is_some_and(|c| {
        c.cast::<PyTuple>().is_ok_and(|t| {
            t.iter()
                .any(|cell| ffi::cell_contents(&cell).is_some_and(|v| ffi::is_module(&v)))
        })
    });
    // Without modules in its cells, what a function finds depends only on its code and its
    // module's globals: once per dump for every function of one code object.
    let global_modules = fglobals.iter().any(|(_, v)| ffi::is_module(&v));
    let subs = match f.globals.cast::<PyDict>() {
        _ if !global_modules && !closure_modules => Vec::new(),
        Ok(globals) if !closure_modules => state.submodules(globals, &f.code, || {
            submodules(fglobals, f.closure.as_ref(), names)
        })?,
        _ => submodules(fglobals, f.closure.as_ref(), names)?,
    };
    if !subs.is_empty() {
        put(
            pyo3::intern!(py, "submodules"),
            PyTuple::new(py, subs)?.into_any(),
            None,
        )?;
    }
    Ok((extra, all_flat))
}

fn eq(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(a.is(b) || a.eq(b)?)
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
        // Names UTF-8 cannot hold (lone surrogates) are never submodules satchel imports.
        let Ok(prefix) = prefix.to_str() else {
            continue;
        };
        for name in names.iter() {
            let Ok(name) = name.cast::<PyString>()?.to_str() else {
                continue;
            };
            let full = format!("{prefix}.{name}");
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

/// Portable mode: the function travels as the source of its own def or lambda
/// (`satchel._source.function_source`), recompiled by the receiver (`portable_code`), and its
/// closure as a dict of cells by name, since the receiver's compiler orders `co_freevars`.
#[allow(clippy::too_many_arguments)]
fn portable<'py>(
    obj: &Bound<'py, PyAny>,
    f: &ffi::FunctionFields<'py>,
    flat: bool,
    fresh: bool,
    base: Bound<'py, PyAny>,
    fglobals: Bound<'py, PyDict>,
    defaults: Bound<'py, PyAny>,
    extra: Option<Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let boot = boot(py);
    static FUNCTION_SOURCE: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
    let function_source = FUNCTION_SOURCE.get_or_try_init(py, || -> PyResult<_> {
        Ok(py
            .import("satchel._source")?
            .getattr("function_source")?
            .unbind())
    })?;
    let source = function_source.bind(py).call1((obj,));
    let (snippet, filename, lineno): (Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>) =
        match source {
            Ok(s) => s.extract()?,
            Err(err) if err.is_instance_of::<pyo3::exceptions::PyLookupError>(py) => {
                let reason = err.value(py).str()?.to_string();
                let what = format!("function '{}'", f.qualname);
                return Err(crate::error::Error::NoSource { what, reason }.with_cause(py, err));
            }
            Err(err) => return Err(err),
        };
    let code = &f.code;
    let spec = PyTuple::new(
        py,
        [
            snippet,
            filename,
            lineno,
            code.getattr("co_name")?,
            code.getattr("co_freevars")?,
        ],
    )?;
    let code_arg = super::Reduced::new(py, boot.portable_code.bind(py).clone(), spec)?.into_any();
    let cells = PyDict::new(py);
    if let Some(closure) = &f.closure {
        let names = code.getattr("co_freevars")?.cast_into::<PyTuple>()?;
        for (name, cell) in names.iter().zip(closure.cast::<PyTuple>()?.iter()) {
            cells.set_item(name, cell)?;
        }
    }
    // Where the pickler asks before its memo (PyPy, memo.rs), a function met again through its
    // own closure (a recursive local function) is written again as `(ctor, args)` while its
    // first args are still being written: a dict is memoized before its items, so the second
    // call would get the cells dict empty. `dict(((name, cell), ...))` is memoized only once
    // built, as a tuple is, and the second call gets the cells.
    let cells = if typerefs(py).override_before_memo {
        let pairs = PyTuple::new(py, cells.items().iter())?;
        let dict = py.get_type::<PyDict>().into_any();
        super::Reduced::new(py, dict, PyTuple::new(py, [pairs])?)?.into_any()
    } else {
        cells.into_any()
    };
    // The recompiled code's qualname is the wrapper's, and 3.13+ dedents docstrings: send both.
    let extra = extra.unwrap_or_else(|| PyDict::new(py));
    extra.set_item("__qualname__", &f.qualname)?;
    if let Some(doc) = f.doc.as_ref().filter(|d| !d.is_none()) {
        extra.set_item("__doc__", doc)?;
    }
    let none = || py.None().into_bound(py);
    let parts = Parts {
        flat,
        fresh,
        base,
        fglobals,
        defaults,
        extra: extra.into_any(),
    };
    let skeleton =
        |code: &Bound<'py, PyAny>, base: &Bound<'py, PyAny>, cells: &Bound<'py, PyAny>| {
            PyTuple::new(
                py,
                [
                    code.clone(),
                    base.clone(),
                    cells.clone(),
                    none(),
                    none(),
                    none(),
                ],
            )
        };
    emit(
        parts,
        &boot.portable_function,
        [code_arg, cells],
        &boot.portable_function,
        skeleton,
    )
}
