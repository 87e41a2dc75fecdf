//! `satchel.inspect`: what a stream's header says, read without running anything.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::{fingerprint, header, signature};
use crate::error::Error;

/// `satchel.inspect`.
pub fn inspect<'py>(data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
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
    if crate::wire::says_generators(&h.version) && h.flags & header::FLAG_STREAMED == 0 {
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
