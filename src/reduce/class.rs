//! Classes defined at run time: a skeleton through the metaclass, then the class dict as state
//! (cloudpickle's `_dynamic_class_reduce`, with a content-derived class id in place of uuid4).
//!
//! Class ids: the first dump of a class computes sha256 over what defines it (module,
//! qualname, bases, attribute names and the code and simple values behind them) and the
//! bootstrap tracker remembers it, so the same definition gives the same bytes in every
//! process, and a receiver maps repeated loads to one class object.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFrozenSet, PySet, PyString, PyTuple, PyType};
use sha2::{Digest, Sha256};

use super::{byref, call, call_then_set, not_implemented};
use crate::bootstrap::boot;
use crate::ffi::{self, addr};
use crate::typeref::typerefs;

/// Enum attributes the metaclass builds from the members (cloudpickle's `_enum_getstate`).
const ENUM_DERIVED: [&str; 5] = [
    "_generate_next_value_",
    "_member_names_",
    "_member_map_",
    "_member_type_",
    "_value2member_map_",
];

pub fn reduce<'py>(cls: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = cls.py();
    if byref::importable(cls)? {
        return Ok(not_implemented(py));
    }
    let refs = typerefs(py);
    if !ffi::is_heap_type(cls) {
        // An interpreter type that `builtins` does not name (types.FunctionType, ...).
        return match refs.builtin_types.get(&addr(cls)) {
            Some(name) => call(&boot(py).builtin_type, PyTuple::new(py, [name.bind(py)])?),
            None => Ok(not_implemented(py)),
        };
    }
    let ty = cls.cast::<PyType>()?;
    let class_id = class_id(ty)?;
    let boot = boot(py);
    let metaclass = cls.get_type();
    let mut attrs = class_dict(ty)?;
    if metaclass.is_subclass(refs.enum_meta.bind(py))? {
        let members = PyDict::new(py);
        for member in cls.try_iter()? {
            let member = member?;
            members.set_item(member.getattr("name")?, member.getattr("_value_")?)?;
        }
        for name in ENUM_DERIVED {
            attrs.retain(|(k, _)| k.to_str().map(|k| k != name).unwrap_or(true));
        }
        attrs.retain(|(k, _)| !members.contains(k).unwrap_or(false));
        let args = PyTuple::new(
            py,
            [
                cls.getattr("__bases__")?,
                cls.getattr("__name__")?,
                cls.getattr("__qualname__")?,
                members.into_any(),
                cls.getattr("__module__")?,
                class_id.into_any(),
            ],
        )?;
        return call_then_set(
            &boot.make_skeleton_enum,
            args,
            state(py, attrs)?,
            &boot.class_setstate,
        );
    }
    let type_kwargs = PyDict::new(py);
    if let Some(slots) = ty
        .getattr_opt("__dict__")?
        .and_then(|d| d.get_item("__slots__").ok())
    {
        type_kwargs.set_item("__slots__", slots)?;
    }
    let args = PyTuple::new(
        py,
        [
            metaclass.into_any(),
            cls.getattr("__name__")?,
            cls.getattr("__bases__")?,
            type_kwargs.into_any(),
            class_id.into_any(),
        ],
    )?;
    call_then_set(
        &boot.make_skeleton_class,
        args,
        state(py, attrs)?,
        &boot.class_setstate,
    )
}

fn state<'py>(
    py: Python<'py>,
    attrs: Vec<(Bound<'py, PyString>, Bound<'py, PyAny>)>,
) -> PyResult<Bound<'py, PyAny>> {
    let dict = PyDict::new(py);
    for (k, v) in attrs {
        dict.set_item(k, v)?;
    }
    Ok(PyTuple::new(py, [dict])?.into_any())
}

/// The class's own attributes, sorted by name, minus what the skeleton recreates: inherited
/// identical values, `__dict__`/`__weakref__` descriptors, slot members and ABC caches. The ABC
/// registry travels as a list under `_abc_impl`, sorted for determinism.
fn class_dict<'py>(
    cls: &Bound<'py, PyType>,
) -> PyResult<Vec<(Bound<'py, PyString>, Bound<'py, PyAny>)>> {
    let py = cls.py();
    let refs = typerefs(py);
    let own = cls.getattr("__dict__")?;
    let bases = cls.getattr("__bases__")?.cast_into::<PyTuple>()?;
    let inherited = PyDict::new(py);
    for base in bases.iter().rev() {
        inherited.update(
            base.getattr("__dict__")?
                .call_method0("copy")?
                .cast::<PyDict>()?
                .as_mapping(),
        )?;
    }
    let mut slot_names: Vec<String> = Vec::new();
    if let Ok(slots) = own.get_item("__slots__") {
        if let Ok(s) = slots.cast::<PyString>() {
            slot_names.push(s.to_string());
        } else {
            for s in slots.try_iter()? {
                slot_names.push(s?.str()?.to_string());
            }
        }
    }
    let is_abc = cls.get_type().is_subclass(refs.abc_meta.bind(py))?;
    let mut items: Vec<(String, Bound<'py, PyAny>)> = Vec::new();
    for item in own.call_method0("items")?.try_iter()? {
        let (key, value): (Bound<'py, PyAny>, Bound<'py, PyAny>) = item?.extract()?;
        let Ok(key) = key.cast_into::<PyString>() else {
            continue;
        };
        let name = key.to_str()?.to_owned();
        if name == "__dict__" || name == "__weakref__" || slot_names.contains(&name) {
            continue;
        }
        if is_abc && name.starts_with("_abc_") {
            continue;
        }
        if inherited.get_item(&key)?.is_some_and(|b| b.is(&value)) {
            continue;
        }
        items.push((name, deterministic(value)?));
    }
    if is_abc {
        let dump = refs
            .abc_get_dump
            .bind(py)
            .call1((cls,))?
            .cast_into::<PyTuple>()?;
        let mut registered: Vec<(String, Bound<'py, PyAny>)> = Vec::new();
        for weak in dump.get_item(0)?.try_iter()? {
            let sub = weak?.call0()?;
            if !sub.is_none() {
                let key = format!(
                    "{}.{}",
                    sub.getattr("__module__")?,
                    sub.getattr("__qualname__")?
                );
                registered.push((key, sub));
            }
        }
        registered.sort_by(|a, b| a.0.cmp(&b.0));
        let list = pyo3::types::PyList::new(py, registered.into_iter().map(|(_, v)| v))?;
        items.push(("_abc_impl".to_owned(), list.into_any()));
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    // Fresh (non-interned) key strings: which keys share memo entries must not depend on
    // whether the defining process interned them (cloudpickle's `_extract_class_dict` note).
    Ok(items
        .into_iter()
        .map(|(k, v)| (PyString::new(py, &k), v))
        .collect())
}

/// Set-valued class attributes (`__abstractmethods__`) pickle in hash order; send them sorted.
fn deterministic<'py>(value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = value.py();
    let is_frozen = value.cast::<PyFrozenSet>().is_ok();
    if !is_frozen && value.cast::<PySet>().is_err() {
        return Ok(value);
    }
    let mut keyed: Vec<(String, Bound<'py, PyAny>)> = Vec::new();
    for item in value.try_iter()? {
        let item = item?;
        keyed.push((item.repr()?.to_string(), item));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let list = pyo3::types::PyList::new(py, keyed.into_iter().map(|(_, v)| v))?;
    let ctor = if is_frozen {
        typerefs(py).frozenset_type.bind(py).clone()
    } else {
        py.get_type::<PySet>().into_any()
    };
    let reduced = super::stdlib::Reduced::new(py, ctor, PyTuple::new(py, [list])?)?;
    Ok(reduced.into_any())
}

/// The tracked id of `cls`, or its content-derived id on first dump.
fn class_id<'py>(cls: &Bound<'py, PyType>) -> PyResult<Bound<'py, PyAny>> {
    let py = cls.py();
    let content = content_id(cls)?;
    boot(py).tracked_id.bind(py).call1((cls, content))
}

fn content_id(cls: &Bound<'_, PyType>) -> PyResult<String> {
    let mut h = Sha256::new();
    let mut put = |s: &str| {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    put(&cls.getattr("__module__")?.str()?.to_string());
    put(&cls.getattr("__qualname__")?.str()?.to_string());
    for base in cls.getattr("__bases__")?.cast_into::<PyTuple>()?.iter() {
        put(&format!(
            "{}.{}",
            base.getattr("__module__")?,
            base.getattr("__qualname__")?
        ));
    }
    let own = cls.getattr("__dict__")?;
    let mut keys: Vec<String> = Vec::new();
    for key in own.try_iter()? {
        keys.push(key?.str()?.to_string());
    }
    keys.sort();
    for key in keys {
        put(&key);
        let value = own.get_item(&key)?;
        put(&value_fingerprint(&value)?);
    }
    let digest = h.finalize();
    Ok(digest.iter().take(16).map(|b| format!("{b:02x}")).collect())
}

/// A stable text for one class attribute: code for functions (and the descriptors around
/// them), repr for plain scalars, the type name for anything else.
fn value_fingerprint(value: &Bound<'_, PyAny>) -> PyResult<String> {
    let py = value.py();
    let refs = typerefs(py);
    let mut value = value.clone();
    let ty = ffi::type_addr(&value);
    if ty == refs.classmethod || ty == refs.staticmethod {
        value = value.getattr("__func__")?;
    }
    if ffi::type_addr(&value) == refs.function {
        let code = value.getattr("__code__")?;
        let bytecode = code.getattr("co_code")?.cast_into::<PyBytes>()?;
        let hex: String = Sha256::digest(bytecode.as_bytes())
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        return Ok(format!(
            "function:{hex}:{}",
            code.getattr("co_names")?.repr()?
        ));
    }
    if value.is_none()
        || value.is_instance_of::<pyo3::types::PyBool>()
        || value.is_instance_of::<pyo3::types::PyInt>()
        || value.is_instance_of::<pyo3::types::PyFloat>()
        || value.is_instance_of::<PyString>()
        || value.is_instance_of::<PyBytes>()
    {
        return Ok(value.repr()?.to_string());
    }
    Ok(value.get_type().name()?.to_string())
}
