//! Classification and dispatch: `reducer_override` classifies each object once, by exact type
//! first, and returns NotImplemented at once for everything the C pickler handles itself.

mod byref;
mod cell;
mod class;
mod classid;
mod code;
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
mod portable_class;
mod stdlib;
mod tracker;

pub use byref::{list_registry, register_by_value, unregister_by_value};
pub use classid::content_id;
pub use memo::override_before_memo;

use std::sync::Mutex;

use rustc_hash::FxHashMap;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

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
    DataclassField,
    Singleton,
    GetSetDescriptor,
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
}

/// The hot path: plain instances fall through two pointer compares and two flag reads.
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

/// Everything but functions and classes: one hash probe on the exact type (plain instances
/// land here too, and leave with that one probe and two flag reads), then the kinds that
/// include subclasses.
#[cold]
#[inline(never)]
fn classify_rare(obj: &Bound<'_, PyAny>, ty: usize, refs: &TypeRefs) -> Option<Kind> {
    if let Some(&kind) = refs.exact_kinds.get(&ty) {
        Some(kind)
    } else if ffi::is_module(obj) {
        Some(Kind::Module)
    } else if ffi::is_exception(obj) {
        Some(Kind::Exception)
    } else {
        None
    }
}

/// The table behind `classify_rare`: each kind's exact types. A type listed twice keeps its
/// first kind. A new kind recognised by exact type goes here.
pub fn exact_kinds(refs: &TypeRefs) -> FxHashMap<usize, Kind> {
    let mut table: Vec<(usize, Kind)> = vec![
        (refs.code, Kind::Code),
        (refs.cell, Kind::Cell),
        (refs.method, Kind::Method),
        (refs.classmethod, Kind::ClassMethod),
        (refs.abstract_classmethod, Kind::ClassMethod),
        (refs.staticmethod, Kind::StaticMethod),
        (refs.abstract_staticmethod, Kind::StaticMethod),
        (refs.property, Kind::Property),
        (refs.abstract_property, Kind::Property),
        (refs.lru_cache, Kind::LruCache),
        (refs.mappingproxy, Kind::MappingProxy),
        (refs.weak_key_dict, Kind::WeakMapping),
        (refs.weak_value_dict, Kind::WeakMapping),
        (refs.weak_set, Kind::WeakMapping),
        (refs.typevar, Kind::TypeVar),
        (refs.paramspec, Kind::TypeVar),
        (refs.newtype, Kind::NewType),
        (refs.dataclass_field_base, Kind::DataclassField),
        (refs.getset_descriptor, Kind::GetSetDescriptor),
        (refs.dataclass_field, Kind::Field),
        (refs.generator, Kind::Generator),
        (refs.coroutine, Kind::Coroutine),
        (refs.async_generator, Kind::AsyncGenerator),
        (refs.coroutine_wrapper, Kind::CoroutineWrapper),
        (refs.memoryview, Kind::MemoryView),
    ];
    table.extend(refs.itertools.iter().map(|&t| (t, Kind::Itertools)));
    table.extend(refs.dict_views.iter().map(|&t| (t, Kind::DictView)));
    table.extend(refs.files.iter().map(|&t| (t, Kind::File)));
    table.extend(refs.singletons.keys().map(|&t| (t, Kind::Singleton)));
    let mut kinds = FxHashMap::default();
    for (ty, kind) in table {
        // 0: a type this interpreter does not have.
        if ty != 0 {
            kinds.entry(ty).or_insert(kind);
        }
    }
    kinds
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
    /// What was reduced since the memo was cleared, where the pickler asks before its memo
    /// (PyPy: `memo.rs`).
    seen: memo::Seen,
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
            seen: memo::Seen::default(),
        }
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
        let old = std::mem::take(&mut *self.globals_ref.lock().expect("dump state lock"));
        drop(old); // decrefs outside the lock
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
        None => Ok(not_implemented(py)),
        Some(kind) => {
            if refs.override_before_memo {
                if let Some(bare) = state.seen.again(obj) {
                    return Ok(bare);
                }
            }
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
        Kind::Cell => cell::reduce(obj),
        Kind::Method => method::reduce_method(obj),
        Kind::ClassMethod | Kind::StaticMethod => method::reduce_descriptor(obj),
        Kind::Property => method::reduce_property(obj),
        Kind::Module => module::reduce(obj),
        Kind::LruCache => stdlib::reduce_lru_cache(obj),
        Kind::MappingProxy => stdlib::reduce_mappingproxy(obj),
        Kind::WeakMapping => stdlib::reduce_weak_mapping(obj),
        Kind::TypeVar => stdlib::reduce_typevar(obj),
        Kind::NewType => stdlib::reduce_newtype(obj),
        Kind::DataclassField => stdlib::reduce_dataclass_field(obj),
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
        Kind::Exception => stdlib::reduce_exception(obj),
        Kind::DictView => dictview::reduce(obj),
        Kind::MemoryView => memoryview::reduce(obj),
        Kind::File => file::reduce(obj),
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

pub use stdlib::Reduced;

/// The global names a code object reads (for error diagnosis).
pub fn code_info_names<'py>(code: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
    Ok(globals::code_info(code)?
        .global_names
        .bind(code.py())
        .clone())
}
