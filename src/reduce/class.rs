//! Classes defined at run time: a skeleton through the metaclass, then the class dict as state
//! (cloudpickle's `_dynamic_class_reduce`, with a content-derived class id in place of uuid4).
//!
//! Class ids (`tracker.rs`, `classid.rs`): the first dump of a class gives it sha256 of an
//! unambiguous description of what defines it, so the same definition gives the same bytes in
//! every process and a receiver maps repeated loads to one class object; a class changed in
//! place later travels as the next generation of that id, so the change reaches receivers.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PySet, PyString, PyTuple, PyType};

use super::{byref, call, call_then_set, not_implemented, portable_class};
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

pub fn reduce<'py>(
    state: &super::DumpState,
    cls: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
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
    // A heap type made by C code (PyType_FromSpec; immutable, which no class statement can
    // make) that nothing names, such as _ctypes.PyCArrayType on 3.13+: rebuilding it by value
    // gives a Python class that is not it (its slots become getattr()s the receiver fails on),
    // so the C pickler refuses it by name, as it does the static types of older versions.
    if is_immutable_type(cls) {
        return Ok(not_implemented(py));
    }
    // A metaclass with its own reducer in copyreg's table keeps it, as with the stdlib pickler.
    if refs.copyreg_dispatch.bind(py).contains(cls.get_type())? {
        return Ok(not_implemented(py));
    }
    let ty = cls.cast::<PyType>()?;
    // Its body's `__classdict__` cells travel as `vars(cls)` (cell.rs).
    state.note_class(ty);
    let class_id = super::tracker::class_id(ty)?;
    let boot = boot(py);
    let metaclass = cls.get_type();
    let mut attrs = class_dict(ty)?;
    // Portable mode: what the stdlib generated travels as what it was made of (portable_class.rs).
    let mut dataclass_options = None;
    if state.portable() {
        match portable_class::prepare(ty, &mut attrs, &class_id)? {
            portable_class::Prepared::Done(reduced) => return Ok(reduced),
            portable_class::Prepared::Dataclass(options) => dataclass_options = Some(options),
            portable_class::Prepared::Plain => {}
        }
    }
    if metaclass.is_subclass(refs.enum_meta.bind(py))? {
        // __members__ includes aliases (a second name for a value), which iteration skips.
        let members = PyDict::new(py);
        let members_now = cls
            .getattr("__members__")?
            .call_method0("copy")?
            .cast_into::<PyDict>()?;
        for item in members_now.items().iter() {
            let (name, member): (Bound<'py, PyAny>, Bound<'py, PyAny>) = item.extract()?;
            members.set_item(name, member.getattr("_value_")?)?;
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
            state_tuple(py, attrs)?,
            &boot.class_setstate,
        );
    }
    // A Generic[T] subclass lists `Generic` in __bases__ but must be rebuilt from
    // __orig_bases__ (`Generic[T]`): Generic refuses to be subclassed bare (cloudpickle's
    // `_get_bases`).
    // Only then: typing.NamedTuple classes carry __orig_bases__ = (NamedTuple,) too, which must
    // not be replayed.
    let plain_bases = cls.getattr("__bases__")?;
    let generic = plain_bases
        .cast::<PyTuple>()?
        .iter()
        .any(|b| b.is(refs.generic.bind(py)));
    let bases = match cls.getattr("__dict__")?.get_item("__orig_bases__") {
        Ok(orig) if generic => orig,
        _ => plain_bases,
    };
    let type_kwargs = PyDict::new(py);
    if let Some(slots) = ty
        .getattr_opt("__dict__")?
        .and_then(|d| d.get_item("__slots__").ok())
    {
        type_kwargs.set_item("__slots__", slots)?;
    }
    // In the skeleton's namespace from the start, so __init_subclass__ hooks see the real module.
    type_kwargs.set_item("__module__", cls.getattr("__module__")?)?;
    let args = PyTuple::new(
        py,
        [
            metaclass.into_any(),
            cls.getattr("__name__")?,
            bases,
            type_kwargs.into_any(),
            class_id.into_any(),
        ],
    )?;
    let (attrs, setter) = match dataclass_options {
        Some(options) => (
            portable_class::state(py, &attrs, Some(options))?,
            &boot.dataclass_setstate,
        ),
        None => (state_tuple(py, attrs)?, &boot.class_setstate),
    };
    call_then_set(&boot.make_skeleton_class, args, attrs, setter)
}

fn state_tuple<'py>(
    py: Python<'py>,
    attrs: Vec<(Bound<'py, PyString>, Bound<'py, PyAny>)>,
) -> PyResult<Bound<'py, PyAny>> {
    let dict = PyDict::new(py);
    for (k, v) in attrs {
        dict.set_item(k, v)?;
    }
    Ok(PyTuple::new(py, [dict])?.into_any())
}

/// The class's own attributes, sorted by name, minus what the skeleton recreates: the
/// `__dict__`/`__weakref__` descriptors, slot members and ABC caches. The ABC registry travels
/// as a list under `_abc_impl`, sorted for determinism. An attribute the class sets to the same
/// object as a base's (`version = 1` in both) stays its own, so a later change to the base does
/// not reach it (cloudpickle drops it: cloudpickle#584, its open PR #600).
fn class_dict<'py>(
    cls: &Bound<'py, PyType>,
) -> PyResult<Vec<(Bound<'py, PyString>, Bound<'py, PyAny>)>> {
    let py = cls.py();
    let refs = typerefs(py);
    let own = cls.getattr("__dict__")?;
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
    // A copy (one C call, so another thread cannot change it half way), then its items: user
    // code runs while the state is built and may change the class meanwhile.
    let own_copy = own.call_method0("copy")?.cast_into::<PyDict>()?;
    for item in own_copy.items().iter() {
        let (key, value): (Bound<'py, PyAny>, Bound<'py, PyAny>) = item.extract()?;
        let Ok(key) = key.cast_into::<PyString>() else {
            continue;
        };
        let name = key.to_str()?.to_owned();
        // __slotnames__ is copyreg's cache (set when an instance is first pickled): not part
        // of the definition, and the receiver recomputes it.
        if name == "__dict__"
            || name == "__weakref__"
            || name == "__slotnames__"
            || slot_names.contains(&name)
        {
            continue;
        }
        if is_abc && name.starts_with("_abc_") {
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
    // A heap type keeps its qualname outside __dict__; without it a nested or local class
    // would come back named by __name__ alone.
    items.push(("__qualname__".to_owned(), cls.getattr("__qualname__")?));
    // Sorted by name, but `__module__` first: on 3.13+ setting it removes `__firstlineno__`
    // (the class's location is no longer known: type_set_module in Objects/typeobject.c), so a
    // receiver that set them in name order would lose `__firstlineno__`, and the class would
    // no longer describe (hence pickle) the same as where it came from.
    items.sort_by(|a, b| (a.0 != "__module__", &a.0).cmp(&(b.0 != "__module__", &b.0)));
    // Fresh (non-interned) key strings: which keys share memo entries must not depend on
    // whether the defining process interned them (cloudpickle's `_extract_class_dict` note).
    Ok(items
        .into_iter()
        .map(|(k, v)| (PyString::new(py, &k), v))
        .collect())
}

/// Set-valued class attributes (`__abstractmethods__`) pickle in hash order; send them sorted.
///
/// A class-level `set` (a constant like `TAGS = {...}`) is sent as a sorted copy too: the class
/// keeps an equal set, but one that another object in the same stream shared with it would no
/// longer be the same object after loading (docs/FORMAT.md). Nested frozensets are sorted as
/// in defaults.
fn deterministic<'py>(value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if value.is_exact_instance_of::<PySet>() {
        return super::determinism::sorted_set(&value);
    }
    Ok(super::determinism::sorted_sets(&value)?.unwrap_or(value))
}

/// `Py_TPFLAGS_IMMUTABLETYPE` (3.10+), read from `__flags__` (PyPy reports it too): set on
/// types made from a C spec, never on a class a `class` statement or `type()` made.
fn is_immutable_type(cls: &Bound<'_, PyAny>) -> bool {
    const IMMUTABLETYPE: u64 = 1 << 8;
    cls.getattr(pyo3::intern!(cls.py(), "__flags__"))
        .and_then(|f| f.extract::<u64>())
        .is_ok_and(|f| f & IMMUTABLETYPE != 0)
}
