//! Finding where in an object graph pickling failed. This runs only after a dump has failed:
//! it re-pickles the parts of the object one at a time and descends into the first part that
//! fails on its own, collecting a path like
//! "closure cell 'conn' of function 'task' -> attribute 'sock'" (msgspec renders its path only
//! on error, too).

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyFrozenSet, PyList, PySet, PyString, PyTuple, PyType};
use rustc_hash::FxHashSet;

use crate::api::dump_raw;
use crate::error::{pickling_error_type, Error};
use crate::ffi::{self, addr, type_addr};
use crate::typeref::typerefs;

/// Bounds that keep diagnosis of a huge graph cheap; past them the path is what was found.
const MAX_DEPTH: usize = 64;
const MAX_TRIALS: usize = 4000;

/// Turn an error raised while pickling `obj` into satchel's error, or leave it alone.
///
/// - If `obj` pickles fine on its own with a fresh `satchel.Pickler`, the failure came from the
///   file, the buffer callback or a subclass hook, not from the object: the error passes
///   through unchanged (as pickle and cloudpickle let it).
/// - Otherwise the error becomes a `satchel.PicklingError` with the path to the part that
///   failed. Its class also derives from the original exception's type, so `except ValueError`
///   written against pickle keeps working; the original is its `__cause__`.
pub fn explain(obj: &Bound<'_, PyAny>, err: PyErr) -> PyErr {
    let py = obj.py();
    if !err.is_instance_of::<pyo3::exceptions::PyException>(py) {
        return err; // KeyboardInterrupt, SystemExit, ...
    }
    if let Ok(ty) = pickling_error_type(py) {
        if err.is_instance(py, ty.bind(py)) {
            return err;
        }
    }
    let original_type = err.get_type(py);
    if err.is_instance_of::<pyo3::exceptions::PyRecursionError>(py) {
        return raise_as(
            Error::TooDeep {
                what: describe(obj),
            },
            &original_type,
            err,
        );
    }
    let mut search = Search {
        trials: 0,
        visited: FxHashSet::default(),
    };
    let Some(root_err) = search.fails(obj) else {
        return err;
    };
    let (path, leaf, leaf_err) = search.descend(obj, Vec::new(), 0);
    let reason_of = |e: &PyErr| e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
    let reason = reason_of(leaf_err.as_ref().unwrap_or(&root_err));
    raise_as(
        Error::Unpicklable {
            path,
            what: describe(&leaf),
            reason,
        },
        &original_type,
        err,
    )
}

/// `error` as an exception of a class deriving from satchel.PicklingError and `original`.
fn raise_as(error: Error, original: &Bound<'_, PyType>, cause: PyErr) -> PyErr {
    let py = original.py();
    let message = error.to_string();
    match combined_type(original) {
        Ok(ty) => {
            let err = PyErr::from_type(ty, message);
            err.set_cause(py, Some(cause));
            err
        }
        Err(_) => error.with_cause(py, cause),
    }
}

/// One class per original exception type: `class PicklingError(satchel.PicklingError, T)`.
/// Types whose instance layout cannot be combined (OSError's) get plain satchel.PicklingError.
fn combined_type<'py>(original: &Bound<'py, PyType>) -> PyResult<Bound<'py, PyType>> {
    static COMBINED: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
    let py = original.py();
    let base = pickling_error_type(py)?.bind(py);
    if original.is_subclass(base)? {
        return Ok(original.clone());
    }
    let cache = COMBINED
        .get_or_init(py, || PyDict::new(py).unbind())
        .bind(py);
    if let Some(ty) = cache.get_item(original)? {
        return Ok(ty.cast_into::<PyType>()?);
    }
    let ns = PyDict::new(py);
    ns.set_item("__module__", "satchel")?;
    ns.set_item("__qualname__", "PicklingError")?;
    ns.set_item("__doc__", base.getattr("__doc__")?)?;
    let combined = py
        .get_type::<PyType>()
        .call1(("PicklingError", (base, original), ns))?
        .cast_into::<PyType>()?;
    cache.set_item(original, &combined)?;
    Ok(combined)
}

struct Search {
    trials: usize,
    visited: FxHashSet<usize>,
}

impl Search {
    fn fails(&mut self, obj: &Bound<'_, PyAny>) -> Option<PyErr> {
        self.trials += 1;
        let py = obj.py();
        let file = typerefs(py).bytes_io.bind(py).call0().ok()?;
        dump_raw(obj, &file).err()
    }

    fn descend<'py>(
        &mut self,
        obj: &Bound<'py, PyAny>,
        path: Vec<String>,
        depth: usize,
    ) -> (Vec<String>, Bound<'py, PyAny>, Option<PyErr>) {
        if depth < MAX_DEPTH && self.visited.insert(addr(obj)) {
            for (label, child) in children(obj).unwrap_or_default() {
                if self.trials >= MAX_TRIALS {
                    break;
                }
                if let Some(err) = self.fails(&child) {
                    let mut path = path;
                    path.push(label);
                    let (p, leaf, leaf_err) = self.descend(&child, path, depth + 1);
                    return (p, leaf, leaf_err.or(Some(err)));
                }
            }
        }
        (path, obj.clone(), None)
    }
}

/// "function 'task'", "class 'Point'", "object of type 'socket'".
fn describe(obj: &Bound<'_, PyAny>) -> String {
    let qualname = |o: &Bound<'_, PyAny>| {
        o.getattr("__qualname__")
            .map(|q| q.to_string())
            .unwrap_or_default()
    };
    let refs = typerefs(obj.py());
    let ty = type_addr(obj);
    if ty == refs.function {
        format!("function '{}'", qualname(obj))
    } else if ty == refs.generator || ty == refs.coroutine || ty == refs.async_generator {
        format!(
            "{} '{}'",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default(),
            qualname(obj)
        )
    } else if ffi::is_type(obj) {
        format!("class '{}'", qualname(obj))
    } else {
        let ty = obj.get_type();
        format!(
            "object of type '{}'",
            ty.fully_qualified_name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        )
    }
}

fn short_repr(obj: &Bound<'_, PyAny>) -> String {
    let r = obj
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "?".into());
    if r.chars().count() > 40 {
        format!("{}...", r.chars().take(37).collect::<String>())
    } else {
        r
    }
}

/// The parts of `obj` that pickling visits, each with a label for the path.
fn children<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Vec<(String, Bound<'py, PyAny>)>> {
    let py = obj.py();
    let refs = typerefs(py);
    let mut out = Vec::new();
    let ty = type_addr(obj);
    if ty == refs.generator || ty == refs.coroutine || ty == refs.async_generator {
        return crate::reduce::generator::parts(obj);
    }
    if ty == refs.function {
        let name = obj.getattr("__qualname__")?.to_string();
        let code = obj.getattr("__code__")?;
        if let Ok(closure) = obj.getattr("__closure__")?.cast_into::<PyTuple>() {
            let freevars = code.getattr("co_freevars")?.cast_into::<PyTuple>()?;
            for (var, cell) in freevars.iter().zip(closure.iter()) {
                if let Some(value) = ffi::cell_contents(&cell) {
                    out.push((format!("closure cell '{var}' of function '{name}'"), value));
                }
            }
        }
        let globals = obj.getattr("__globals__")?.cast_into::<PyDict>()?;
        let info = crate::reduce::code_info_names(&code)?;
        for var in info.iter() {
            if let Some(value) = globals.get_item(&var)? {
                out.push((format!("global '{var}' of function '{name}'"), value));
            }
        }
        if let Ok(defaults) = obj.getattr("__defaults__")?.cast_into::<PyTuple>() {
            for (i, d) in defaults.iter().enumerate() {
                out.push((format!("default {i} of function '{name}'"), d));
            }
        }
        if let Ok(kw) = obj.getattr("__kwdefaults__")?.cast_into::<PyDict>() {
            for (k, v) in kw.iter() {
                out.push((format!("default of '{k}' of function '{name}'"), v));
            }
        }
        if let Ok(d) = obj.getattr("__dict__")?.cast_into::<PyDict>() {
            for (k, v) in d.iter() {
                out.push((format!("attribute '{k}' of function '{name}'"), v));
            }
        }
    } else if ty == refs.cell {
        if let Some(value) = ffi::cell_contents(obj) {
            out.push(("cell contents".into(), value));
        }
    } else if let Ok(d) = obj.cast::<PyDict>() {
        for (k, v) in d.iter() {
            out.push((format!("key {}", short_repr(&k)), k.clone()));
            out.push((format!("item [{}]", short_repr(&k)), v));
        }
    } else if let Ok(l) = obj.cast::<PyList>() {
        for (i, v) in l.iter().enumerate() {
            out.push((format!("item {i}"), v));
        }
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        for (i, v) in t.iter().enumerate() {
            out.push((format!("item {i}"), v));
        }
    } else if obj.cast::<PySet>().is_ok() || obj.cast::<PyFrozenSet>().is_ok() {
        for v in obj.try_iter()? {
            let v = v?;
            out.push((format!("element {}", short_repr(&v)), v));
        }
    } else if ffi::is_type(obj) {
        let name = obj.getattr("__qualname__")?.to_string();
        // What a class's reduction pickles: its metaclass and bases (in the skeleton, before
        // the attributes), then its attributes, less the ABC caches it never sends.
        let meta = obj.get_type();
        out.push((
            format!("metaclass '{}' of class '{name}'", meta.qualname()?),
            meta.clone().into_any(),
        ));
        for base in obj.getattr("__bases__")?.cast_into::<PyTuple>()?.iter() {
            let label = format!(
                "base class '{}' of class '{name}'",
                base.getattr("__qualname__")?
            );
            out.push((label, base));
        }
        let abc = meta.is_subclass(refs.abc_meta.bind(py))?;
        for item in obj.getattr("__dict__")?.call_method0("items")?.try_iter()? {
            let (k, v): (Bound<'py, PyAny>, Bound<'py, PyAny>) = item?.extract()?;
            if abc
                && k.cast::<PyString>()
                    .is_ok_and(|k| k.to_str().is_ok_and(|k| k.starts_with("_abc_")))
            {
                continue;
            }
            out.push((format!("attribute '{k}' of class '{name}'"), v));
        }
    } else if refs.dict_views.contains(&ty) {
        // keys, values, items (of a dict, then of an OrderedDict).
        let kind = ["key", "value", "item"]
            [refs.dict_views.iter().position(|&t| t == ty).unwrap_or(0) % 3];
        for (i, v) in obj.try_iter()?.enumerate() {
            out.push((format!("{kind} {i} of the view"), v?));
        }
    } else if ty == refs.classmethod
        || ty == refs.staticmethod
        || ty == refs.abstract_classmethod
        || ty == refs.abstract_staticmethod
    {
        out.push(("its function (__func__)".into(), obj.getattr("__func__")?));
    } else if ty == refs.property || ty == refs.abstract_property {
        for part in ["fget", "fset", "fdel"] {
            let value = obj.getattr(part)?;
            if !value.is_none() {
                out.push((format!("property's {part}"), value));
            }
        }
    } else if ty == refs.lru_cache {
        out.push((
            "wrapped function (__wrapped__)".into(),
            obj.getattr("__wrapped__")?,
        ));
    } else if ty == refs.method {
        out.push((
            "method's instance (__self__)".into(),
            obj.getattr("__self__")?,
        ));
        out.push((
            "method's function (__func__)".into(),
            obj.getattr("__func__")?,
        ));
    } else if !ffi::is_module(obj) {
        instance_children(obj, &mut out)?;
    }
    Ok(out)
}

/// Parts of an instance, as its own `__reduce_ex__` presents them.
fn instance_children<'py>(
    obj: &Bound<'py, PyAny>,
    out: &mut Vec<(String, Bound<'py, PyAny>)>,
) -> PyResult<()> {
    let Ok(reduced) = obj.call_method1("__reduce_ex__", (5,)) else {
        return Ok(());
    };
    let Ok(reduced) = reduced.cast_into::<PyTuple>() else {
        return Ok(());
    };
    if let Ok(args) = reduced
        .get_item(1)
        .and_then(|a| Ok(a.cast_into::<PyTuple>()?))
    {
        for (i, a) in args.iter().enumerate() {
            // The instance's class is argument 0 of copyreg.__newobj__: name it as such.
            let label = if ffi::is_type(&a) {
                format!(
                    "class '{}'",
                    a.getattr("__qualname__")
                        .map(|q| q.to_string())
                        .unwrap_or_default()
                )
            } else {
                format!("argument {i}")
            };
            out.push((label, a));
        }
    }
    if let Ok(state) = reduced.get_item(2) {
        let mut dicts = Vec::new();
        if let Ok(t) = state.cast::<PyTuple>() {
            dicts.extend(t.iter());
        } else {
            dicts.push(state.clone());
        }
        for d in dicts {
            if let Ok(d) = d.cast::<PyDict>() {
                for (k, v) in d.iter() {
                    let label = match k.cast::<PyString>() {
                        Ok(s) => format!("attribute '{s}'"),
                        Err(_) => format!("attribute {}", short_repr(&k)),
                    };
                    out.push((label, v));
                }
            } else if !d.is_none() {
                out.push(("state".into(), d));
            }
        }
    }
    for (index, label) in [(3usize, "item"), (4, "entry")] {
        if let Ok(it) = reduced.get_item(index) {
            if it.is_none() {
                continue;
            }
            // Iterators are consumed by looking; these come from a fresh __reduce_ex__ call.
            if let Ok(iter) = it.try_iter() {
                for (i, v) in iter.enumerate() {
                    out.push((format!("{label} {i}"), v?));
                }
            }
        }
    }
    Ok(())
}
