//! The wire constants: the stream format version, its major, the bootstrap's module name, the
//! lean header's module name and the header flags. They are written once, in
//! `bootstrap/boot.py`, and generated into Rust by `build.rs`; `tests/test_wire.py` checks
//! that the running bootstrap and this side agree.

include!(concat!(env!("OUT_DIR"), "/wire.rs"));

/// The module streams name their constructors in: `_satchel_boot_<major>`.
pub const BOOT_MODULE: &str = boot_module!();
/// The module a lean header (format 1.5+) imports its check from. Where satchel is missing (or
/// older than 1.5), `pickle.loads` raises `ModuleNotFoundError: No module named '<this name>'`,
/// so the name is the message: it names satchel, the version and the sender's fix. It holds no
/// dot (an import would stop there) and no character a file name cannot hold
/// (`python/<this name>/` is its shim).
pub const LEAN_MODULE: &str = lean_module!();
/// The module format 1.4's lean headers name (`check(version, flags, fingerprint, producer)`),
/// still read.
pub const LEAN_MODULE_1_4: &str = lean_module_1_4!();

/// Every constant, for `satchel._satchel._wire()` (tests/test_wire.py compares them with the
/// running bootstrap's).
pub fn table(py: pyo3::Python<'_>) -> pyo3::PyResult<pyo3::Bound<'_, pyo3::types::PyDict>> {
    use pyo3::types::PyDictMethods;
    let d = pyo3::types::PyDict::new(py);
    d.set_item("FORMAT_VERSION", FORMAT_VERSION)?;
    d.set_item("FORMAT_MAJOR", FORMAT_MAJOR)?;
    d.set_item("BOOT_MODULE", BOOT_MODULE)?;
    d.set_item("LEAN_MODULE", LEAN_MODULE)?;
    d.set_item("LEAN_MODULE_1_4", LEAN_MODULE_1_4)?;
    d.set_item("FLAG_NONPORTABLE", FLAG_NONPORTABLE)?;
    d.set_item("FLAG_COMPRESSED", FLAG_COMPRESSED)?;
    d.set_item("FLAG_STANDALONE", FLAG_STANDALONE)?;
    d.set_item("FLAG_GENERATORS", FLAG_GENERATORS)?;
    d.set_item("FLAG_STREAMED", FLAG_STREAMED)?;
    d.set_item("CONSTRUCTORS", crate::bootstrap::CONSTRUCTORS.to_vec())?;
    Ok(d)
}

/// A stream's format version, or None when it is not semver (a corrupt header).
pub fn parse_version(text: &str) -> Option<semver::Version> {
    semver::Version::parse(text).ok()
}

/// Whether a header of format `version` says if its body holds a started generator
/// (`FLAG_GENERATORS`, format 1.4): older ones do not know.
pub fn says_generators(version: &str) -> bool {
    parse_version(version).is_some_and(|v| v >= semver::Version::new(1, 4, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_constants_agree_with_each_other() {
        let v = parse_version(FORMAT_VERSION).expect("FORMAT_VERSION is semver");
        assert_eq!(v.major, FORMAT_MAJOR);
        assert_eq!(BOOT_MODULE, format!("_satchel_boot_{FORMAT_MAJOR}"));
        assert!(!LEAN_MODULE.contains('.') && !LEAN_MODULE_1_4.contains('.'));
        assert_ne!(LEAN_MODULE, LEAN_MODULE_1_4);
        let flags = [
            FLAG_NONPORTABLE,
            FLAG_COMPRESSED,
            FLAG_STANDALONE,
            FLAG_GENERATORS,
            FLAG_STREAMED,
        ];
        for (i, f) in flags.iter().enumerate() {
            assert_eq!(f.count_ones(), 1, "a flag is one bit");
            assert!(flags[..i].iter().all(|g| g != f), "flags are distinct bits");
        }
    }

    #[test]
    fn versions_compare_as_semver() {
        assert!(parse_version(FORMAT_VERSION).is_some());
        assert!(parse_version("1.x").is_none() && parse_version("1").is_none());
        assert!(says_generators("1.4.0") && says_generators("1.10.0"));
        assert!(!says_generators("1.3.9") && !says_generators("corrupt"));
    }
}
