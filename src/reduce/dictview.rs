//! dict and OrderedDict views: `d.keys()`, `d.values()`, `d.items()`. The C pickler refuses
//! them; each becomes `dict.keys(D)` (`OrderedDict.keys(D)` ...), which pickles as
//! `getattr(dict, "keys")` applied to a dict, so a stdlib-only receiver rebuilds it and an
//! OrderedDict's view stays an OrderedDict's.
//!
//! What `D` is follows cloudpickle (`_dict_keys_reduce` and friends): a view ships only what it
//! shows, because the rest of the dict may be large or secret.
//! - keys: a fresh dict of the keys (values None): `dict.fromkeys(keys)`;
//! - values: a fresh dict of the values under the keys 0, 1, 2...;
//! - items: the dict itself when it is exactly a dict (an OrderedDict for its views): the items
//!   are all of it, and a dict pickled with its items view in one stream then stays the
//!   dict that view shows. A subclass (defaultdict, Counter) is copied to the plain type.
//!
//! So a keys or values view loads as a view of a dict of its own, not of a dict sent
//! alongside it; a values view that contains itself recurses (as cloudpickle's does).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::call;
use crate::ffi::{addr, type_addr};
use crate::typeref::typerefs;

pub fn reduce<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let refs = typerefs(py);
    let ty = type_addr(obj);
    let which = refs
        .dict_views
        .iter()
        .position(|&t| t == ty)
        .expect("classified as a dict view");
    let ordered = which >= 3;
    let base = if ordered {
        refs.ordered_dict.bind(py)
    } else {
        refs.dict_type.bind(py)
    };
    let shown = match which % 3 {
        0 => base.call_method1("fromkeys", (obj,))?,
        1 => {
            let numbered = PyDict::new(py);
            for (i, value) in obj.try_iter()?.enumerate() {
                numbered.set_item(i, value?)?;
            }
            if ordered {
                base.call1((numbered,))?
            } else {
                numbered.into_any()
            }
        }
        _ => match viewed_dict(obj)? {
            Some(d) if addr(&d.get_type().into_any()) == addr(base) => d,
            _ => base.call1((obj,))?,
        },
    };
    call(&refs.dict_view_makers[which], PyTuple::new(py, [shown])?)
}

/// The dict a view shows: the view's one referent (`dictview_traverse` visits only it).
fn viewed_dict<'py>(view: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = view.py();
    let referents = typerefs(py)
        .gc_get_referents
        .bind(py)
        .call1((view,))?
        .cast_into::<PyList>()?;
    Ok(if referents.len() == 1 {
        Some(referents.get_item(0)?)
    } else {
        None
    })
}
