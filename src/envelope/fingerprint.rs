//! The interpreter fingerprint: sha256 over a canonical text of what must match for marshal
//! bytecode to mean the same thing on both ends. `bootstrap/boot.py` computes the same text
//! with hashlib (`_fingerprint_text`); `tests/test_envelope.py` checks that both agree. This
//! side builds the text itself from the interpreter, so the check is not circular.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyBytes;
use sha2::{Digest, Sha256};

use crate::wire::FORMAT_MAJOR;

pub struct Fingerprint {
    pub text: String,
    /// First 16 bytes of sha256(text).
    pub digest: [u8; 16],
    /// "CPython 3.11/3495": implementation, language version, bytecode magic number.
    pub label: String,
    /// The label in 5 bytes, for the short lean header (envelope/header.rs): implementation
    /// (0 CPython, 1 PyPy), major, minor, bytecode (u16 LE). None for other implementations.
    pub compact: Option<[u8; 5]>,
}

/// The implementations a compact label names, by their code (the index).
pub const COMPACT_IMPLEMENTATIONS: [&str; 2] = ["CPython", "PyPy"];

/// The label a compact one stands for, or None when its implementation code is unknown.
pub fn label_of_compact(c: &[u8; 5]) -> Option<String> {
    let name = COMPACT_IMPLEMENTATIONS.get(usize::from(c[0]))?;
    let bytecode = u16::from_le_bytes([c[3], c[4]]);
    Some(format!("{name} {}.{}/{bytecode}", c[1], c[2]))
}

static FINGERPRINT: PyOnceLock<Fingerprint> = PyOnceLock::new();

pub fn fingerprint(py: Python<'_>) -> PyResult<&Fingerprint> {
    FINGERPRINT.get_or_try_init(py, || compute(py))
}

fn compute(py: Python<'_>) -> PyResult<Fingerprint> {
    let sys = py.import("sys")?;
    let implementation = sys.getattr("implementation")?;
    let name: String = implementation.getattr("name")?.extract()?;
    let cache_tag: String = implementation.getattr("cache_tag")?.str()?.extract()?;
    let version_info = sys.getattr("version_info")?;
    let major: u32 = version_info.get_item(0)?.extract()?;
    let minor: u32 = version_info.get_item(1)?.extract()?;
    let magic = py
        .import("importlib.util")?
        .getattr("MAGIC_NUMBER")?
        .cast_into::<PyBytes>()?;
    let magic = magic.as_bytes();
    let magic_hex: String = magic.iter().map(|b| format!("{b:02x}")).collect();
    let gil_disabled = py
        .import("sysconfig")?
        .call_method1("get_config_var", ("Py_GIL_DISABLED",))?
        .is_truthy()?;
    let debug = sys.hasattr("gettotalrefcount")?;
    let byteorder = if cfg!(target_endian = "little") {
        "little"
    } else {
        "big"
    };
    let text = [
        format!("impl={name}"),
        format!("version={major}.{minor}"),
        format!("magic={magic_hex}"),
        format!("cache_tag={cache_tag}"),
        format!("pointer={}", std::mem::size_of::<usize>()),
        format!("byteorder={byteorder}"),
        format!("gil_disabled={}", u8::from(gil_disabled)),
        format!("debug={}", u8::from(debug)),
        format!("format={FORMAT_MAJOR}"),
    ]
    .join(";");
    let mut digest = [0u8; 16];
    digest.copy_from_slice(&Sha256::digest(text.as_bytes())[..16]);
    let display = match name.as_str() {
        "cpython" => "CPython".to_owned(),
        "pypy" => "PyPy".to_owned(),
        other => other.to_owned(),
    };
    let bytecode = u16::from_le_bytes([magic[0], magic[1]]);
    let label = format!("{display} {major}.{minor}/{bytecode}");
    let code = COMPACT_IMPLEMENTATIONS.iter().position(|n| *n == display);
    let compact = match (code, u8::try_from(major), u8::try_from(minor)) {
        (Some(code), Ok(major), Ok(minor)) => {
            let [lo, hi] = bytecode.to_le_bytes();
            Some([code as u8, major, minor, lo, hi])
        }
        _ => None,
    };
    Ok(Fingerprint {
        text,
        digest,
        label,
        compact,
    })
}
