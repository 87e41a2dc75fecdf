//! Wrapping a body into a stream: the header (built once per protocol and flags, with the
//! standalone payload), the plain-pickle shortcut, compression, and the signature trailer.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyBytes;

use super::buffers::{self, BufferSink, Held};
use super::{fingerprint, header, signature};
use crate::pickler::Options;
use crate::reduce::Marks;

/// Header bytes per (protocol, flags), built once.
type HeaderCache = Vec<((u8, u8), Py<PyBytes>)>;
static HEADERS: Mutex<HeaderCache> = Mutex::new(Vec::new());

/// The standalone payloads (the loader and the bootstrap parts one mode needs, in one zlib
/// blob), built once each: [nonportable, portable].
static STANDALONE: [PyOnceLock<Py<PyBytes>>; 2] = [PyOnceLock::new(), PyOnceLock::new()];

pub fn header<'py>(py: Python<'py>, protocol: u8, flags: u8) -> PyResult<Bound<'py, PyBytes>> {
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
    let version = crate::wire::FORMAT_VERSION;
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
    let bytes = PyBytes::new(py, &header::build(protocol, flags, version, fp, standalone));
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
pub fn finish<'py>(
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
    let (proto, ops) = unframed(body.as_bytes());
    concat(py, &[head.as_bytes(), proto, ops])
}

/// Bodies of at most this many bytes lose their frame header.
const UNFRAMED_MAX: usize = 4096;

/// A small body whose opcodes are all in one frame, as (its PROTO, its opcodes) without the
/// FRAME header between them (nine bytes: a task's stream is about 300). Framing is optional
/// for every unpickler (the C one, pickle.py's, PyPy's): opcodes outside a frame are read as
/// they come. Only small bodies: a file without `peek` is then read one opcode at a time.
/// Anything else comes back whole, as (empty, body).
fn unframed(body: &[u8]) -> (&[u8], &[u8]) {
    const HEAD: usize = 2 + 9; // PROTO p, FRAME u64
    let whole_frame = body.len() <= UNFRAMED_MAX
        && body.len() > HEAD
        && body[0] == 0x80
        && body[1] >= 4
        && body[2] == 0x95
        && body[3..HEAD]
            .try_into()
            .map(u64::from_le_bytes)
            .is_ok_and(|n| n == (body.len() - HEAD) as u64);
    if whole_frame {
        (&body[..2], &body[HEAD..])
    } else {
        (&[], body)
    }
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
pub fn write_compressed<'py>(
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
pub fn buffer_sink<'py>(
    py: Python<'py>,
    opts: &Options,
) -> PyResult<Option<Bound<'py, BufferSink>>> {
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

/// `stream + MAGIC + HMAC(key, stream)` (envelope/signature.rs).
pub fn signed<'py>(py: Python<'py>, key: &[u8], stream: &[u8]) -> Bound<'py, PyBytes> {
    let trailer = signature::trailer(key, stream);
    PyBytes::new_with(py, stream.len() + trailer.len(), |buf| {
        buf[..stream.len()].copy_from_slice(stream);
        buf[stream.len()..].copy_from_slice(&trailer);
        Ok(())
    })
    .expect("filling a new bytes object cannot fail")
}
