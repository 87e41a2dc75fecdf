//! PyPy's side of `ffi`: what CPython reads from structs, PyPy's cpyext answers only through
//! attributes. cpyext's `PyFunctionObject` has no fields beyond the code (PyPy keeps function
//! state on its own objects, `pypy/module/cpyext/funcobject.py`), and it has no `PyCell_Get`:
//! both go through the documented attributes, which on PyPy are plain field reads of the
//! interpreter's own objects.

use pyo3::prelude::*;
use pyo3::types::PyFunction;

use super::FunctionFields;

/// `obj.name`, with None standing for what CPython keeps as NULL.
fn field<'py>(obj: &Bound<'py, PyAny>, name: &str) -> Option<Bound<'py, PyAny>> {
    obj.getattr(name).ok().filter(|v| !v.is_none())
}

pub fn function_fields<'py>(func: &Bound<'py, PyFunction>) -> FunctionFields<'py> {
    let py = func.py();
    let obj = func.as_any();
    // These four exist on every function (PyPy's getters cannot fail on an exact function);
    // None, should one ever be missing, makes the caller's own checks raise a clear TypeError.
    let required = |name: &str| {
        obj.getattr(name)
            .unwrap_or_else(|_| py.None().into_bound(py))
    };
    // PyPy fills `__annotations__` (and `__dict__`) on first access, as CPython does; only a
    // non-empty one is worth sending, which is what a NULL slot means on CPython.
    let annotations = field(obj, "__annotations__");
    let has_annotations = annotations
        .as_ref()
        .is_some_and(|a| a.len().map_or(true, |n| n != 0));
    FunctionFields {
        code: required("__code__"),
        globals: required("__globals__"),
        name: required("__name__"),
        qualname: required("__qualname__"),
        // CPython's func_module may hold None itself (a module without `__name__`).
        module: obj.getattr("__module__").ok(),
        defaults: field(obj, "__defaults__"),
        kwdefaults: field(obj, "__kwdefaults__"),
        closure: field(obj, "__closure__"),
        doc: obj.getattr("__doc__").ok(),
        dict: field(obj, "__dict__"),
        has_annotations,
    }
}

/// The objects whose reads this dump readied for C (`ready_reads`), held so that an address
/// cannot be reused while the dump runs. The reducer is asked again about every occurrence of
/// what it leaves to the pickler (an importable class, at each of its instances), and walks
/// each only once.
#[derive(Default)]
pub struct Readied(std::sync::Mutex<rustc_hash::FxHashMap<usize, Py<PyAny>>>);

impl Readied {
    /// Make the C types of the classes whose getset descriptors reducing `obj` reads
    /// (`satchel._pypy.ready_reads`), once per dump: cpyext crashes making one's C object
    /// apart from its class's. Called before the reducer reads anything of `obj`.
    pub fn ready_reads(&self, obj: &Bound<'_, PyAny>) -> PyResult<()> {
        static READY: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
        let key = super::addr(obj);
        if self.0.lock().expect("readied lock").contains_key(&key) {
            return Ok(());
        }
        let py = obj.py();
        let ready = READY.get_or_try_init(py, || -> PyResult<_> {
            Ok(py.import("satchel._pypy")?.getattr("ready_reads")?.unbind())
        })?;
        ready.bind(py).call1((obj,))?;
        let old = self
            .0
            .lock()
            .expect("readied lock")
            .insert(key, obj.clone().unbind());
        drop(old); // decref outside the lock
        Ok(())
    }

    pub fn clear(&self) {
        let old = std::mem::take(&mut *self.0.lock().expect("readied lock"));
        drop(old);
    }

    pub fn traverse(&self, visit: &pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        if let Ok(held) = self.0.try_lock() {
            for obj in held.values() {
                visit.call(obj)?;
            }
        }
        Ok(())
    }
}

/// The unpickling behind satchel's loads on PyPy, with what it returns readied for C
/// (`satchel._pypy.loaded`) before it crosses into satchel's Rust side: a tuple the stream
/// builds may hold a getset descriptor of a class the stream built too. Its exception crosses
/// too: one holding a malformed str (PyPy's unpickler makes them of damaged streams) is
/// replaced first (`satchel._pypy.clean_error`), raised outside the handler so that it has no
/// context. What unpickles is `satchel._pypy.safe_loads`, the pure-Python unpickler: PyPy's
/// own (`loads`, `pickle.loads`) crashes the interpreter on some damaged streams; it unpickles
/// only what `verified_loads` is given, a body whose signature was verified. Made when the
/// extension starts, when `satchel._pypy` cannot be imported yet: it is imported at the first
/// call.
pub fn loads_for_c(loads: Bound<'_, PyAny>) -> PyResult<Bound<'_, PyAny>> {
    let py = loads.py();
    let ns = pyo3::types::PyDict::new(py);
    py.run(
        c"def wrap(loads):
    def ready_loads(data, /, **kwargs):
        from satchel._pypy import clean_error, loaded, safe_loads
        try:
            obj = (safe_loads if loads is None else loads)(data, **kwargs)
        except Exception as exc:
            err = clean_error(exc)
            if err is None:
                raise
        else:
            return loaded(obj)
        raise err
    return ready_loads
",
        Some(&ns),
        None,
    )?;
    let wrap = ns.get_item("wrap")?.expect("defined above");
    let verified = wrap.call1((loads,))?;
    // The first call wins: typerefs are made once per interpreter.
    let _ = VERIFIED_LOADS.set(py, verified.unbind());
    wrap.call1((py.None(),))
}

static VERIFIED_LOADS: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();

/// PyPy's own `pickle.loads` (behind `loads_for_c`'s readying), for a body whose signature was
/// verified.
pub fn verified_loads(py: Python<'_>) -> &Bound<'_, PyAny> {
    VERIFIED_LOADS
        .get(py)
        .expect("set with the typerefs, which the caller holds")
        .bind(py)
}

/// The contents of a cell, or None if it is empty (`cell_contents` raises ValueError then).
pub fn cell_contents<'py>(cell: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
    cell.getattr(pyo3::intern!(cell.py(), "cell_contents")).ok()
}

/// Whether a class is a heap type, as the interpreter says (`__flags__`): cpyext's `tp_flags`
/// has `Py_TPFLAGS_HEAPTYPE` on some built-in classes (`_thread.lock`), which satchel would then
/// try to pickle by value.
pub fn is_heap_type(ty: &Bound<'_, PyAny>) -> bool {
    const HEAPTYPE: u64 = 1 << 9;
    ty.getattr(pyo3::intern!(ty.py(), "__flags__"))
        .and_then(|f| f.extract::<u64>())
        .is_ok_and(|f| f & HEAPTYPE != 0)
}

thread_local! {
    /// The top (highest address) of this thread's stack, where PyPy starts counting its use,
    /// and the stack's size (0, 0: not known yet; size usize::MAX: pthread did not say).
    static STACK: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
}

/// PyPy's stack allowance at the default recursion limit (1000): 768 KiB, scaled with
/// `sys.setrecursionlimit` (`rpython/rlib/rstack.py`; measured: a deep pickle overflows with
/// about 775,000 bytes in use).
const PYPY_STACK_PER_1000: usize = 768 << 10;

/// The most PyPy's allowance grows to however high the recursion limit is raised: three
/// quarters of the stack's soft rlimit (measured on PyPy 8.0.1, pure-Python recursion under
/// `sys.setrecursionlimit(10**6)`: 7,022 / 14,044 / 28,087 / 112,348 levels of 448 bytes
/// under `ulimit -s` 4 / 8 / 16 / 64 MiB, each exactly 3/4 of it; in a thread too, whatever
/// its own size). usize::MAX when the rlimit is unlimited or unknown.
fn pypy_stack_cap() -> usize {
    static CAP: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CAP.get_or_init(|| {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct we own and pass by a valid pointer.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut rl) };
        if rc != 0 || rl.rlim_cur == libc::RLIM_INFINITY {
            return usize::MAX;
        }
        usize::try_from(rl.rlim_cur).map_or(usize::MAX, |n| n / 4 * 3)
    })
}

/// A RecursionError when the pickler has recursed so deep that PyPy's stack check could fire
/// inside satchel's reducer. There it is fatal: cpyext cannot hand the error over ("The
/// function PyErr_Fetch was not supposed to fail") and aborts the process. Raised here, before
/// the reducer does anything, it is an ordinary exception the pickler passes up. PyPy's
/// allowance is the smallest of its share of the recursion limit, its cap (`pypy_stack_cap`)
/// and the thread's own stack. When the limit is not what bounds it (a limit raised past what
/// the stack holds: 100,000 closures under `sys.setrecursionlimit(10**6)` went on to the fatal
/// check), the error says so (`STACK_FULL`, `stack_refusal`): raising the limit cannot help.
pub fn stack_too_deep(py: Python<'_>) -> Option<PyErr> {
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    let (top, size) = this_stack(here);
    let used = top - here;
    // Most calls are shallow: the recursion limit is read only past half the default allowance.
    if used < pypy_allowance(1000, size) / 2 {
        return None;
    }
    let limit = recursion_limit(py);
    let allowance = pypy_allowance(limit, size);
    // A quarter kept for the reducer's own work below this frame and the error's hand-over.
    if used <= allowance / 4 * 3 {
        return None;
    }
    if allowance == (PYPY_STACK_PER_1000 / 1000).saturating_mul(limit) {
        return Some(pyo3::exceptions::PyRecursionError::new_err(
            "maximum recursion depth exceeded while pickling",
        ));
    }
    REFUSED_ALLOWANCE.with(|a| a.set(allowance));
    Some(pyo3::exceptions::PyRecursionError::new_err(STACK_FULL))
}

/// The message of `stack_too_deep`'s RecursionError when PyPy's stack, not the recursion
/// limit, is what ran out.
const STACK_FULL: &str = "maximum recursion depth exceeded while pickling: PyPy's stack is full";

thread_local! {
    /// The allowance of the last `STACK_FULL` refusal in this thread.
    static REFUSED_ALLOWANCE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The allowance PyPy's stack had when `err` is `stack_too_deep`'s refusal for a full stack
/// (`diagnose::explain` then says so, naming the object dumped).
pub fn stack_refusal(py: Python<'_>, err: &PyErr) -> Option<usize> {
    let full = err
        .value(py)
        .str()
        .is_ok_and(|m| m.to_str().is_ok_and(|m| m == STACK_FULL));
    full.then(|| REFUSED_ALLOWANCE.with(|a| a.get()))
}

/// The top of this thread's stack, where PyPy starts counting its use, and its size.
fn this_stack(here: usize) -> (usize, usize) {
    STACK.with(|t| {
        if t.get().0 == 0 {
            t.set(
                super::stack::thread_stack()
                    .map_or((here, usize::MAX), |(low, size)| (low + size, size)),
            );
        }
        if here > t.get().0 {
            t.set((here, t.get().1)); // no pthread answer: the highest call seen
        }
        t.get()
    })
}

/// The stack PyPy lets this thread use under a recursion limit of `limit`, in a thread whose
/// stack is `size` bytes.
fn pypy_allowance(limit: usize, size: usize) -> usize {
    (PYPY_STACK_PER_1000 / 1000)
        .saturating_mul(limit)
        .min(pypy_stack_cap())
        .min(size)
}

/// Bytes of stack one level of cpyext's tuple conversion is given when budgeting constants
/// (measured: 1,200 levels convert within PyPy's 768 KiB allowance, 5,000 do not).
const CONSTANT_LEVEL_BYTES: usize = 1024;

/// The refusal of a function or code object whose constants nest deeper than this thread can
/// convert for C: cpyext converts a tuple's items recursively the first time C code sees it,
/// and overflowing PyPy's stack there is fatal. Python measures the nesting (`satchel._pypy`)
/// before satchel reads `co_consts`; the budget is what is left of PyPy's allowance and of the
/// thread's stack, per level, and never more than the recursion limit.
pub fn deep_constants(obj: &Bound<'_, PyAny>) -> Option<PyErr> {
    let py = obj.py();
    let refs = crate::typeref::typerefs(py);
    let ty = super::type_addr(obj);
    let code = if ty == refs.function {
        obj.getattr(pyo3::intern!(py, "__code__")).ok()?
    } else if ty == refs.code {
        obj.clone()
    } else {
        return None;
    };
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    let limit = recursion_limit(py);
    let (top, size) = this_stack(here);
    let pypy_left = pypy_allowance(limit, size).saturating_sub(top - here);
    let left = super::stack::remaining().map_or(pypy_left, |r| r.min(pypy_left));
    let levels = (left / CONSTANT_LEVEL_BYTES).min(limit);
    let deeper = py
        .import("satchel._pypy")
        .and_then(|m| m.getattr("constants_deeper_than")?.call1((&code, levels)))
        .and_then(|d| d.is_truthy());
    match deeper {
        Ok(false) => None,
        Ok(true) => {
            let name = code
                .getattr(pyo3::intern!(py, "co_qualname"))
                .map(|n| n.to_string())
                .unwrap_or_default();
            Some(
                crate::error::Error::NestedTooDeep {
                    what: format!("the constants of the code of '{name}'"),
                    depth: levels,
                }
                .into_pyerr(py),
            )
        }
        Err(err) => Some(err),
    }
}

fn recursion_limit(py: Python<'_>) -> usize {
    py.import("sys")
        .and_then(|s| s.getattr("getrecursionlimit")?.call0()?.extract::<usize>())
        .unwrap_or(1000)
}

/// An instance of BaseException: cpyext's exception classes lack the
/// `Py_TPFLAGS_BASE_EXC_SUBCLASS` flag that `PyExceptionInstance_Check` reads.
pub fn is_exception(obj: &Bound<'_, PyAny>) -> bool {
    // From the type: `isinstance` would read `obj.__class__`, running a `__getattribute__`
    // that may recurse without end from inside cpyext, which is fatal there (cloudpickle's
    // test_recursion_during_pickling).
    obj.get_type()
        .is_subclass_of::<pyo3::exceptions::PyBaseException>()
        .unwrap_or(false)
}
