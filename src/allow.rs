//! `loads(data, allow=...)`: the globals a load may resolve. The body is unpickled by a
//! `_pickle.Unpickler` subclass (python/satchel/_allow.py) whose `find_class` asks an
//! `AllowList` first; satchel's own constructors (the bootstrap module) are always allowed.
//!
//! Entries: `"module.name"` allows that one global; `"module.*"` allows every global of the
//! module and of its submodules (`"numpy.*"` covers `numpy._core.numeric._frombuffer`);
//! `"data"` is the preset below. A callable is called as `allow(module, name)` for every other
//! global and allows it by returning true.
//!
//! An allow list limits which importable globals a stream can reach. It is not a sandbox:
//! satchel's constructors rebuild functions shipped by value, so for input from others, sign
//! streams (`key=`) and load with the key.

use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};
use rustc_hash::FxHashSet;

use crate::error::Error;

/// `allow="data"`: plain data that the stdlib pickles through globals.
const DATA: &[&str] = &[
    "builtins.bool",
    "builtins.bytearray",
    "builtins.bytes",
    "builtins.complex",
    "builtins.dict",
    "builtins.float",
    "builtins.frozenset",
    "builtins.int",
    "builtins.list",
    "builtins.range",
    "builtins.set",
    "builtins.slice",
    "builtins.str",
    "builtins.tuple",
    "_codecs.encode",
    "collections.Counter",
    "collections.OrderedDict",
    "collections.defaultdict",
    "collections.deque",
    "datetime.date",
    "datetime.datetime",
    "datetime.time",
    "datetime.timedelta",
    "datetime.timezone",
    "decimal.Decimal",
    "fractions.Fraction",
    "uuid.UUID",
];

#[pyclass(module = "satchel._satchel", frozen)]
pub struct AllowList {
    exact: FxHashSet<String>,
    modules: FxHashSet<String>,
    predicate: Option<Py<PyAny>>,
}

#[pymethods]
impl AllowList {
    /// `spec`: "data", or an iterable of "module.name", "module.*" and "data", or a callable
    /// `(module, name) -> bool`.
    #[new]
    pub fn new(spec: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = spec.py();
        let mut list = AllowList {
            exact: FxHashSet::default(),
            modules: FxHashSet::default(),
            predicate: None,
        };
        let entries: Vec<String> = if let Ok(s) = spec.cast::<PyString>() {
            vec![s.to_string()]
        } else if spec.is_callable() {
            check_signature(spec)?;
            list.predicate = Some(spec.clone().unbind());
            Vec::new()
        } else {
            spec.try_iter()
                .map_err(|_| bad_spec(py))?
                .map(|e| e?.extract::<String>())
                .collect::<PyResult<_>>()
                .map_err(|_| bad_spec(py))?
        };
        for entry in entries {
            if entry == "data" {
                list.exact.extend(DATA.iter().map(|s| s.to_string()));
            } else if let Some(module) = entry.strip_suffix(".*") {
                list.modules.insert(module.to_string());
            } else if entry.contains('.') {
                list.exact.insert(entry);
            } else {
                return Err(bad_spec(py));
            }
        }
        Ok(list)
    }

    /// Raises `satchel.UnpicklingError` unless `module.name` is allowed.
    fn __call__(&self, py: Python<'_>, module: &str, name: &str) -> PyResult<()> {
        if module == crate::wire::BOOT_MODULE
            || self.in_allowed_module(module)
            || self.exact.contains(&format!("{module}.{name}"))
        {
            return Ok(());
        }
        if let Some(p) = &self.predicate {
            if p.bind(py)
                .call1(PyTuple::new(py, [module, name])?)?
                .is_truthy()?
            {
                return Ok(());
            }
        }
        Err(Error::NotAllowed {
            module: module.to_string(),
            name: name.to_string(),
        }
        .into_pyerr(py))
    }
}

impl AllowList {
    /// Whether `module` is an allowed module (`"module.*"`) or a submodule of one.
    fn in_allowed_module(&self, module: &str) -> bool {
        if self.modules.is_empty() {
            return false;
        }
        let mut prefix = module;
        loop {
            if self.modules.contains(prefix) {
                return true;
            }
            match prefix.rfind('.') {
                Some(i) => prefix = &prefix[..i],
                None => return false,
            }
        }
    }
}

/// A callable must take `(module, name)`: one that cannot be called so (a one-argument
/// function) is refused here, naming the signature, rather than failing on the first global.
fn check_signature(spec: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = spec.py();
    // Callables without an introspectable signature (some builtins) are taken on trust.
    let Ok(signature) = py.import("inspect")?.getattr("signature")?.call1((spec,)) else {
        return Ok(());
    };
    if signature.call_method1("bind", ("module", "name")).is_ok() {
        return Ok(());
    }
    let shown = spec
        .getattr("__qualname__")
        .and_then(|q| q.extract::<String>())
        .unwrap_or_else(|_| "the callable".into());
    Err(Error::BadOption {
        reason: format!(
            "allow= callable {shown}{signature} cannot be called as allow(module, name): it \
             must take two arguments, the module and the global's name (for \
             numpy._core.numeric._frombuffer: 'numpy._core.numeric', '_frombuffer'), and \
             return true to allow that global"
        ),
    }
    .into_pyerr(py))
}

fn bad_spec(py: Python<'_>) -> PyErr {
    Error::BadOption {
        reason: "allow= takes 'data', an iterable of 'module.name' / 'module.*' / 'data' \
                 entries ('module.*' covers submodules too), or a callable \
                 allow(module, name) -> bool"
            .into(),
    }
    .into_pyerr(py)
}
