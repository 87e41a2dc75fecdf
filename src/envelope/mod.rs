//! The envelope around the body the C pickler writes: the header opcodes (format check,
//! interpreter fingerprint, standalone bootstrap), compression, and the header parser behind
//! `satchel.loads` and `satchel.inspect`. Layout in docs/FORMAT.md.

pub mod buffers;
pub mod compress;
pub mod extent;
pub mod fingerprint;
pub mod header;
pub mod inspect;
pub mod key;
pub mod pypy_scan;
pub mod signature;
pub mod unwrap;
pub mod wrap;
