//! Classification and dispatch: `reducer_override` classifies each object once, by exact type
//! first, and returns NotImplemented at once for everything the C pickler handles itself.

mod byref;
mod cell;
mod class;
mod classid;
mod code;
mod function;
pub mod generator;
mod globals;
mod instance;
mod itertools;
mod method;
mod module;
mod stdlib;
mod tracker;

pub use byref::{list_registry, register_by_value, unregister_by_value};
pub use classid::content_id;

use std::sync::Mutex;

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

#[cold]
#[inline(never)]
fn classify_rare(obj: &Bound<'_, PyAny>, ty: usize, refs: &TypeRefs) -> Option<Kind> {
    let kind = if ty == refs.code {
        Kind::Code
    } else if ty == refs.cell {
        Kind::Cell
    } else if ty == refs.method {
        Kind::Method
    } else if ty == refs.classmethod {
        Kind::ClassMethod
    } else if ty == refs.staticmethod {
        Kind::StaticMethod
    } else if ty == refs.property {
        Kind::Property
    } else if ty == refs.lru_cache {
        Kind::LruCache
    } else if ty == refs.mappingproxy {
        Kind::MappingProxy
    } else if ty == refs.weak_key_dict || ty == refs.weak_value_dict || ty == refs.weak_set {
        Kind::WeakMapping
    } else if ty == refs.typevar || ty == refs.paramspec {
        Kind::TypeVar
    } else if ty == refs.newtype {
        Kind::NewType
    } else if ty == refs.dataclass_field_base {
        Kind::DataclassField
    } else if ty == refs.getset_descriptor {
        Kind::GetSetDescriptor
    } else if ty == refs.dataclass_field {
        Kind::Field
    } else if ty == refs.generator {
        Kind::Generator
    } else if ty == refs.coroutine {
        Kind::Coroutine
    } else if ty == refs.async_generator {
        Kind::AsyncGenerator
    } else if ty == refs.coroutine_wrapper {
        Kind::CoroutineWrapper
    } else if refs.itertools.contains(&ty) {
        Kind::Itertools
    } else if refs.singletons.contains_key(&ty) {
        Kind::Singleton
    } else if ffi::is_module(obj) {
        Kind::Module
    } else if ffi::is_exception(obj) {
        Kind::Exception
    } else {
        return None;
    };
    Some(kind)
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
}

impl DumpState {
    pub fn new() -> Self {
        DumpState {
            globals_ref: Mutex::new(Vec::new()),
            plain_instances: std::sync::atomic::AtomicBool::new(false),
            portable: std::sync::atomic::AtomicBool::new(false),
            bootstrap_used: std::sync::atomic::AtomicBool::new(false),
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

    /// Whether the dump so far named a bootstrap constructor (and clears the mark).
    pub fn take_bootstrap_used(&self) -> bool {
        self.bootstrap_used
            .swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    /// Forget the previous dump's globals (a reused pickler starts a new dump).
    pub fn reset(&self) {
        self.bootstrap_used
            .store(false, std::sync::atomic::Ordering::Relaxed);
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
        Ok(())
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
        None if state.plain_instances() => instance::reduce(obj),
        None => Ok(not_implemented(py)),
        Some(kind) => {
            let reduced = reduce_kind(state, obj, kind)?;
            if names_bootstrap(&reduced) {
                state
                    .bootstrap_used
                    .store(true, std::sync::atomic::Ordering::Relaxed);
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
            generator::reduce(state, obj, kind)
        }
        Kind::CoroutineWrapper => generator::reduce_coroutine_wrapper(obj),
        Kind::Itertools => itertools::reduce(obj),
        Kind::Exception => stdlib::reduce_exception(obj),
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
