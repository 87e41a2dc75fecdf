//! Deterministic output: sets and frozensets pickle in hash order, which changes with
//! PYTHONHASHSEED, so reducers that meet them (function defaults, kwdefaults and globals, class
//! dicts, code constants) substitute a `Reduced` that rebuilds them from their sorted items.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

/// An object that pickles as a given `(callable, args)`: lets a reducer substitute a value
/// (a sorted frozenset) inside a structure the C pickler walks itself.
#[pyclass(module = "satchel._satchel", frozen)]
pub struct Reduced {
    callable: Py<PyAny>,
    args: Py<PyTuple>,
}

impl Reduced {
    pub fn new<'py>(
        py: Python<'py>,
        callable: Bound<'py, PyAny>,
        args: Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, Reduced>> {
        Bound::new(
            py,
            Reduced {
                callable: callable.unbind(),
                args: args.unbind(),
            },
        )
    }
}

#[pymethods]
impl Reduced {
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(
            py,
            [
                self.callable.bind(py).clone(),
                self.args.bind(py).clone().into_any(),
            ],
        )
    }
}

/// `value` with every frozenset in it (itself, or inside tuples, or inside the values of a
/// top-level dict) rebuilt from a sorted list, or None when it holds none: frozensets pickle in
/// hash order, which changes with PYTHONHASHSEED. Only exact types are rewritten, so
/// subclasses keep their type; mutable sets are left alone, because a copy would break their
/// identity (a `seen=SEEN` default must stay the global `SEEN`).
///
/// The dict is read as an `items()` list made in one C call: sorting runs `__repr__`, which may
/// change the dict, and pyo3's dict iterator panics when its dict changes.
pub fn sorted_sets<'py>(value: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    if let Ok(d) = value.cast_exact::<PyDict>() {
        let mut copy: Option<Bound<'py, PyDict>> = None;
        for item in d.items().iter() {
            let (k, v): (Bound<'py, PyAny>, Bound<'py, PyAny>) = item.extract()?;
            if let Some(new) = sorted_frozensets(&v, 1)? {
                match &copy {
                    Some(c) => c.set_item(k, new)?,
                    None => {
                        let c = d.copy()?;
                        c.set_item(k, new)?;
                        copy = Some(c);
                    }
                }
            }
        }
        return Ok(copy.map(|c| c.into_any()));
    }
    sorted_frozensets(value, 0)
}

fn sorted_frozensets<'py>(
    value: &Bound<'py, PyAny>,
    depth: u8,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = value.py();
    if value.is_exact_instance_of::<pyo3::types::PyFrozenSet>() {
        return Ok(Some(sorted_set(value)?));
    }
    let Ok(t) = value.cast_exact::<PyTuple>() else {
        return Ok(None);
    };
    if depth >= 3 {
        return Ok(None);
    }
    let mut changed = false;
    let mut items = Vec::with_capacity(t.len());
    for item in t.iter() {
        match sorted_frozensets(&item, depth + 1)? {
            Some(new) => {
                changed = true;
                items.push(new);
            }
            None => items.push(item),
        }
    }
    Ok(if changed {
        Some(PyTuple::new(py, items)?.into_any())
    } else {
        None
    })
}

/// The items of a set in an order that does not depend on hashing: by type name, then repr.
/// An item whose `__repr__` raises sorts after the others of its type, by its stdlib pickle,
/// and when that fails too, in iteration order (the sort is stable). The items are taken out
/// of the set before any `__repr__` runs, so one that changes the set changes nothing here.
pub fn sorted_items<'py>(set: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let py = set.py();
    let items = set.try_iter()?.collect::<PyResult<Vec<_>>>()?;
    let mut keyed = Vec::with_capacity(items.len());
    for item in items {
        let type_name = item.get_type().name()?.to_string();
        let key = match item.repr() {
            Ok(r) => SortKey::Repr(r.to_string()),
            Err(_) => SortKey::Pickled(
                py.import("pickle")
                    .and_then(|m| m.getattr("dumps"))
                    .and_then(|dumps| dumps.call1((&item, 5)))
                    .ok()
                    .and_then(|b| b.cast_into::<pyo3::types::PyBytes>().ok())
                    .map(|b| b.as_bytes().to_vec()),
            ),
        };
        keyed.push(((type_name, key), item));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(keyed.into_iter().map(|(_, v)| v).collect())
}

/// How an item of a set sorts among those of its type (`sorted_items`).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum SortKey {
    Repr(String),
    /// Its `__repr__` raised: its pickle's bytes, or None when that failed too.
    Pickled(Option<Vec<u8>>),
}

/// A set or frozenset as a `Reduced` that rebuilds it (same type) from its sorted items.
pub fn sorted_set<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = value.py();
    let list = PyList::new(py, sorted_items(value)?)?;
    let ctor = value.get_type().into_any();
    Reduced::new(py, ctor, PyTuple::new(py, [list])?).map(Bound::into_any)
}
