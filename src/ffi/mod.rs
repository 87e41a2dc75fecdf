//! The only place that reads CPython structures directly. Everything else goes through pyo3.
//!
//! Reading fields instead of calling `getattr` matters on the hot path: a function's defaults,
//! closure or dict are plain pointers, and `func.__dict__`/`func.__annotations__` getattr would
//! even allocate empty objects as a side effect.

pub mod frame;
mod layouts;
#[cfg(PyPy)]
mod pypy;
pub mod stack;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyFunction;

/// The address of an object: the identity key of our caches and of the pickle memo.
#[inline(always)]
pub fn addr(obj: &Bound<'_, PyAny>) -> usize {
    obj.as_ptr() as usize
}

/// The address of an object's type, for exact-type dispatch.
#[inline(always)]
pub fn type_addr(obj: &Bound<'_, PyAny>) -> usize {
    // SAFETY: `obj` is a live object (we hold a reference), so its ob_type is a valid pointer;
    // we only read the pointer value.
    unsafe { ffi::Py_TYPE(obj.as_ptr()) as usize }
}

/// Fields of a function object, borrowed from it. `None` stands for a NULL slot.
pub struct FunctionFields<'py> {
    pub code: Bound<'py, PyAny>,
    pub globals: Bound<'py, PyAny>,
    pub name: Bound<'py, PyAny>,
    pub qualname: Bound<'py, PyAny>,
    pub module: Option<Bound<'py, PyAny>>,
    pub defaults: Option<Bound<'py, PyAny>>,
    pub kwdefaults: Option<Bound<'py, PyAny>>,
    pub closure: Option<Bound<'py, PyAny>>,
    pub doc: Option<Bound<'py, PyAny>>,
    pub dict: Option<Bound<'py, PyAny>>,
    pub has_annotations: bool,
}

/// Turns a possibly-NULL borrowed pointer into an owned reference.
///
/// # Safety
/// `ptr` must be NULL or point to a live object kept alive for `'py` by its owner.
#[cfg(not(PyPy))]
unsafe fn opt<'py>(py: Python<'py>, ptr: *mut ffi::PyObject) -> Option<Bound<'py, PyAny>> {
    // SAFETY: the caller guarantees `ptr` is NULL or a live borrowed object; from_borrowed_ptr_or_opt
    // takes a new strong reference, so the result outlives the borrow.
    unsafe { Bound::from_borrowed_ptr_or_opt(py, ptr) }
}

pub fn function_fields<'py>(func: &Bound<'py, PyFunction>) -> FunctionFields<'py> {
    #[cfg(PyPy)]
    {
        pypy::function_fields(func)
    }
    #[cfg(not(PyPy))]
    {
        let py = func.py();
        let raw = func.as_ptr() as *mut ffi::PyFunctionObject;
        // SAFETY: `func` is an exact PyFunction (the type system guarantees it), so `raw` points
        // to a PyFunctionObject of this interpreter's layout (pyo3-ffi picks the layout per
        // version). Code, globals, name and qualname are never NULL on a live function; the
        // others may be, and `opt` maps NULL to None. Each field is a borrowed reference owned
        // by `func`, which we hold.
        unsafe {
            let f = &*raw;
            FunctionFields {
                code: Bound::from_borrowed_ptr(py, f.func_code),
                globals: Bound::from_borrowed_ptr(py, f.func_globals),
                name: Bound::from_borrowed_ptr(py, f.func_name),
                qualname: Bound::from_borrowed_ptr(py, f.func_qualname),
                module: opt(py, f.func_module),
                defaults: opt(py, f.func_defaults),
                kwdefaults: opt(py, f.func_kwdefaults),
                closure: opt(py, f.func_closure),
                doc: opt(py, f.func_doc),
                dict: opt(py, f.func_dict),
                has_annotations: !f.func_annotations.is_null(),
            }
        }
    }
}

/// The contents of a cell, or None if it is empty.
pub fn cell_contents<'py>(cell: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
    #[cfg(PyPy)]
    {
        pypy::cell_contents(cell)
    }
    #[cfg(not(PyPy))]
    {
        // SAFETY: the caller passes an exact cell object (checked by classification).
        // PyCell_Get returns a new reference, or NULL without setting an error when the cell
        // is empty.
        unsafe { Bound::from_owned_ptr_or_opt(cell.py(), ffi::PyCell_Get(cell.as_ptr())) }
    }
}

/// PyPy: what the reducer reads from an object, readied for C once per dump.
#[cfg(PyPy)]
pub use pypy::Readied;

/// `pickle.loads` as satchel's loads call it: on PyPy behind `pypy::loads_for_c`.
pub fn loads_for_c(loads: Bound<'_, PyAny>) -> PyResult<Bound<'_, PyAny>> {
    #[cfg(PyPy)]
    {
        pypy::loads_for_c(loads)
    }
    #[cfg(not(PyPy))]
    {
        Ok(loads)
    }
}

/// `pickle.loads` for a body whose signature `satchel.loads` verified: the interpreter's own
/// unpickler (on PyPy, `typerefs().pickle_loads` is the pure-Python one: `pypy::loads_for_c`).
pub fn verified_loads(py: Python<'_>) -> &Bound<'_, PyAny> {
    #[cfg(PyPy)]
    {
        let _ = crate::typeref::typerefs(py);
        pypy::verified_loads(py)
    }
    #[cfg(not(PyPy))]
    {
        crate::typeref::typerefs(py).pickle_loads.bind(py)
    }
}

/// PyPy: the allowance of PyPy's stack when `err` is satchel's refusal of a pickle too deep
/// for it whatever the recursion limit (`pypy::stack_refusal`); None elsewhere.
pub fn pypy_stack_refusal(py: Python<'_>, err: &PyErr) -> Option<usize> {
    #[cfg(PyPy)]
    {
        pypy::stack_refusal(py, err)
    }
    #[cfg(not(PyPy))]
    {
        let _ = (py, err);
        None
    }
}

/// Whether a type object is a heap type (defined by a class statement or `type()`).
pub fn is_heap_type(ty: &Bound<'_, PyAny>) -> bool {
    #[cfg(PyPy)]
    {
        pypy::is_heap_type(ty)
    }
    #[cfg(not(PyPy))]
    // SAFETY: classification only calls this with type objects, whose tp_flags is readable.
    unsafe {
        let tp = ty.as_ptr() as *mut ffi::PyTypeObject;
        ffi::PyType_GetFlags(tp) & ffi::Py_TPFLAGS_HEAPTYPE != 0
    }
}

/// The address of a heap type's own dict (`tp_dict`, which `cls.__dict__` proxies), or 0 on
/// PyPy. Since 3.12 a class body's `__classdict__` cell holds this dict (PEP 695 scopes, and
/// the `__annotate__` functions of 3.14+), so `reduce/cell.rs` recognises it by address.
pub fn type_dict_addr(ty: &Bound<'_, pyo3::types::PyType>) -> usize {
    #[cfg(PyPy)]
    {
        let _ = ty;
        0
    }
    #[cfg(not(PyPy))]
    {
        // SAFETY: `ty` is a type object we hold, so `tp` points to a live PyTypeObject of this
        // interpreter's layout (no abi3 build); we only read the pointer value of tp_dict,
        // which a heap type sets once when it is created and never replaces.
        unsafe {
            let tp = ty.as_ptr() as *mut ffi::PyTypeObject;
            (*tp).tp_dict as usize
        }
    }
}

/// A class's version tag (`tp_version_tag`): CPython gives a type a new tag from a global
/// counter, never reused, the first time it looks an attribute up on it after a change, and
/// sets it to 0 on every write to the class dict (`PyType_Modified`, which also resets the
/// tags of subclasses). So a non-zero tag equal to one seen before means the class dict has
/// not been written since. 0 means unknown: never assigned, invalidated and not reassigned
/// yet, or out of tags (3.12+ stops after 1000 changes of one class). PyPy has no tags: 0.
///
/// When the tag is 0 and the metaclass looks attributes up as `type` does, one lookup of
/// `__init__` (a non-data descriptor of `type`, so `type_getattro` goes on to the class's own
/// MRO through `_PyType_Lookup`, Objects/typeobject.c) assigns a tag, so that the next call
/// can compare it.
pub fn type_version_tag(ty: &Bound<'_, PyAny>) -> u32 {
    #[cfg(PyPy)]
    {
        let _ = ty;
        0
    }
    #[cfg(not(PyPy))]
    {
        let read = || {
            let tp = ty.as_ptr() as *mut ffi::PyTypeObject;
            // SAFETY: callers pass a type object (is_type checked), which we hold, so `tp`
            // points to a live PyTypeObject of this interpreter's layout (no abi3 build).
            // The tag is a 4-byte aligned c_uint that CPython writes with the GIL held, or
            // with relaxed atomics on free-threaded builds; an atomic relaxed load matches
            // both and reads a whole value.
            unsafe {
                std::sync::atomic::AtomicU32::from_ptr(std::ptr::addr_of_mut!((*tp).tp_version_tag))
                    .load(std::sync::atomic::Ordering::Relaxed)
            }
        };
        let tag = read();
        if tag != 0 {
            return tag;
        }
        // SAFETY: Py_TYPE of a live object is a live type; reading its tp_getattro slot and
        // PyType_Type's (a static type) only compares two addresses CPython set (both C
        // functions of the interpreter, so equal addresses are the same function).
        let generic = unsafe {
            let meta = ffi::Py_TYPE(ty.as_ptr());
            let slot = |tp: *mut ffi::PyTypeObject| (*tp).tp_getattro.map(|f| f as usize);
            slot(meta) == slot(std::ptr::addr_of_mut!(ffi::PyType_Type))
        };
        if !generic {
            return 0;
        }
        let py = ty.py();
        if ty.getattr(pyo3::intern!(py, "__init__")).is_err() {
            return 0;
        }
        read()
    }
}

/// `PyType_Check`: true for classes, including those made by metaclasses.
#[inline(always)]
pub fn is_type(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: PyType_Check only reads the flags of the object's (always valid) type.
    unsafe { ffi::PyType_Check(obj.as_ptr()) != 0 }
}

/// `PyExceptionInstance_Check`: an instance of BaseException or a subclass.
#[inline(always)]
pub fn is_exception(obj: &Bound<'_, PyAny>) -> bool {
    #[cfg(PyPy)]
    {
        pypy::is_exception(obj)
    }
    #[cfg(not(PyPy))]
    // SAFETY: only reads the flags of the object's (always valid) type.
    unsafe {
        ffi::PyExceptionInstance_Check(obj.as_ptr()) != 0
    }
}

/// `PyModule_Check`: true for modules and their subclasses (lazy modules).
#[inline(always)]
pub fn is_module(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: PyModule_Check only reads the object's type and its MRO.
    unsafe { ffi::PyModule_Check(obj.as_ptr()) != 0 }
}

/// The per-pickler `reducer_override` as a METH_O C function whose `self` is a `Reducer`.
/// The C pickler calls it once for every object it does not write itself (every plain instance
/// on object-heavy data), so it takes the cheapest calling convention CPython has: no argument
/// tuple, no argument parsing.
struct MethodDef(ffi::PyMethodDef);

// SAFETY: the definition is immutable after construction and CPython only reads it; its raw
// pointers point to 'static C strings and a 'static function.
unsafe impl Sync for MethodDef {}

static REDUCER_DEF: MethodDef = MethodDef(ffi::PyMethodDef {
    ml_name: c"reducer_override".as_ptr(),
    ml_meth: ffi::PyMethodDefPointer {
        PyCFunction: reducer_meth_o,
    },
    ml_flags: ffi::METH_O,
    ml_doc: c"satchel's reducer for one pickler: a reduction tuple, or NotImplemented.".as_ptr(),
});

unsafe extern "C" fn reducer_meth_o(
    slf: *mut ffi::PyObject,
    arg: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a METH_O function with the GIL held (the thread is attached), so a
    // Python token is valid for the duration of this call, which is all we use it for.
    let py = unsafe { Python::assume_attached() };
    // SAFETY: `slf` is the object passed to PyCFunction_NewEx below (kept alive by the function
    // object being called) and `arg` is the borrowed argument of this call; both are live.
    let (slf, obj) = unsafe {
        (
            Bound::from_borrowed_ptr(py, slf),
            Bound::from_borrowed_ptr(py, arg),
        )
    };
    #[cfg(PyPy)]
    if let Some(err) = pypy::stack_too_deep(py) {
        err.restore(py);
        return std::ptr::null_mut();
    }
    #[cfg(PyPy)]
    if let Some(err) = pypy::deep_constants(&obj) {
        err.restore(py);
        return std::ptr::null_mut();
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        crate::pickler::call_reducer(&slf, &obj)
    }));
    // A panic becomes satchel.PicklingError here: the C pickler passes the error up to the
    // caller as it is, and a PanicException (a BaseException) would escape `except Exception`.
    let result = result.unwrap_or_else(|payload| {
        Err(crate::error::Error::Panic {
            message: crate::error::panic_message(payload.as_ref()),
            loading: false,
        }
        .into_pyerr(py))
    });
    match result {
        Ok(value) => value.into_ptr(),
        Err(err) => {
            err.restore(py);
            std::ptr::null_mut()
        }
    }
}

/// A new builtin function object calling the reducer of `reducer` (a `Reducer` instance).
pub fn reducer_function<'py>(reducer: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = reducer.py();
    // SAFETY: REDUCER_DEF is 'static and never written (CPython takes a *mut only for
    // historical reasons); `reducer` is a live object that the function keeps a strong
    // reference to as its `self`. A NULL result has set a Python error, which from_owned_ptr_or_err
    // turns into a PyErr.
    unsafe {
        let def = &REDUCER_DEF.0 as *const ffi::PyMethodDef as *mut ffi::PyMethodDef;
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyCFunction_NewEx(def, reducer.as_ptr(), std::ptr::null_mut()),
        )
    }
}

/// What a type's struct says about plain-instance pickling: its version tag (0 when it has
/// none; CPython gives a type a new tag whenever it or a base changes), whether its instances
/// are variable-sized, and whether it can create instances at all.
pub struct TypeShape {
    pub version_tag: u32,
    pub var_sized: bool,
    pub has_new: bool,
    /// Attribute lookup on its instances is `object`'s own (no `__getattribute__` or
    /// `__getattr__` of the class in the way): `getattr(obj, "__reduce_ex__")` finds the class's.
    pub generic_getattr: bool,
    /// Its instances have a `__dict__` (`tp_dictoffset != 0`).
    pub has_dict: bool,
}

pub fn type_shape(ty: &Bound<'_, PyAny>) -> TypeShape {
    let tp = ty.as_ptr() as *mut ffi::PyTypeObject;
    // SAFETY: callers pass type objects (the type of a live object); these are plain field
    // reads of a PyTypeObject, whose layout pyo3-ffi declares for this interpreter version.
    unsafe {
        let valid = ffi::PyType_GetFlags(tp) & ffi::Py_TPFLAGS_VALID_VERSION_TAG != 0;
        TypeShape {
            version_tag: if valid { (*tp).tp_version_tag } else { 0 },
            var_sized: (*tp).tp_itemsize != 0,
            has_new: (*tp).tp_new.is_some(),
            // Addresses, not fn pointers: PyObject_GenericGetAttr is libpython's one symbol.
            generic_getattr: (*tp).tp_getattro.map(|f| f as usize)
                == Some(ffi::PyObject_GenericGetAttr as *const () as usize),
            has_dict: (*tp).tp_dictoffset != 0,
        }
    }
}

/// The first `n` machine words after an object's `PyObject_HEAD`, or None when the type's
/// instances are smaller than that (or variable-sized). Used for C iterator state that has no
/// other accessor (itertools on 3.14): the caller interprets the words and never dereferences
/// one unless the same address is among the object's `gc.get_referents`.
pub fn object_words(obj: &Bound<'_, PyAny>, n: usize) -> Option<Vec<usize>> {
    let head = std::mem::size_of::<ffi::PyObject>();
    let tp = type_shape_size(obj);
    if tp.1 != 0 || tp.0 < head + n * std::mem::size_of::<usize>() {
        return None;
    }
    let base = obj.as_ptr() as *const u8;
    // SAFETY: the instance is at least tp_basicsize bytes long (a fixed-size type), and we
    // read n aligned words inside it; reading plain integers from live memory is sound.
    Some(
        (0..n)
            .map(|i| unsafe {
                *(base.add(head + i * std::mem::size_of::<usize>()) as *const usize)
            })
            .collect(),
    )
}

/// (tp_basicsize, tp_itemsize) of an object's type.
fn type_shape_size(obj: &Bound<'_, PyAny>) -> (usize, usize) {
    // SAFETY: reading two integer fields of the (live) type object of a live object.
    unsafe {
        let tp = ffi::Py_TYPE(obj.as_ptr());
        (
            (*tp).tp_basicsize.max(0) as usize,
            (*tp).tp_itemsize.max(0) as usize,
        )
    }
}

/// The memory of a buffer the caller holds, as bytes that may be read from any thread.
pub fn buffer_bytes(view: &pyo3::buffer::PyBuffer<u8>) -> &[u8] {
    if view.len_bytes() == 0 {
        return &[];
    }
    // SAFETY: `view` is a held Py_buffer export of contiguous memory (PickleBuffer.raw() is
    // one-dimensional and C-contiguous, PyBuffer::<u8>::get checked the format), so `buf_ptr`
    // points to `len_bytes` readable bytes that stay allocated while the export is held; the
    // returned slice borrows `view`. The exporter may still let Python code write those bytes
    // (numpy arrays are mutable): a concurrent write would tear the copy, exactly as it would
    // tear the C pickler's own memcpy of an array another thread writes without the GIL.
    unsafe { std::slice::from_raw_parts(view.buf_ptr() as *const u8, view.len_bytes()) }
}

/// A new `bytes` (`writable`: `bytearray`) whose contents are filled in (through `contents`)
/// before anything else sees the object (`into_object`).
pub struct FreshBytes<'py> {
    obj: Bound<'py, PyAny>,
    data: *mut std::mem::MaybeUninit<u8>,
    len: usize,
}

impl<'py> FreshBytes<'py> {
    pub fn new(py: Python<'py>, len: usize, writable: bool) -> PyResult<Self> {
        let n = ffi::Py_ssize_t::try_from(len)
            .map_err(|_| pyo3::exceptions::PyMemoryError::new_err(format!("{len} bytes")))?;
        // SAFETY: with a NULL source both constructors allocate `len` uninitialized bytes (or
        // return NULL with MemoryError set, which from_owned_ptr_or_err turns into a PyErr).
        // The As_String calls read the storage pointer of the object we just made.
        unsafe {
            let obj = if writable {
                ffi::PyByteArray_FromStringAndSize(std::ptr::null(), n)
            } else {
                ffi::PyBytes_FromStringAndSize(std::ptr::null(), n)
            };
            let obj = Bound::from_owned_ptr_or_err(py, obj)?;
            let data = if writable {
                ffi::PyByteArray_AsString(obj.as_ptr())
            } else {
                ffi::PyBytes_AsString(obj.as_ptr())
            };
            Ok(FreshBytes {
                obj,
                data: data as *mut std::mem::MaybeUninit<u8>,
                len,
            })
        }
    }

    /// The contents, borrowed from `self` (so the object outlives the borrow).
    pub fn contents(&mut self) -> &mut [std::mem::MaybeUninit<u8>] {
        if self.len == 0 {
            return &mut [];
        }
        // SAFETY: `data` points to the `len` bytes of storage of `obj`, which we own and which
        // nothing else references yet, so no one reads or resizes them while this borrow of
        // `self` lasts. The slice, typed MaybeUninit, makes no claim about their contents. A
        // bytes object is immutable only once shared: CPython fills new bytes the same way.
        unsafe { std::slice::from_raw_parts_mut(self.data, self.len) }
    }

    /// The object, once its contents are filled in.
    pub fn into_object(self) -> Bound<'py, PyAny> {
        self.obj
    }
}

/// `dst` zeroed, as bytes.
pub fn zeroed(dst: &mut [std::mem::MaybeUninit<u8>]) -> &mut [u8] {
    dst.fill(std::mem::MaybeUninit::new(0));
    // SAFETY: every element was just initialized, and MaybeUninit<u8> has u8's layout.
    unsafe { &mut *(dst as *mut [std::mem::MaybeUninit<u8>] as *mut [u8]) }
}

/// Bytes owned by Rust, lent to Python through the buffer protocol (read-only): `file.write`
/// takes them without a copy into a `bytes` object.
#[pyclass(module = "satchel._satchel", frozen)]
pub struct OwnedBytes {
    data: Vec<u8>,
}

impl From<Vec<u8>> for OwnedBytes {
    fn from(data: Vec<u8>) -> Self {
        OwnedBytes { data }
    }
}

#[pymethods]
impl OwnedBytes {
    /// # Safety
    /// Called by CPython's buffer protocol with a valid `view` to fill.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: std::os::raw::c_int,
    ) -> PyResult<()> {
        let len = ffi::Py_ssize_t::try_from(slf.get().data.len())
            .map_err(|_| pyo3::exceptions::PyBufferError::new_err("too large"))?;
        let data = slf.get().data.as_ptr() as *mut std::os::raw::c_void;
        // SAFETY: `view` is the caller's Py_buffer to fill. The data is a Vec that this frozen
        // object never changes or frees while it lives, and PyBuffer_FillInfo stores a new
        // reference to the object in view->obj, so the memory outlives every export. It is
        // exported read-only (readonly=1): a request for a writable buffer fails with
        // BufferError, set by PyBuffer_FillInfo (-1).
        let rc = unsafe { ffi::PyBuffer_FillInfo(view, slf.as_ptr(), data, len, 1, flags) };
        if rc == -1 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }
}
