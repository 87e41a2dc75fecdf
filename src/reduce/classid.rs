//! Content-derived class ids (docs/FORMAT.md, "Dynamic classes").
//!
//! A receiver maps a class id to the class it already has and does not apply the stream's
//! state again, so two classes that differ in anything that travels must never share an id,
//! while the same definition must get the same id in every process (deterministic bytes).
//! The id is sha256 over a structural description of the class: module, qualname, bases and
//! every attribute, where functions are described by their code, defaults, closure contents
//! and the globals they read, and other values by their own structure (`__reduce_ex__`).
//! When some part has no faithful description that does not depend on the process (a C
//! object without `__reduce_ex__`, a huge container), the class gets a random id instead:
//! its bytes then differ between processes, but it can never be confused with another class.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFrozenSet, PyList, PySet, PyString, PyTuple, PyType};
use rustc_hash::FxHashSet;
use sha2::{Digest, Sha256};
use std::fmt::Write;

use super::{byref, globals};
use crate::ffi::{self, addr, type_addr};
use crate::typeref::typerefs;

/// Description limits: deeper, longer or larger parts make the id random.
const MAX_DEPTH: usize = 12;
const MAX_ITEMS: usize = 512;
const MAX_TEXT: usize = 1 << 20;
/// Strings and bytes longer than this are described by their digest.
const INLINE_TEXT: usize = 256;

/// The content id of `cls`, or None when it has no process-independent description.
pub fn content_id(cls: &Bound<'_, PyType>) -> PyResult<Option<String>> {
    let mut d = Describer {
        out: String::new(),
        stable: true,
        visiting: FxHashSet::default(),
    };
    d.class_body(cls.as_any(), 0)?;
    Ok(d.stable.then(|| hex_digest(d.out.as_bytes(), 16)))
}

/// The first `n` bytes of sha256(`data`), as hex.
pub fn hex_digest(data: &[u8], n: usize) -> String {
    Sha256::digest(data)
        .iter()
        .take(n)
        .fold(String::with_capacity(2 * n), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

struct Describer {
    out: String,
    stable: bool,
    /// Dynamic classes and functions being described: one reached again is written by name.
    visiting: FxHashSet<usize>,
}

impl Describer {
    fn unstable(&mut self) {
        self.stable = false;
    }

    fn class_body(&mut self, cls: &Bound<'_, PyAny>, depth: usize) -> PyResult<()> {
        self.visiting.insert(addr(cls));
        let _ = write!(
            self.out,
            "class {}.{}(",
            cls.getattr("__module__")?,
            cls.getattr("__qualname__")?
        );
        for base in cls.getattr("__bases__")?.cast_into::<PyTuple>()?.iter() {
            self.value(&base, depth + 1)?;
            self.out.push(',');
        }
        self.out.push_str("){");
        let own = cls.getattr("__dict__")?;
        let mut keys: Vec<String> = Vec::new();
        for key in own.try_iter()? {
            keys.push(key?.str()?.to_string());
        }
        keys.sort();
        for key in keys {
            // ABC caches are per-process state, not definition (registrations travel apart);
            // so is copyreg's __slotnames__ cache, set by the first pickling of an instance.
            if key.starts_with("_abc_") || key == "__slotnames__" {
                continue;
            }
            let _ = write!(self.out, "{key}=");
            self.value(&own.get_item(&key)?, depth + 1)?;
            self.out.push(';');
        }
        self.out.push('}');
        Ok(())
    }

    fn items<'py>(
        &mut self,
        items: impl Iterator<Item = Bound<'py, PyAny>>,
        depth: usize,
    ) -> PyResult<()> {
        for (i, item) in items.enumerate() {
            if i >= MAX_ITEMS {
                self.unstable();
                break;
            }
            self.value(&item, depth + 1)?;
            self.out.push(',');
        }
        Ok(())
    }

    fn value(&mut self, value: &Bound<'_, PyAny>, depth: usize) -> PyResult<()> {
        if !self.stable {
            return Ok(());
        }
        if depth > MAX_DEPTH || self.out.len() > MAX_TEXT {
            self.unstable();
            return Ok(());
        }
        let py = value.py();
        let refs = typerefs(py);
        let ty = type_addr(value);
        if refs.atomic.contains(&ty) {
            let text = value.repr()?.to_string();
            if text.len() > INLINE_TEXT {
                let data = match value.cast::<PyBytes>() {
                    Ok(b) => b.as_bytes().to_vec(),
                    Err(_) => value.str()?.to_string().into_bytes(),
                };
                let _ = write!(self.out, "digest:{}", hex_digest(&data, 16));
            } else {
                self.out.push_str(&text);
            }
        } else if ty == refs.tuple || value.is_exact_instance_of::<PyList>() {
            self.out.push(if ty == refs.tuple { '(' } else { '[' });
            self.items(
                value.try_iter()?.collect::<PyResult<Vec<_>>>()?.into_iter(),
                depth,
            )?;
            self.out.push(')');
        } else if let Ok(d) = value.cast_exact::<PyDict>() {
            self.mapping(d, depth)?;
        } else if ty == refs.mappingproxy {
            self.out.push_str("mappingproxy");
            self.mapping(&value.call_method0("copy")?.cast_into::<PyDict>()?, depth)?;
        } else if value.is_exact_instance_of::<PyFrozenSet>()
            || value.is_exact_instance_of::<PySet>()
        {
            let mut parts = Vec::new();
            for item in value.try_iter()? {
                let mut sub = Describer {
                    out: String::new(),
                    stable: true,
                    visiting: self.visiting.clone(),
                };
                sub.value(&item?, depth + 1)?;
                self.stable &= sub.stable;
                parts.push(sub.out);
            }
            parts.sort();
            let _ = write!(self.out, "set({})", parts.join(","));
        } else if ty == refs.function {
            if self.visiting.insert(addr(value)) {
                self.function(value, depth)?;
            } else {
                // Recursion through globals (a function that calls itself by name).
                let _ = write!(
                    self.out,
                    "function-cycle({})",
                    value.getattr("__qualname__")?
                );
            }
        } else if ty == refs.code {
            self.code(value, depth)?;
        } else if ty == refs.classmethod || ty == refs.staticmethod {
            self.out.push_str(if ty == refs.classmethod {
                "classmethod("
            } else {
                "staticmethod("
            });
            self.value(&value.getattr("__func__")?, depth + 1)?;
            self.out.push(')');
        } else if ty == refs.property {
            self.out.push_str("property(");
            for part in ["fget", "fset", "fdel", "__doc__"] {
                self.value(&value.getattr(part)?, depth + 1)?;
                self.out.push(',');
            }
            self.out.push(')');
        } else if ty == refs.cell {
            self.out.push_str("cell(");
            if let Some(contents) = ffi::cell_contents(value) {
                self.value(&contents, depth + 1)?;
            }
            self.out.push(')');
        } else if ffi::is_module(value) {
            let _ = write!(self.out, "module({})", value.getattr("__name__")?);
        } else if ffi::is_type(value) {
            if self.visiting.contains(&addr(value))
                || byref::importable(value)?
                || !ffi::is_heap_type(value)
            {
                let _ = write!(
                    self.out,
                    "class({}.{})",
                    value.getattr("__module__")?,
                    value.getattr("__qualname__")?
                );
            } else {
                self.class_body(value, depth + 1)?;
            }
        } else if refs.descriptor_types.contains(&ty)
            || (ty == refs.builtin_function
                && value
                    .getattr("__self__")
                    .is_ok_and(|s| s.is_none() || ffi::is_module(&s)))
        {
            // Method and slot descriptors, and module-level builtins: their repr names them and
            // holds no address (a builtin bound to an instance goes through __reduce_ex__).
            self.out.push_str(&value.repr()?.to_string());
        } else {
            self.reduced(value, depth)?;
        }
        Ok(())
    }

    fn mapping(&mut self, d: &Bound<'_, PyDict>, depth: usize) -> PyResult<()> {
        self.out.push('{');
        for (i, (k, v)) in d.iter().enumerate() {
            if i >= MAX_ITEMS {
                self.unstable();
                break;
            }
            self.value(&k, depth + 1)?;
            self.out.push(':');
            self.value(&v, depth + 1)?;
            self.out.push(',');
        }
        self.out.push('}');
        Ok(())
    }

    fn function(&mut self, f: &Bound<'_, PyAny>, depth: usize) -> PyResult<()> {
        let code = f.getattr("__code__")?;
        self.out.push_str("function(");
        self.code(&code, depth + 1)?;
        for part in ["__defaults__", "__kwdefaults__", "__closure__"] {
            self.out.push(',');
            self.value(&f.getattr(part)?, depth + 1)?;
        }
        // The globals it reads travel with it, so they are part of what it is.
        let fglobals = f.getattr("__globals__")?.cast_into::<PyDict>()?;
        for name in globals::code_info(&code)?.global_names.bind(f.py()).iter() {
            if let Some(v) = fglobals.get_item(&name)? {
                let _ = write!(self.out, ",{}=", name.cast::<PyString>()?);
                self.value(&v, depth + 1)?;
            }
        }
        self.out.push(')');
        Ok(())
    }

    fn code(&mut self, code: &Bound<'_, PyAny>, depth: usize) -> PyResult<()> {
        // Reading co_code of malformed bytecode overruns memory (code.rs, issue 15).
        super::code::check_bytecode(code)?;
        let bytecode = code.getattr("co_code")?.cast_into::<PyBytes>()?;
        let _ = write!(
            self.out,
            "code({},{},{},",
            hex_digest(bytecode.as_bytes(), 8),
            code.getattr("co_names")?.repr()?,
            code.getattr("co_varnames")?.repr()?
        );
        self.value(&code.getattr("co_consts")?, depth + 1)?;
        self.out.push(')');
        Ok(())
    }

    /// Anything else, by what its own `__reduce_ex__` says it is made of.
    fn reduced(&mut self, value: &Bound<'_, PyAny>, depth: usize) -> PyResult<()> {
        let Ok(reduced) = value.call_method1("__reduce_ex__", (4,)) else {
            self.unstable();
            return Ok(());
        };
        let parts = match reduced.cast_into::<PyTuple>() {
            Ok(parts) => parts,
            Err(e) => {
                // A string: the name of a module global, which is what the value is.
                let name = e.into_inner().str()?.to_string();
                let _ = write!(
                    self.out,
                    "global({}:{name})",
                    value.get_type().fully_qualified_name()?
                );
                return Ok(());
            }
        };
        let _ = write!(self.out, "<{}>", value.get_type().fully_qualified_name()?);
        for (i, part) in parts.iter().enumerate() {
            self.out.push('|');
            match i {
                // List and dict items come as one-shot iterators.
                3 | 4 if !part.is_none() => self.items(
                    part.try_iter()?.collect::<PyResult<Vec<_>>>()?.into_iter(),
                    depth,
                )?,
                _ => self.value(&part, depth + 1)?,
            }
        }
        Ok(())
    }
}
