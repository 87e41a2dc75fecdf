//! `operator.methodcaller` and `operator.itemgetter` on PyPy, reduced as CPython reduces them.
//!
//! PyPy's are Python classes without a `__reduce__`: `object.__reduce_ex__` sends
//! `copyreg.__newobj__` and a dict of PyPy's private fields (`_method_name`, `_idx`, ...),
//! which no CPython can load (its classes take no such state). CPython's own reductions are
//! `(methodcaller, (name, *args))` (a `functools.partial` carrying the keywords when there are
//! some) and `(itemgetter, items)`; both load on PyPy and CPython alike. Registered in
//! `exact_kinds` on PyPy only: CPython's classes reduce themselves.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::not_implemented;

pub fn reduce<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let ty = obj.get_type().into_any();
    // The fields, as PyPy's own reduction names them (`__reduce_ex__(2)`'s state).
    let state = obj
        .call_method1(pyo3::intern!(py, "__reduce_ex__"), (2,))?
        .get_item(2)?;
    let Ok(state) = state.cast_into::<PyDict>() else {
        return Ok(not_implemented(py));
    };
    let field = |name: &str| state.get_item(name).ok().flatten();
    if let (Some(name), Some(args), Some(kwargs)) =
        (field("_method_name"), field("_args"), field("_kwargs"))
    {
        let args = args.cast_into::<PyTuple>()?;
        let kwargs = kwargs.cast_into::<PyDict>()?;
        if kwargs.is_empty() {
            let mut all = vec![name];
            all.extend(args.iter());
            return Ok(PyTuple::new(py, [ty, PyTuple::new(py, all)?.into_any()])?.into_any());
        }
        let partial = py.import("functools")?.getattr("partial")?;
        let caller = partial.call((ty, name), Some(&kwargs))?;
        return Ok(PyTuple::new(py, [caller, args.into_any()])?.into_any());
    }
    if let (Some(single), Some(idx)) = (field("_single"), field("_idx")) {
        let items = if single.is_truthy()? {
            PyTuple::new(py, [idx])?
        } else {
            PyTuple::new(py, idx.try_iter()?.collect::<PyResult<Vec<_>>>()?)?
        };
        return Ok(PyTuple::new(py, [ty, items.into_any()])?.into_any());
    }
    Ok(not_implemented(py))
}
