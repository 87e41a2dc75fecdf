//! One dump's body (what the C pickler writes): with the thread's reused pickler (`dumps` of
//! a small object, the task-shipping case) or with a fresh one.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::writer::Writer;
use super::{new_pickler, reducer_of, Options, Reducer};
use crate::diagnose;
use crate::envelope::buffers::BufferSink;
use crate::reduce::Marks;
use crate::typeref::typerefs;

/// One pickler and writer per thread and mode, reused by `dumps`: building a
/// `_pickle.Pickler` costs more than pickling a small task. A nested `dumps` (from a
/// `__reduce__` running inside one) finds the slot empty and builds its own.
struct Cached {
    key: (u8, bool),
    pickler: Py<PyAny>,
    clear_memo: Py<PyAny>,
    writer: Py<Writer>,
    reducer: Py<Reducer>,
}

/// Outputs up to this size leave the reused pickler's memo small enough to clear cheaply.
const REUSE_MAX_OUTPUT: usize = 8 * 1024;

thread_local! {
    static CACHED: std::cell::RefCell<Option<Cached>> = const { std::cell::RefCell::new(None) };
}

/// The body (what the C pickler writes) of `obj`, with a reused pickler, and what the dump noted.
pub fn reused<'py>(
    obj: &Bound<'py, PyAny>,
    opts: &Options,
) -> PyResult<(Bound<'py, PyBytes>, Marks)> {
    let py = obj.py();
    let refs = typerefs(py);
    let key = (opts.protocol, opts.portable);
    let cached = CACHED
        .with(|c| c.borrow_mut().take())
        .filter(|c| c.key == key);
    let cached = match cached {
        Some(c) => c,
        None => {
            let writer = Bound::new(py, Writer::new())?;
            let pickler = new_pickler(writer.as_any(), opts, None)?;
            Cached {
                key,
                // The C method itself: satchel.Pickler.clear_memo (Python) also resets the
                // reducer, which this cache does directly.
                clear_memo: refs
                    .c_clear_memo
                    .bind(py)
                    .call_method1("__get__", (&pickler,))?
                    .unbind(),
                reducer: reducer_of(&pickler)?.unbind(),
                pickler: pickler.unbind(),
                writer: writer.unbind(),
            }
        }
    };
    let writer = cached.writer.bind(py);
    let result = refs.c_dump.bind(py).call1((cached.pickler.bind(py), obj));
    let value = writer.get().getvalue(py);
    let marks = cached.reducer.get().state.take_marks();
    // Keep the pickler only after a clean, small dump. Clearing the memo now releases what
    // this dump referenced; a small output means a small memo table, which clear_memo walks
    // whole and CPython never shrinks (one big dump would slow every later one).
    let small = value
        .as_ref()
        .is_ok_and(|v| v.as_bytes().len() <= REUSE_MAX_OUTPUT);
    let mut seen = cached.reducer.get().seen();
    seen.own_sink = true; // our Writer, no buffer_callback
    if result.is_ok() && small && cached.clear_memo.bind(py).call0().is_ok() {
        cached.reducer.get().state.reset();
        CACHED.with(|c| *c.borrow_mut() = Some(cached));
    }
    // The pickler (and its memo) is gone before diagnosis: what it pickled is released first.
    result.map_err(|err| diagnose::explain(obj, err, seen))?;
    Ok((value?, marks))
}

/// The body of `obj` pickled with a fresh pickler into a Writer, and what the dump noted.
pub fn fresh<'py>(
    obj: &Bound<'py, PyAny>,
    opts: &Options,
    buffer_callback: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyBytes>, Marks)> {
    let py = obj.py();
    let writer = Bound::new(py, Writer::new())?;
    let pickler = new_pickler(writer.as_any(), opts, buffer_callback)?;
    let reducer = reducer_of(&pickler)?;
    if let Err(err) = typerefs(py).c_dump.bind(py).call1((&pickler, obj)) {
        let mut seen = reducer.get().seen();
        // Our writer and our own sink cannot be what failed; a caller's buffer_callback can.
        seen.own_sink = buffer_callback.is_none_or(|cb| cb.is_instance_of::<BufferSink>());
        drop((pickler, reducer));
        return Err(diagnose::explain(obj, err, seen));
    }
    let marks = reducer.get().state.take_marks();
    Ok((writer.get().getvalue(py)?, marks))
}
