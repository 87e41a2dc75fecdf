//! Build steps:
//! - pyo3's interpreter cfgs (PyPy, Py_3_x, Py_GIL_DISABLED) for satchel's own code: the frame
//!   access in src/ffi/frame.rs exists only for CPython.
//! - The wire constants (`$OUT_DIR/wire.rs`, included by src/wire.rs), read from the one place
//!   they are written: `bootstrap/boot.py`. Its `FORMAT_VERSION = "x.y.z"` and `FLAG_* = n`
//!   lines, and `# wire: NAME = value` comments for the constants the bootstrap never reads by
//!   name (comments, so standalone payloads do not carry them). The bootstrap's module name is
//!   derived from the major.

use std::fmt::Write as _;

fn main() {
    pyo3_build_config::use_pyo3_cfgs();
    println!("cargo:rerun-if-changed=bootstrap/boot.py");
    let boot = std::fs::read_to_string("bootstrap/boot.py").expect("read bootstrap/boot.py");
    let mut version = None;
    let mut lean = None;
    let mut lean_1_4 = None;
    let mut flags = Vec::new();
    for line in boot.lines() {
        let line = line.strip_prefix("# wire: ").unwrap_or(line);
        let Some((name, value)) = line.split_once(" = ") else {
            continue;
        };
        let value = value.trim();
        if name == "FORMAT_VERSION" {
            version = Some(value.trim_matches('"').to_owned());
        } else if name == "LEAN_MODULE" {
            lean = Some(value.trim_matches('"').to_owned());
        } else if name == "LEAN_MODULE_1_4" {
            lean_1_4 = Some(value.trim_matches('"').to_owned());
        } else if name.starts_with("FLAG_")
            && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        {
            let n: u8 = value.parse().expect("a header flag is a small integer");
            flags.push((name.to_owned(), n));
        }
    }
    let version = version.expect("bootstrap/boot.py sets FORMAT_VERSION");
    let lean = lean.expect("bootstrap/boot.py names LEAN_MODULE in a '# wire:' comment");
    let lean_1_4 =
        lean_1_4.expect("bootstrap/boot.py names LEAN_MODULE_1_4 in a '# wire:' comment");
    let major: u64 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .expect("FORMAT_VERSION starts with its major");
    for name in [&lean, &lean_1_4] {
        assert!(
            !name.contains(['.', '/', '"', '\\', '\n', '<', '>', ':', '|', '?', '*']),
            "a lean module name has no dot (an import stops there) and nothing a file name \
             cannot hold"
        );
    }
    let mut out = String::new();
    writeln!(out, "pub const FORMAT_VERSION: &str = {version:?};").unwrap();
    writeln!(out, "pub const FORMAT_MAJOR: u64 = {major};").unwrap();
    writeln!(
        out,
        "macro_rules! boot_module {{ () => {{ \"_satchel_boot_{major}\" }} }}"
    )
    .unwrap();
    writeln!(out, "macro_rules! lean_module {{ () => {{ {lean:?} }} }}").unwrap();
    writeln!(
        out,
        "macro_rules! lean_module_1_4 {{ () => {{ {lean_1_4:?} }} }}"
    )
    .unwrap();
    for (name, n) in &flags {
        writeln!(out, "pub const {name}: u8 = {n};").unwrap();
    }
    let out_dir = std::env::var("OUT_DIR").expect("OUT_DIR");
    std::fs::write(format!("{out_dir}/wire.rs"), out).expect("write wire.rs");
}
