//! The keyword options of dumps/dump/Pickler (protocol, mode, standalone, compress), checked
//! and resolved once, and what they make of a stream's header flags.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::envelope::buffers::BufferSink;
use crate::envelope::{compress, header, wrap};
use crate::error::{catch_panic, Error};
use crate::reduce::Marks;

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
    pub fn flags(&self, compressed: bool, known: Option<Marks>) -> u8 {
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
    pub fn compresses(&self, body_len: usize, needs_header: bool) -> bool {
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
        wrap::header(py, self.opts.protocol, self.opts.flags(false, None)).map(Some)
    }

    /// The sink a compressing pickler gives the C pickler as its buffer_callback, or None.
    fn buffer_sink<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, BufferSink>>> {
        if self.body_only {
            return Ok(None);
        }
        wrap::buffer_sink(py, &self.opts)
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
            wrap::write_compressed(body.py(), file, &self.opts, body, &held, marks)
        })
    }
}
