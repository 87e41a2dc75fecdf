//! The bootstrap constructors (`bootstrap/boot.py`), embedded in the binary and installed in
//! `sys.modules` under their wire name `_satchel_boot_<major>`.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule};

use crate::typeref::typerefs;

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
/// The loader a standalone header runs to install the bootstrap (stdlib only).
pub const LOADER: &str = include_str!("../bootstrap/loader.py");
/// The module name streams reference; the major of FORMAT_VERSION is part of it.
pub const MODULE_NAME: &str = "_satchel_boot_1";
/// File name shown in tracebacks that pass through a constructor.
pub const FILENAME: &str = "<satchel bootstrap>/boot.py";

/// The constructors a reduction tuple names, resolved once.
pub struct Boot {
    pub module: Py<PyModule>,
    /// The module's dict: the globals of every constructor.
    pub globals: Py<PyAny>,
    pub function: Py<PyAny>,
    pub portable_code: Py<PyAny>,
    pub portable_function: Py<PyAny>,
    pub make_function: Py<PyAny>,
    pub function_setstate: Py<PyAny>,
    pub make_code: Py<PyAny>,
    pub make_cell: Py<PyAny>,
    pub cell_setstate: Py<PyAny>,
    pub make_skeleton_class: Py<PyAny>,
    pub make_skeleton_enum: Py<PyAny>,
    pub class_setstate: Py<PyAny>,
    pub dataclass_setstate: Py<PyAny>,
    pub make_field: Py<PyAny>,
    pub make_class: Py<PyAny>,
    pub make_generator: Py<PyAny>,
    pub finished_generator: Py<PyAny>,
    pub generator_skeleton: Py<PyAny>,
    pub generator_setstate: Py<PyAny>,
    pub await_of: Py<PyAny>,
    pub make_typevar: Py<PyAny>,
    pub make_module: Py<PyAny>,
    pub module_setstate: Py<PyAny>,
    pub builtin_type: Py<PyAny>,
    pub make_lru_cache: Py<PyAny>,
    pub make_weak_mapping: Py<PyAny>,
    /// The module lean headers import their check from (`header::LEAN_MODULE`).
    pub lean: Py<PyModule>,
}

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
/// is; a module an earlier standalone stream installed is upgraded in place (the source runs in
/// it again, which keeps its class tracker: `_keep` in boot.py); otherwise a fresh module.
fn install(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    let modules = typerefs(py).sys_modules.bind(py);
    let existing = modules
        .get_item(MODULE_NAME)?
        .and_then(|m| m.cast_into::<PyModule>().ok());
    if let Some(m) = &existing {
        if m.hasattr("_satchel_installed")? {
            return Ok(m.clone());
        }
    }
    // A shim (python/_satchel_boot_1) or a standalone stream's module: run our source in it.
    let module = match existing.filter(|m| m.hasattr("FORMAT_VERSION").unwrap_or(false)) {
        Some(m) => m,
        None => PyModule::new(py, MODULE_NAME)?,
    };
    let globals = module.dict();
    let code = py
        .import("builtins")?
        .getattr("compile")?
        .call1((SOURCE, FILENAME, "exec"))?;
    py.import("builtins")?
        .getattr("exec")?
        .call1((code, &globals))?;
    // Tracebacks through the constructors show their source lines.
    let lines: Vec<String> = SOURCE.split_inclusive('\n').map(str::to_owned).collect();
    let entry = (SOURCE.len(), py.None(), lines, FILENAME);
    py.import("linecache")?
        .getattr("cache")?
        .cast_into::<PyDict>()?
        .set_item(FILENAME, entry)?;
    set_spec(py, &module, MODULE_NAME)?;
    module.setattr("_satchel_installed", true)?;
    modules.set_item(MODULE_NAME, &module)?;
    Ok(module)
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

/// The module a lean header names (`header::LEAN_MODULE`): the bootstrap's `check` as `c`, in
/// `sys.modules` so that `pickle.loads` finds it without a file system lookup. Its name is what
/// a receiver without satchel reads in its `ModuleNotFoundError`.
fn install_lean<'py>(
    py: Python<'py>,
    boot: &Bound<'py, PyModule>,
) -> PyResult<Bound<'py, PyModule>> {
    let name = crate::envelope::header::LEAN_MODULE;
    let module = PyModule::new(py, name)?;
    module.setattr(
        "__doc__",
        "satchel's lean stream header calls `c` (the bootstrap's check) here; a receiver \
         without satchel fails to import this module, and its name tells why.",
    )?;
    module.setattr(crate::envelope::header::LEAN_CHECK, boot.getattr("check")?)?;
    set_spec(py, &module, name)?;
    typerefs(py).sys_modules.bind(py).set_item(name, &module)?;
    Ok(module)
}

/// `satchel._satchel.lean_module()`: the module lean headers name (for its on-disk shim).
#[pyfunction]
pub fn lean_module(py: Python<'_>) -> Py<PyModule> {
    boot(py).lean.clone_ref(py)
}

impl Boot {
    fn load(py: Python<'_>) -> PyResult<Self> {
        let module = install(py)?;
        let lean = install_lean(py, &module)?;
        let get = |name: &str| -> PyResult<Py<PyAny>> { Ok(module.getattr(name)?.unbind()) };
        Ok(Boot {
            function: get("function")?,
            portable_code: get("portable_code")?,
            portable_function: get("portable_function")?,
            make_function: get("make_function")?,
            function_setstate: get("function_setstate")?,
            make_code: get("make_code")?,
            make_cell: get("make_cell")?,
            cell_setstate: get("cell_setstate")?,
            make_skeleton_class: get("make_skeleton_class")?,
            make_skeleton_enum: get("make_skeleton_enum")?,
            class_setstate: get("class_setstate")?,
            dataclass_setstate: get("dataclass_setstate")?,
            make_field: get("make_field")?,
            make_class: get("make_class")?,
            make_generator: get("make_generator")?,
            finished_generator: get("finished_generator")?,
            generator_skeleton: get("generator_skeleton")?,
            generator_setstate: get("generator_setstate")?,
            await_of: get("await_of")?,
            make_typevar: get("make_typevar")?,
            make_module: get("make_module")?,
            module_setstate: get("module_setstate")?,
            builtin_type: get("builtin_type")?,
            make_lru_cache: get("make_lru_cache")?,
            make_weak_mapping: get("make_weak_mapping")?,
            lean: lean.unbind(),
            globals: module.dict().into_any().unbind(),
            module: module.unbind(),
        })
    }
}
