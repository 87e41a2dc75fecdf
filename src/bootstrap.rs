//! The bootstrap constructors (`bootstrap/boot.py`), embedded in the binary and installed in
//! `sys.modules` under their wire name `_satchel_boot_<major>`.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyModule, PyTuple};
use rustc_hash::FxHashMap;
use std::sync::Mutex;

use crate::typeref::typerefs;
use crate::wire::{BOOT_MODULE, FORMAT_VERSION, LEAN_MODULE, LEAN_MODULE_1_4};

/// The parts of the bootstrap (docs/FORMAT.md): the core, the nonportable (bytecode)
/// constructors, the portable ones and the loader of out-of-band buffers (never standalone).
/// The installed module holds all four, in this order.
pub const CORE: &str = include_str!("../bootstrap/boot.py");
pub const BYTECODE: &str = include_str!("../bootstrap/bytecode.py");
pub const PORTABLE: &str = include_str!("../bootstrap/portable.py");
pub const SOURCE: &str = concat!(
    include_str!("../bootstrap/boot.py"),
    "\n",
    include_str!("../bootstrap/bytecode.py"),
    "\n",
    include_str!("../bootstrap/portable.py"),
    "\n",
    include_str!("../bootstrap/buffers.py")
);
/// The loader a standalone header runs to install the bootstrap (stdlib only). satchel runs
/// it too, at import: how a bootstrap module is installed or upgraded is written once, there.
pub const LOADER: &str = include_str!("../bootstrap/loader.py");
/// The parts satchel's own module holds (`PARTS` in the bootstrap), beyond the core.
const PARTS: [&str; 3] = ["bytecode", "portable", "buffers"];

macro_rules! constructors {
    ($($name:ident),* $(,)?) => {
        /// The constructors a reduction tuple names, resolved once: one field per bootstrap
        /// name, listed once (the `constructors!` call below).
        pub struct Boot {
            pub module: Py<PyModule>,
            /// The module's dict: the globals of every constructor.
            pub globals: Py<PyAny>,
            /// The module lean headers import their check from (`wire::LEAN_MODULE`).
            pub lean: Py<PyModule>,
            /// Format 1.4's (`wire::LEAN_MODULE_1_4`).
            pub lean_1_4: Py<PyModule>,
            $(pub $name: Py<PyAny>,)*
        }

        /// The bootstrap names satchel's reductions call (`tests/test_wire.py` checks that
        /// each is a public constructor of the bootstrap).
        pub const CONSTRUCTORS: &[&str] = &[$(stringify!($name)),*];

        impl Boot {
            fn load(py: Python<'_>) -> PyResult<Self> {
                let module = install(py)?;
                let (lean, lean_1_4) = install_lean(py)?;
                Ok(Boot {
                    $($name: module.getattr(stringify!($name))?.unbind(),)*
                    lean: lean.unbind(),
                    lean_1_4: lean_1_4.unbind(),
                    globals: module.dict().into_any().unbind(),
                    module: module.unbind(),
                })
            }
        }
    };
}

// Every bootstrap constructor a reduction names (wire format: bootstrap/boot.py's names).
constructors!(
    function,
    portable_code,
    portable_function,
    make_function,
    function_setstate,
    make_code,
    make_cell,
    cell_setstate,
    make_skeleton_class,
    make_skeleton_enum,
    class_setstate,
    dataclass_setstate,
    make_field,
    make_class,
    make_generator,
    finished_generator,
    generator_skeleton,
    generator_setstate,
    await_of,
    make_typevar,
    make_module,
    module_setstate,
    builtin_type,
    make_lru_cache,
    make_weak_mapping,
);

static BOOT: PyOnceLock<Boot> = PyOnceLock::new();

pub fn boot(py: Python<'_>) -> &'static Boot {
    BOOT.get_or_try_init(py, || Boot::load(py))
        .expect("satchel: the bootstrap module is installed at module init")
}

pub fn init(py: Python<'_>) -> PyResult<()> {
    BOOT.get_or_try_init(py, || Boot::load(py))?;
    Ok(())
}

/// The installed bootstrap module. satchel's own (marked `_satchel_installed`) is used as it
/// is; otherwise the loader (bootstrap/loader.py, what a standalone header runs) installs the
/// source with every part, or upgrades in place a module an earlier standalone stream
/// installed (which keeps its class tracker: `_keep` in boot.py).
fn install(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    let modules = typerefs(py).sys_modules.bind(py);
    let existing = modules
        .get_item(BOOT_MODULE)?
        .and_then(|m| m.cast_into::<PyModule>().ok());
    if let Some(m) = &existing {
        if m.hasattr("_satchel_installed")? {
            return Ok(m.clone());
        }
    }
    // The loader imports the module when it is missing, which here (satchel's own import)
    // would import satchel again: it gets a fresh module instead. One that is no bootstrap
    // (the `python/_satchel_boot_1` shim being imported) is replaced.
    if !existing.is_some_and(|m| m.hasattr("FORMAT_VERSION").unwrap_or(false)) {
        let module = PyModule::new(py, BOOT_MODULE)?;
        set_spec(py, &module, BOOT_MODULE)?;
        modules.set_item(BOOT_MODULE, &module)?;
    }
    let builtins = py.import("builtins")?;
    let globals = PyDict::new(py);
    globals.set_item("S", SOURCE)?;
    globals.set_item("V", FORMAT_VERSION)?;
    globals.set_item("N", PyTuple::new(py, PARTS)?)?;
    let loader =
        builtins
            .getattr("compile")?
            .call1((LOADER, "<satchel bootstrap loader>", "exec"))?;
    builtins.getattr("exec")?.call1((loader, &globals))?;
    let module = modules
        .get_item(BOOT_MODULE)?
        .ok_or_else(|| {
            pyo3::exceptions::PyImportError::new_err("the bootstrap loader installed no module")
        })?
        .cast_into::<PyModule>()?;
    // Tracebacks through the constructors show their source lines (the loader compiles the
    // source under this name).
    let filename = format!("<satchel bootstrap {FORMAT_VERSION}>");
    let lines: Vec<String> = SOURCE.split_inclusive('\n').map(str::to_owned).collect();
    let entry = (SOURCE.len(), py.None(), lines, &filename);
    py.import("linecache")?
        .getattr("cache")?
        .cast_into::<PyDict>()?
        .set_item(&filename, entry)?;
    module.setattr("_satchel_installed", true)?;
    // bytecode.py's `_code` (every nonportable function's code object), with its cache in Rust:
    // the same lookups, hashed with FxHash instead of siphash over the marshal bytes (a sixth
    // of a task's load). A loader that runs the source again restores the Python one.
    module.setattr("_code", pyo3::wrap_pyfunction!(code_of, py)?)?;
    Ok(module)
}

/// Code objects by their marshal bytes.
type CodeCache = FxHashMap<Box<[u8]>, Py<PyAny>>;

/// bytecode.py's `_CODE_CACHE` (same bound), made on first use.
static CODE_CACHE: Mutex<Option<CodeCache>> = Mutex::new(None);
const CODE_CACHE_SIZE: usize = 1024;

/// `_code(code)`: `code` itself unless it is bytes; else the code object those marshal bytes
/// hold, unmarshalled once per process while the cache keeps it (bytecode.py's `_code`).
#[pyfunction]
#[pyo3(name = "_code")]
fn code_of<'py>(code: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = code.py();
    let Ok(bytes) = code.cast_exact::<PyBytes>() else {
        return Ok(code.clone());
    };
    let key = bytes.as_bytes();
    let cached = CODE_CACHE
        .lock()
        .expect("code cache lock")
        .as_ref()
        .and_then(|m| m.get(key).map(|c| c.clone_ref(py)));
    if let Some(c) = cached {
        return Ok(c.into_bound(py));
    }
    static LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let loads = LOADS.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("marshal")?.getattr("loads")?.unbind())
    })?;
    let loaded = loads.bind(py).call1((bytes,))?;
    let evicted = {
        let mut guard = CODE_CACHE.lock().expect("code cache lock");
        let map = guard.get_or_insert_with(FxHashMap::default);
        let evicted = if map.len() >= CODE_CACHE_SIZE {
            std::mem::take(map)
        } else {
            FxHashMap::default()
        };
        map.insert(key.into(), loaded.clone().unbind());
        evicted
    };
    drop(evicted); // released outside the lock
    Ok(loaded)
}

/// A module spec whose `_initializing` is False: the import machinery checks it on every
/// lookup of the module (CPython's import_ensure_initialized), and a module whose `__spec__` is
/// None takes a slower path there. It halves the unpickler's lookup of each constructor
/// (1.0 -> 0.55 us on CPython 3.11), which every stream pays for its header and body.
fn set_spec(py: Python<'_>, module: &Bound<'_, PyModule>, name: &str) -> PyResult<()> {
    let spec = py
        .import("importlib.machinery")?
        .getattr("ModuleSpec")?
        .call1((name, py.None()))?;
    spec.setattr("_initializing", false)?;
    module.setattr("__spec__", spec)
}

/// The module a lean header names (`wire::LEAN_MODULE`), and format 1.4's
/// (`wire::LEAN_MODULE_1_4`, returned second): each with the check as `c`, in `sys.modules` so
/// that `pickle.loads` finds it without a file system lookup. Their names are what a receiver
/// without satchel (or, for the first, with a satchel older than 1.5) reads in its
/// `ModuleNotFoundError`.
fn install_lean(py: Python<'_>) -> PyResult<(Bound<'_, PyModule>, Bound<'_, PyModule>)> {
    // Rust, not the bootstrap's check: it decides the common case without a Python frame
    // (envelope/unwrap.rs), and hands everything but the common case to that check. It takes
    // both forms of the arguments (format 1.5's packed bytes, 1.4's four values).
    let check = pyo3::wrap_pyfunction!(crate::envelope::unwrap::lean_check, py)?;
    let install = |name: &str| -> PyResult<Bound<'_, PyModule>> {
        let module = PyModule::new(py, name)?;
        module.setattr(
            "__doc__",
            "satchel's lean stream header calls `c` (the bootstrap's check) here; a receiver \
             without satchel fails to import this module, and its name tells why.",
        )?;
        module.setattr(crate::envelope::header::LEAN_CHECK, &check)?;
        set_spec(py, &module, name)?;
        typerefs(py).sys_modules.bind(py).set_item(name, &module)?;
        Ok(module)
    };
    Ok((install(LEAN_MODULE)?, install(LEAN_MODULE_1_4)?))
}

/// `satchel._satchel.lean_module()`: the module lean headers name (for its on-disk shim);
/// `lean_module(True)`: format 1.4's.
#[pyfunction]
#[pyo3(signature = (format_1_4=false))]
pub fn lean_module(py: Python<'_>, format_1_4: bool) -> Py<PyModule> {
    if format_1_4 {
        boot(py).lean_1_4.clone_ref(py)
    } else {
        boot(py).lean.clone_ref(py)
    }
}
