//! Files from `open()` (cloudpickle's `_file_reduce`, which covers text files only): a file
//! open for reading travels as its contents and position. A text file loads as an
//! `io.StringIO`, a binary one (which cloudpickle refuses) as an `io.BytesIO`, holding the
//! whole contents, at the same position, with the file's `name` as an attribute. They pickle by
//! their own state, so a stdlib-only receiver rebuilds them.
//!
//! - `sys.stdout` and `sys.stderr` (and `sys.__stdout__`, `sys.__stderr__`) are the receiver's
//!   own: `getattr(sys, "stdout")`. Only objects of the file types are looked at, so a stream
//!   that replaced them (pytest's capture, Jupyter's) pickles by its own rules, as with
//!   cloudpickle.
//! - Refused, with cloudpickle's wording: standard input, closed files, terminals, files not
//!   open for reading ('w', 'a', 'x' without '+'), and files that cannot be read from the start
//!   (pipes and sockets are not seekable; undecodable text). The error is the stdlib's
//!   PicklingError, so that the error path leading to the file is added to it.
//! - The position of a text file is a number of characters in the contents (`tell()` gives an
//!   opaque cookie, bytes for UTF-8, which cloudpickle uses as a character offset); the file's
//!   own position is restored after reading.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::call;
use crate::error::{Error, FileRefusal};
use crate::ffi::type_addr;
use crate::typeref::typerefs;

pub fn reduce<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let refs = typerefs(py);
    let sys = refs.sys.bind(py);
    for stream in ["stdout", "stderr", "__stdout__", "__stderr__"] {
        if sys.getattr_opt(stream)?.is_some_and(|s| s.is(obj)) {
            return call(
                &refs.getattr,
                PyTuple::new(py, [sys.clone(), stream.into_pyobject(py)?.into_any()])?,
            );
        }
    }
    let (Some(name), Some(mode)) = (obj.getattr_opt("name")?, obj.getattr_opt("mode")?) else {
        return Err(refuse(obj, FileRefusal::NoName));
    };
    // "'/tmp/data.txt' (_io.TextIOWrapper)": an error path drops the leaf's type otherwise.
    let name_repr = format!(
        "{} ({})",
        name.repr()?,
        obj.get_type().fully_qualified_name()?
    );
    let refused = |refusal| {
        Error::File {
            name: name_repr.clone(),
            refusal,
        }
        .into_pyerr(py)
    };
    for stream in ["stdin", "__stdin__"] {
        if sys.getattr_opt(stream)?.is_some_and(|s| s.is(obj)) {
            return Err(refused(FileRefusal::Stdin));
        }
    }
    if obj.getattr(intern!(py, "closed"))?.is_truthy()? {
        return Err(refused(FileRefusal::Closed));
    }
    if obj.call_method0(intern!(py, "isatty"))?.is_truthy()? {
        return Err(refused(FileRefusal::Tty));
    }
    let mode_text = mode.str()?.to_string();
    if !mode_text.contains('r') && !mode_text.contains('+') {
        return Err(refused(FileRefusal::NotReadable { mode: mode_text }));
    }
    if !obj.call_method0(intern!(py, "seekable"))?.is_truthy()? {
        return Err(refused(FileRefusal::Unreadable {
            reason: "it is not seekable (a pipe, a socket or a character device)".into(),
        }));
    }
    let text = type_addr(obj) == refs.files[0];
    let (contents, position) = read_all(obj, text).map_err(|e| {
        let reason = e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
        let err = refused(FileRefusal::Unreadable { reason });
        err.set_cause(py, Some(e));
        err
    })?;
    let copy = if text {
        refs.string_io.bind(py).call1((contents,))?
    } else {
        refs.bytes_io.bind(py).call1((contents,))?
    };
    copy.call_method1(intern!(py, "seek"), (position,))?;
    copy.setattr(intern!(py, "name"), name)?;
    // `StringIO()` then its own `__setstate__((contents, newline, position, __dict__))` (for
    // BytesIO `(contents, position, __dict__)`): what pickling the copy itself does, but not
    // through `copyreg.__newobj__`, which the pickler allows only for the object's own class.
    let state = copy.call_method0(intern!(py, "__getstate__"))?;
    Ok(PyTuple::new(
        py,
        [
            copy.get_type().into_any(),
            PyTuple::empty(py).into_any(),
            state,
        ],
    )?
    .into_any())
}

fn refuse(obj: &Bound<'_, PyAny>, refusal: FileRefusal) -> PyErr {
    let name = obj
        .get_type()
        .fully_qualified_name()
        .map(|n| format!("this {n}"))
        .unwrap_or_else(|_| "this file".into());
    Error::File { name, refusal }.into_pyerr(obj.py())
}

/// The whole contents, and the position in them (characters for text), leaving the file where
/// it was. A text file's `tell()` is an opaque cookie: the position is the length of the
/// contents less what is left to read from it.
fn read_all<'py>(obj: &Bound<'py, PyAny>, text: bool) -> PyResult<(Bound<'py, PyAny>, usize)> {
    let py = obj.py();
    let here = obj.call_method0(intern!(py, "tell"))?;
    let at_start = here.extract::<usize>().is_ok_and(|n| n == 0);
    let read = || -> PyResult<(Bound<'py, PyAny>, usize)> {
        if at_start {
            return Ok((obj.call_method0(intern!(py, "read"))?, 0));
        }
        let rest = if text {
            Some(obj.call_method0(intern!(py, "read"))?)
        } else {
            None
        };
        obj.call_method1(intern!(py, "seek"), (0,))?;
        let contents = obj.call_method0(intern!(py, "read"))?;
        let position = match &rest {
            Some(rest) => contents.len()?.saturating_sub(rest.len()?),
            None => here.extract::<usize>()?,
        };
        Ok((contents, position))
    };
    let result = read();
    let restored = obj.call_method1(intern!(py, "seek"), (&here,));
    let contents = result?;
    restored?;
    Ok(contents)
}
