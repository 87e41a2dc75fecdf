//! zstd for stream bodies: one frame, written with the frame's content size so a decoder can
//! bound its output before allocating.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::error::Error;

/// Bodies above this size are compressed when `compress=None` (and no buffer_callback).
pub const AUTO_THRESHOLD: usize = 1 << 20;
/// zstd level: 3 is zstd's default, fast enough to sit on the dumps path.
const LEVEL: i32 = 3;
/// A frame claiming more than this is refused before any allocation (a zstd bomb).
const MAX_OUTPUT: u64 = 1 << 40;

pub fn compress<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let out = py
        .detach(|| zstd::bulk::compress(data, LEVEL))
        .map_err(|e| {
            Error::Compression {
                reason: e.to_string(),
            }
            .into_pyerr(py)
        })?;
    Ok(PyBytes::new(py, &out))
}

#[pyfunction]
pub fn zstd_decompress<'py>(py: Python<'py>, frame: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let size = zstd::zstd_safe::get_frame_content_size(frame)
        .ok()
        .flatten()
        .ok_or_else(|| {
            Error::CorruptBody {
                reason: "not a zstd frame with a content size".into(),
            }
            .into_pyerr(py)
        })?;
    if size > MAX_OUTPUT {
        return Err(Error::CorruptBody {
            reason: format!("zstd frame claims {size} bytes"),
        }
        .into_pyerr(py));
    }
    let out = py
        .detach(|| zstd::bulk::decompress(frame, size as usize))
        .map_err(|e| {
            Error::CorruptBody {
                reason: e.to_string(),
            }
            .into_pyerr(py)
        })?;
    Ok(PyBytes::new(py, &out))
}
