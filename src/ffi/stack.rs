//! How deep satchel's own recursion may go: the interpreter's recursion accounting
//! (`Py_EnterRecursiveCall`, which is the recursion limit on 3.11, the C recursion limit on 3.12
//! and 3.13, and the C stack itself from 3.14) and, on every version, what is left of this
//! thread's stack. A thread made with `threading.stack_size(512 * 1024)` has room for about
//! 1,500 levels of satchel's recursion while the recursion limit may allow far more.

use std::cell::Cell;

use pyo3::ffi;
use pyo3::prelude::*;

/// One level of satchel's recursion, counted by the interpreter until it is dropped.
pub struct Level<'py> {
    _py: Python<'py>,
}

impl Drop for Level<'_> {
    fn drop(&mut self) {
        // SAFETY: a Level exists only after a successful Py_EnterRecursiveCall on this thread,
        // which is attached to the interpreter (the Python token proves it); each is left once.
        unsafe { ffi::Py_LeaveRecursiveCall() }
    }
}

/// Enter one level, or the RecursionError the interpreter raises at its limit.
pub fn enter(py: Python<'_>) -> PyResult<Level<'_>> {
    // SAFETY: the thread is attached (we hold a Python token); the argument is a 'static C
    // string that CPython appends to the RecursionError message.
    let rc = unsafe { ffi::Py_EnterRecursiveCall(c" in satchel".as_ptr()) };
    if rc != 0 {
        return Err(PyErr::fetch(py));
    }
    Ok(Level { _py: py })
}

thread_local! {
    /// This thread's stack: (lowest usable address, usable size); (0, 0): not known yet;
    /// (1, 0): unknowable.
    static STACK: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

fn this_stack() -> (usize, usize) {
    STACK.with(|c| {
        if c.get().0 == 0 {
            c.set(stack_low().unwrap_or((1, 0)));
        }
        c.get()
    })
}

/// Bytes of this thread's stack left below the caller's frame, or None where the platform does
/// not say.
pub fn remaining() -> Option<usize> {
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    let (low, _) = this_stack();
    (low > 1).then(|| here.saturating_sub(low))
}

/// The stack satchel keeps free below its deepest frame in this thread: `MARGIN`, or a quarter
/// of a smaller thread's whole stack (at least `MIN_MARGIN`). A fixed 128 KiB refused every
/// function, at depth 0, in a thread of 128 KiB (musl's default) or less, which cloudpickle
/// pickles there.
pub fn margin() -> usize {
    let (low, size) = this_stack();
    if low <= 1 {
        return MARGIN;
    }
    MARGIN.min(size / 4).max(MIN_MARGIN)
}

/// The lowest address of the calling thread's stack, above the guard page.
fn stack_low() -> Option<(usize, usize)> {
    // The guard page sits at the low end, inside the reported range on glibc's threads.
    let guard = if cfg!(target_os = "macos") { 0 } else { 4096 };
    thread_stack().map(|(low, size)| (low + guard, size.saturating_sub(guard)))
}

/// (lowest address, size) of the calling thread's stack, from its pthread attributes.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn thread_stack() -> Option<(usize, usize)> {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    let mut addr: *mut libc::c_void = std::ptr::null_mut();
    let mut size: libc::size_t = 0;
    // SAFETY: pthread_getattr_np initializes `attr` for the calling thread (0 on success), after
    // which pthread_attr_getstack reads the stack's lowest address and size from it and
    // pthread_attr_destroy frees it; on failure `attr` is left alone and not destroyed.
    unsafe {
        if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
            return None;
        }
        let rc = libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size);
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        if rc != 0 {
            return None;
        }
    }
    Some((addr as usize, size))
}

#[cfg(target_os = "macos")]
pub fn thread_stack() -> Option<(usize, usize)> {
    // SAFETY: both functions only read the calling thread's own descriptor.
    let (top, size) = unsafe {
        let this = libc::pthread_self();
        (
            libc::pthread_get_stackaddr_np(this) as usize,
            libc::pthread_get_stacksize_np(this),
        )
    };
    Some((top.saturating_sub(size), size))
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
pub fn thread_stack() -> Option<(usize, usize)> {
    None
}

/// Stack kept free below satchel's deepest frame: pyo3's frames, a Python call at the bottom,
/// the exception raised there (for a generator's frame capture: the pickler's frames down to
/// the next generator, whose analysis runs Python).
pub const MARGIN: usize = 128 * 1024;

/// The least stack kept free in a small thread (`margin`): a level of the C pickler's recursion
/// between two of satchel's checks, the error raised at the bottom, and a Python call there
/// (measured: a started generator's first analysis and 5,000 nested code constants in a 64 KiB
/// thread; tests/test_hostile.py).
pub const MIN_MARGIN: usize = 24 * 1024;

/// One more level of satchel's recursion at `depth`, or `Error::NestedTooDeep` about `what`
/// (a `satchel.PicklingError`) when the interpreter's recursion accounting or this thread's
/// stack says no.
pub fn guard<'py>(
    py: Python<'py>,
    depth: usize,
    what: impl FnOnce() -> String,
) -> PyResult<Level<'py>> {
    let too_deep = |what: String| crate::error::Error::NestedTooDeep { what, depth };
    if remaining().is_some_and(|left| left < margin()) {
        return Err(too_deep(what()).into_pyerr(py));
    }
    // PyPy counts its stack from the thread's top against an allowance of its own, and its
    // check firing inside a cpyext call is fatal: refused here first (`pypy::stack_too_deep`).
    #[cfg(PyPy)]
    if let Some(cause) = super::pypy::stack_too_deep(py) {
        return Err(too_deep(what()).with_cause(py, cause));
    }
    enter(py).map_err(|cause| too_deep(what()).with_cause(py, cause))
}
