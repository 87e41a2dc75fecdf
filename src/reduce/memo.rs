//! Picklers that call `reducer_override` before looking in their memo (PyPy 3.11's built-in
//! `_pickle`, `pypy/module/_pickle/interp_pickle.py`, `W_Pickler.save`).
//!
//! CPython's pickler (C and Python alike) looks an object up in its memo first and calls
//! `reducer_override` only for objects it has not written yet. PyPy's asks `reducer_override`
//! about every object it saves, memoized or not. Two things break there:
//! - A reduction with a state setter, `(ctor, args, state, None, None, setter)`, makes the
//!   pickler save the object again between the setter and the state ("simple BINGET opcode as
//!   obj is already memoized"). Reduced again, the object brings its state setter again, which
//!   saves the object again: endless recursion, which cpyext turns into a fatal error ("The
//!   function PyErr_Fetch was not supposed to fail") once the stack runs out.
//! - Every further reference to a shared object would write its whole reduction again.
//!
//! So, where the pickler behaves this way (`TypeRefs::override_before_memo`, probed at import),
//! the reducer remembers what it reduced since the memo was last cleared. Met again, an object
//! gets its reduction's first two items only, `(ctor, args)`, with the same `args` tuple (which
//! the pickler memoized): the pickler writes `ctor args REDUCE`, finds the object in its memo,
//! and writes `POP` and a memo get (`W_Pickler.save_reduce`). The receiver calls the
//! constructor once more and throws the result away: satchel's constructors return the object
//! they already made for a tracked class, and make a throwaway cell, function or skeleton
//! otherwise. Met again while its own arguments are being written (a class whose base refers
//! back to it), the object is not in the memo yet: the bare skeleton then becomes the memoized
//! object, and the first reduction's state, written after it, is applied to it, as CPython's
//! pickler applies it to the object it memoized.
//!
//! The list must never claim an object the memo has lost (a skeleton without its state would
//! load): it is cleared with the memo (`satchel.Pickler.clear_memo`), after a failed dump, and
//! whenever satchel reuses a pickler. Forgetting too much is harmless: the object is reduced in
//! full again and its state applied twice, to the same values.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use rustc_hash::FxHashMap;

use crate::ffi::addr;

/// An object held (so that its address cannot be reused while it is listed) and its bare
/// `(ctor, args)`.
type Entry = (Py<PyAny>, Py<PyAny>);

/// The objects reduced since the memo was last cleared, by address.
#[derive(Default)]
pub struct Seen {
    map: Mutex<FxHashMap<usize, Entry>>,
}

impl Seen {
    /// What to return for an object reduced before, if it was.
    pub fn again<'py>(&self, obj: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
        let map = self.map.lock().expect("seen lock");
        map.get(&addr(obj))
            .filter(|(held, _)| held.bind(obj.py()).is(obj))
            .map(|(_, bare)| bare.bind(obj.py()).clone())
    }

    /// Remember `obj`'s reduction (a reduction tuple; anything else is not remembered).
    pub fn remember(&self, obj: &Bound<'_, PyAny>, reduced: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = obj.py();
        let Ok(t) = reduced.cast::<PyTuple>() else {
            return Ok(());
        };
        if t.len() < 2 {
            return Ok(());
        }
        let bare = if t.len() == 2 {
            t.clone()
        } else {
            PyTuple::new(py, [t.get_item(0)?, t.get_item(1)?])?
        };
        let old = self
            .map
            .lock()
            .expect("seen lock")
            .insert(addr(obj), (obj.clone().unbind(), bare.into_any().unbind()));
        drop(old); // decref outside the lock
        Ok(())
    }

    pub fn clear(&self) {
        let old = std::mem::take(&mut *self.map.lock().expect("seen lock"));
        drop(old);
    }

    /// For the garbage collector (skips a map another thread is changing).
    pub fn traverse(&self, visit: &pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        if let Ok(map) = self.map.try_lock() {
            for (obj, bare) in map.values() {
                visit.call(obj)?;
                visit.call(bare)?;
            }
        }
        Ok(())
    }
}

/// Whether this interpreter's `_pickle.Pickler` calls `reducer_override` for an object it has
/// already memoized (PyPy 3.11 does; CPython never does).
pub fn override_before_memo(py: Python<'_>) -> PyResult<bool> {
    let globals = pyo3::types::PyDict::new(py);
    py.run(
        c"import _pickle, io
probe = object()
calls = []
class Probe(_pickle.Pickler):
    def reducer_override(self, obj):
        if obj is probe:
            calls.append(obj)
            return (int, ())
        return NotImplemented
Probe(io.BytesIO(), 2).dump([probe, probe])
before = len(calls) > 1
",
        Some(&globals),
        None,
    )?;
    globals
        .get_item("before")?
        .expect("set by the probe")
        .extract()
}
