//! Plain instances, on the picklers satchel builds itself (`dumps`, `dump`).
//!
//! For an instance whose class changes nothing about pickling, `object.__reduce_ex__` returns
//! `(copyreg.__newobj__, (cls,), obj.__dict__ or None)` after some ten attribute lookups and
//! allocations. On instance-heavy data that is most of the time not spent writing bytes, so for
//! such classes the reducer returns the same tuple itself: the stream is byte-for-byte the
//! stdlib's. Only where satchel controls the pickler: a user's `Pickler` may have a
//! `dispatch_table` that must see these instances first.
//!
//! "Plain" is decided once per type and cached under the type's version tag, which CPython
//! replaces whenever the type or a base is modified (a `__reduce__` added later is seen). The
//! decision asks CPython itself: the first instance's own `__reduce_ex__(2)` must give exactly
//! the tuple satchel would build, so every version-specific refusal (3.13's heap-type
//! `_thread.lock`, C types whose instances carry more than a dict) stays CPython's.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use rustc_hash::FxHashMap;

use super::not_implemented;
use crate::ffi::{self, addr};
use crate::typeref::typerefs;

/// How satchel reduces the instances of one type (decided once per type version).
#[derive(Clone)]
enum Decision {
    /// `(copyreg.__newobj__, (cls,), __dict__ or None)`, built here.
    Plain,
    /// The class's own `__reduce__` (a plain function), called here with the instance: what
    /// `object.__reduce_ex__` would call, without the two attribute lookups and bound methods
    /// the C pickler's route through `__reduce_ex__` costs per instance. `bool`: instances
    /// have a `__dict__` (a `__reduce__` in it would override the class's).
    OwnReduce(std::sync::Arc<Py<PyAny>>, bool),
    /// Left to the pickler.
    Other,
}

/// type address -> (version tag, decision)
static PLAIN: Mutex<Option<FxHashMap<usize, (u32, Decision)>>> = Mutex::new(None);

/// Methods whose presence anywhere but on `object` changes how instances pickle.
const REDUCE_HOOKS: [&str; 3] = ["__reduce_ex__", "__reduce__", "__getstate__"];
const NEWARGS_HOOKS: [&str; 2] = ["__getnewargs_ex__", "__getnewargs__"];

/// Whether `cls` pickles by `object`'s own reduction: it overrides none of the reduce hooks
/// and defines no `__getnewargs*__`.
fn object_reduces(cls: &Bound<'_, PyAny>, object: &Bound<'_, PyAny>) -> PyResult<bool> {
    for hook in REDUCE_HOOKS {
        if !cls.getattr(hook)?.is(&object.getattr(hook)?) {
            return Ok(false);
        }
    }
    for hook in NEWARGS_HOOKS {
        if cls.hasattr(hook)? {
            return Ok(false);
        }
    }
    Ok(true)
}

pub fn reduce<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let refs = typerefs(py);
    let cls = obj.get_type().into_any();
    let decision = decision(&cls, obj)?;
    if matches!(decision, Decision::Other) || refs.copyreg_dispatch.bind(py).contains(&cls)? {
        return Ok(not_implemented(py));
    }
    if let Decision::OwnReduce(func, has_dict) = decision {
        if has_dict {
            if let Some(d) = obj.getattr_opt(pyo3::intern!(py, "__dict__"))? {
                let d = d.cast::<PyDict>()?;
                if d.contains(pyo3::intern!(py, "__reduce_ex__"))?
                    || d.contains(pyo3::intern!(py, "__reduce__"))?
                {
                    return Ok(not_implemented(py));
                }
            }
        }
        // What the pickler would get from obj.__reduce_ex__(protocol); it checks the result
        // (string or tuple) exactly as it checks __reduce_ex__'s.
        return func.bind(py).call1((obj,));
    }
    let state = match obj.getattr_opt(pyo3::intern!(py, "__dict__"))? {
        Some(d) if d.cast::<PyDict>().is_ok_and(|d| !d.is_empty()) => {
            // The hooks are looked up on the instance too: one in its dict overrides the class.
            let dict = d.cast::<PyDict>()?;
            let hooks = [
                pyo3::intern!(py, "__reduce_ex__"),
                pyo3::intern!(py, "__reduce__"),
                pyo3::intern!(py, "__getstate__"),
            ];
            for hook in hooks {
                if dict.contains(hook)? {
                    return Ok(not_implemented(py));
                }
            }
            d
        }
        _ => py.None().into_bound(py),
    };
    let args = PyTuple::new(py, [cls])?;
    Ok(PyTuple::new(
        py,
        [refs.copyreg_newobj.bind(py).clone(), args.into_any(), state],
    )?
    .into_any())
}

fn decision(cls: &Bound<'_, PyAny>, obj: &Bound<'_, PyAny>) -> PyResult<Decision> {
    let shape = ffi::type_shape(cls);
    if shape.version_tag == 0 {
        // Nothing to key a cache on: only the plain path, which decide() checks in full.
        return Ok(if decide(cls, obj, &shape)? {
            Decision::Plain
        } else {
            Decision::Other
        });
    }
    let key = addr(cls);
    let cached = PLAIN
        .lock()
        .expect("instance cache lock")
        .as_ref()
        .and_then(|m| m.get(&key).cloned());
    if let Some((tag, decision)) = cached {
        if tag == shape.version_tag {
            return Ok(decision);
        }
    }
    let decision = if decide(cls, obj, &shape)? {
        Decision::Plain
    } else if let Some(func) = own_reduce(cls, &shape)? {
        Decision::OwnReduce(std::sync::Arc::new(func.unbind()), shape.has_dict)
    } else {
        Decision::Other
    };
    PLAIN
        .lock()
        .expect("instance cache lock")
        .get_or_insert_with(FxHashMap::default)
        .insert(key, (shape.version_tag, decision.clone()));
    Ok(decision)
}

/// The class's `__reduce__` when `object.__reduce_ex__` would simply call it: the class keeps
/// object's `__reduce_ex__` and attribute lookup, its metaclass is `type`, and `__reduce__` is
/// a plain Python function (no descriptor of another kind whose binding could differ).
fn own_reduce<'py>(
    cls: &Bound<'py, PyAny>,
    shape: &ffi::TypeShape,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = cls.py();
    let refs = typerefs(py);
    if !shape.generic_getattr || !cls.get_type().is(refs.type_type.bind(py)) {
        return Ok(None);
    }
    let object = refs.object_type.bind(py);
    let reduce_ex = pyo3::intern!(py, "__reduce_ex__");
    if !cls.getattr(reduce_ex)?.is(&object.getattr(reduce_ex)?) {
        return Ok(None);
    }
    let reduce = cls.getattr(pyo3::intern!(py, "__reduce__"))?;
    Ok((ffi::type_addr(&reduce) == refs.function).then_some(reduce))
}

/// Whether `object.__reduce_ex__` takes its `reduce_newobj` path with no arguments, no slots
/// and no list/dict items for this type (CPython Objects/typeobject.c): the class hooks are
/// checked, then `obj`'s own reduction must have exactly that shape.
fn decide(
    cls: &Bound<'_, PyAny>,
    obj: &Bound<'_, PyAny>,
    shape: &ffi::TypeShape,
) -> PyResult<bool> {
    let py = cls.py();
    let refs = typerefs(py);
    if shape.var_sized || !shape.has_new || !ffi::is_heap_type(cls) {
        return Ok(false);
    }
    if !object_reduces(cls, refs.object_type.bind(py))? {
        return Ok(false);
    }
    let ty = cls.cast::<pyo3::types::PyType>()?;
    if ty.is_subclass(&py.get_type::<PyList>())? || ty.is_subclass(&py.get_type::<PyDict>())? {
        return Ok(false);
    }
    // Slots: copyreg computes (and caches on the class) the names object_getstate would add.
    let slotnames = refs.copyreg_slotnames.bind(py).call1((cls,))?;
    if slotnames.len()? != 0 {
        return Ok(false);
    }
    // CPython's own answer for this instance (it refuses, for example, objects whose C struct
    // is larger than a plain object's).
    let Ok(reduced) = obj.call_method1("__reduce_ex__", (2,)) else {
        return Ok(false);
    };
    let Ok(parts) = reduced.cast_into::<PyTuple>() else {
        return Ok(false);
    };
    let dict = obj.getattr_opt("__dict__")?;
    let expected_state =
        |s: &Bound<'_, PyAny>| s.is_none() || dict.as_ref().is_some_and(|d| s.is(d));
    Ok(parts.len() >= 3
        && parts.get_item(0)?.is(refs.copyreg_newobj.bind(py))
        && parts
            .get_item(1)?
            .cast_into::<PyTuple>()
            .is_ok_and(|a| a.len() == 1 && a.get_item(0).is_ok_and(|c| c.is(cls)))
        && expected_state(&parts.get_item(2)?)
        && parts.iter().skip(3).all(|p| p.is_none()))
}

/// type address -> whether its instances are refused (`refuse_builtin_state`). On PyPy a type
/// cpyext has seen is never freed, so an address names one type for good.
static BUILTIN_STATE: Mutex<Option<FxHashMap<usize, bool>>> = Mutex::new(None);

/// PyPy: refuse an instance of a built-in class (not a heap type) other than `object` that
/// keeps `object`'s reduction. There such a class (`_thread.lock`) keeps its state where no
/// reduction sees it, and its `__newobj__` reduction names a class no one can import; CPython
/// refuses the same objects in `object.__reduce_ex__` ("cannot pickle '_thread.lock' object",
/// a TypeError), and so does satchel here. Decided once per type.
pub fn refuse_builtin_state(obj: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = obj.py();
    let cls = obj.get_type().into_any();
    // A reduction registered with copyreg (PyPy's `re.Pattern`, tblib's for tracebacks, maybe
    // after a first dump): the pickler calls that one.
    if typerefs(py).copyreg_dispatch.bind(py).contains(&cls)? {
        return Ok(());
    }
    let key = addr(&cls);
    let cached = BUILTIN_STATE
        .lock()
        .expect("builtin state cache lock")
        .as_ref()
        .and_then(|m| m.get(&key).copied());
    let refused = match cached {
        Some(refused) => refused,
        None => {
            let refused = builtin_state(&cls)?;
            BUILTIN_STATE
                .lock()
                .expect("builtin state cache lock")
                .get_or_insert_with(FxHashMap::default)
                .insert(key, refused);
            refused
        }
    };
    if !refused {
        return Ok(());
    }
    let module = cls.getattr(pyo3::intern!(py, "__module__"))?.to_string();
    let name = cls.getattr(pyo3::intern!(py, "__qualname__"))?.to_string();
    let type_name = if module == "builtins" {
        name
    } else {
        format!("{module}.{name}")
    };
    Err(crate::error::Error::BuiltinState { type_name }.into_pyerr(py))
}

fn builtin_state(cls: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = cls.py();
    let object = typerefs(py).object_type.bind(py);
    if ffi::is_heap_type(cls) || cls.is(object) {
        return Ok(false);
    }
    // PyPy's traceback has a `__reduce__` of its own (from its stackless pickling) that crashes
    // the interpreter when called (the catalog's TracebackType); CPython refuses a traceback.
    if cls.is(&py.import("types")?.getattr("TracebackType")?) {
        return Ok(true);
    }
    // The pickler writes a PickleBuffer itself (in band, or out of band to buffer_callback).
    if cls.is(&py.import("pickle")?.getattr("PickleBuffer")?) {
        return Ok(false);
    }
    if !object_reduces(cls, object)? {
        return Ok(false);
    }
    // Only a class its reduction cannot name: the pickler writes the others (dict, list...)
    // itself, and PyPy's `object.__reduce_ex__` works for the rest.
    let module = cls.getattr(pyo3::intern!(py, "__module__"))?;
    let Some(mut found) = py.import("sys")?.getattr("modules")?.get_item(&module).ok() else {
        return Ok(true);
    };
    let qualname = cls.getattr(pyo3::intern!(py, "__qualname__"))?.to_string();
    for part in qualname.split('.') {
        match found.getattr_opt(part)? {
            Some(next) => found = next,
            None => return Ok(true),
        }
    }
    if !found.is(cls) {
        return Ok(true);
    }
    // A weak proxy forwards `__reduce_ex__` to its referent, whose reduction the pickler writes
    // (as on CPython); only a dead one is refused, by that call.
    let weakref = py.import("weakref")?;
    for proxy in ["ProxyType", "CallableProxyType"] {
        if cls.is(&weakref.getattr(proxy)?) {
            return Ok(false);
        }
    }
    // Named, but its `__new__` needs arguments that the reduction (`copyreg.__newobj__(cls)`)
    // does not give: `weakref.ref`, `re.Match`, cffi's `_CDataBase`, whose streams would fail
    // to load with a bare TypeError. CPython refuses these in `object.__reduce_ex__`.
    Ok(cls.call_method1("__new__", (cls,)).is_err())
}
