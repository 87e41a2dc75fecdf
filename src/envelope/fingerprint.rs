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
    /// The label as the lean header writes it (envelope/header.rs): "cp311/3495" for
    /// "CPython 3.11/3495", "pp311/3495" for PyPy (a wheel's interpreter tag, then the bytecode
    /// number). None for other implementations and versions whose tag would be ambiguous.
    pub compact: Option<String>,
    /// The label as a packed lean header (format 1.5) writes it: the compact tag's first
    /// letter, the language major and minor, the bytecode number (u16 LE). Only where there is
    /// a compact label.
    pub packed: Option<[u8; PACKED_LABEL]>,
}

/// Bytes of a packed label.
pub const PACKED_LABEL: usize = 5;

/// The packed label of `display major.minor/bytecode`, when it has a compact one.
fn packed_of(display: &str, major: u32, minor: u32, bytecode: u16) -> Option<[u8; PACKED_LABEL]> {
    let (tag, _) = COMPACT_IMPLEMENTATIONS
        .iter()
        .find(|(_, name)| *name == display)?;
    let [lo, hi] = bytecode.to_le_bytes();
    Some([
        tag.as_bytes()[0],
        u8::try_from(major).ok()?,
        u8::try_from(minor).ok()?,
        lo,
        hi,
    ])
}

/// The full label a packed one stands for (`b"c\x03\x0b\xa7\x0d"` -> "CPython 3.11/3495"), or
/// None when `packed` is not one.
pub fn label_of_packed(packed: &[u8]) -> Option<String> {
    let &[tag, major, minor, lo, hi] = packed else {
        return None;
    };
    let (_, name) = COMPACT_IMPLEMENTATIONS
        .iter()
        .find(|(t, _)| t.as_bytes()[0] == tag)?;
    let bytecode = u16::from_le_bytes([lo, hi]);
    Some(format!("{name} {major}.{minor}/{bytecode}"))
}

/// The implementations a compact label names, by its two-letter tag.
const COMPACT_IMPLEMENTATIONS: [(&str, &str); 2] = [("cp", "CPython"), ("pp", "PyPy")];

/// The compact label of `display major.minor/bytecode`, when it has one.
fn compact_of(display: &str, major: u32, minor: u32, bytecode: u16) -> Option<String> {
    let (tag, _) = COMPACT_IMPLEMENTATIONS
        .iter()
        .find(|(_, name)| *name == display)?;
    (major <= 9).then(|| format!("{tag}{major}{minor}/{bytecode}"))
}

/// The full label a compact one stands for ("cp311/3495" -> "CPython 3.11/3495"), or None when
/// `producer` is not one (a full label has a space; labels of other implementations stay full).
pub fn label_of_compact(producer: &str) -> Option<String> {
    let (tag, bytecode) = producer.split_once('/')?;
    let (_, name) = COMPACT_IMPLEMENTATIONS
        .iter()
        .find(|(t, _)| tag.starts_with(t))?;
    let digits = &tag[2..];
    let (major, minor) = (digits.get(..1)?, digits.get(1..)?);
    let canonical = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !canonical(major) || !canonical(minor) || !canonical(bytecode) {
        return None;
    }
    Some(format!("{name} {major}.{minor}/{bytecode}"))
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
    let compact = compact_of(&display, major, minor, bytecode);
    let packed = packed_of(&display, major, minor, bytecode);
    Ok(Fingerprint {
        text,
        digest,
        label,
        compact,
        packed,
    })
}
