//! The keys of signed streams (`key=`): one key to sign with, one or a list to verify with.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::error::Error;

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
pub fn signing_key(
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
pub fn verifying_keys(py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<u8>>> {
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
