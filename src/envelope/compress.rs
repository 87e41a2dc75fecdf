//! zstd for stream bodies: one frame, written with the frame's content size so a decoder can
//! bound its output before allocating, and (format 1.4) zstd's content checksum, which every
//! zstd decoder verifies: one flipped bit in a frame loaded wrong data silently about 60% of
//! the time before.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::error::Error;

/// Bodies above this size are compressed when `compress=None` (and no buffer_callback).
pub const AUTO_THRESHOLD: usize = 1 << 20;
/// zstd level: 3 is zstd's default, fast enough to sit on the dumps path.
const LEVEL: i32 = 3;
/// The most a zstd frame can expand per input byte (an RLE block: 4 bytes for up to 128 KiB),
/// rounded up. A frame claiming more than its length allows is refused before any allocation:
/// a 31-byte frame claiming 200 GB aborted the process before (allocation failure aborts).
const MAX_RATIO: u64 = 1 << 16;

/// Bodies at least this large compress at `LARGE_LEVEL` on every core (zstd's own worker
/// threads): a 50 MB session spent 300 ms in single-threaded level 3.
const LARGE: usize = 8 << 20;
const LARGE_LEVEL: i32 = 1;

pub fn compress_bytes(data: &[u8]) -> std::io::Result<Vec<u8>> {
    if data.len() < LARGE {
        let mut c = compressor(LEVEL)?;
        return c.compress(data);
    }
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(8)) as u32;
    let mut c = compressor(LARGE_LEVEL)?;
    // Output is the same for any worker count >= 1 (zstd's multi-threaded format).
    c.set_parameter(zstd::zstd_safe::CParameter::NbWorkers(workers))?;
    c.compress(data)
}

/// A compressor at `level` whose frames declare their content size and end with zstd's
/// content checksum (XXH64 of the content, 4 bytes), which decoders verify.
pub fn compressor(level: i32) -> std::io::Result<zstd::bulk::Compressor<'static>> {
    let mut c = zstd::bulk::Compressor::new(level)?;
    c.include_contentsize(true)?;
    c.include_checksum(true)?;
    Ok(c)
}

/// Whether a zstd frame says it ends with a content checksum (Content_Checksum_flag, bit 2 of
/// the frame header descriptor, RFC 8878 3.1.1.1.1).
pub fn has_checksum(frame: &[u8]) -> bool {
    frame.len() >= 9 && frame[..4] == [0x28, 0xb5, 0x2f, 0xfd] && frame[4] & 0x04 != 0
}

/// The content size a zstd frame declares, refused when its length cannot hold that much (a
/// zstd bomb) or when it has none.
pub fn frame_size(py: Python<'_>, frame: &[u8]) -> PyResult<u64> {
    let size = zstd::zstd_safe::get_frame_content_size(frame)
        .ok()
        .flatten()
        .ok_or_else(|| {
            Error::CorruptBody {
                reason: "not a zstd frame with a content size".into(),
            }
            .into_pyerr(py)
        })?;
    let limit = (frame.len() as u64)
        .saturating_mul(MAX_RATIO)
        .saturating_add(1 << 20);
    if size > limit {
        return Err(Error::CorruptBody {
            reason: format!("a {}-byte zstd frame claims {size} bytes", frame.len()),
        }
        .into_pyerr(py));
    }
    Ok(size)
}

/// RLE blocks let a small frame claim gigabytes (a zstd bomb): a body larger than half of the
/// memory this machine has available now is refused before anything is allocated.
pub fn check_memory(py: Python<'_>, size: u64) -> PyResult<()> {
    if let Some(available) = available_memory() {
        if size > available / 2 {
            return Err(Error::CorruptBody {
                reason: format!(
                    "its zstd frames decompress to {size} bytes, more than half of the memory \
                     available ({available} bytes)"
                ),
            }
            .into_pyerr(py));
        }
    }
    Ok(())
}

/// The body of a compressed stream (the bootstrap's `load_zstd` calls it).
#[pyfunction]
pub fn zstd_decompress<'py>(py: Python<'py>, frame: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    crate::error::catch_panic(py, true, || decompress(py, frame))
}

fn decompress<'py>(py: Python<'py>, frame: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let size = frame_size(py, frame)?;
    check_memory(py, size)?;
    let mut out: Vec<u8> = Vec::new();
    // try_reserve: a size the allocator refuses is a Python MemoryError, never an abort.
    out.try_reserve_exact(size as usize).map_err(|_| {
        pyo3::exceptions::PyMemoryError::new_err(format!("zstd body of {size} bytes"))
    })?;
    let out = py
        .detach(|| {
            zstd::bulk::Decompressor::new()
                .and_then(|mut d| d.decompress_to_buffer(frame, &mut out).map(|_| out))
        })
        .map_err(|e| {
            Error::CorruptBody {
                reason: e.to_string(),
            }
            .into_pyerr(py)
        })?;
    Ok(PyBytes::new(py, &out))
}

/// The memory available now (Linux: MemAvailable of /proc/meminfo); None elsewhere.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}
