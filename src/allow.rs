//! `loads(data, allow=...)`: the globals a load may resolve. The body is unpickled by a
//! `_pickle.Unpickler` subclass (python/satchel/_allow.py) whose `find_class` asks an
//! `AllowList` first; satchel's own constructors (the bootstrap module) are always allowed.
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
        if module == crate::bootstrap::MODULE_NAME
            || self.modules.contains(module)
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

fn bad_spec(py: Python<'_>) -> PyErr {
    Error::BadOption {
        reason: "allow= takes 'data', an iterable of 'module.name' / 'module.*' / 'data' \
                 entries, or a callable (module, name) -> bool"
            .into(),
    }
    .into_pyerr(py)
}
