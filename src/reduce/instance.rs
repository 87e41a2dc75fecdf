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
//! replaces whenever the type or a base is modified (a `__reduce__` added later is seen).

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use rustc_hash::FxHashMap;

use super::not_implemented;
use crate::ffi::{self, addr};
use crate::typeref::typerefs;

/// type address -> (version tag, plain?)
static PLAIN: Mutex<Option<FxHashMap<usize, (u32, bool)>>> = Mutex::new(None);

/// Methods whose presence anywhere but on `object` changes how instances pickle.
const REDUCE_HOOKS: [&str; 3] = ["__reduce_ex__", "__reduce__", "__getstate__"];
const NEWARGS_HOOKS: [&str; 2] = ["__getnewargs_ex__", "__getnewargs__"];

pub fn reduce<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let refs = typerefs(py);
    let cls = obj.get_type().into_any();
    if !is_plain(&cls)? || refs.copyreg_dispatch.bind(py).contains(&cls)? {
        return Ok(not_implemented(py));
    }
    let state = match obj.getattr_opt("__dict__")? {
        Some(d) if d.cast::<PyDict>().is_ok_and(|d| !d.is_empty()) => d,
        _ => py.None().into_bound(py),
    };
    let args = PyTuple::new(py, [cls])?;
    Ok(PyTuple::new(
        py,
        [refs.copyreg_newobj.bind(py).clone(), args.into_any(), state],
    )?
    .into_any())
}

fn is_plain(cls: &Bound<'_, PyAny>) -> PyResult<bool> {
    let shape = ffi::type_shape(cls);
    if shape.version_tag == 0 {
        return decide(cls, &shape);
    }
    let key = addr(cls);
    let cached = PLAIN
        .lock()
        .expect("instance cache lock")
        .as_ref()
        .and_then(|m| m.get(&key).copied());
    if let Some((tag, plain)) = cached {
        if tag == shape.version_tag {
            return Ok(plain);
        }
    }
    let plain = decide(cls, &shape)?;
    PLAIN
        .lock()
        .expect("instance cache lock")
        .get_or_insert_with(FxHashMap::default)
        .insert(key, (shape.version_tag, plain));
    Ok(plain)
}

/// The conditions under which `object.__reduce_ex__` takes its `reduce_newobj` path with no
/// arguments, no slots and no list/dict items (CPython Objects/typeobject.c).
fn decide(cls: &Bound<'_, PyAny>, shape: &ffi::TypeShape) -> PyResult<bool> {
    let py = cls.py();
    let refs = typerefs(py);
    if shape.var_sized || !shape.has_new || !ffi::is_heap_type(cls) {
        return Ok(false);
    }
    let object = refs.object_type.bind(py);
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
    let ty = cls.cast::<pyo3::types::PyType>()?;
    if ty.is_subclass(&py.get_type::<PyList>())? || ty.is_subclass(&py.get_type::<PyDict>())? {
        return Ok(false);
    }
    // Slots: copyreg computes (and caches on the class) the names object_getstate would add.
    let slotnames = refs.copyreg_slotnames.bind(py).call1((cls,))?;
    Ok(slotnames.len()? == 0)
}
