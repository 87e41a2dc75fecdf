//! The Python-facing entry points: dumps/dump, the `reducer_override` descriptor that
//! `satchel.Pickler` carries, and the by-value registry.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyString, PyType};

use crate::diagnose;
use crate::envelope::buffers::{self, BufferSink, Held};
use crate::envelope::{compress, fingerprint, header, signature};
use crate::error::{catch_panic, Error};
use crate::reduce::{self, DumpState, Marks};
use crate::typeref::typerefs;

/// `satchel.Pickler`, registered by the Python package at import (it is a Python subclass of
/// `_pickle.Pickler`, so that users and loky can subclass it and set `dispatch_table`).
static PICKLER_CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();

#[pyfunction]
pub fn _register_pickler(cls: &Bound<'_, PyType>) -> PyResult<()> {
    let _ = PICKLER_CLASS.set(cls.py(), cls.clone().unbind());
    Ok(())
}

fn pickler_class(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    PICKLER_CLASS.get(py).map(|c| c.bind(py)).ok_or_else(|| {
        pyo3::exceptions::PyRuntimeError::new_err("import satchel, not satchel._satchel")
    })
}

/// Per-pickler state behind the reducer function the C pickler calls for each object it
/// cannot write itself (see `ffi::reducer_function`).
#[pyclass(module = "satchel._satchel", frozen)]
pub struct Reducer {
    state: DumpState,
    /// The address of the last object this reducer was called with: after a failed dump it is
    /// (nearly always) the object that failed, or one inside it, which is where diagnosis
    /// starts looking. Only an address, compared and never dereferenced: one plain store per
    /// call on the hot path, no reference count.
    last: AtomicUsize,
    /// The address of the exception the last failing call raised (diagnosis tells satchel's
    /// own failures from the file's). Set on the error path only.
    raised: AtomicUsize,
}

impl Reducer {
    fn new() -> Self {
        Reducer {
            state: DumpState::new(),
            last: AtomicUsize::new(0),
            raised: AtomicUsize::new(0),
        }
    }

    /// What diagnosis needs to know of this reducer's calls (diagnose.rs).
    pub fn seen(&self) -> diagnose::Seen {
        diagnose::Seen {
            last: self.last.load(Ordering::Relaxed),
            raised: self.raised.load(Ordering::Relaxed),
            own_sink: false,
        }
    }
}

/// `Pickler.reducer_override`: a descriptor, so that `super().reducer_override(obj)` works in
/// subclasses. Bound to a pickler it yields that pickler's `Reducer` (made on first access and
/// kept in the instance dict, so per-dump state is shared by every access).
#[pyclass(module = "satchel._satchel", frozen)]
pub struct ReducerOverride;

const REDUCER_ATTR: &str = "_satchel_reducer";

#[pymethods]
impl Reducer {
    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        self.state.traverse(&visit)
    }

    fn __clear__(slf: &Bound<'_, Self>) {
        slf.get().state.reset();
    }
}

/// `satchel.Pickler.clear_memo` also forgets the per-dump globals: they were written to the
/// stream with the memo, and a reused pickler must write them again (or not at all).
#[pyfunction]
pub fn _reset_reducer(pickler: &Bound<'_, PyAny>) -> PyResult<()> {
    let dict = pickler.getattr("__dict__")?.cast_into::<PyDict>()?;
    if dict.contains(REDUCER_ATTR)? {
        reducer_of(pickler)?.get().state.reset();
    }
    Ok(())
}

/// The pickler's reducer function (a METH_O builtin whose `__self__` is its `Reducer`).
fn reducer_for<'py>(pickler: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = pickler.py();
    let dict = pickler.getattr("__dict__")?.cast_into::<PyDict>()?;
    if let Some(r) = dict.get_item(REDUCER_ATTR)? {
        return Ok(r);
    }
    let reducer = Bound::new(py, Reducer::new())?;
    let function = crate::ffi::reducer_function(reducer.as_any())?;
    dict.set_item(REDUCER_ATTR, &function)?;
    Ok(function)
}

/// Body of the reducer function: `reducer` is its `__self__`.
pub fn call_reducer<'py>(
    reducer: &Bound<'py, PyAny>,
    obj: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let reducer = reducer.cast::<Reducer>()?.get();
    reducer.last.store(crate::ffi::addr(obj), Ordering::Relaxed);
    let result = reduce::reduce(&reducer.state, obj);
    if let Err(err) = &result {
        let raised = err.value(obj.py()).as_ptr() as usize;
        reducer.raised.store(raised, Ordering::Relaxed);
    }
    result
}

#[pymethods]
impl ReducerOverride {
    #[new]
    fn new() -> Self {
        ReducerOverride
    }

    fn __get__<'py>(
        slf: &Bound<'py, Self>,
        instance: Option<&Bound<'py, PyAny>>,
        owner: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _ = owner;
        match instance {
            None => Ok(slf.clone().into_any()),
            Some(pickler) => catch_panic(slf.py(), false, || reducer_for(pickler)),
        }
    }

    /// `Pickler.reducer_override(pickler, obj)`, called through the class.
    fn __call__<'py>(
        &self,
        pickler: &Bound<'py, PyAny>,
        obj: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        catch_panic(obj.py(), false, || reducer_for(pickler)?.call1((obj,)))
    }
}

/// Pickle `obj`'s body into `file` with a fresh `satchel.Pickler` (used by error diagnosis).
pub fn dump_raw(obj: &Bound<'_, PyAny>, file: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = obj.py();
    let opts = Options::new(py, None, None, "nonportable", None, Some(false))?;
    let pickler = new_pickler(file, &opts, None)?;
    typerefs(py).c_dump.bind(py).call1((pickler, obj))?;
    Ok(())
}

/// A `satchel.Pickler` writing bodies to `file`. Its errors (a file without `write`) are
/// about the call: `diagnose::explain` passes them through unchanged, since the object itself
/// pickles fine.
fn new_pickler<'py>(
    file: &Bound<'py, PyAny>,
    opts: &Options,
    buffer_callback: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = file.py();
    let cls = pickler_class(py)?;
    let kwargs = PyDict::new(py);
    if let Some(cb) = buffer_callback.filter(|cb| !cb.is_none()) {
        kwargs.set_item("buffer_callback", cb)?;
    }
    if opts.portable {
        kwargs.set_item("mode", "portable")?;
        kwargs.set_item("standalone", false)?;
    }
    // The body only: headers are written by the caller.
    kwargs.set_item("_body_only", true)?;
    let pickler = cls.call((file, opts.protocol), Some(&kwargs))?;
    if opts.protocol >= 2 {
        reducer_of(&pickler)?.get().state.enable_plain_instances();
    }
    Ok(pickler)
}

/// The `Reducer` behind a pickler's reducer function.
fn reducer_of<'py>(pickler: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Reducer>> {
    Ok(reducer_for(pickler)?
        .getattr("__self__")?
        .cast_into::<Reducer>()?)
}

/// The file `dumps` gives the C pickler: it keeps the chunks the pickler writes and hands a
/// single chunk back as is, where BytesIO would copy it in and copy it out again.
#[pyclass(module = "satchel._satchel", frozen)]
pub struct Writer {
    chunks: Mutex<Vec<Py<PyAny>>>,
}

#[pymethods]
impl Writer {
    #[new]
    fn new() -> Self {
        Writer {
            chunks: Mutex::new(Vec::new()),
        }
    }

    /// Called by the pickler with bytes, or (for large buffers) a memoryview, which is copied
    /// because its owner may change it after the call.
    fn write(&self, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        catch_panic(data.py(), false, || self.keep(data))
    }

    fn getvalue<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        catch_panic(py, false, || self.joined(py))
    }
}

impl Writer {
    fn keep(&self, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        let py = data.py();
        let chunk = if data.is_exact_instance_of::<PyBytes>() {
            data.clone()
        } else {
            typerefs(py).bytes_type.bind(py).call1((data,))?
        };
        let len = chunk.len()?;
        self.chunks
            .lock()
            .expect("writer lock")
            .push(chunk.unbind());
        Ok(len)
    }

    fn joined<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let chunks = std::mem::take(&mut *self.chunks.lock().expect("writer lock"));
        if chunks.len() == 1 {
            return Ok(chunks[0].bind(py).clone().cast_into::<PyBytes>()?);
        }
        let parts: Vec<Bound<'py, PyBytes>> = chunks
            .iter()
            .map(|c| c.bind(py).clone().cast_into::<PyBytes>())
            .collect::<Result<_, _>>()?;
        let total = parts.iter().map(|p| p.as_bytes().len()).sum();
        PyBytes::new_with(py, total, |buf| {
            let mut at = 0;
            for p in &parts {
                let b = p.as_bytes();
                buf[at..at + b.len()].copy_from_slice(b);
                at += b.len();
            }
            Ok(())
        })
    }
}

/// The keyword options of dumps/dump/Pickler, resolved once.
pub struct Options {
    pub protocol: u8,
    pub portable: bool,
    pub standalone: bool,
    /// Some(true): compress; Some(false): never; None: above `compress::AUTO_THRESHOLD`.
    pub compress: Option<bool>,
    pub out_of_band: bool,
}

impl Options {
    pub fn new(
        py: Python<'_>,
        protocol: Option<&Bound<'_, PyAny>>,
        buffer_callback: Option<&Bound<'_, PyAny>>,
        mode: &str,
        standalone: Option<bool>,
        compress: Option<bool>,
    ) -> PyResult<Options> {
        let bad = |reason: String| Error::BadOption { reason }.into_pyerr(py);
        let protocol = match protocol {
            None => 5,
            Some(p) if p.is_none() => 5,
            Some(p) => match p.extract::<i64>() {
                Ok(n) if n < 0 => 5,
                Ok(n) if n <= 5 => n as u8,
                Ok(n) => return Err(bad(format!("pickle protocol must be <= 5, not {n}"))),
                Err(_) => {
                    return Err(bad(format!(
                        "protocol must be an int, not {}",
                        p.get_type().name()?
                    )))
                }
            },
        };
        let portable = match mode {
            "nonportable" => false,
            "portable" => true,
            other => {
                return Err(bad(format!(
                    "mode must be 'nonportable' or 'portable', not {other:?}"
                )))
            }
        };
        let standalone = standalone.unwrap_or(portable);
        let out_of_band = buffer_callback.is_some_and(|cb| !cb.is_none());
        if standalone && protocol < 3 {
            return Err(bad(format!(
                "standalone streams carry bytes, which need protocol 3 or higher (got {protocol}); \
                 pass standalone=False"
            )));
        }
        if compress == Some(true) && (protocol < 3 || out_of_band) {
            return Err(bad(
                "compress=True needs protocol 3 or higher and no buffer_callback (out-of-band \
                 buffers are not part of the compressed body)"
                    .into(),
            ));
        }
        Ok(Options {
            protocol,
            portable,
            standalone,
            compress,
            out_of_band,
        })
    }

    /// The header's flags for these options; `known` is what the dump noted about the body,
    /// or None for a header written before the body (FLAG_STREAMED).
    fn flags(&self, compressed: bool, known: Option<Marks>) -> u8 {
        let mut flags = match known {
            Some(m) if m.generators => header::FLAG_GENERATORS,
            Some(_) => 0,
            None => header::FLAG_STREAMED,
        };
        if !self.portable {
            flags |= header::FLAG_NONPORTABLE;
        }
        if self.standalone {
            flags |= header::FLAG_STANDALONE;
        }
        if compressed {
            flags |= header::FLAG_COMPRESSED;
        }
        flags
    }

    /// Whether a body of this size is compressed. Automatic compression only applies to a
    /// stream that already needs satchel on the receiver (`needs_header`) and does not carry
    /// the bootstrap for stdlib-only receivers: plain data stays a plain pickle, and a
    /// standalone stream stays loadable without satchel or Python 3.14's zstd.
    fn compresses(&self, body_len: usize, needs_header: bool) -> bool {
        match self.compress {
            Some(c) => c,
            None => {
                needs_header
                    && !self.standalone
                    && !self.out_of_band
                    && self.protocol >= 3
                    && body_len > compress::AUTO_THRESHOLD
            }
        }
    }
}

/// Header bytes per (protocol, flags), built once.
type HeaderCache = Vec<((u8, u8), Py<PyBytes>)>;
static HEADERS: Mutex<HeaderCache> = Mutex::new(Vec::new());

/// The standalone payloads (the loader and the bootstrap parts one mode needs, in one zlib
/// blob), built once each: [nonportable, portable].
static STANDALONE: [PyOnceLock<Py<PyBytes>>; 2] = [PyOnceLock::new(), PyOnceLock::new()];

fn header<'py>(py: Python<'py>, protocol: u8, flags: u8) -> PyResult<Bound<'py, PyBytes>> {
    let key = (protocol, flags);
    let cached = HEADERS
        .lock()
        .expect("header cache lock")
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.clone_ref(py));
    if let Some(h) = cached {
        return Ok(h.into_bound(py));
    }
    let fp = fingerprint::fingerprint(py)?;
    let version = crate::bootstrap::boot(py)
        .module
        .bind(py)
        .getattr("FORMAT_VERSION")?
        .extract::<String>()?;
    let standalone = if flags & header::FLAG_STANDALONE != 0 {
        use crate::bootstrap::{BYTECODE, CORE, LOADER, PORTABLE};
        let portable = flags & header::FLAG_NONPORTABLE == 0;
        let blob = STANDALONE[usize::from(portable)].get_or_try_init(py, || -> PyResult<_> {
            let mode_part = if portable {
                ("portable", PORTABLE)
            } else {
                ("bytecode", BYTECODE)
            };
            let parts = vec![("core", CORE), mode_part];
            Ok(py
                .import("satchel._standalone")?
                .call_method1("payload", (parts, LOADER))?
                .cast_into::<PyBytes>()?
                .unbind())
        })?;
        Some(blob.bind(py).as_bytes())
    } else {
        None
    };
    let bytes = PyBytes::new(
        py,
        &header::build(protocol, flags, &version, fp, standalone),
    );
    HEADERS
        .lock()
        .expect("header cache lock")
        .push((key, bytes.clone().unbind()));
    Ok(bytes)
}

/// The whole stream for a pickled `body`: header, then the body or its compressed wrapper.
/// A body that names no bootstrap constructor (plain data, objects by reference, plain
/// instances) needs neither satchel nor a particular interpreter: it goes out as the plain
/// pickle it is, byte for byte the stdlib's, unless it is compressed.
fn finish<'py>(
    py: Python<'py>,
    opts: &Options,
    body: &Bound<'py, PyBytes>,
    marks: Marks,
    held: &[Held],
) -> PyResult<Bound<'py, PyBytes>> {
    let needs_header = marks.bootstrap;
    // Out-of-band buffers are only kept by a dump that compresses: they go in its wrapper.
    let compressed = !held.is_empty() || opts.compresses(body.as_bytes().len(), needs_header);
    if !needs_header && !compressed {
        return Ok(body.clone());
    }
    // A body that names no bootstrap constructor carries no bytecode: not nonportable.
    let mask = if needs_header {
        u8::MAX
    } else {
        !header::FLAG_NONPORTABLE
    };
    if compressed {
        let pieces = compressed_pieces(py, opts, body, held)?;
        let head = header(py, opts.protocol, opts.flags(true, Some(marks)) & mask)?;
        let mut parts: Vec<&[u8]> = vec![head.as_bytes()];
        parts.extend(pieces.iter().map(Vec::as_slice));
        return concat(py, &parts);
    }
    let head = header(py, opts.protocol, opts.flags(false, Some(marks)) & mask)?;
    concat(py, &[head.as_bytes(), body.as_bytes()])
}

/// The compressed wrapper of `body` and `held` (everything after the header), in pieces.
fn compressed_pieces(
    py: Python<'_>,
    opts: &Options,
    body: &Bound<'_, PyBytes>,
    held: &[Held],
) -> PyResult<Vec<Vec<u8>>> {
    let (frame, packed) = buffers::compress_all(py, body.as_bytes(), held)?;
    Ok(header::compressed_wrapper(opts.protocol, frame, packed))
}

/// `finish` for a stream that is compressed, written to `file` piece by piece: the frames go
/// to `file.write` without being copied into one object (on a machine where fresh memory
/// costs a page fault per 4 KiB, that copy cost a quarter of a 50 MB session's save).
fn write_compressed<'py>(
    py: Python<'py>,
    file: &Bound<'py, PyAny>,
    opts: &Options,
    body: &Bound<'py, PyBytes>,
    held: &[Held],
    marks: Option<Marks>,
) -> PyResult<()> {
    let pieces = compressed_pieces(py, opts, body, held)?;
    let flags = opts.flags(true, marks);
    file.call_method1("write", (header(py, opts.protocol, flags)?,))?;
    for piece in pieces {
        if piece.len() < 4096 {
            file.call_method1("write", (PyBytes::new(py, &piece),))?;
        } else {
            file.call_method1(
                "write",
                (Bound::new(py, crate::ffi::OwnedBytes::from(piece))?,),
            )?;
        }
    }
    Ok(())
}

/// A sink for the large buffers of a dump that compresses (protocol 5, lean, no buffer_callback
/// of the caller's): they are compressed apart from the body, in parallel (envelope/buffers.rs).
fn buffer_sink<'py>(py: Python<'py>, opts: &Options) -> PyResult<Option<Bound<'py, BufferSink>>> {
    // Not standalone: its receiver may have no satchel, and only satchel decodes the buffers.
    if opts.compress == Some(true) && opts.protocol >= 5 && !opts.out_of_band && !opts.standalone {
        return Bound::new(py, BufferSink::new()).map(Some);
    }
    Ok(None)
}

/// One bytes object from `parts`, written in place (one copy).
fn concat<'py>(py: Python<'py>, parts: &[&[u8]]) -> PyResult<Bound<'py, PyBytes>> {
    let total = parts.iter().map(|p| p.len()).sum();
    PyBytes::new_with(py, total, |buf| {
        let mut at = 0;
        for p in parts {
            buf[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        Ok(())
    })
}

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
fn body_cached<'py>(
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
fn body_fresh<'py>(
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

#[pyfunction]
#[pyo3(signature = (obj, protocol=None, buffer_callback=None, *, mode="nonportable", standalone=None, compress=None, key=None))]
#[allow(clippy::too_many_arguments)]
pub fn dumps<'py>(
    obj: &Bound<'py, PyAny>,
    protocol: Option<&Bound<'py, PyAny>>,
    buffer_callback: Option<&Bound<'py, PyAny>>,
    mode: &str,
    standalone: Option<bool>,
    compress: Option<bool>,
    key: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    catch_panic(obj.py(), false, || {
        dumps_impl(
            obj,
            protocol,
            buffer_callback,
            mode,
            standalone,
            compress,
            key,
        )
    })
}

#[allow(clippy::too_many_arguments)]
fn dumps_impl<'py>(
    obj: &Bound<'py, PyAny>,
    protocol: Option<&Bound<'py, PyAny>>,
    buffer_callback: Option<&Bound<'py, PyAny>>,
    mode: &str,
    standalone: Option<bool>,
    compress: Option<bool>,
    key: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let py = obj.py();
    let key = signing_key(py, key, buffer_callback)?;
    let opts = Options::new(py, protocol, buffer_callback, mode, standalone, compress)?;
    let sink = buffer_sink(py, &opts)?;
    let body = if let Some(sink) = &sink {
        body_fresh(obj, &opts, Some(sink.as_any()))
    } else if opts.out_of_band {
        body_fresh(obj, &opts, buffer_callback)
    } else {
        body_cached(obj, &opts)
    };
    let (body, marks) = body?;
    let held = sink.map(|s| s.get().take()).unwrap_or_default();
    let stream = finish(py, &opts, &body, marks, &held)?;
    match key {
        None => Ok(stream),
        Some(key) => Ok(signed(py, &key, stream.as_bytes())),
    }
}

/// `stream + MAGIC + HMAC(key, stream)` (envelope/signature.rs).
fn signed<'py>(py: Python<'py>, key: &[u8], stream: &[u8]) -> Bound<'py, PyBytes> {
    let trailer = signature::trailer(key, stream);
    PyBytes::new_with(py, stream.len() + trailer.len(), |buf| {
        buf[..stream.len()].copy_from_slice(stream);
        buf[stream.len()..].copy_from_slice(&trailer);
        Ok(())
    })
    .expect("filling a new bytes object cannot fail")
}

/// The bytes of one key (bytes, bytearray, memoryview); an empty key is refused.
fn key_bytes(py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let bytes: Vec<u8> = py
        .get_type::<PyBytes>()
        .call1((key,))
        .and_then(|b| Ok(b.cast_into::<PyBytes>()?.as_bytes().to_vec()))
        .map_err(|_| {
            Error::BadOption {
                reason: "key= takes bytes (or a list of bytes when loading)".into(),
            }
            .into_pyerr(py)
        })?;
    if bytes.is_empty() || key.is_instance_of::<pyo3::types::PyInt>() {
        return Err(Error::BadOption {
            reason: "key= must be non-empty bytes".into(),
        }
        .into_pyerr(py));
    }
    Ok(bytes)
}

/// The signing key of a dump. Out-of-band buffers would travel unsigned: refused together.
fn signing_key(
    py: Python<'_>,
    key: Option<&Bound<'_, PyAny>>,
    buffer_callback: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<Vec<u8>>> {
    let Some(key) = key.filter(|k| !k.is_none()) else {
        return Ok(None);
    };
    if buffer_callback.is_some_and(|cb| !cb.is_none()) {
        return Err(Error::BadOption {
            reason: "key= signs the stream, but buffer_callback= sends buffers outside it \
                     unsigned; sign in-band data only"
                .into(),
        }
        .into_pyerr(py));
    }
    key_bytes(py, key).map(Some)
}

/// The accepted keys of a signed load: one key, or a list (key rotation).
fn verifying_keys(py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<u8>>> {
    if key.is_instance_of::<pyo3::types::PyList>() || key.is_instance_of::<pyo3::types::PyTuple>() {
        let keys: Vec<Vec<u8>> = key
            .try_iter()?
            .map(|k| key_bytes(py, &k?))
            .collect::<PyResult<_>>()?;
        if keys.is_empty() {
            return Err(Error::BadOption {
                reason: "key= got an empty list of keys".into(),
            }
            .into_pyerr(py));
        }
        return Ok(keys);
    }
    Ok(vec![key_bytes(py, key)?])
}

#[pyfunction]
#[pyo3(signature = (obj, file, protocol=None, buffer_callback=None, *, mode="nonportable", standalone=None, compress=None, key=None))]
#[allow(clippy::too_many_arguments)]
pub fn dump(
    obj: &Bound<'_, PyAny>,
    file: &Bound<'_, PyAny>,
    protocol: Option<&Bound<'_, PyAny>>,
    buffer_callback: Option<&Bound<'_, PyAny>>,
    mode: &str,
    standalone: Option<bool>,
    compress: Option<bool>,
    key: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    catch_panic(obj.py(), false, || {
        dump_impl(
            obj,
            file,
            protocol,
            buffer_callback,
            mode,
            standalone,
            compress,
            key,
        )
    })
}

#[allow(clippy::too_many_arguments)]
fn dump_impl(
    obj: &Bound<'_, PyAny>,
    file: &Bound<'_, PyAny>,
    protocol: Option<&Bound<'_, PyAny>>,
    buffer_callback: Option<&Bound<'_, PyAny>>,
    mode: &str,
    standalone: Option<bool>,
    compress: Option<bool>,
    key: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let py = obj.py();
    if key.is_some_and(|k| !k.is_none()) {
        // The MAC covers the whole stream: it is made whole first, then written.
        let data = dumps(
            obj,
            protocol,
            buffer_callback,
            mode,
            standalone,
            compress,
            key,
        )?;
        file.call_method1("write", (data,))?;
        return Ok(());
    }
    let opts = Options::new(py, protocol, buffer_callback, mode, standalone, compress)?;
    if opts.compress == Some(true) {
        // The body must be whole to be compressed; streaming dumps never compress on their own.
        let sink = buffer_sink(py, &opts)?;
        let (body, marks) = body_fresh(obj, &opts, sink.as_ref().map(|s| s.as_any()))?;
        let held = sink.map(|s| s.get().take()).unwrap_or_default();
        write_compressed(py, file, &opts, &body, &held, Some(marks))?;
        return Ok(());
    }
    file.call_method1(
        "write",
        (header(py, opts.protocol, opts.flags(false, None))?,),
    )?;
    let pickler = new_pickler(file, &opts, buffer_callback)?;
    let reducer = reducer_of(&pickler)?;
    if let Err(err) = typerefs(py).c_dump.bind(py).call1((&pickler, obj)) {
        let seen = reducer.get().seen();
        drop((pickler, reducer));
        return Err(diagnose::explain(obj, err, seen));
    }
    Ok(())
}

/// The resolved keyword options of a `satchel.Pickler` (python/satchel/_pickler.py keeps one):
/// the header it writes before each body, and the compressed stream when it compresses.
#[pyclass(module = "satchel._satchel", frozen)]
pub struct StreamOptions {
    opts: Options,
    body_only: bool,
}

#[pymethods]
impl StreamOptions {
    #[new]
    #[pyo3(signature = (protocol, buffer_callback, mode, standalone, compress, body_only))]
    fn new(
        py: Python<'_>,
        protocol: Option<&Bound<'_, PyAny>>,
        buffer_callback: Option<&Bound<'_, PyAny>>,
        mode: &str,
        standalone: Option<bool>,
        compress: Option<bool>,
        body_only: bool,
    ) -> PyResult<Self> {
        let opts = Options::new(py, protocol, buffer_callback, mode, standalone, compress)?;
        Ok(StreamOptions { opts, body_only })
    }

    #[getter]
    fn protocol(&self) -> u8 {
        self.opts.protocol
    }

    #[getter]
    fn portable(&self) -> bool {
        self.opts.portable
    }

    /// Whether bodies are buffered and compressed (compress=True) rather than streamed.
    #[getter]
    fn compressed(&self) -> bool {
        !self.body_only && self.opts.compress == Some(true)
    }

    /// The header to write before a streamed body, or None for body-only picklers.
    fn header<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        if self.body_only {
            return Ok(None);
        }
        header(py, self.opts.protocol, self.opts.flags(false, None)).map(Some)
    }

    /// The sink a compressing pickler gives the C pickler as its buffer_callback, or None.
    fn buffer_sink<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, BufferSink>>> {
        if self.body_only {
            return Ok(None);
        }
        buffer_sink(py, &self.opts)
    }

    /// Write the whole compressed stream for a buffered body (and the buffers its sink kept).
    /// `generators`: whether the body holds a started generator (`_take_generators`), or
    /// None when not known.
    #[pyo3(signature = (file, body, sink=None, generators=None))]
    fn write_compressed<'py>(
        &self,
        file: &Bound<'py, PyAny>,
        body: &Bound<'py, PyBytes>,
        sink: Option<&Bound<'py, BufferSink>>,
        generators: Option<bool>,
    ) -> PyResult<()> {
        let held = sink.map(|s| s.get().take()).unwrap_or_default();
        let marks = generators.map(|generators| Marks {
            bootstrap: true,
            generators,
        });
        catch_panic(body.py(), false, || {
            write_compressed(body.py(), file, &self.opts, body, &held, marks)
        })
    }
}

/// Whether the pickler's dump so far wrote a started generator's frame (and clears its marks):
/// `satchel.Pickler` passes it to `write_compressed` before `clear_memo` forgets it.
#[pyfunction]
pub fn _take_generators(pickler: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(reducer_of(pickler)?.get().state.take_marks().generators)
}

/// Mark a pickler's reducer as portable (functions travel as source).
#[pyfunction]
pub fn _set_portable(pickler: &Bound<'_, PyAny>) -> PyResult<()> {
    reducer_of(pickler)?.get().state.set_portable();
    Ok(())
}

/// `satchel.loads`. A satchel stream's header is read here, its check runs here (the installed
/// bootstrap's `check`, so a standalone stream's payload is neither decompressed nor run), and
/// only the body is unpickled. A truncated or corrupt header is an UnpicklingError about the
/// header. Anything else is pickle.loads, keyword arguments included.
#[pyfunction]
#[pyo3(signature = (data, /, *, key=None, allow=None, **kwargs))]
pub fn loads<'py>(
    data: &Bound<'py, PyAny>,
    key: Option<&Bound<'py, PyAny>>,
    allow: Option<&Bound<'py, PyAny>>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    catch_panic(data.py(), true, || loads_impl(data, key, allow, kwargs))
}

fn loads_impl<'py>(
    data: &Bound<'py, PyAny>,
    key: Option<&Bound<'py, PyAny>>,
    allow: Option<&Bound<'py, PyAny>>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = data.py();
    let allowed = match allow.filter(|a| !a.is_none()) {
        Some(spec) => Some(Bound::new(py, crate::allow::AllowList::new(spec)?)?.into_any()),
        None => None,
    };
    loads_with(data, key, allowed, None, kwargs)
}

/// `satchel.Unpickler.load` (python/satchel/_load.py): `loads`, except that the body is
/// unpickled by `unpickle(body, kwargs)`, the caller's own unpickler.
#[pyfunction]
#[pyo3(signature = (data, unpickle, /, *, key=None, **kwargs))]
pub fn _loads_with<'py>(
    data: &Bound<'py, PyAny>,
    unpickle: &Bound<'py, PyAny>,
    key: Option<&Bound<'py, PyAny>>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    loads_with(data, key, None, Some(unpickle), kwargs)
}

fn loads_with<'py>(
    data: &Bound<'py, PyAny>,
    key: Option<&Bound<'py, PyAny>>,
    allowed: Option<Bound<'py, PyAny>>,
    unpickle: Option<&Bound<'py, PyAny>>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = data.py();
    let refs = typerefs(py);
    let key = key.filter(|k| !k.is_none());
    let owned;
    let view;
    let (raw, bytes): (&[u8], &Bound<'py, PyAny>) = match data.cast::<PyBytes>() {
        Ok(b) => (b.as_bytes(), b.as_any()),
        Err(_) => match pyo3::buffer::PyBuffer::<u8>::get(data) {
            // A read-only contiguous buffer (a memoryview of bytes, a read-only mmap of a
            // file: load_session) is read in place; nothing can change it while we hold it.
            // A signed one is copied first, so that what is verified is what is loaded.
            Ok(v) if v.readonly() && v.is_c_contiguous() && key.is_none() => {
                view = v;
                (crate::ffi::buffer_bytes(&view), data)
            }
            _ if key.is_none() && allowed.is_none() && unpickle.is_none() => {
                return refs.pickle_loads.bind(py).call((data,), kwargs)
            }
            _ => {
                owned = py
                    .get_type::<PyBytes>()
                    .call1((data,))?
                    .cast_into::<PyBytes>()?;
                (owned.as_bytes(), owned.as_any())
            }
        },
    };
    if let Some(key) = key {
        let keys = verifying_keys(py, key)?;
        let Some((stream, mac)) = signature::split(raw) else {
            return Err(Error::Signature {
                reason: "the stream is not signed, or its signature is truncated".into(),
            }
            .into_pyerr(py));
        };
        if !signature::verify(&keys, stream, mac) {
            return Err(Error::Signature {
                reason: "the signature does not match: a wrong key, or the stream was altered"
                    .into(),
            }
            .into_pyerr(py));
        }
    }
    let load = |body: Bound<'py, PyAny>,
                buffers: Option<Vec<Bound<'py, PyAny>>>|
     -> PyResult<Bound<'py, PyAny>> {
        let kwargs = match buffers {
            None => kwargs.cloned(),
            Some(buffers) => {
                let k = kwargs.map_or_else(|| Ok(PyDict::new(py)), |k| k.copy())?;
                if k.contains("buffers")? {
                    return Err(Error::BadOption {
                        reason: "buffers= is for out-of-band buffers sent apart from the \
                                 stream; this compressed stream carries its own"
                            .into(),
                    }
                    .into_pyerr(py));
                }
                k.set_item("buffers", buffers)?;
                Some(k)
            }
        };
        match (unpickle, &allowed) {
            (Some(unpickle), _) => {
                let kwargs = kwargs.unwrap_or_else(|| PyDict::new(py));
                unpickle.call1((body, kwargs))
            }
            (None, Some(allowed)) => allowed_load(py, body, allowed, kwargs.as_ref()),
            (None, None) => refs.pickle_loads.bind(py).call((body,), kwargs.as_ref()),
        }
    };
    let plain = |body: Bound<'py, PyAny>| load(body, None);
    let h = match header::parse(raw) {
        Ok(h) => h,
        Err(header::ParseError::NotSatchel) => return plain(bytes.clone()),
        Err(header::ParseError::Corrupt(reason)) => {
            return Err(Error::CorruptHeader { reason }.into_pyerr(py))
        }
    };
    let boot = crate::bootstrap::boot(py).module.bind(py);
    let ours = boot_version(py)?;
    let fp_ours = fingerprint::fingerprint(py)?;
    // The common case, decided here: this very version, and (nonportable) this very build.
    let nonportable = h.flags & header::FLAG_NONPORTABLE != 0;
    let same_build = !nonportable || (!h.fingerprint_is_text && h.fingerprint == fp_ours.digest);
    if h.version == ours && same_build {
        return loads_body(py, raw, bytes, &h, load);
    }
    if h.version.split('.').next() != Some(&fingerprint::FORMAT_MAJOR.to_string()) {
        let ty = boot
            .getattr("IncompatibleFormat")?
            .cast_into::<pyo3::types::PyType>()?;
        let have: String = boot.getattr("FORMAT_VERSION")?.extract()?;
        return Err(PyErr::from_type(
            ty,
            format!(
                "stream needs satchel format {}; this receiver has {have}: upgrade satchel \
                 (pip install -U satchel)",
                h.version
            ),
        ));
    }
    let fp = if h.fingerprint_is_text {
        PyString::new(
            py,
            &h.fingerprint
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        )
        .into_any()
    } else {
        PyBytes::new(py, &h.fingerprint).into_any()
    };
    boot.getattr("check")?
        .call1((&h.version, h.flags, fp, &h.producer))?;
    loads_body(py, raw, bytes, &h, load)
}

/// Unpickle `body` with an unpickler whose find_class asks `allowed` first.
fn allowed_load<'py>(
    py: Python<'py>,
    body: Bound<'py, PyAny>,
    allowed: &Bound<'py, PyAny>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    static LOAD: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let load = LOAD.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("satchel._allow")?.getattr("load")?.unbind())
    })?;
    let kwargs = match kwargs {
        Some(k) => k.copy()?,
        None => PyDict::new(py),
    };
    load.bind(py).call1((body, allowed, kwargs))
}

/// The installed bootstrap's FORMAT_VERSION, read once.
fn boot_version(py: Python<'_>) -> PyResult<&'static str> {
    static VERSION: PyOnceLock<String> = PyOnceLock::new();
    VERSION
        .get_or_try_init(py, || {
            crate::bootstrap::boot(py)
                .module
                .bind(py)
                .getattr("FORMAT_VERSION")?
                .extract()
        })
        .map(String::as_str)
}

/// Unpickle a checked stream's body (decoded first if compressed, with its out-of-band
/// buffers). `load(body, buffers)`.
fn loads_body<'py>(
    py: Python<'py>,
    raw: &[u8],
    bytes: &Bound<'py, PyAny>,
    h: &header::Header,
    load: impl FnOnce(Bound<'py, PyAny>, Option<Vec<Bound<'py, PyAny>>>) -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let body: Bound<'py, PyAny> = match h.compressed {
        Some((start, n)) if h.buffers.is_empty() => {
            compress::zstd_decompress(py, &raw[start..start + n])?.into_any()
        }
        Some((start, n)) => {
            let specs: Vec<_> = h.buffers.iter().map(|b| b.slices(raw)).collect();
            let (body, buffers) = buffers::decompress_all(py, &raw[start..start + n], &specs)?;
            return load(body.into_any(), Some(buffers));
        }
        None if h.header_len >= raw.len() => {
            return Err(Error::CorruptHeader {
                reason: "the stream ends after its header".into(),
            }
            .into_pyerr(py))
        }
        // A view, not a copy: the body is a complete pickle of its own.
        None => pyo3::types::PyMemoryView::from(bytes)?.get_item(
            // builtins.slice, not PySlice::new: pyo3 0.30.1's passes new ints to PySlice_New,
            // which does not take them over (two leaked ints per load).
            py.get_type::<pyo3::types::PySlice>()
                .call1((h.header_len, raw.len()))?,
        )?,
    };
    load(body, None)
}

/// `satchel.inspect`: what a stream's header says, without running anything.
#[pyfunction]
pub fn inspect<'py>(data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    catch_panic(data.py(), true, || inspect_impl(data))
}

fn inspect_impl<'py>(data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let py = data.py();
    let owned;
    let bytes: &[u8] = match data.cast::<PyBytes>() {
        Ok(b) => b.as_bytes(),
        Err(_) => {
            owned = py
                .get_type::<PyBytes>()
                .call1((data,))?
                .cast_into::<PyBytes>()?;
            owned.as_bytes()
        }
    };
    let h = match header::parse(bytes) {
        Ok(h) => h,
        Err(header::ParseError::NotSatchel) => return inspect_plain(py, bytes),
        Err(header::ParseError::Corrupt(reason)) => {
            return Err(Error::CorruptHeader { reason }.into_pyerr(py))
        }
    };
    let fp = fingerprint::fingerprint(py)?;
    let d = PyDict::new(py);
    d.set_item("satchel_header", true)?;
    d.set_item("format_version", &h.version)?;
    d.set_item("protocol", h.protocol)?;
    d.set_item(
        "mode",
        if h.flags & header::FLAG_NONPORTABLE != 0 {
            "nonportable"
        } else {
            "portable"
        },
    )?;
    d.set_item("producer", &h.producer)?;
    d.set_item(
        "fingerprint",
        h.fingerprint
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
    )?;
    d.set_item("matches_this_interpreter", h.fingerprint == fp.digest)?;
    d.set_item("standalone", h.flags & header::FLAG_STANDALONE != 0)?;
    d.set_item("standalone_payload_size", h.standalone_payload)?;
    d.set_item(
        "compression",
        if h.compressed.is_some() {
            Some("zstd")
        } else {
            None
        },
    )?;
    d.set_item("header_size", h.header_len)?;
    d.set_item("body_size", bytes.len() - h.header_len)?;
    if let Some((_, n)) = h.compressed {
        d.set_item("compressed_body_size", n)?;
        d.set_item("out_of_band_buffers", h.buffers.len())?;
    }
    // A suspended generator's frame is rebuilt by satchel itself (generator_setstate calls
    // into the extension): the stream can only resume where satchel is installed. inspect
    // never decompresses (a small frame can claim gigabytes): for a compressed body it is
    // not known (None).
    let lean_nonportable =
        h.flags & header::FLAG_STANDALONE == 0 && h.flags & header::FLAG_NONPORTABLE != 0;
    // From format 1.4 a header written after its body says whether it holds a started
    // generator (FLAG_GENERATORS); older streams and streamed headers do not know.
    let minor = h
        .version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse::<u32>().ok());
    if minor.is_some_and(|m| m >= 4) && h.flags & header::FLAG_STREAMED == 0 {
        let live = h.flags & header::FLAG_GENERATORS != 0;
        d.set_item("suspended_generators", live)?;
        d.set_item(
            "needs_satchel",
            live || lean_nonportable || !h.buffers.is_empty(),
        )?;
    } else if h.compressed.is_some() {
        d.set_item("suspended_generators", py.None())?;
        d.set_item(
            "needs_satchel",
            // Out-of-band buffers are decoded by satchel's extension (bootstrap/buffers.py).
            if lean_nonportable || !h.buffers.is_empty() {
                true.into_pyobject(py)?.to_owned().into_any()
            } else {
                py.None().into_bound(py)
            },
        )?;
    } else {
        let body = &bytes[h.header_len.min(bytes.len())..];
        let live = body.windows(18).any(|w| w == b"generator_setstate");
        d.set_item("suspended_generators", live)?;
        d.set_item("needs_satchel", live || lean_nonportable)?;
    }
    d.set_item("signed", signature::split(bytes).is_some())?;
    Ok(d)
}

/// `inspect` of bytes without a satchel header: a plain pickle (what `dumps` writes for plain
/// data), or not a pickle at all.
fn inspect_plain<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyDict>> {
    let signed = signature::split(bytes).is_some();
    let stream = signature::split(bytes).map_or(bytes, |(s, _)| s);
    let protocol = match stream {
        [0x80, p, ..] if *p <= 5 => Some(*p),
        _ => None,
    };
    if stream.last() != Some(&b'.') || (protocol.is_none() && stream.first() == Some(&0x80)) {
        return Err(Error::NotAPickle {
            reason: if stream.is_empty() {
                "it is empty".into()
            } else {
                "it does not end with the STOP opcode".into()
            },
        }
        .into_pyerr(py));
    }
    // The keys of a satchel stream's report, with what a plain pickle has: no header, so
    // `data[info["header_size"]:]` is still its body.
    let d = PyDict::new(py);
    d.set_item("satchel_header", false)?;
    d.set_item(
        "about",
        "a plain pickle with no satchel header: it loads with pickle.loads wherever the \
         globals it names import",
    )?;
    d.set_item("format_version", py.None())?;
    d.set_item("protocol", protocol)?;
    d.set_item("mode", py.None())?;
    d.set_item("producer", py.None())?;
    d.set_item("fingerprint", py.None())?;
    d.set_item("matches_this_interpreter", py.None())?;
    d.set_item("standalone", false)?;
    d.set_item("standalone_payload_size", 0)?;
    d.set_item("compression", py.None())?;
    d.set_item("header_size", 0)?;
    d.set_item("body_size", stream.len())?;
    // Only a stream naming satchel's constructors needs satchel (satchel writes none without
    // a header, but another pickler may).
    let names = |what: &[u8]| stream.windows(what.len()).any(|w| w == what);
    let live = names(b"generator_setstate");
    d.set_item("suspended_generators", live)?;
    d.set_item("needs_satchel", live || names(b"_satchel_boot_"))?;
    d.set_item("signed", signed)?;
    Ok(d)
}

/// The content-derived id of a class, or None when it gets a random one (for tests).
#[pyfunction]
pub fn _content_id(cls: &Bound<'_, pyo3::types::PyType>) -> PyResult<Option<String>> {
    reduce::content_id(cls)
}

/// Turn an error raised by `Pickler.dump` into a satchel.PicklingError with a path; `pickler`
/// is the one that failed (its reducer knows the last object it saw).
#[pyfunction]
#[pyo3(signature = (obj, err, pickler=None))]
pub fn _explain(
    obj: &Bound<'_, PyAny>,
    err: Bound<'_, PyAny>,
    pickler: Option<&Bound<'_, PyAny>>,
) -> PyErr {
    let py = obj.py();
    let seen = pickler
        .and_then(|p| p.getattr("__dict__").ok())
        .and_then(|d| d.cast_into::<PyDict>().ok())
        .and_then(|d| d.get_item(REDUCER_ATTR).ok().flatten())
        .and_then(|f| f.getattr("__self__").ok())
        .and_then(|r| r.cast_into::<Reducer>().ok())
        .map(|r| r.get().seen())
        .unwrap_or_default();
    match catch_panic(py, false, || {
        Ok(diagnose::explain(obj, PyErr::from_value(err), seen))
    }) {
        Ok(e) | Err(e) => e,
    }
}

#[pyfunction]
pub fn register_pickle_by_value(module: &Bound<'_, PyAny>) -> PyResult<()> {
    reduce::register_by_value(module)
}

#[pyfunction]
pub fn unregister_pickle_by_value(module: &Bound<'_, PyAny>) -> PyResult<()> {
    reduce::unregister_by_value(module)
}

#[pyfunction]
pub fn list_registry_pickle_by_value(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PySet>> {
    pyo3::types::PySet::new(py, reduce::list_registry(py)?.iter())
}

#[pyfunction]
pub fn bootstrap_module(py: Python<'_>) -> Py<PyAny> {
    crate::bootstrap::boot(py).module.clone_ref(py).into_any()
}

pub fn bootstrap_source(py: Python<'_>) -> Bound<'_, PyString> {
    PyString::new(py, crate::bootstrap::SOURCE)
}
