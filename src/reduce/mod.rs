//! Classification and dispatch: `reducer_override` classifies each object once, by exact type
//! first, and returns NotImplemented at once for everything the C pickler handles itself.

pub(crate) mod byref;
mod cell;
mod class;
mod classid;
mod code;
mod determinism;
mod dictview;
mod file;
mod function;
pub mod generator;
mod globals;
mod instance;
mod itertools;
mod memo;
mod memoryview;
mod method;
mod module;
mod operator;
mod portable_class;
mod stdlib;
mod tracker;

pub use byref::{list_registry, register_by_value, unregister_by_value};
pub use classid::content_id;
pub use memo::override_before_memo;

use std::sync::Mutex;

use rustc_hash::FxHashMap;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};

use crate::ffi::{self, type_addr};
use crate::typeref::{typerefs, TypeRefs};

/// What an object is, as far as reduction goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Function,
    Class,
    Code,
    Cell,
    Method,
    Module,
    ClassMethod,
    StaticMethod,
    Property,
    LruCache,
    MappingProxy,
    WeakMapping,
    TypeVar,
    NewType,
    /// `dataclasses._FIELD_BASE` markers (`_FIELD`, `_FIELD_CLASSVAR`, `_FIELD_INITVAR`).
    FieldMarker,
    Singleton,
    GetSetDescriptor,
    /// `dataclasses.Field`.
    Field,
    Generator,
    Coroutine,
    AsyncGenerator,
    CoroutineWrapper,
    Itertools,
    Exception,
    DictView,
    MemoryView,
    File,
    /// `operator.methodcaller` and `operator.itemgetter`, on PyPy only (`operator.rs`).
    OperatorCaller,
}

/// The hot path. A plain instance pays one pointer compare, one type-flag read, then
/// `classify_rare`'s one hash probe, one flag read and one MRO walk (`PyModule_Check`):
/// about 60 instructions in all, against some 4,500 for pickling it (`docs/ADDING.md`).
#[inline(always)]
pub fn classify(obj: &Bound<'_, PyAny>, refs: &TypeRefs) -> Option<Kind> {
    let ty = type_addr(obj);
    if ty == refs.function {
        Some(Kind::Function)
    } else if ffi::is_type(obj) {
        Some(Kind::Class)
    } else {
        classify_rare(obj, ty, refs)
    }
}

/// Everything but functions and classes: one hash probe on the exact type (`KIND_TYPES`),
/// then the two kinds that include subclasses: exceptions (a type flag) and modules (lazy
/// modules subclass `ModuleType`).
#[cold]
#[inline(never)]
fn classify_rare(obj: &Bound<'_, PyAny>, ty: usize, refs: &TypeRefs) -> Option<Kind> {
    if let Some(&kind) = refs.exact_kinds.get(&ty) {
        Some(kind)
    } else if ffi::is_exception(obj) {
        Some(Kind::Exception)
    } else if ffi::is_module(obj) {
        Some(Kind::Module)
    } else {
        None
    }
}

/// Whether a `KIND_TYPES` entry must exist on every supported interpreter.
#[derive(Clone, Copy)]
enum Needed {
    Always,
    /// Deprecated or version-dependent: skipped where the interpreter lacks it.
    IfPresent,
}

/// The kinds recognised by exact type: `(module, attribute, kind)`. A new kind whose type is
/// importable is one line here, its `Kind` variant and its arm in `reduce_kind`
/// (`docs/ADDING.md`). A type listed twice keeps its first kind.
const KIND_TYPES: &[(&str, &str, Kind, Needed)] = {
    use Kind::*;
    use Needed::*;
    &[
        ("types", "CodeType", Code, Always),
        ("types", "CellType", Cell, Always),
        ("types", "MethodType", Method, Always),
        ("types", "ModuleType", Module, Always),
        ("builtins", "classmethod", ClassMethod, Always),
        ("abc", "abstractclassmethod", ClassMethod, IfPresent),
        ("builtins", "staticmethod", StaticMethod, Always),
        ("abc", "abstractstaticmethod", StaticMethod, IfPresent),
        ("builtins", "property", Property, Always),
        ("abc", "abstractproperty", Property, IfPresent),
        ("functools", "_lru_cache_wrapper", LruCache, Always),
        ("types", "MappingProxyType", MappingProxy, Always),
        ("weakref", "WeakKeyDictionary", WeakMapping, Always),
        ("weakref", "WeakValueDictionary", WeakMapping, Always),
        ("weakref", "WeakSet", WeakMapping, Always),
        ("typing", "TypeVar", TypeVar, Always),
        ("typing", "ParamSpec", TypeVar, Always),
        ("typing", "NewType", NewType, Always),
        // `dataclasses._FIELD_BASE`: the type of the `_FIELD`, `_FIELD_CLASSVAR` and
        // `_FIELD_INITVAR` markers, not `dataclasses.Field` (`Kind::Field`).
        ("dataclasses", "_FIELD_BASE", FieldMarker, Always),
        ("types", "GetSetDescriptorType", GetSetDescriptor, Always),
        ("dataclasses", "Field", Field, Always),
        ("types", "GeneratorType", Generator, Always),
        ("types", "CoroutineType", Coroutine, Always),
        ("types", "AsyncGeneratorType", AsyncGenerator, Always),
        ("builtins", "memoryview", MemoryView, Always),
        ("itertools", "count", Itertools, Always),
        ("itertools", "repeat", Itertools, Always),
        ("itertools", "islice", Itertools, Always),
        ("itertools", "chain", Itertools, Always),
        ("itertools", "cycle", Itertools, Always),
        // What `open()` returns (reduce/file.rs).
        ("_io", "TextIOWrapper", File, Always),
        ("_io", "BufferedReader", File, Always),
        ("_io", "BufferedRandom", File, Always),
        ("_io", "BufferedWriter", File, Always),
        ("_io", "FileIO", File, Always),
    ]
};

/// The table behind `classify_rare`: `KIND_TYPES`, then the types no module names (made at
/// init in `typeref.rs`): the coroutine wrapper, dict views and the dataclass singletons.
pub fn exact_kinds(py: Python<'_>, refs: &TypeRefs) -> PyResult<FxHashMap<usize, Kind>> {
    let mut table: Vec<(usize, Kind)> = Vec::with_capacity(KIND_TYPES.len() + 16);
    for &(module, name, kind, needed) in KIND_TYPES {
        match (py.import(module)?.getattr(name), needed) {
            (Ok(ty), _) => table.push((ffi::addr(&ty), kind)),
            (Err(_), Needed::IfPresent) => {}
            (Err(e), Needed::Always) => return Err(e),
        }
    }
    table.push((refs.coroutine_wrapper, Kind::CoroutineWrapper));
    table.extend(refs.dict_views.iter().map(|&t| (t, Kind::DictView)));
    table.extend(refs.singletons.keys().map(|&t| (t, Kind::Singleton)));
    // PyPy's member descriptors (a `__slots__` entry) have no reduction of their own (they
    // would go through `__newobj__` and fail to load): the getset one, `getattr(cls, name)`,
    // is what CPython's own `__reduce__` for them amounts to.
    if cfg!(PyPy) {
        let member = py.import("types")?.getattr("MemberDescriptorType")?;
        table.push((ffi::addr(&member), Kind::GetSetDescriptor));
        let operator = py.import("operator")?;
        for name in ["methodcaller", "itemgetter"] {
            table.push((ffi::addr(&operator.getattr(name)?), Kind::OperatorCaller));
        }
    }
    let mut kinds = FxHashMap::default();
    for (ty, kind) in table {
        kinds.entry(ty).or_insert(kind);
    }
    Ok(kinds)
}

/// One module's globals in a dump: the original dict (held so that its address, the key,
/// cannot be reused while the dump runs) and the dict the stream builds for it.
struct GlobalsEntry {
    key: usize,
    _original: Py<PyDict>,
    base: Py<PyDict>,
}

/// Per-dump state: the globals dicts shared by functions of one module within one dump call.
/// A dump touches few modules, so a short vector beats a map.
pub struct DumpState {
    globals_ref: Mutex<Vec<GlobalsEntry>>,
    /// Reduce plain instances here (`instance.rs`): only on picklers satchel made itself.
    plain_instances: std::sync::atomic::AtomicBool,
    /// Portable mode: functions travel as source, never as bytecode.
    portable: std::sync::atomic::AtomicBool,
    /// This dump named a bootstrap constructor, so its stream needs the header.
    bootstrap_used: std::sync::atomic::AtomicBool,
    /// This dump wrote a started generator's frame (`header::FLAG_GENERATORS`).
    generators: std::sync::atomic::AtomicBool,
    /// A session snapshot's pickler: functions whose globals are this namespace travel
    /// without them, bound on loading to the namespace being restored (`function.rs`).
    session: std::sync::OnceLock<SessionGlobals>,
    /// Submodules found for (globals dict, code object) in this dump (`function::submodules`):
    /// the 200 closures of one factory search `sys.modules` once, not 200 times.
    submodules: Mutex<Vec<SubmodulesEntry>>,
    /// The classes this dump reduced by value, by the address of their own dict: a
    /// `__classdict__` cell holding one travels as `vars(cls)` (`cell.rs`). Held, so that an
    /// address cannot be reused while the dump runs.
    class_dicts: Mutex<Vec<(usize, Py<PyType>)>>,
    /// Modules a function's globals hold, and whether each goes by reference (`module.rs`),
    /// decided once per dump (`function.rs`: the 200 closures of one factory reading `math`).
    /// Held, so that an address cannot be reused while the dump runs.
    modules_by_ref: Mutex<Vec<(Py<PyAny>, bool)>>,
    /// What was reduced since the memo was cleared, where the pickler asks before its memo
    /// (PyPy: `memo.rs`).
    seen: memo::Seen,
    /// PyPy: what the reducer read this dump, readied for C first (`ffi::Readied`).
    #[cfg(PyPy)]
    readied: ffi::Readied,
}

/// The namespace of a session snapshot, and what the stream writes in its place.
pub struct SessionGlobals {
    namespace: Py<PyDict>,
    placeholder: Py<PyAny>,
}

/// One (globals, code) pair's submodules in a dump; holds the code so its address (part of the
/// key) cannot be reused while the dump runs (the globals dict is held by `globals_ref`).
struct SubmodulesEntry {
    globals: usize,
    code: Py<PyAny>,
    found: Vec<Py<PyAny>>,
}

/// What a dump noted about its body, for the header written with it.
#[derive(Clone, Copy, Default)]
pub struct Marks {
    /// It named a bootstrap constructor: the stream needs the header.
    pub bootstrap: bool,
    /// It holds a started generator's frame, which resumes only on this interpreter build.
    pub generators: bool,
}

impl DumpState {
    pub fn new() -> Self {
        DumpState {
            globals_ref: Mutex::new(Vec::new()),
            plain_instances: std::sync::atomic::AtomicBool::new(false),
            portable: std::sync::atomic::AtomicBool::new(false),
            bootstrap_used: std::sync::atomic::AtomicBool::new(false),
            generators: std::sync::atomic::AtomicBool::new(false),
            session: std::sync::OnceLock::new(),
            submodules: Mutex::new(Vec::new()),
            class_dicts: Mutex::new(Vec::new()),
            modules_by_ref: Mutex::new(Vec::new()),
            seen: memo::Seen::default(),
            #[cfg(PyPy)]
            readied: ffi::Readied::default(),
        }
    }

    /// Make this a session pickler for `namespace` (the first call wins: a pickler dumps one
    /// session).
    pub fn set_session(&self, namespace: Py<PyDict>, placeholder: Py<PyAny>) {
        let _ = self.session.set(SessionGlobals {
            namespace,
            placeholder,
        });
    }

    /// What a function with these globals gets as its globals in the stream, when they are
    /// the session's namespace: its placeholder (None for every other function).
    pub fn session_globals<'py>(&self, globals: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
        let session = self.session.get()?;
        globals
            .is(session.namespace.bind(globals.py()))
            .then(|| session.placeholder.bind(globals.py()).clone())
    }

    /// The submodules `find` returns for functions of `code` with globals `globals`, computed
    /// once per dump.
    pub fn submodules<'py>(
        &self,
        globals: &Bound<'py, PyDict>,
        code: &Bound<'py, PyAny>,
        find: impl FnOnce() -> PyResult<Vec<Bound<'py, PyAny>>>,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let py = code.py();
        let key = crate::ffi::addr(globals.as_any());
        let found = {
            let guard = self.submodules.lock().expect("dump state lock");
            guard
                .iter()
                .find(|e| e.globals == key && e.code.bind(py).is(code))
                .map(|e| e.found.iter().map(|m| m.bind(py).clone()).collect())
        };
        if let Some(found) = found {
            return Ok(found);
        }
        let found = find()?;
        self.submodules
            .lock()
            .expect("dump state lock")
            .push(SubmodulesEntry {
                globals: key,
                code: code.clone().unbind(),
                found: found.iter().map(|m| m.clone().unbind()).collect(),
            });
        Ok(found)
    }

    /// `module::by_reference(module)` (false when it fails, as `function::is_flat` has it),
    /// computed once per dump for each module.
    pub fn module_by_reference(&self, module: &Bound<'_, PyAny>) -> bool {
        let key = crate::ffi::addr(module);
        let known = {
            let guard = self.modules_by_ref.lock().expect("dump state lock");
            guard
                .iter()
                .find(|(m, _)| m.as_ptr() as usize == key)
                .map(|(_, r)| *r)
        };
        if let Some(r) = known {
            return r;
        }
        let r = module::by_reference(module).unwrap_or(false);
        let mut guard = self.modules_by_ref.lock().expect("dump state lock");
        if guard.len() < 64 {
            guard.push((module.clone().unbind(), r));
        }
        r
    }

    /// Note a class reduced by value in this dump (`class.rs`), for `class_of_dict`.
    pub fn note_class(&self, cls: &Bound<'_, PyType>) {
        let key = crate::ffi::type_dict_addr(cls);
        if key == 0 {
            return;
        }
        let mut guard = self.class_dicts.lock().expect("dump state lock");
        if !guard.iter().any(|(k, _)| *k == key) {
            guard.push((key, cls.clone().unbind()));
        }
    }

    /// The class of this dump whose own dict is `dict`, if any.
    pub fn class_of_dict<'py>(&self, dict: &Bound<'py, PyAny>) -> Option<Bound<'py, PyType>> {
        let key = crate::ffi::addr(dict);
        let guard = self.class_dicts.lock().expect("dump state lock");
        guard
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, cls)| cls.bind(dict.py()).clone())
    }

    /// Let this pickler reduce plain instances itself (its dispatch table is satchel's own).
    pub fn enable_plain_instances(&self) {
        self.plain_instances
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn set_portable(&self) {
        self.portable
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn portable(&self) -> bool {
        self.portable.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn plain_instances(&self) -> bool {
        self.plain_instances
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// What the dump so far noted (and clears the marks).
    pub fn take_marks(&self) -> Marks {
        Marks {
            bootstrap: self
                .bootstrap_used
                .swap(false, std::sync::atomic::Ordering::Relaxed),
            generators: self
                .generators
                .swap(false, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Forget the previous dump's globals (a reused pickler starts a new dump) and what it
    /// reduced (the pickler's memo was cleared with it).
    pub fn reset(&self) {
        self.take_marks();
        self.seen.clear();
        #[cfg(PyPy)]
        self.readied.clear();
        let old = std::mem::take(&mut *self.globals_ref.lock().expect("dump state lock"));
        drop(old); // decrefs outside the lock
        let old = std::mem::take(&mut *self.submodules.lock().expect("dump state lock"));
        drop(old);
        let old = std::mem::take(&mut *self.class_dicts.lock().expect("dump state lock"));
        drop(old);
        let old = std::mem::take(&mut *self.modules_by_ref.lock().expect("dump state lock"));
        drop(old);
    }

    /// For the garbage collector: the dicts this state holds (a pickler kept in a cycle with the
    /// globals it dumped must stay collectable). Skips a state another thread is changing.
    pub fn traverse(&self, visit: &pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        if let Ok(entries) = self.globals_ref.try_lock() {
            for e in entries.iter() {
                visit.call(&e._original)?;
                visit.call(&e.base)?;
            }
        }
        if let Some(session) = self.session.get() {
            visit.call(&session.namespace)?;
            visit.call(&session.placeholder)?;
        }
        if let Ok(entries) = self.submodules.try_lock() {
            for e in entries.iter() {
                visit.call(&e.code)?;
                for m in &e.found {
                    visit.call(m)?;
                }
            }
        }
        if let Ok(classes) = self.class_dicts.try_lock() {
            for (_, cls) in classes.iter() {
                visit.call(cls)?;
            }
        }
        if let Ok(modules) = self.modules_by_ref.try_lock() {
            for (m, _) in modules.iter() {
                visit.call(m)?;
            }
        }
        #[cfg(PyPy)]
        self.readied.traverse(visit)?;
        self.seen.traverse(visit)
    }

    /// The base globals dict for `globals` in this dump, and whether it was just made.
    pub fn base_globals<'py>(
        &self,
        globals: &Bound<'py, PyDict>,
        make: impl FnOnce() -> PyResult<Bound<'py, PyDict>>,
    ) -> PyResult<(Bound<'py, PyDict>, bool)> {
        let py = globals.py();
        let key = crate::ffi::addr(globals.as_any());
        let found = {
            let guard = self.globals_ref.lock().expect("dump state lock");
            guard
                .iter()
                .find(|e| e.key == key)
                .map(|e| e.base.clone_ref(py))
        };
        if let Some(base) = found {
            return Ok((base.into_bound(py), false));
        }
        let base = make()?;
        self.globals_ref
            .lock()
            .expect("dump state lock")
            .push(GlobalsEntry {
                key,
                _original: globals.clone().unbind(),
                base: base.clone().unbind(),
            });
        Ok((base, true))
    }
}

impl Default for DumpState {
    fn default() -> Self {
        Self::new()
    }
}

/// Reduce one object: NotImplemented, or a reduction tuple whose callables are bootstrap
/// constructors or stdlib callables.
pub fn reduce<'py>(state: &DumpState, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let refs = typerefs(py);
    match classify(obj, refs) {
        // Where the pickler asks before its memo, a shared instance would be reduced at each
        // reference: the pickler's own path looks in the memo first.
        None if state.plain_instances() && !refs.override_before_memo => instance::reduce(obj),
        None if cfg!(PyPy) => {
            instance::refuse_builtin_state(obj)?;
            Ok(not_implemented(py))
        }
        None => Ok(not_implemented(py)),
        Some(kind) => {
            if refs.override_before_memo {
                if let Some(bare) = state.seen.again(obj) {
                    return Ok(bare);
                }
            }
            stack_room(obj)?;
            // PyPy: what reducing it reads must not take a class's getset descriptor into C
            // before the class (satchel._pypy).
            #[cfg(PyPy)]
            state.readied.ready_reads(obj)?;
            let reduced = reduce_kind(state, obj, kind)?;
            if names_bootstrap(&reduced) {
                state
                    .bootstrap_used
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            if refs.override_before_memo {
                state.seen.remember(obj, &reduced)?;
            }
            Ok(reduced)
        }
    }
}

/// Functions, classes, cells and generators nest through one another (a closure's cell holds
/// the next function, a class attribute the next class), and the C pickler's recursion between
/// them is bounded by the recursion limit alone before 3.14, not by the stack left: in a thread
/// with a small stack (`threading.stack_size`, musl's 128 KiB) or under a raised limit it ran
/// off the stack. Each of these kinds (never a plain instance) first checks the room left.
fn stack_room(obj: &Bound<'_, PyAny>) -> PyResult<()> {
    let Some(left) = crate::ffi::stack::remaining().filter(|l| *l < crate::ffi::stack::margin())
    else {
        return Ok(());
    };
    let kind = if obj.is_instance_of::<pyo3::types::PyType>() {
        "class".to_string()
    } else {
        obj.get_type()
            .name()
            .map_or_else(|_| "object".into(), |n| n.to_string())
    };
    let what = match obj.getattr("__qualname__") {
        Ok(q) => format!("{kind} '{q}'"),
        Err(_) => format!("a '{kind}' object"),
    };
    Err(crate::error::Error::TooDeepForStack { what, left }.into_pyerr(obj.py()))
}

/// Whether a reduction's callable is one of the bootstrap's constructors (their globals are
/// the bootstrap module's dict).
fn names_bootstrap(reduced: &Bound<'_, PyAny>) -> bool {
    let py = reduced.py();
    let Ok(t) = reduced.cast::<PyTuple>() else {
        return false;
    };
    let Ok(callable) = t.get_item(0) else {
        return false;
    };
    type_addr(&callable) == typerefs(py).function
        && callable.cast::<pyo3::types::PyFunction>().is_ok_and(|f| {
            ffi::function_fields(f)
                .globals
                .is(crate::bootstrap::boot(py).globals.bind(py))
        })
}

/// Whether a generator's reduction writes its frame (a started generator: its state setter is
/// the bootstrap's `generator_setstate`), rather than its function and arguments.
fn holds_frame(reduced: &Bound<'_, PyAny>) -> bool {
    let setstate = &crate::bootstrap::boot(reduced.py()).generator_setstate;
    reduced
        .cast::<PyTuple>()
        .ok()
        .and_then(|t| t.get_item(5).ok())
        .is_some_and(|s| s.is(setstate.bind(reduced.py())))
}

fn reduce_kind<'py>(
    state: &DumpState,
    obj: &Bound<'py, PyAny>,
    kind: Kind,
) -> PyResult<Bound<'py, PyAny>> {
    match kind {
        Kind::Function => function::reduce(state, obj),
        Kind::Class => class::reduce(state, obj),
        Kind::Code => code::reduce(state, obj),
        Kind::Cell => cell::reduce(state, obj),
        Kind::Method => method::reduce_method(obj),
        Kind::ClassMethod | Kind::StaticMethod => method::reduce_descriptor(obj),
        Kind::Property => method::reduce_property(obj),
        Kind::Module => module::reduce(obj),
        Kind::LruCache => stdlib::reduce_lru_cache(obj),
        Kind::MappingProxy => stdlib::reduce_mappingproxy(state, obj),
        Kind::WeakMapping => stdlib::reduce_weak_mapping(obj),
        Kind::TypeVar => stdlib::reduce_typevar(obj),
        Kind::NewType => stdlib::reduce_newtype(obj),
        Kind::FieldMarker => stdlib::reduce_field_marker(obj),
        Kind::Singleton => stdlib::reduce_singleton(obj),
        Kind::GetSetDescriptor => stdlib::reduce_getset_descriptor(obj),
        Kind::Field if state.portable() => stdlib::reduce_dataclass_field_portable(obj),
        Kind::Field => Ok(not_implemented(obj.py())),
        Kind::Generator | Kind::Coroutine | Kind::AsyncGenerator => {
            let reduced = generator::reduce(state, obj, kind)?;
            if holds_frame(&reduced) {
                state
                    .generators
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(reduced)
        }
        Kind::CoroutineWrapper => generator::reduce_coroutine_wrapper(obj),
        Kind::Itertools => itertools::reduce(obj),
        Kind::Exception => stdlib::reduce_exception(obj, cfg!(PyPy) || state.portable()),
        Kind::DictView => dictview::reduce(obj),
        Kind::MemoryView => memoryview::reduce(obj),
        Kind::File => file::reduce(obj),
        Kind::OperatorCaller => operator::reduce(obj),
    }
}

pub fn not_implemented(py: Python<'_>) -> Bound<'_, PyAny> {
    py.NotImplemented().into_bound(py)
}

/// A protocol-2+ reduce tuple `(callable, args)`.
pub fn call<'py>(callable: &Py<PyAny>, args: Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyAny>> {
    let py = args.py();
    Ok(PyTuple::new(py, [callable.bind(py).clone(), args.into_any()])?.into_any())
}

/// A protocol-5 reduce tuple `(callable, args, state, None, None, state_setter)`: the object is
/// built and memoized before its state is pickled, so the state may refer back to it.
pub fn call_then_set<'py>(
    callable: &Py<PyAny>,
    args: Bound<'py, PyTuple>,
    state: Bound<'py, PyAny>,
    setter: &Py<PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = args.py();
    Ok(PyTuple::new(
        py,
        [
            callable.bind(py).clone(),
            args.into_any(),
            state,
            py.None().into_bound(py),
            py.None().into_bound(py),
            setter.bind(py).clone(),
        ],
    )?
    .into_any())
}

pub use determinism::Reduced;
pub use instance::refuse_builtin_state;

/// The global names a code object reads (for error diagnosis).
pub fn code_info_names<'py>(code: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
    Ok(globals::code_info(code)?
        .global_names
        .bind(code.py())
        .clone())
}
