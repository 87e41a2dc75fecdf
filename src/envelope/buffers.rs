//! Out-of-band buffers of a compressed stream (format 1.3). With `compress=True` and protocol 5,
//! the pickler hands every large `PickleBuffer` (numpy arrays, anything exporting protocol 5
//! buffers) to a `BufferSink` instead of copying it into the body. The body and the buffers are
//! then compressed on every core: each buffer in 1 MiB chunks, one zstd frame per chunk, each
//! chunk byte-shuffled by element size (all first bytes, then all second bytes...) when a sample
//! says that compresses better, as it does for most numeric arrays. Loading decodes the chunks
//! on every core straight into the `bytes`/`bytearray` the unpickler receives as its buffers.
//! Layout in docs/FORMAT.md, "Compression".

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyMemoryView};

use crate::envelope::compress;
use crate::error::Error;
use crate::ffi;

/// Buffers smaller than this stay in the body: a frame of their own would cost more than the
/// copy it saves.
pub const MIN_OUT_OF_BAND: usize = 64 << 10;
/// Uncompressed bytes per chunk (rounded down to whole elements).
const CHUNK: usize = 1 << 20;
/// A chunk declaring more than this is refused: it bounds the decoder's scratch buffer.
const MAX_CHUNK: usize = 64 << 20;
/// Elements wider than this are not shuffled.
const MAX_SHUFFLE: usize = 64;
/// Bytes sampled to decide whether a buffer is shuffled (four pieces of a quarter each).
const SAMPLE: usize = 64 << 10;
/// zstd level of the chunks: level 1 on shuffled numbers beats level 3 on raw ones in both
/// size and speed.
const LEVEL: i32 = 1;
/// Buffer flags in the stream.
pub const FLAG_READONLY: u8 = 1;
/// Format 1.4: the buffer carries `check` (after its element size) and its chunk frames end
/// with zstd's content checksum. The frames' checksums cover their contents; `check` binds
/// the rest (flags, element size, chunk count, each frame's length and checksum), which a
/// damaged stream could otherwise change silently (an element size changed from 8 to 4
/// unshuffles different bytes that all pass their frames' checksums).
pub const FLAG_CHECKED: u8 = 2;
/// Bytes of `check`.
pub const CHECK_LEN: usize = 8;

/// One buffer kept out of band while the body is pickled.
pub struct Held {
    view: PyBuffer<u8>,
    itemsize: usize,
    readonly: bool,
}

/// The `buffer_callback` of a compressing pickler: keeps buffers of `MIN_OUT_OF_BAND` bytes and
/// more (returns False: out of band), lets smaller ones go in-band (returns True).
#[pyclass(module = "satchel._satchel", frozen)]
pub struct BufferSink {
    held: Mutex<Vec<Held>>,
}

impl BufferSink {
    /// The buffers kept since the last take, in the order the body names them.
    pub fn take(&self) -> Vec<Held> {
        std::mem::take(&mut *self.held.lock().expect("buffer sink lock"))
    }
}

#[pymethods]
impl BufferSink {
    #[new]
    pub fn new() -> Self {
        BufferSink {
            held: Mutex::new(Vec::new()),
        }
    }

    fn __call__(&self, buffer: &Bound<'_, PyAny>) -> PyResult<bool> {
        crate::error::catch_panic(buffer.py(), false, || self.keep(buffer))
    }

    /// Forget the buffers kept by a dump that failed.
    fn clear(&self) {
        drop(self.take());
    }
}

impl BufferSink {
    fn keep(&self, buffer: &Bound<'_, PyAny>) -> PyResult<bool> {
        // raw(): the same memory as one-dimensional unsigned bytes (the C pickler has already
        // refused a non-contiguous buffer).
        let view = PyBuffer::<u8>::get(&buffer.call_method0("raw")?)?;
        if view.len_bytes() < MIN_OUT_OF_BAND {
            return Ok(true);
        }
        let itemsize: usize = PyMemoryView::from(buffer)?.getattr("itemsize")?.extract()?;
        let readonly = view.readonly();
        self.held.lock().expect("buffer sink lock").push(Held {
            view,
            itemsize,
            readonly,
        });
        Ok(false)
    }
}

/// A compressed buffer: its flags, the element size its chunks are shuffled by (1: not
/// shuffled), its check and one zstd frame per chunk.
pub struct Packed {
    pub flags: u8,
    pub itemsize: u8,
    pub check: [u8; CHECK_LEN],
    pub frames: Vec<Vec<u8>>,
}

/// The check of a buffer: sha256 over its flags, element size, chunk count and each chunk
/// frame's length and last 4 bytes (its content checksum), first `CHECK_LEN` bytes. Cheap: it
/// reads 12 bytes per 1 MiB chunk, because the frames' own checksums already cover the data.
pub fn check<F: AsRef<[u8]>>(flags: u8, itemsize: u8, frames: &[F]) -> [u8; CHECK_LEN] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"satchel buffer check 1\0");
    h.update([flags, itemsize]);
    h.update((frames.len() as u64).to_le_bytes());
    for frame in frames {
        let frame = frame.as_ref();
        h.update((frame.len() as u64).to_le_bytes());
        h.update(&frame[frame.len().saturating_sub(4)..]);
    }
    let digest = h.finalize();
    let mut out = [0u8; CHECK_LEN];
    out.copy_from_slice(&digest[..CHECK_LEN]);
    out
}

/// The body's frame and every buffer's chunks, compressed on every core without the GIL.
pub fn compress_all(
    py: Python<'_>,
    body: &[u8],
    held: &[Held],
) -> PyResult<(Vec<u8>, Vec<Packed>)> {
    let sources: Vec<(&[u8], usize)> = held
        .iter()
        .map(|h| (ffi::buffer_bytes(&h.view), h.itemsize))
        .collect();
    let result = py.detach(|| -> std::io::Result<(Vec<u8>, Vec<Packed>)> {
        let shuffle = parallel(sources.len(), Scratch::new, |s, i| {
            let (data, k) = sources[i];
            s.choose(data, k)
        })
        .into_iter()
        .collect::<std::io::Result<Vec<usize>>>()?;
        // Job 0 is the body (one frame); then every chunk of every buffer, in order.
        let mut jobs: Vec<(usize, usize, usize)> = vec![(usize::MAX, 0, body.len())];
        for (b, (data, _)) in sources.iter().enumerate() {
            let step = (CHUNK / shuffle[b]) * shuffle[b];
            let mut start = 0;
            while start < data.len() {
                let end = (start + step).min(data.len());
                jobs.push((b, start, end));
                start = end;
            }
        }
        let mut frames = parallel(jobs.len(), Scratch::new, |s, j| {
            let (b, start, end) = jobs[j];
            if b == usize::MAX {
                compress::compress_bytes(body)
            } else {
                s.compress(&sources[b].0[start..end], shuffle[b])
            }
        })
        .into_iter();
        let body_frame = frames.next().expect("the body's job")?;
        let mut packed: Vec<Packed> = held
            .iter()
            .zip(&shuffle)
            .map(|(h, &k)| Packed {
                flags: FLAG_CHECKED | if h.readonly { FLAG_READONLY } else { 0 },
                itemsize: k as u8,
                check: [0; CHECK_LEN],
                frames: Vec::new(),
            })
            .collect();
        for (&(b, _, _), frame) in jobs[1..].iter().zip(frames) {
            packed[b].frames.push(frame?);
        }
        for p in &mut packed {
            p.check = check(p.flags, p.itemsize, &p.frames);
        }
        Ok((body_frame, packed))
    });
    result.map_err(|e| {
        Error::Compression {
            reason: e.to_string(),
        }
        .into_pyerr(py)
    })
}

/// One compressed buffer as a stream holds it: flags, the element size its chunks are
/// shuffled by, its check (format 1.4, `FLAG_CHECKED`), one zstd frame per chunk.
pub struct Encoded<'a> {
    pub flags: u8,
    pub itemsize: u8,
    pub check: Option<&'a [u8]>,
    pub chunks: Vec<&'a [u8]>,
}

/// The body (`frame`) and the buffers of a compressed stream, decoded on every core: the body
/// as `bytes`, each buffer as `bytes` (read-only) or `bytearray` (writable), as the pickler saw
/// it. Every declared size is checked before anything is allocated.
pub fn decompress_all<'py>(
    py: Python<'py>,
    frame: &[u8],
    specs: &[Encoded<'_>],
) -> PyResult<(Bound<'py, PyBytes>, Vec<Bound<'py, PyAny>>)> {
    let corrupt = |reason: String| Error::CorruptBody { reason }.into_pyerr(py);
    let body_size = compress::frame_size(py, frame)?;
    let mut total = body_size;
    let mut sizes: Vec<Vec<usize>> = Vec::with_capacity(specs.len());
    for (b, spec) in specs.iter().enumerate() {
        if spec.flags & !(FLAG_READONLY | FLAG_CHECKED) != 0 {
            return Err(corrupt(format!(
                "buffer {b} has unknown flags {}",
                spec.flags
            )));
        }
        if spec.flags & FLAG_CHECKED != 0 {
            // Every frame must carry its checksum (a cleared flag would skip it), and the
            // check must match what the stream says of the buffer.
            let intact = spec.check.is_some_and(|c| {
                c.len() == CHECK_LEN
                    && spec.chunks.iter().all(|f| compress::has_checksum(f))
                    && c == check(spec.flags, spec.itemsize, &spec.chunks)
            });
            if !intact {
                return Err(corrupt(format!(
                    "buffer {b} fails its check: the stream was damaged"
                )));
            }
        } else if spec.check.is_some() {
            return Err(corrupt(format!("buffer {b} has a check but no check flag")));
        }
        if spec.chunks.is_empty() {
            // satchel keeps only buffers of MIN_OUT_OF_BAND bytes and more out of band.
            return Err(corrupt(format!("buffer {b} has no chunks")));
        }
        let k = usize::from(spec.itemsize);
        if k == 0 {
            return Err(corrupt(format!("buffer {b} has element size 0")));
        }
        let mut chunk_sizes = Vec::with_capacity(spec.chunks.len());
        for chunk in &spec.chunks {
            let size = compress::frame_size(py, chunk)?;
            // satchel writes chunks of whole elements, never empty ones.
            if size == 0 || size > MAX_CHUNK as u64 || size % k as u64 != 0 {
                return Err(corrupt(format!(
                    "buffer {b} has a chunk of {size} bytes (elements of {k} bytes, at most \
                     {MAX_CHUNK})"
                )));
            }
            total = total.saturating_add(size);
            chunk_sizes.push(size as usize);
        }
        sizes.push(chunk_sizes);
    }
    compress::check_memory(py, total)?;
    let mut body_obj = ffi::FreshBytes::new(py, body_size as usize, false)?;
    let mut objs = specs
        .iter()
        .zip(&sizes)
        .map(|(spec, s)| ffi::FreshBytes::new(py, s.iter().sum(), spec.flags & FLAG_READONLY == 0))
        .collect::<PyResult<Vec<_>>>()?;
    let mut jobs: Vec<Mutex<DecodeJob>> = vec![Mutex::new((frame, body_obj.contents(), 1))];
    for ((spec, chunk_sizes), obj) in specs.iter().zip(&sizes).zip(objs.iter_mut()) {
        let mut dst = obj.contents();
        for (&chunk, &size) in spec.chunks.iter().zip(chunk_sizes) {
            let (head, rest) = dst.split_at_mut(size);
            dst = rest;
            jobs.push(Mutex::new((chunk, head, usize::from(spec.itemsize))));
        }
    }
    let result = py.detach(|| {
        parallel(jobs.len(), Scratch::new, |s, j| {
            let mut job = jobs[j].lock().expect("decode job lock");
            let (src, ref mut dst, k) = *job;
            s.decompress(src, ffi::zeroed(dst), k)
        })
        .into_iter()
        .collect::<Result<Vec<()>, String>>()
    });
    drop(jobs);
    result.map_err(corrupt)?;
    let buffers = objs.into_iter().map(ffi::FreshBytes::into_object).collect();
    Ok((body_obj.into_object().cast_into::<PyBytes>()?, buffers))
}

/// `load_zstd_buffers(frame, *buffers)` of the bootstrap (bootstrap/buffers.py), for a plain
/// `pickle.loads` of a stream with out-of-band buffers: decode, then unpickle the body.
#[pyfunction]
pub fn zstd_load_buffers<'py>(
    py: Python<'py>,
    frame: &[u8],
    buffers: Vec<Bound<'py, pyo3::types::PyTuple>>,
) -> PyResult<Bound<'py, PyAny>> {
    crate::error::catch_panic(py, true, || load_buffers(py, frame, buffers))
}

fn load_buffers<'py>(
    py: Python<'py>,
    frame: &[u8],
    buffers: Vec<Bound<'py, pyo3::types::PyTuple>>,
) -> PyResult<Bound<'py, PyAny>> {
    let bad = || {
        Error::CorruptBody {
            reason: "a buffer is not (flags, itemsize, *zstd frames)".into(),
        }
        .into_pyerr(py)
    };
    let mut held = Vec::with_capacity(buffers.len());
    for b in &buffers {
        if b.len() < 2 {
            return Err(bad());
        }
        let flags: u8 = b.get_item(0)?.extract().map_err(|_| bad())?;
        let itemsize: u8 = b.get_item(1)?.extract().map_err(|_| bad())?;
        let mut chunks = b
            .iter()
            .skip(2)
            .map(|c| c.cast_into::<PyBytes>().map_err(|_| bad()))
            .collect::<PyResult<Vec<_>>>()?;
        // Format 1.4: the check comes first, before the chunks.
        let check = if flags & FLAG_CHECKED != 0 && !chunks.is_empty() {
            Some(chunks.remove(0))
        } else {
            None
        };
        held.push((flags, itemsize, check, chunks));
    }
    let specs: Vec<Encoded<'_>> = held
        .iter()
        .map(|(flags, itemsize, check, chunks)| Encoded {
            flags: *flags,
            itemsize: *itemsize,
            check: check.as_ref().map(|c| c.as_bytes()),
            chunks: chunks.iter().map(|c| c.as_bytes()).collect(),
        })
        .collect();
    let (body, buffers) = decompress_all(py, frame, &specs)?;
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("buffers", buffers)?;
    crate::typeref::typerefs(py)
        .pickle_loads
        .bind(py)
        .call((body,), Some(&kwargs))
}

/// One frame to decode: its bytes, where it goes, the element size to unshuffle by.
type DecodeJob<'a> = (&'a [u8], &'a mut [MaybeUninit<u8>], usize);

/// Per-thread state: a zstd context each way and a scratch buffer for (un)shuffling.
struct Scratch {
    compressor: Option<zstd::bulk::Compressor<'static>>,
    decompressor: Option<zstd::bulk::Decompressor<'static>>,
    shuffled: Vec<u8>,
    out: Vec<u8>,
}

impl Scratch {
    fn new() -> Self {
        Scratch {
            compressor: None,
            decompressor: None,
            shuffled: Vec::new(),
            out: Vec::new(),
        }
    }

    fn compressor(&mut self) -> std::io::Result<&mut zstd::bulk::Compressor<'static>> {
        if self.compressor.is_none() {
            self.compressor = Some(compress::compressor(LEVEL)?);
        }
        Ok(self.compressor.as_mut().expect("just made"))
    }

    /// One chunk's frame, shuffled by `k` first when `k` > 1.
    fn compress(&mut self, data: &[u8], k: usize) -> std::io::Result<Vec<u8>> {
        let mut shuffled = std::mem::take(&mut self.shuffled);
        let mut out = std::mem::take(&mut self.out);
        let input = if k <= 1 {
            data
        } else {
            shuffle(data, k, &mut shuffled);
            &shuffled[..]
        };
        // Into a reused buffer, then copied out at its size: a fresh bound-sized Vec per
        // chunk costs page faults on every chunk.
        out.clear();
        out.reserve(zstd::zstd_safe::compress_bound(input.len()));
        let frame = self
            .compressor()?
            .compress_to_buffer(input, &mut out)
            .map(|n| out[..n].to_vec());
        self.shuffled = shuffled;
        self.out = out;
        frame
    }

    /// The element size to shuffle `data` by: `k` when a sample compresses smaller shuffled,
    /// else 1.
    fn choose(&mut self, data: &[u8], k: usize) -> std::io::Result<usize> {
        if !(2..=MAX_SHUFFLE).contains(&k) || data.len() % k != 0 || data.len() < k * 64 {
            return Ok(1);
        }
        let sample: Vec<u8> = if data.len() <= SAMPLE {
            data.to_vec()
        } else {
            let piece = (SAMPLE / 4) / k * k;
            let items = data.len() / k;
            (0..4)
                .flat_map(|p| {
                    let start = (items - piece / k) * p / 3 * k;
                    data[start..start + piece].iter().copied()
                })
                .collect()
        };
        let plain = self.compressor()?.compress(&sample)?.len();
        let shuffled = self.compress(&sample, k)?.len();
        Ok(if shuffled < plain { k } else { 1 })
    }

    /// One chunk into `dst` (its exact size), unshuffled by `k` when `k` > 1.
    fn decompress(&mut self, src: &[u8], dst: &mut [u8], k: usize) -> Result<(), String> {
        if self.decompressor.is_none() {
            self.decompressor = Some(zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?);
        }
        let d = self.decompressor.as_mut().expect("just made");
        let wrote = if k <= 1 {
            d.decompress_to_buffer(src, dst)
        } else {
            self.shuffled.clear();
            self.shuffled.resize(dst.len(), 0);
            let wrote = d.decompress_to_buffer(src, &mut self.shuffled[..]);
            unshuffle(&self.shuffled, k, dst);
            wrote
        }
        .map_err(|e| e.to_string())?;
        if wrote != dst.len() {
            return Err(format!(
                "a zstd frame declared {} bytes and held {wrote}",
                dst.len()
            ));
        }
        Ok(())
    }
}

/// Byte `j` of element `i` goes to `out[j * n + i]` (n elements of `k` bytes).
fn shuffle(data: &[u8], k: usize, out: &mut Vec<u8>) {
    out.clear();
    out.resize(data.len(), 0);
    let n = data.len() / k;
    if n == 0 {
        return;
    }
    let done = match k {
        8 => shuffle8(data, out, n),
        _ => 0,
    };
    for (j, plane) in out.chunks_exact_mut(n).enumerate() {
        for (o, item) in plane[done..]
            .iter_mut()
            .zip(data[done * k..].chunks_exact(k))
        {
            *o = item[j];
        }
    }
}

/// The inverse of `shuffle`.
fn unshuffle(data: &[u8], k: usize, out: &mut [u8]) {
    let n = data.len() / k;
    if n == 0 {
        return;
    }
    let done = match k {
        8 => unshuffle8(data, out, n),
        _ => 0,
    };
    for (j, plane) in data.chunks_exact(n).enumerate() {
        for (item, &b) in out[done * k..].chunks_exact_mut(k).zip(&plane[done..]) {
            item[j] = b;
        }
    }
}

/// Transpose an 8x8 byte matrix held as eight little-endian u64 rows (row i, byte j <-> row
/// j, byte i): three rounds of swapping blocks of 4, 2, then 1 bytes across the diagonal.
#[inline(always)]
fn transpose8(x: &mut [u64; 8]) {
    const M4: u64 = 0x0000_0000_FFFF_FFFF;
    const M2: u64 = 0x0000_FFFF_0000_FFFF;
    const M1: u64 = 0x00FF_00FF_00FF_00FF;
    // (row a, row b, shift, mask): row a's upper blocks swap with row b's lower ones.
    const SWAPS: [(usize, usize, u32, u64); 12] = [
        (0, 4, 32, M4),
        (1, 5, 32, M4),
        (2, 6, 32, M4),
        (3, 7, 32, M4),
        (0, 2, 16, M2),
        (1, 3, 16, M2),
        (4, 6, 16, M2),
        (5, 7, 16, M2),
        (0, 1, 8, M1),
        (2, 3, 8, M1),
        (4, 5, 8, M1),
        (6, 7, 8, M1),
    ];
    for (a, b, shift, mask) in SWAPS {
        let t = ((x[a] >> shift) ^ x[b]) & mask;
        x[a] ^= t << shift;
        x[b] ^= t;
    }
}

/// `shuffle` for 8-byte elements, 8 at a time; returns how many elements it did.
fn shuffle8(data: &[u8], out: &mut [u8], n: usize) -> usize {
    let blocks = n / 8;
    for (b, src) in data.chunks_exact(64).take(blocks).enumerate() {
        let mut x = [0u64; 8];
        for (row, item) in x.iter_mut().zip(src.chunks_exact(8)) {
            *row = u64::from_le_bytes(item.try_into().expect("8 bytes"));
        }
        transpose8(&mut x);
        for (j, row) in x.iter().enumerate() {
            out[j * n + b * 8..j * n + b * 8 + 8].copy_from_slice(&row.to_le_bytes());
        }
    }
    blocks * 8
}

/// `unshuffle` for 8-byte elements, 8 at a time; returns how many elements it did.
fn unshuffle8(data: &[u8], out: &mut [u8], n: usize) -> usize {
    let blocks = n / 8;
    for (b, dst) in out.chunks_exact_mut(64).take(blocks).enumerate() {
        let mut x = [0u64; 8];
        for (j, row) in x.iter_mut().enumerate() {
            let at = j * n + b * 8;
            *row = u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"));
        }
        transpose8(&mut x);
        for (row, item) in x.iter().zip(dst.chunks_exact_mut(8)) {
            item.copy_from_slice(&row.to_le_bytes());
        }
    }
    blocks * 8
}

/// The worker threads a parallel step uses: every core, up to 8.
fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// `f(state, i)` for every `i < n`, on up to `workers()` threads (this one included), each
/// with its own `init()` state; the results in order.
fn parallel<S, T: Send>(
    n: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize) -> T + Sync,
) -> Vec<T> {
    let threads = workers().min(n);
    if threads <= 1 {
        let mut state = init();
        return (0..n).map(|i| f(&mut state, i)).collect();
    }
    let next = AtomicUsize::new(0);
    let work = || {
        let mut state = init();
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                return done;
            }
            done.push((i, f(&mut state, i)));
        }
    };
    let parts: Vec<Vec<(usize, T)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut parts = vec![work()];
        for h in handles {
            parts.push(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        parts
    });
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    for (i, t) in parts.into_iter().flatten() {
        out[i] = Some(t);
    }
    out.into_iter().map(|t| t.expect("every job ran")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_round_trips() {
        for k in [2, 3, 4, 8, 20] {
            let data: Vec<u8> = (0..k * 1003).map(|i| (i * 7 % 251) as u8).collect();
            let mut shuffled = Vec::new();
            shuffle(&data, k, &mut shuffled);
            assert_ne!(shuffled, data);
            assert_eq!(shuffled[1], data[k]); // byte 0 of element 1
            let mut back = vec![0; data.len()];
            unshuffle(&shuffled, k, &mut back);
            assert_eq!(back, data);
        }
    }
}
