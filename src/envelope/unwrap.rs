//! Unwrapping a stream (the body of `satchel.loads`): the signature, the header and its
//! version and interpreter check, then the body, decompressed with its buffers if need be.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};

use super::{buffers, compress, fingerprint, header, key, signature};
use crate::error::Error;
use crate::typeref::typerefs;

/// `satchel.loads` (`unpickle`: `satchel.Unpickler`'s own unpickling of the body).
pub fn loads<'py>(
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
        let keys = key::verifying_keys(py, key)?;
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
            // A verified body comes from a key holder: on PyPy, the interpreter's own
            // unpickler (ffi::verified_loads); anything else, one a damaged stream cannot crash.
            (None, None) if key.is_some() => {
                crate::ffi::verified_loads(py).call((body,), kwargs.as_ref())
            }
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
    let fp_ours = fingerprint::fingerprint(py)?;
    // The common case, decided here: this very version, and (nonportable) this very build.
    let nonportable = h.flags & header::FLAG_NONPORTABLE != 0;
    let same_build = !nonportable || (!h.fingerprint_is_text && h.fingerprint == fp_ours.digest);
    if h.version == crate::wire::FORMAT_VERSION && same_build {
        return loads_body(py, raw, bytes, &h, load);
    }
    // Everything else is the bootstrap's check: another format (IncompatibleFormat, whose
    // message lives there), another build (IncompatibleInterpreter), a corrupt version.
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
        None => {
            let body = pyo3::types::PyMemoryView::from(bytes)?.get_item(
                // builtins.slice, not PySlice::new: pyo3 0.30.1's passes new ints to
                // PySlice_New, which does not take them over (two leaked ints per load).
                py.get_type::<pyo3::types::PySlice>()
                    .call1((h.header_len, raw.len()))?,
            )?;
            return load(body, None).map_err(|err| truncated(py, err));
        }
    };
    load(body, None)
}

/// A small body has no frame (header.rs), so the unpickler says a stream cut between two of
/// its opcodes "Ran out of input" (EOFError), as for any pickle without frames: after a header
/// that parsed, that is a truncated stream, an UnpicklingError like a cut inside a frame.
fn truncated(py: Python<'_>, err: PyErr) -> PyErr {
    let ran_out = err.is_instance_of::<pyo3::exceptions::PyEOFError>(py)
        && err
            .value(py)
            .str()
            .is_ok_and(|m| m.to_str().is_ok_and(|m| m == "Ran out of input"));
    if !ran_out {
        return err;
    }
    let new = Error::CorruptBody {
        reason: "the stream ends inside its body (truncated)".into(),
    }
    .into_pyerr(py);
    new.set_cause(py, Some(err));
    new
}

/// The lean header's check (`c` of `wire::LEAN_MODULE`, and of format 1.4's
/// `wire::LEAN_MODULE_1_4`), which plain `pickle.loads` calls with the header's packed argument
/// (format 1.5, `header::unpack`) or its `(version, flags, fingerprint, producer)`, as it calls
/// the bootstrap's `check`. The common case (this version, and for bytecode this very build) is
/// decided here without a Python frame; everything else is the bootstrap's `check`, with the
/// producer's compact or packed label expanded, whose errors (IncompatibleFormat,
/// IncompatibleInterpreter) name both sides.
#[pyfunction]
#[pyo3(signature = (*args))]
pub fn lean_check<'py>(args: &Bound<'py, PyTuple>) -> PyResult<()> {
    let py = args.py();
    crate::error::catch_panic(py, true, || {
        if args.len() == 1 {
            let arg = args.get_item(0)?;
            // The common case without a Python object made: this version, and for bytecode
            // this very build.
            if let Ok(b) = arg.cast::<PyBytes>() {
                let b = b.as_bytes();
                if b.len() == header::PACKED_LEN
                    && header::is_current_packed(&b[..3])
                    && (b[3] & header::FLAG_NONPORTABLE == 0 || boot_fingerprint_is(py, &b[4..20]))
                {
                    return Ok(());
                }
            }
            let unpacked = arg.cast::<PyBytes>().ok().and_then(|b| {
                header::unpack(b.as_bytes()).map(|(v, f, fp, p)| (v, f, fp.to_vec(), p))
            });
            let Some((version, flags, fp, producer)) = unpacked else {
                return Err(Error::CorruptHeader {
                    reason: "bad packed header".into(),
                }
                .into_pyerr(py));
            };
            return check4(
                &PyString::new(py, &version).into_any(),
                &flags.into_pyobject(py)?.into_any(),
                &PyBytes::new(py, &fp).into_any(),
                &PyString::new(py, &producer).into_any(),
            );
        }
        let [version, flags, fingerprint, producer] = match args.as_slice() {
            [a, b, c, d] => [a, b, c, d],
            _ => {
                return Err(Error::CorruptHeader {
                    reason: format!("the check got {} arguments", args.len()),
                }
                .into_pyerr(py))
            }
        };
        check4(version, flags, fingerprint, producer)
    })
}

/// `lean_check` of the four header fields.
fn check4<'py>(
    version: &Bound<'py, PyAny>,
    flags: &Bound<'py, PyAny>,
    fingerprint: &Bound<'py, PyAny>,
    producer: &Bound<'py, PyAny>,
) -> PyResult<()> {
    let py = version.py();
    let boot = crate::bootstrap::boot(py);
    let common = version
        .cast::<PyString>()
        .is_ok_and(|v| v.to_str().is_ok_and(|v| v == crate::wire::FORMAT_VERSION))
        && match flags.extract::<u8>() {
            Ok(f) if f & header::FLAG_NONPORTABLE == 0 => true,
            Ok(_) => fingerprint
                .cast::<PyBytes>()
                .is_ok_and(|fp| boot_fingerprint_is(py, fp.as_bytes())),
            Err(_) => false,
        };
    if common {
        return Ok(());
    }
    let label = producer
        .cast::<PyString>()
        .ok()
        .and_then(|p| p.to_str().ok().and_then(fingerprint::label_of_compact));
    let producer = match label {
        Some(label) => PyString::new(py, &label).into_any(),
        None => producer.clone(),
    };
    boot.module
        .bind(py)
        .getattr(pyo3::intern!(py, "check"))?
        .call1((version, flags, fingerprint, producer))?;
    Ok(())
}

/// Whether `fp` is the bootstrap's FINGERPRINT (equal to fingerprint::fingerprint,
/// tests/test_envelope.py), read from its module as its `check` reads it.
fn boot_fingerprint_is(py: Python<'_>, fp: &[u8]) -> bool {
    crate::bootstrap::boot(py)
        .globals
        .bind(py)
        .cast::<PyDict>()
        .ok()
        .and_then(|g| g.get_item(pyo3::intern!(py, "FINGERPRINT")).ok().flatten())
        .is_some_and(|ours| {
            ours.cast::<PyBytes>()
                .is_ok_and(|ours| ours.as_bytes() == fp)
        })
}
