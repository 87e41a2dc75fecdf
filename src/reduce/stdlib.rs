//! Standard-library objects that the C pickler refuses, or pickles by a name that does not
//! import back: local lru_cache functions, mappingproxy, weak mappings, TypeVar/ParamSpec/
//! NewType defined at run time, and dataclasses' sentinels (which must stay the very objects
//! `dataclasses.fields()` compares against).

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::determinism::Reduced;
use super::{byref, call, cell, not_implemented, DumpState};
use crate::bootstrap::boot;
use crate::ffi::type_addr;
use crate::typeref::typerefs;

pub fn reduce_lru_cache<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    if byref::importable(obj)? {
        return Ok(not_implemented(py));
    }
    let params = obj.call_method0("cache_parameters")?;
    let args = PyTuple::new(
        py,
        [
            obj.getattr("__wrapped__")?,
            params.get_item("maxsize")?,
            params.get_item("typed")?,
        ],
    )?;
    call(&boot(py).make_lru_cache, args)
}

/// A class's `__dict__` (`vars(C)`) travels as `vars(C)`, so it stays the live namespace of
/// the class on the receiver, and an ABC's (whose `_abc_impl` cannot pickle) works; any other
/// proxy wraps the mapping it shows.
pub fn reduce_mappingproxy<'py>(
    state: &DumpState,
    obj: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let refs = typerefs(py);
    // The proxied mapping itself (its only referent), so the proxy keeps showing the live
    // mapping (singledispatch's `registry`) rather than a copy.
    let referents = refs
        .gc_get_referents
        .bind(py)
        .call1((obj,))?
        .cast_into::<PyList>()?;
    let mapping = if referents.len() == 1 {
        referents.get_item(0)?
    } else {
        obj.call_method0("copy")?
    };
    // PyPy: a class's dict has no address there (`ffi::type_dict_addr`); the proxy's mapping is
    // a dict viewing the class (its strategy), and the class is that dict's only referent.
    #[cfg(PyPy)]
    if let Some(cls) = pypy_class_of_dict(&mapping)? {
        return call(&refs.vars, PyTuple::new(py, [cls])?);
    }
    if !cfg!(PyPy) && mapping.is_exact_instance_of::<PyDict>() && cell::is_class_dict(&mapping)? {
        let owner = match state.class_of_dict(&mapping) {
            Some(cls) => Some(cls),
            None => cell::owner_of(state, &mapping)?,
        };
        if let Some(cls) = owner {
            return call(&refs.vars, PyTuple::new(py, [cls])?);
        }
    }
    call(&refs.mappingproxy_type, PyTuple::new(py, [mapping])?)
}

/// PyPy: the class whose namespace `mapping` (the dict behind `C.__dict__`) is: PyPy makes a
/// new dict for each `C.__dict__`, with the `ClassDictStrategy` that reads and writes the
/// class itself, so its only referent is the class. A copy of a class dict has another
/// strategy and stays a copy.
#[cfg(PyPy)]
fn pypy_class_of_dict<'py>(mapping: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = mapping.py();
    if !mapping.is_exact_instance_of::<PyDict>() {
        return Ok(None);
    }
    let strategy = py
        .import("__pypy__")?
        .getattr("strategy")?
        .call1((mapping,))?;
    if strategy.extract::<String>()? != "ClassDictStrategy" {
        return Ok(None);
    }
    let referents = typerefs(py)
        .gc_get_referents
        .bind(py)
        .call1((mapping,))?
        .cast_into::<PyList>()?;
    if referents.len() != 1 {
        return Ok(None);
    }
    let owner = referents.get_item(0)?;
    Ok(owner.cast::<pyo3::types::PyType>().is_ok().then_some(owner))
}

pub fn reduce_weak_mapping<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let items = if type_addr(obj) == typerefs(py).weak_set {
        PyList::new(py, obj.try_iter()?.collect::<PyResult<Vec<_>>>()?)?
    } else {
        PyList::new(
            py,
            obj.call_method0("items")?
                .try_iter()?
                .collect::<PyResult<Vec<_>>>()?,
        )?
    };
    call(
        &boot(py).make_weak_mapping,
        PyTuple::new(py, [obj.get_type().into_any(), items.into_any()])?,
    )
}

pub fn reduce_typevar<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let name = obj.getattr("__name__")?;
    let module = obj.getattr("__module__").ok();
    if byref::importable_as(obj, module.as_ref(), &name)? {
        return Ok(not_implemented(py));
    }
    let kind = if type_addr(obj) == typerefs(py).typevar {
        "TypeVar"
    } else {
        "ParamSpec"
    };
    let constraints = obj
        .getattr_opt("__constraints__")?
        .unwrap_or_else(|| PyTuple::empty(py).into_any());
    let text = format!(
        "{kind}:{}:{}:{}:{}:{}:{}",
        module.as_ref().map(|m| m.to_string()).unwrap_or_default(),
        name,
        obj.getattr("__bound__")?.repr()?,
        constraints.repr()?,
        obj.getattr("__covariant__")?.repr()?,
        obj.getattr("__contravariant__")?.repr()?
    );
    // Tracked from its first dump, as classes are: a TypeVar that comes back from a receiver
    // is this very object again (cloudpickle's `_get_or_create_tracker_id`).
    let id = super::tracker::tracked_id(obj, &super::classid::hex_digest(text.as_bytes(), 16))?;
    let args = PyTuple::new(
        py,
        [
            kind.into_pyobject(py)?.into_any(),
            name,
            obj.getattr("__bound__")?,
            constraints,
            obj.getattr("__covariant__")?,
            obj.getattr("__contravariant__")?,
            id.into_any(),
        ],
    )?;
    call(&boot(py).make_typevar, args)
}

pub fn reduce_newtype<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    if byref::importable(obj)? {
        return Ok(not_implemented(py));
    }
    let args = PyTuple::new(
        py,
        [obj.getattr("__name__")?, obj.getattr("__supertype__")?],
    )?;
    let state = PyDict::new(py);
    state.set_item("__module__", obj.getattr("__module__")?)?;
    state.set_item("__qualname__", obj.getattr("__qualname__")?)?;
    Ok(PyTuple::new(
        py,
        [
            typerefs(py).newtype_type.bind(py).clone(),
            args.into_any(),
            state.into_any(),
        ],
    )?
    .into_any())
}

/// A `dataclasses._FIELD_BASE` marker (`_FIELD`, `_FIELD_CLASSVAR`, `_FIELD_INITVAR`): by name,
/// as `getattr(dataclasses, name)`.
pub fn reduce_field_marker<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let dataclasses = py.import("dataclasses")?;
    call(
        &typerefs(py).getattr,
        PyTuple::new(py, [dataclasses.into_any(), obj.getattr("name")?])?,
    )
}

/// An exception with a chain (`__context__`, `__cause__`, `__suppress_context__`): its own
/// reduction, its state (the chain and its `__dict__`) set back one `setattr` at a time, as
/// CPython's `BaseException.__setstate__` does (pickle drops the chain; a generator suspended
/// in a handler needs it). PyPy's `__setstate__` updates `__dict__` instead, where the chain
/// is not read, so a stream a PyPy receiver may load (`by_setattr`: portable, or made on PyPy)
/// calls `setattr` itself: the state is a tuple of `setattr(exc, name, value)` calls, loaded
/// after the exception is made, and the state setter, `operator.is_`, does nothing with it.
/// Stdlib callables only, so the stream loads with plain pickle everywhere. A nonportable
/// CPython stream (only CPython loads it) keeps the state dict, so an `allow=` list need not
/// name `setattr`. Exceptions without a chain keep the stdlib's bytes. Tracebacks cannot travel.
pub fn reduce_exception<'py>(
    obj: &Bound<'py, PyAny>,
    by_setattr: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let context = obj.getattr(intern!(py, "__context__"))?;
    let cause = obj.getattr(intern!(py, "__cause__"))?;
    let suppress = obj.getattr(intern!(py, "__suppress_context__"))?;
    if context.is_none() && cause.is_none() && !suppress.is_truthy()? {
        return Ok(not_implemented(py));
    }
    let reduced = obj.call_method1(intern!(py, "__reduce_ex__"), (2,))?;
    let Ok(reduced) = reduced.cast_into::<PyTuple>() else {
        return Ok(not_implemented(py));
    };
    if !(2..=3).contains(&reduced.len()) {
        return Ok(not_implemented(py));
    }
    let state = if reduced.len() == 3 {
        reduced.get_item(2)?
    } else {
        py.None().into_bound(py)
    };
    let state = if state.is_none() {
        PyDict::new(py)
    } else if let Ok(d) = state.cast::<PyDict>() {
        d.copy()?
    } else {
        return Ok(not_implemented(py));
    };
    state.set_item("__context__", context)?;
    state.set_item("__cause__", cause)?;
    state.set_item("__suppress_context__", suppress)?;
    if !by_setattr {
        return Ok(PyTuple::new(
            py,
            [reduced.get_item(0)?, reduced.get_item(1)?, state.into_any()],
        )?
        .into_any());
    }
    let builtins = py.import("builtins")?;
    let setattr = builtins.getattr(intern!(py, "setattr"))?;
    let mut calls = Vec::with_capacity(state.len());
    for (name, value) in state.iter() {
        let args = PyTuple::new(py, [obj.clone(), name, value])?;
        calls.push(Reduced::new(py, setattr.clone(), args)?.into_any());
    }
    let Ok(args) = reduced.get_item(1)?.cast_into::<PyTuple>() else {
        return Ok(not_implemented(py));
    };
    let is = py.import("operator")?.getattr(intern!(py, "is_"))?;
    super::call_then_set(
        &reduced.get_item(0)?.unbind(),
        args,
        PyTuple::new(py, calls)?.into_any(),
        &is.unbind(),
    )
}

pub fn reduce_singleton<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let refs = typerefs(py);
    match refs.singletons.get(&type_addr(obj)) {
        Some((module, name)) => call(
            &refs.getattr,
            PyTuple::new(
                py,
                [module.bind(py).clone(), name.bind(py).clone().into_any()],
            )?,
        ),
        None => Ok(not_implemented(py)),
    }
}

/// A getset descriptor as its receiver-side equal, looked up where the stream loads:
/// `getattr(owner, name)` where that gives the very descriptor (`int.real`, a class's
/// `__weakref__`), else `vars(owner)[name]`: `getattr(cls, '__dict__')` is the class's
/// mappingproxy (the metaclass's `__dict__` wins), never its `__dict__` descriptor. On CPython
/// 3.15 every class shares one `__dict__` and one `__weakref__` descriptor owned by `object`,
/// which has neither attribute: those become the receiver's own, `vars(type(name, (), {}))[name]`
/// (the same shared object on 3.15+; an older receiver of a portable stream gets a fresh class's,
/// as it has no shared one).
pub fn reduce_getset_descriptor<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let refs = typerefs(py);
    let owner = obj.getattr(intern!(py, "__objclass__"))?;
    let name = obj.getattr(intern!(py, "__name__"))?;
    if owner
        .getattr_opt(name.cast::<pyo3::types::PyString>()?)?
        .is_some_and(|found| found.is(obj))
    {
        return call(&refs.getattr, PyTuple::new(py, [owner, name])?);
    }
    let own = refs.vars.bind(py).call1((&owner,))?;
    let holder = if own.get_item(&name).is_ok_and(|found| found.is(obj)) {
        owner
    } else if refs.shared_getsets.iter().any(|s| s.bind(py).is(obj)) {
        let empty = PyTuple::empty(py).into_any();
        let fresh = PyTuple::new(py, [name.clone(), empty, PyDict::new(py).into_any()])?;
        Reduced::new(py, refs.type_type.bind(py).clone(), fresh)?.into_any()
    } else {
        return Err(crate::error::Error::OrphanDescriptor {
            what: obj.repr()?.to_string(),
            owner: owner.repr()?.to_string(),
        }
        .into_pyerr(py));
    };
    let mapping = Reduced::new(py, refs.vars.bind(py).clone(), PyTuple::new(py, [holder])?)?;
    call(&refs.getitem, PyTuple::new(py, [mapping.into_any(), name])?)
}

/// Portable mode: a dataclasses.Field as the `dataclasses.field(...)` arguments that made it
/// (`make_field`); its slots differ between Python versions.
pub fn reduce_dataclass_field_portable<'py>(
    obj: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let options = PyDict::new(py);
    for name in [
        "default",
        "default_factory",
        "init",
        "repr",
        "hash",
        "compare",
        "kw_only",
    ] {
        if let Some(value) = obj.getattr_opt(name)? {
            options.set_item(name, value)?;
        }
    }
    let metadata = obj.getattr("metadata")?;
    options.set_item("metadata", py.get_type::<PyDict>().call1((metadata,))?)?;
    // Whether it is a field, a ClassVar or an InitVar, by the sentinel's name.
    if let Some(kind) = obj.getattr_opt("_field_type")?.filter(|k| !k.is_none()) {
        options.set_item("_field_type", kind.getattr("name")?)?;
    }
    call(&boot(py).make_field, PyTuple::new(py, [options])?)
}
