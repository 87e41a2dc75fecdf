//! Finding where in an object graph pickling failed. This runs only after a dump has failed,
//! and collects a path like "closure cell 'conn' of function 'task' -> attribute 'sock'"
//! (msgspec renders its path only on error, too).
//!
//! It costs about one more walk of what the dump had walked, whatever the shape:
//! 1. The reducer remembers the address of the last object it was called with (`Seen`). The C
//!    pickler calls it for every object it does not write itself (not for ints, strings,
//!    lists, dicts...), so after a failure that is the object that failed, or one inside it.
//! 2. A depth-first walk from the dumped object, in the pickler's order, finds that address:
//!    each object is visited once, atoms are skipped without a call, dicts are walked as
//!    snapshots (user code run by the walk cannot change what it iterates), and the walk has
//!    a budget. The route it took is the path.
//! 3. One trial pickles the object found on its own; when it fails, that is the answer (a
//!    trial-based descent goes on from it, for the rare failure inside the C pickler's own
//!    containers). Otherwise the old search runs, bounded: trials of the parts of the object
//!    with fresh picklers, each part tried at most once, at most `MAX_TRIALS` of them.
//!
//! Before this, every level re-pickled every part from scratch, once per reference: a list
//! holding one 200k-item list 4000 times and a lock took 11 s to report.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyFrozenSet, PyList, PySet, PyString, PyTuple, PyType};
use rustc_hash::FxHashSet;

use crate::error::{pickling_error_type, Error};
use crate::ffi::{self, addr, type_addr};
use crate::pickler::dump_raw;
use crate::typeref::typerefs;

/// Bounds that keep diagnosis of a huge graph cheap; past them the path is what was found.
const MAX_DEPTH: usize = 64;
const MAX_TRIALS: usize = 512;
/// Work units of the walk (one per part looked at; an instance's `__reduce_ex__` costs more).
/// Every object visited is held, with its label, until the walk ends: this bounds memory too.
const WALK_BUDGET: usize = 2_000_000;
const REDUCE_COST: usize = 64;
/// Path elements shown in a message: the first and the last ones of a longer path.
const SHOWN_HEAD: usize = 16;
const SHOWN_TAIL: usize = 48;

/// What the failed pickler's reducer saw: the address of the last object it was called with,
/// and of the exception it raised itself (0: none). Addresses only: compared, never read.
/// `own_sink`: the pickler wrote to satchel's own writer with no caller's buffer_callback
/// (`satchel.dumps`), so no file or callback can have raised the error.
#[derive(Clone, Copy, Default)]
pub struct Seen {
    pub last: usize,
    pub raised: usize,
    pub own_sink: bool,
}

/// Turn an error raised while pickling `obj` into satchel's error, or leave it alone.
///
/// - If neither the part that failed nor `obj` fails on its own with a fresh
///   `satchel.Pickler`, the failure came from the file, the buffer callback or a subclass
///   hook, not from the object: the error passes through unchanged (as pickle and cloudpickle
///   let it), unless satchel's reducer raised it or there was no file or callback to blame
///   (`satchel.dumps`), in which case the object changed while it was pickled
///   (`Error::Changed`: a `__reduce__` that fails once, another thread).
/// - Otherwise the error becomes a `satchel.PicklingError` with the path to the part that
///   failed. Its class also derives from the original exception's type, so `except ValueError`
///   written against pickle keeps working; the original is its `__cause__`.
pub fn explain(obj: &Bound<'_, PyAny>, err: PyErr, seen: Seen) -> PyErr {
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
        if let Some(allowance) = crate::ffi::pypy_stack_refusal(py, &err) {
            let what = describe(obj);
            return raise_as(
                Error::TooDeepForPyPyStack { what, allowance },
                &original_type,
                err,
            );
        }
        return raise_as(
            Error::TooDeep {
                what: describe(obj),
            },
            &original_type,
            err,
        );
    }
    let raised_by_reducer = seen.raised != 0 && seen.raised == err.value(py).as_ptr() as usize;
    let mut search = Search::default();
    let reason_of = |e: &PyErr| e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
    // 1-3: the walk to the last object the reducer saw, then a trial of it.
    let found = (seen.last != 0)
        .then(|| search.walk_to(obj, seen.last))
        .flatten();
    if let Some((path, leaf)) = &found {
        if let Some(leaf_err) = search.fails(leaf) {
            let (more, leaf, deeper_err) = search.descend(leaf, path.len());
            let mut path = path.clone();
            path.extend(more);
            let reason = reason_of(deeper_err.as_ref().unwrap_or(&leaf_err));
            return unpicklable(path, &leaf, reason, &original_type, err);
        }
    }
    // The old search, bounded: does `obj` fail on its own, and which of its parts?
    let Some(root_err) = search.fails(obj) else {
        if raised_by_reducer || seen.own_sink {
            let (path, leaf) = found.unwrap_or_else(|| (Vec::new(), obj.clone()));
            let path = render_path(path);
            let mut what = describe(&leaf);
            if !path.is_empty() {
                what = format!("{what} at {}", path.join(" -> "));
            }
            let error = Error::Changed {
                what,
                reason: format!(
                    "{}: {}",
                    original_type
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default(),
                    reason_of(&err)
                ),
            };
            return raise_as(error, &original_type, err);
        }
        return err;
    };
    let (path, leaf, leaf_err) = search.descend(obj, 0);
    let reason = reason_of(leaf_err.as_ref().unwrap_or(&root_err));
    unpicklable(path, &leaf, reason, &original_type, err)
}

fn unpicklable(
    path: Vec<Label<'_>>,
    leaf: &Bound<'_, PyAny>,
    reason: String,
    original_type: &Bound<'_, PyType>,
    err: PyErr,
) -> PyErr {
    raise_as(
        Error::Unpicklable {
            path: render_path(path),
            what: describe(leaf),
            reason,
        },
        original_type,
        err,
    )
}

/// The labels of a path as text; a very long path keeps its first and last elements.
fn render_path(path: Vec<Label<'_>>) -> Vec<String> {
    let n = path.len();
    if n <= SHOWN_HEAD + SHOWN_TAIL + 1 {
        return path.iter().map(Label::render).collect();
    }
    let mut out: Vec<String> = path[..SHOWN_HEAD].iter().map(Label::render).collect();
    out.push(format!("... ({} more) ...", n - SHOWN_HEAD - SHOWN_TAIL));
    out.extend(path[n - SHOWN_TAIL..].iter().map(Label::render));
    out
}

/// `error` as an exception of a class deriving from satchel.PicklingError and `original`,
/// built now, so that a class whose constructor wants other arguments (UnicodeEncodeError
/// wants five) falls back to plain satchel.PicklingError instead of raising a TypeError later.
fn raise_as(error: Error, original: &Bound<'_, PyType>, cause: PyErr) -> PyErr {
    let py = original.py();
    let message = error.to_string();
    let built = combined_type(original).and_then(|ty| {
        let value = ty.call1((message.as_str(),))?;
        // The message must be what str() shows: a base class's __str__ may read fields that
        // its own __init__ would have set.
        if value.str()?.to_str()? != message {
            return Err(pyo3::exceptions::PyTypeError::new_err("incompatible base"));
        }
        Ok(PyErr::from_value(value))
    });
    match built {
        Ok(err) => {
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
    // BaseException's own __init__ and __str__: the message is the one argument, whatever the
    // original class's constructor wants (UnicodeEncodeError wants five) or its __str__ shows
    // (KeyError's quotes it).
    let base_exception = py.get_type::<pyo3::exceptions::PyBaseException>();
    ns.set_item("__init__", base_exception.getattr("__init__")?)?;
    ns.set_item("__str__", base_exception.getattr("__str__")?)?;
    let combined = py
        .get_type::<PyType>()
        .call1(("PicklingError", (base, original), ns))?
        .cast_into::<PyType>()?;
    cache.set_item(original, &combined)?;
    Ok(combined)
}

/// A step of a path, rendered only when it ends up in a message (a 200k-item list gets no
/// 200k labels).
#[derive(Clone)]
enum Label<'py> {
    Item(usize),
    DictKey(Bound<'py, PyAny>),
    DictValue(Bound<'py, PyAny>),
    Element(Bound<'py, PyAny>),
    Text(String),
}

impl Label<'_> {
    fn render(&self) -> String {
        match self {
            Label::Item(i) => format!("item {i}"),
            Label::DictKey(k) => format!("key {}", short_repr(k)),
            Label::DictValue(k) => format!("item [{}]", short_repr(k)),
            Label::Element(v) => format!("element {}", short_repr(v)),
            Label::Text(t) => t.clone(),
        }
    }
}

type Parts<'py> = Vec<(Label<'py>, Bound<'py, PyAny>)>;

#[derive(Default)]
struct Search<'py> {
    trials: usize,
    /// Parts that pickled fine on their own (held, so that their addresses stay theirs).
    fine: FxHashSet<usize>,
    keep: Vec<Bound<'py, PyAny>>,
}

/// The exact types the C pickler writes before it calls `reducer_override`: never the failing
/// object, and without parts.
fn is_atom(obj: &Bound<'_, PyAny>) -> bool {
    typerefs(obj.py()).atomic.contains(&type_addr(obj))
}

impl<'py> Search<'py> {
    fn fails(&mut self, obj: &Bound<'py, PyAny>) -> Option<PyErr> {
        if self.fine.contains(&addr(obj)) {
            return None;
        }
        self.trials += 1;
        let py = obj.py();
        let file = typerefs(py).bytes_io.bind(py).call0().ok()?;
        let result = dump_raw(obj, &file).err();
        if result.is_none() {
            self.fine.insert(addr(obj));
            self.keep.push(obj.clone());
        }
        result
    }

    /// The path from `root` to the object at address `target`, depth first in the pickler's
    /// order, each object once; None when the budget runs out first or it is not found.
    fn walk_to(
        &mut self,
        root: &Bound<'py, PyAny>,
        target: usize,
    ) -> Option<(Vec<Label<'py>>, Bound<'py, PyAny>)> {
        if addr(root) == target {
            return Some((Vec::new(), root.clone()));
        }
        let mut budget = WALK_BUDGET;
        let mut visited: FxHashSet<usize> = FxHashSet::default();
        // Everything visited stays referenced until the walk ends: an address seen once cannot
        // come back as another object (instance parts are fresh objects).
        let mut held: Vec<Bound<'py, PyAny>> = vec![root.clone()];
        visited.insert(addr(root));
        let mut stack: Vec<(Parts<'py>, usize)> = vec![(parts(root, &mut budget), 0)];
        let mut path: Vec<Label<'py>> = Vec::new();
        while let Some((kids, next)) = stack.last_mut() {
            if *next == kids.len() {
                stack.pop();
                path.pop();
                continue;
            }
            let (label, kid) = kids[*next].clone();
            *next += 1;
            if addr(&kid) == target {
                path.push(label);
                return Some((path, kid));
            }
            if is_atom(&kid) || !visited.insert(addr(&kid)) {
                continue;
            }
            if budget == 0 {
                return None;
            }
            let grandkids = parts(&kid, &mut budget);
            held.push(kid);
            if !grandkids.is_empty() {
                path.push(label);
                stack.push((grandkids, 0));
            }
        }
        None
    }

    /// From `obj` (which fails on its own) down through the first part that fails on its own,
    /// by trials: (the path from `obj`, the deepest failing part, its error).
    fn descend(
        &mut self,
        obj: &Bound<'py, PyAny>,
        depth: usize,
    ) -> (Vec<Label<'py>>, Bound<'py, PyAny>, Option<PyErr>) {
        let mut path = Vec::new();
        let mut node = obj.clone();
        let mut node_err = None;
        let mut visited: FxHashSet<usize> = FxHashSet::default();
        'down: while depth + path.len() < MAX_DEPTH && visited.insert(addr(&node)) {
            let mut budget = WALK_BUDGET;
            for (label, child) in parts(&node, &mut budget) {
                if self.trials >= MAX_TRIALS {
                    break 'down;
                }
                if is_atom(&child) {
                    continue;
                }
                if let Some(err) = self.fails(&child) {
                    path.push(label);
                    node = child;
                    node_err = Some(err);
                    continue 'down;
                }
            }
            break;
        }
        (path, node, node_err)
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

/// The parts of `obj` that pickling visits, each with its label, charged to `budget`. A part
/// that raises while being listed ends the list (a hostile `__getattr__` or `__reduce_ex__`).
fn parts<'py>(obj: &Bound<'py, PyAny>, budget: &mut usize) -> Parts<'py> {
    let mut out = Vec::new();
    let _ = children(obj, &mut out, budget);
    *budget = budget.saturating_sub(out.len() + 1);
    out
}

/// Pushes the parts of `obj` onto `out`. Dicts are read as `items()` lists made in one C call,
/// so that nothing run while the parts are used (a key's `__repr__` for a label, a
/// `__reduce_ex__` further down) can change what is being iterated.
fn children<'py>(
    obj: &Bound<'py, PyAny>,
    out: &mut Parts<'py>,
    budget: &mut usize,
) -> PyResult<()> {
    let py = obj.py();
    let refs = typerefs(py);
    let ty = type_addr(obj);
    let text = |s: String| Label::Text(s);
    if ty == refs.generator || ty == refs.coroutine || ty == refs.async_generator {
        *budget = budget.saturating_sub(REDUCE_COST);
        for (label, part) in crate::reduce::generator::parts(obj)? {
            out.push((text(label), part));
        }
        return Ok(());
    }
    // A class or function pickled by reference is a name in the stream: the pickler never
    // looks inside it, so neither does the walk (from `type` or a module's function, the parts
    // reach the whole interpreter: the walk for an object that changed meanwhile, and so is
    // never found, ran for minutes and held gigabytes).
    if (ty == refs.function || ffi::is_type(obj)) && crate::reduce::byref::importable(obj)? {
        return Ok(());
    }
    if ty == refs.function {
        let name = obj.getattr("__qualname__")?.to_string();
        let code = obj.getattr("__code__")?;
        if let Ok(closure) = obj.getattr("__closure__")?.cast_into::<PyTuple>() {
            let freevars = code.getattr("co_freevars")?.cast_into::<PyTuple>()?;
            for (var, cell) in freevars.iter().zip(closure.iter()) {
                if let Some(value) = ffi::cell_contents(&cell) {
                    out.push((
                        text(format!("closure cell '{var}' of function '{name}'")),
                        value,
                    ));
                }
            }
        }
        let globals = obj.getattr("__globals__")?;
        if let Ok(globals) = globals.cast::<PyDict>() {
            let info = crate::reduce::code_info_names(&code)?;
            for var in info.iter() {
                if let Some(value) = globals.get_item(&var)? {
                    out.push((text(format!("global '{var}' of function '{name}'")), value));
                }
            }
        }
        if let Ok(defaults) = obj.getattr("__defaults__")?.cast_into::<PyTuple>() {
            for (i, d) in defaults.iter().enumerate() {
                out.push((text(format!("default {i} of function '{name}'")), d));
            }
        }
        let attrs = [
            ("__kwdefaults__", "default of '{k}'"),
            ("__dict__", "attribute '{k}'"),
            ("__annotations__", "annotation of '{k}'"),
        ];
        for (attr, what) in attrs {
            if let Ok(d) = obj.getattr(attr).and_then(|d| Ok(d.cast_into::<PyDict>()?)) {
                for (k, v) in dict_items(&d)? {
                    let label = format!(
                        "{} of function '{name}'",
                        what.replace("{k}", &k.to_string())
                    );
                    out.push((text(label), v));
                }
            }
        }
    } else if ty == refs.cell {
        if let Some(value) = ffi::cell_contents(obj) {
            out.push((text("cell contents".into()), value));
        }
    } else if let Ok(d) = obj.cast::<PyDict>() {
        for (k, v) in dict_items(d)? {
            out.push((Label::DictKey(k.clone()), k.clone()));
            out.push((Label::DictValue(k), v));
        }
    } else if let Ok(l) = obj.cast::<PyList>() {
        for (i, v) in l.iter().enumerate() {
            if !is_atom(&v) {
                out.push((Label::Item(i), v));
            }
        }
        *budget = budget.saturating_sub(l.len());
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        for (i, v) in t.iter().enumerate() {
            if !is_atom(&v) {
                out.push((Label::Item(i), v));
            }
        }
        *budget = budget.saturating_sub(t.len());
    } else if obj.cast::<PySet>().is_ok() || obj.cast::<PyFrozenSet>().is_ok() {
        for v in obj.try_iter()? {
            let v = v?;
            if !is_atom(&v) {
                out.push((Label::Element(v.clone()), v));
            }
        }
    } else if ffi::is_type(obj) {
        let name = obj.getattr("__qualname__")?.to_string();
        // What a class's reduction pickles: its metaclass and bases (in the skeleton, before
        // the attributes), then its attributes, less the ABC caches it never sends.
        let meta = obj.get_type();
        out.push((
            text(format!(
                "metaclass '{}' of class '{name}'",
                meta.qualname()?
            )),
            meta.clone().into_any(),
        ));
        for base in obj.getattr("__bases__")?.cast_into::<PyTuple>()?.iter() {
            let label = format!(
                "base class '{}' of class '{name}'",
                base.getattr("__qualname__")?
            );
            out.push((text(label), base));
        }
        let abc = meta.is_subclass(refs.abc_meta.bind(py))?;
        if cfg!(PyPy) && !ffi::is_heap_type(obj) {
            // A built-in class pickles by reference, never by its attributes. On PyPy its
            // dict must not even be listed: cpyext crashes (unbounded recursion, SIGSEGV)
            // making C objects of some built-in getset descriptors (`getset_descriptor`'s
            // own `__objclass__`, for one).
            return Ok(());
        }
        let items = obj.getattr("__dict__")?.call_method0("items")?;
        let items = py.get_type::<PyList>().call1((items,))?;
        for item in items.cast_into::<PyList>()?.iter() {
            let (k, v): (Bound<'py, PyAny>, Bound<'py, PyAny>) = item.extract()?;
            if abc
                && k.cast::<PyString>()
                    .is_ok_and(|k| k.to_str().is_ok_and(|k| k.starts_with("_abc_")))
            {
                continue;
            }
            out.push((text(format!("attribute '{k}' of class '{name}'")), v));
        }
    } else if refs.dict_views.contains(&ty) {
        // keys, values, items (of a dict, then of an OrderedDict).
        let kind = ["key", "value", "item"]
            [refs.dict_views.iter().position(|&t| t == ty).unwrap_or(0) % 3];
        for (i, v) in obj.try_iter()?.enumerate() {
            out.push((text(format!("{kind} {i} of the view")), v?));
        }
    } else if ty == refs.classmethod
        || ty == refs.staticmethod
        || ty == refs.abstract_classmethod
        || ty == refs.abstract_staticmethod
    {
        out.push((
            text("its function (__func__)".into()),
            obj.getattr("__func__")?,
        ));
    } else if ty == refs.property || ty == refs.abstract_property {
        for part in ["fget", "fset", "fdel"] {
            let value = obj.getattr(part)?;
            if !value.is_none() {
                out.push((text(format!("property's {part}")), value));
            }
        }
    } else if ty == refs.lru_cache {
        out.push((
            text("wrapped function (__wrapped__)".into()),
            obj.getattr("__wrapped__")?,
        ));
    } else if ty == refs.method {
        out.push((
            text("method's instance (__self__)".into()),
            obj.getattr("__self__")?,
        ));
        out.push((
            text("method's function (__func__)".into()),
            obj.getattr("__func__")?,
        ));
    } else if !ffi::is_module(obj) {
        *budget = budget.saturating_sub(REDUCE_COST);
        instance_children(obj, out, budget)?;
    }
    Ok(())
}

/// A dict's items as they are now (`PyDict_Items`: one C call, no Python code runs), so that
/// nothing done with them can change what is iterated; pyo3's own dict iterator panics when
/// the dict changes under it.
fn dict_items<'py>(
    d: &Bound<'py, PyDict>,
) -> PyResult<Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
    d.items().iter().map(|item| item.extract()).collect()
}

/// Parts of an instance, as its own `__reduce_ex__` presents them.
fn instance_children<'py>(
    obj: &Bound<'py, PyAny>,
    out: &mut Parts<'py>,
    budget: &mut usize,
) -> PyResult<()> {
    let text = |s: String| Label::Text(s);
    let Ok(reduced) = reduce_ex(obj) else {
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
            out.push((text(label), a));
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
                for (k, v) in dict_items(d)? {
                    let label = match k.cast::<PyString>() {
                        Ok(s) => format!("attribute '{s}'"),
                        Err(_) => format!("attribute {}", short_repr(&k)),
                    };
                    out.push((text(label), v));
                }
            } else if !d.is_none() {
                out.push((text("state".into()), d));
            }
        }
    }
    for (index, label) in [(3usize, "item"), (4, "entry")] {
        if let Ok(it) = reduced.get_item(index) {
            if it.is_none() {
                continue;
            }
            // Iterators are consumed by looking; these come from a fresh __reduce_ex__ call.
            // They may be endless (itertools.count): the budget ends them.
            if let Ok(iter) = it.try_iter() {
                for (i, v) in iter.enumerate() {
                    if *budget == 0 {
                        break;
                    }
                    *budget -= 1;
                    out.push((text(format!("{label} {i}")), v?));
                }
            }
        }
    }
    Ok(())
}

/// `obj.__reduce_ex__(5)`. On PyPy the attribute is looked up by a Python frame: a
/// `__getattribute__` that recurses without end (cloudpickle's test_recursion_during_pickling),
/// entered straight from cpyext's `PyObject_GetAttr`, runs out of RPython stack inside that
/// call and leaves an error that cpyext's `PyErr_Fetch` then fails to hand over, which is fatal
/// ("The function PyErr_Fetch was not supposed to fail"). Entered from a Python frame, the same
/// recursion ends in a plain RecursionError.
fn reduce_ex<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if !cfg!(PyPy) {
        return obj.call_method1("__reduce_ex__", (5,));
    }
    // What the reducer refuses on PyPy (a lock) is the culprit itself, not its class.
    crate::reduce::refuse_builtin_state(obj)?;
    let py = obj.py();
    static CALL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let call = CALL.get_or_try_init(py, || -> PyResult<_> {
        let ns = PyDict::new(py);
        py.run(
            c"def reduce_ex(obj, protocol):\n    try:\n        return obj.__reduce_ex__(protocol)\n    except RecursionError:\n        return None\n",
            Some(&ns),
            None,
        )?;
        Ok(ns.get_item("reduce_ex")?.expect("defined above").unbind())
    })?;
    call.bind(py).call1((obj, 5))
}
