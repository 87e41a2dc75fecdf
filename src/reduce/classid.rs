//! Content-derived class ids (docs/FORMAT.md, "Dynamic classes").
//!
//! A receiver maps a class id to the class it already has and does not apply the stream's
//! state again, so two classes that differ in anything that travels must never share an id,
//! while the same definition must get the same id in every process (deterministic bytes).
//!
//! The id is sha256 over a structural description of the class: module, qualname, name,
//! metaclass, bases and every attribute. Functions are described by their code (signature
//! shape, flags, bytecode, exception table, constants, names), name, defaults, closure
//! contents, attributes, annotations and the globals they read; other values by their own
//! structure (`__reduce_ex__`). The description is an unambiguous byte encoding, never joined
//! text: every value starts with a one-byte type tag, every variable-length part (text, bytes,
//! containers) with its length, so no two different values encode alike (`{1, 2}` and
//! `frozenset({1, 2})`, `"ab"` and `b"ab"`, an attribute named `"a=1;b"` and two attributes).
//! Sets are encoded as their elements' encodings sorted bytewise, so hash order never shows.
//!
//! When some part has no faithful description that does not depend on the process (a C
//! object without `__reduce_ex__`, a part whose description raises, a huge container, nesting
//! deeper than `MAX_DEPTH`), the class gets a random id instead: its bytes then differ between
//! processes, but it can never be confused with another class.
//!
//! Nothing here iterates a live dict or set with pyo3's native iterators (they panic when the
//! collection changes during the walk, and user code runs during the walk: `__reduce_ex__`,
//! other threads). Dicts are copied and their items listed first; sets are iterated through
//! the Python iterator protocol, which raises instead, and any error makes the id random.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFrozenSet, PyList, PySet, PyString, PyTuple, PyType};
use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};
use std::fmt::Write;

use super::{byref, globals};
use crate::ffi::{self, addr, type_addr};
use crate::typeref::typerefs;

/// Description limits: deeper, longer or larger parts make the id random.
const MAX_DEPTH: usize = 12;
const MAX_ITEMS: usize = 512;
const MAX_BYTES: usize = 1 << 20;
/// Strings and bytes longer than this are described by their length and digest.
const INLINE_TEXT: usize = 256;

/// One-byte type tags of the encoding. Each names what follows it.
mod tag {
    pub const NONE: u8 = b'N';
    pub const TRUE: u8 = b'T';
    pub const FALSE: u8 = b'F';
    /// i64, 8 bytes little-endian.
    pub const INT: u8 = b'i';
    /// An int beyond i64: length-prefixed two's complement bytes, little-endian.
    pub const BIG_INT: u8 = b'I';
    /// f64 bits, 8 bytes.
    pub const FLOAT: u8 = b'f';
    pub const COMPLEX: u8 = b'c';
    /// Length-prefixed UTF-8 (lone surrogates as `surrogatepass` writes them).
    pub const STR: u8 = b's';
    /// Length, then the sha256 of the UTF-8.
    pub const STR_DIGEST: u8 = b'S';
    pub const BYTES: u8 = b'b';
    pub const BYTES_DIGEST: u8 = b'B';
    pub const TUPLE: u8 = b'(';
    pub const LIST: u8 = b'[';
    pub const DICT: u8 = b'{';
    pub const MAPPINGPROXY: u8 = b'M';
    pub const SET: u8 = b'<';
    pub const FROZENSET: u8 = b'>';
    pub const FUNCTION: u8 = b'd';
    pub const CODE: u8 = b'C';
    pub const CLASSMETHOD: u8 = b'K';
    pub const STATICMETHOD: u8 = b'Z';
    pub const PROPERTY: u8 = b'P';
    pub const CELL: u8 = b'L';
    pub const EMPTY_CELL: u8 = b'l';
    pub const MODULE: u8 = b'm';
    /// A class described in full: module, qualname, name, metaclass, bases, attributes.
    pub const CLASS: u8 = b'k';
    /// A class or function by reference: module and qualname.
    pub const GLOBAL: u8 = b'g';
    /// A function or class described earlier in this description: its index, 8 bytes.
    pub const BACKREF: u8 = b'r';
    /// A method, slot, member or getset descriptor: its owner class, then its name.
    pub const DESCRIPTOR: u8 = b'D';
    /// Anything else, by its `__reduce_ex__(4)`: type, then the reduction's parts.
    pub const REDUCED: u8 = b'R';
    /// A `__reduce_ex__` that returned a string (a module global): type, then the string.
    pub const REDUCED_NAME: u8 = b'n';
}

/// The content id of `cls`, or None when it has no process-independent description.
pub fn content_id(cls: &Bound<'_, PyType>) -> PyResult<Option<String>> {
    let mut d = Describer::new();
    // Any error while describing (user code raising, a collection changing under us) only
    // means there is no faithful description: the id becomes random, and pickling itself
    // reports what is wrong with the class, if anything is.
    if let Err(e) = d.class_body(cls.as_any(), 0) {
        if !e.is_instance_of::<pyo3::exceptions::PyException>(cls.py()) {
            return Err(e); // KeyboardInterrupt, SystemExit: not ours to swallow
        }
        return Ok(None);
    }
    Ok(d.stable.then(|| hex_digest(&d.out, 16)))
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

struct Describer<'py> {
    out: Vec<u8>,
    stable: bool,
    /// Functions and dynamic classes already described, by identity, with their index: one
    /// reached again (recursion, a method stored under two names) is written as a back
    /// reference. The objects are held so that no address is reused while describing.
    seen: FxHashMap<usize, u64>,
    held: Vec<Bound<'py, PyAny>>,
}

impl<'py> Describer<'py> {
    fn new() -> Self {
        Describer {
            out: Vec::new(),
            stable: true,
            seen: FxHashMap::default(),
            held: Vec::new(),
        }
    }

    fn unstable(&mut self) {
        self.stable = false;
    }

    fn tag(&mut self, t: u8) {
        self.out.push(t);
    }

    fn len(&mut self, n: usize) {
        self.out.extend_from_slice(&(n as u64).to_le_bytes());
    }

    fn i64(&mut self, n: i64) {
        self.out.extend_from_slice(&n.to_le_bytes());
    }

    fn data(&mut self, bytes: &[u8]) {
        self.len(bytes.len());
        self.out.extend_from_slice(bytes);
    }

    /// Text or bytes: inline with its length, or (when long) its length and digest.
    fn text(&mut self, inline: u8, digest: u8, bytes: &[u8]) {
        if bytes.len() > INLINE_TEXT {
            self.tag(digest);
            self.len(bytes.len());
            self.out.extend_from_slice(&Sha256::digest(bytes));
        } else {
            self.tag(inline);
            self.data(bytes);
        }
    }

    fn str(&mut self, s: &Bound<'py, PyString>) -> PyResult<()> {
        match s.to_str() {
            Ok(text) => self.text(tag::STR, tag::STR_DIGEST, text.as_bytes()),
            Err(_) => {
                // Lone surrogates (valid in a str, not in UTF-8): surrogatepass keeps them
                // distinct from every other string.
                let encoded = s.call_method1("encode", ("utf-8", "surrogatepass"))?;
                let bytes = encoded.cast::<PyBytes>()?.as_bytes().to_vec();
                self.text(tag::STR, tag::STR_DIGEST, &bytes);
            }
        }
        Ok(())
    }

    /// Remember `obj` as described; None when it was described before (its index written).
    fn first_visit(&mut self, obj: &Bound<'py, PyAny>) -> bool {
        if let Some(&index) = self.seen.get(&addr(obj)) {
            self.tag(tag::BACKREF);
            self.out.extend_from_slice(&index.to_le_bytes());
            return false;
        }
        self.seen.insert(addr(obj), self.seen.len() as u64);
        self.held.push(obj.clone());
        true
    }

    fn class_body(&mut self, cls: &Bound<'py, PyAny>, depth: usize) -> PyResult<()> {
        if !self.first_visit(cls) {
            return Ok(());
        }
        let py = cls.py();
        self.tag(tag::CLASS);
        for part in ["__module__", "__qualname__", "__name__"] {
            self.value(&cls.getattr(part)?, depth + 1)?;
        }
        self.value(&cls.get_type().into_any(), depth + 1)?;
        self.value(&cls.getattr("__bases__")?, depth + 1)?;
        // A copy of the class dict (taken in one C call), then its items as a list.
        let own = cls.getattr("__dict__")?.call_method0("copy")?;
        let own = own.cast::<PyDict>()?;
        let is_abc = cls.get_type().is_subclass(typerefs(py).abc_meta.bind(py))?;
        let mut entries: Vec<(Vec<u8>, Bound<'py, PyAny>)> = Vec::new();
        for item in own.items().iter() {
            let (key, value): (Bound<'py, PyAny>, Bound<'py, PyAny>) = item.extract()?;
            if let Ok(name) = key.cast::<PyString>() {
                let name = name.to_cow()?;
                // ABC caches are per-process state, not definition (registrations travel
                // apart); so is copyreg's __slotnames__ cache, set by the first pickling of
                // an instance.
                if (is_abc && name.starts_with("_abc_")) || name == "__slotnames__" {
                    continue;
                }
            }
            let mut sub = Describer::new();
            sub.value(&key, depth + 1)?;
            self.stable &= sub.stable;
            entries.push((sub.out, value));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        self.len(entries.len());
        for (key, value) in entries {
            self.out.extend_from_slice(&key);
            self.value(&value, depth + 1)?;
        }
        Ok(())
    }

    fn items(&mut self, items: &Bound<'py, PyTuple>, depth: usize) -> PyResult<()> {
        if items.len() > MAX_ITEMS {
            self.unstable();
            return Ok(());
        }
        self.len(items.len());
        for item in items.iter() {
            self.value(&item, depth + 1)?;
        }
        Ok(())
    }

    fn value(&mut self, value: &Bound<'py, PyAny>, depth: usize) -> PyResult<()> {
        if !self.stable {
            return Ok(());
        }
        if depth > MAX_DEPTH || self.out.len() > MAX_BYTES {
            self.unstable();
            return Ok(());
        }
        let py = value.py();
        let refs = typerefs(py);
        let ty = type_addr(value);
        if refs.atomic.contains(&ty) {
            self.atomic(value)?;
        } else if ty == refs.tuple {
            self.tag(tag::TUPLE);
            self.items(value.cast::<PyTuple>()?, depth)?;
        } else if let Ok(list) = value.cast_exact::<PyList>() {
            self.tag(tag::LIST);
            self.items(&list.to_tuple(), depth)?;
        } else if let Ok(d) = value.cast_exact::<PyDict>() {
            self.tag(tag::DICT);
            self.mapping(&d.copy()?, depth)?;
        } else if ty == refs.mappingproxy {
            self.tag(tag::MAPPINGPROXY);
            self.mapping(&value.call_method0("copy")?.cast_into::<PyDict>()?, depth)?;
        } else if value.is_exact_instance_of::<PyFrozenSet>() {
            self.tag(tag::FROZENSET);
            self.set(value, depth)?;
        } else if value.is_exact_instance_of::<PySet>() {
            self.tag(tag::SET);
            self.set(value, depth)?;
        } else if ty == refs.function {
            if self.first_visit(value) {
                self.function(value, depth)?;
            }
        } else if ty == refs.code {
            self.code(value, depth)?;
        } else if ty == refs.classmethod
            || ty == refs.staticmethod
            || ty == refs.abstract_classmethod
            || ty == refs.abstract_staticmethod
        {
            self.tag(
                if ty == refs.classmethod || ty == refs.abstract_classmethod {
                    tag::CLASSMETHOD
                } else {
                    tag::STATICMETHOD
                },
            );
            // The descriptor's own type: classmethod or abc.abstractclassmethod, ...
            self.global(value.get_type().as_any(), depth + 1)?;
            self.value(&value.getattr("__func__")?, depth + 1)?;
        } else if ty == refs.property || ty == refs.abstract_property {
            self.tag(tag::PROPERTY);
            self.global(value.get_type().as_any(), depth + 1)?;
            for part in ["fget", "fset", "fdel", "__doc__"] {
                self.value(&value.getattr(part)?, depth + 1)?;
            }
        } else if ty == refs.cell {
            match ffi::cell_contents(value) {
                Some(contents) => {
                    self.tag(tag::CELL);
                    self.value(&contents, depth + 1)?;
                }
                None => self.tag(tag::EMPTY_CELL),
            }
        } else if ffi::is_module(value) {
            self.tag(tag::MODULE);
            self.value(&value.getattr("__name__")?, depth + 1)?;
        } else if ffi::is_type(value) {
            if self.seen.contains_key(&addr(value)) {
                self.first_visit(value);
            } else if byref::importable(value)? || !ffi::is_heap_type(value) {
                self.global(value, depth)?;
            } else {
                self.class_body(value, depth + 1)?;
            }
        } else if refs.descriptor_types.contains(&ty) {
            // Method, slot, member and getset descriptors: the class that owns them and their
            // name (a dynamic class's `__dict__` descriptor refers back to it).
            self.tag(tag::DESCRIPTOR);
            self.value(&value.getattr("__objclass__")?, depth + 1)?;
            self.value(&value.getattr("__name__")?, depth + 1)?;
        } else if ty == refs.builtin_function
            && value
                .getattr("__self__")
                .is_ok_and(|s| s.is_none() || ffi::is_module(&s))
        {
            // A module-level builtin (`len`, `math.sqrt`): by module and name (a builtin bound
            // to an instance goes through __reduce_ex__).
            let owner = value.getattr("__self__")?;
            self.tag(tag::GLOBAL);
            if owner.is_none() {
                self.value(&value.getattr("__module__")?, depth + 1)?;
            } else {
                self.value(&owner.getattr("__name__")?, depth + 1)?;
            }
            self.value(&value.getattr("__qualname__")?, depth + 1)?;
        } else {
            self.reduced(value, depth)?;
        }
        Ok(())
    }

    fn atomic(&mut self, value: &Bound<'py, PyAny>) -> PyResult<()> {
        if value.is_none() {
            self.tag(tag::NONE);
        } else if let Ok(b) = value.cast_exact::<pyo3::types::PyBool>() {
            self.tag(if b.is_true() { tag::TRUE } else { tag::FALSE });
        } else if let Ok(s) = value.cast_exact::<PyString>() {
            self.str(s)?;
        } else if let Ok(b) = value.cast_exact::<PyBytes>() {
            self.text(tag::BYTES, tag::BYTES_DIGEST, b.as_bytes());
        } else if let Ok(i) = value.cast_exact::<pyo3::types::PyInt>() {
            match i.extract::<i64>() {
                Ok(n) => {
                    self.tag(tag::INT);
                    self.i64(n);
                }
                Err(_) => {
                    // Two's complement, little-endian, in as many bytes as it needs (plus a
                    // sign bit): no decimal text, which has a length limit.
                    let bits: usize = i.call_method0("bit_length")?.extract()?;
                    let kwargs = PyDict::new(value.py());
                    kwargs.set_item("signed", true)?;
                    let raw = i.call_method("to_bytes", (bits / 8 + 1, "little"), Some(&kwargs))?;
                    self.tag(tag::BIG_INT);
                    self.data(raw.cast::<PyBytes>()?.as_bytes());
                }
            }
        } else if let Ok(f) = value.cast_exact::<pyo3::types::PyFloat>() {
            self.tag(tag::FLOAT);
            self.out
                .extend_from_slice(&f.value().to_bits().to_le_bytes());
        } else if let Ok(c) = value.cast_exact::<pyo3::types::PyComplex>() {
            self.tag(tag::COMPLEX);
            self.out
                .extend_from_slice(&c.real().to_bits().to_le_bytes());
            self.out
                .extend_from_slice(&c.imag().to_bits().to_le_bytes());
        } else {
            self.unstable();
        }
        Ok(())
    }

    fn global(&mut self, value: &Bound<'py, PyAny>, depth: usize) -> PyResult<()> {
        self.tag(tag::GLOBAL);
        self.value(&value.getattr("__module__")?, depth + 1)?;
        self.value(&value.getattr("__qualname__")?, depth + 1)
    }

    /// A dict (already a private copy): its items in insertion order, which is part of what a
    /// dict is.
    fn mapping(&mut self, d: &Bound<'py, PyDict>, depth: usize) -> PyResult<()> {
        let items = d.items();
        if items.len() > MAX_ITEMS {
            self.unstable();
            return Ok(());
        }
        self.len(items.len());
        for item in items.iter() {
            let (k, v): (Bound<'py, PyAny>, Bound<'py, PyAny>) = item.extract()?;
            self.value(&k, depth + 1)?;
            self.value(&v, depth + 1)?;
        }
        Ok(())
    }

    /// A set: its elements' encodings, sorted bytewise (hash order depends on the process).
    /// Each element is described on its own, so what one element reaches does not change how
    /// another is written.
    fn set(&mut self, value: &Bound<'py, PyAny>, depth: usize) -> PyResult<()> {
        let mut parts = Vec::new();
        for item in value.try_iter()? {
            if parts.len() >= MAX_ITEMS {
                self.unstable();
                return Ok(());
            }
            let mut sub = Describer {
                out: Vec::new(),
                stable: true,
                seen: self.seen.clone(),
                held: Vec::new(),
            };
            sub.value(&item?, depth + 1)?;
            self.stable &= sub.stable;
            self.held.extend(sub.held);
            parts.push(sub.out);
        }
        parts.sort();
        self.len(parts.len());
        for part in parts {
            self.data(&part);
        }
        Ok(())
    }

    fn function(&mut self, f: &Bound<'py, PyAny>, depth: usize) -> PyResult<()> {
        let py = f.py();
        let fields = ffi::function_fields(f.cast::<pyo3::types::PyFunction>()?);
        if !super::function::has_bytecode(&fields, typerefs(py)) {
            // A PyPy builtin (`object.__new__` in every Enum): by module and qualname.
            return self.global(f, depth);
        }
        let code = f.getattr("__code__")?;
        self.tag(tag::FUNCTION);
        self.code(&code, depth + 1)?;
        for part in [
            "__name__",
            "__qualname__",
            "__module__",
            "__doc__",
            "__defaults__",
            "__kwdefaults__",
            "__closure__",
        ] {
            self.value(&f.getattr(part)?, depth + 1)?;
        }
        // Function attributes travel (`extra`), and decorators read them. (Read from the
        // slot: `f.__dict__` would create an empty dict.)
        match &fields.dict {
            Some(d) => self.value(d, depth + 1)?,
            None => self.tag(tag::NONE),
        }
        if fields.has_annotations || typerefs(py).lazy_annotations {
            self.value(&f.getattr("__annotations__")?, depth + 1)?;
        } else {
            self.tag(tag::NONE);
        }
        if typerefs(py).has_type_params {
            self.value(&f.getattr("__type_params__")?, depth + 1)?;
        }
        // The globals it reads travel with it, so they are part of what it is.
        let fglobals = f.getattr("__globals__")?.cast_into::<PyDict>()?;
        let names = globals::code_info(&code)?.global_names.bind(py).clone();
        let mut found = Vec::new();
        for name in names.iter() {
            if let Some(v) = fglobals.get_item(&name)? {
                found.push((name, v));
            }
        }
        self.len(found.len());
        for (name, v) in found {
            self.value(&name, depth + 1)?;
            self.value(&v, depth + 1)?;
        }
        Ok(())
    }

    /// What a code object does: its signature shape and flags (varargs, varkw, generator...),
    /// bytecode, exception table, constants and names. Its file name and line numbers are left
    /// out: they change tracebacks, not behaviour.
    fn code(&mut self, code: &Bound<'py, PyAny>, depth: usize) -> PyResult<()> {
        // Reading co_code of malformed bytecode overruns memory (code.rs, check_bytecode).
        super::code::check_bytecode(code)?;
        self.tag(tag::CODE);
        for part in [
            "co_argcount",
            "co_posonlyargcount",
            "co_kwonlyargcount",
            "co_flags",
            "co_nlocals",
        ] {
            self.value(&code.getattr(part)?, depth + 1)?;
        }
        for part in [
            "co_code",
            "co_consts",
            "co_names",
            "co_varnames",
            "co_freevars",
            "co_cellvars",
            "co_name",
        ] {
            self.value(&code.getattr(part)?, depth + 1)?;
        }
        // 3.11+ (absent on older interpreters and PyPy 3.9: written as None there).
        for part in ["co_qualname", "co_exceptiontable"] {
            match code.getattr_opt(part)? {
                Some(v) => self.value(&v, depth + 1)?,
                None => self.tag(tag::NONE),
            }
        }
        Ok(())
    }

    /// Anything else, by what its own `__reduce_ex__` says it is made of.
    fn reduced(&mut self, value: &Bound<'py, PyAny>, depth: usize) -> PyResult<()> {
        let Ok(reduced) = value.call_method1("__reduce_ex__", (4,)) else {
            self.unstable();
            return Ok(());
        };
        let type_name = value.get_type().fully_qualified_name()?;
        let parts = match reduced.cast_into::<PyTuple>() {
            Ok(parts) => parts,
            Err(e) => {
                // A string: the name of a module global, which is what the value is.
                let name = e.into_inner().str()?;
                self.tag(tag::REDUCED_NAME);
                self.str(&type_name)?;
                self.str(&name)?;
                return Ok(());
            }
        };
        self.tag(tag::REDUCED);
        self.str(&type_name)?;
        self.len(parts.len());
        for (i, part) in parts.iter().enumerate() {
            match i {
                // List and dict items come as one-shot iterators.
                3 | 4 if !part.is_none() => {
                    let mut items = Vec::new();
                    for item in part.try_iter()? {
                        if items.len() >= MAX_ITEMS {
                            self.unstable();
                            return Ok(());
                        }
                        items.push(item?);
                    }
                    self.tag(tag::LIST);
                    self.items(&PyTuple::new(value.py(), items)?, depth)?;
                }
                _ => self.value(&part, depth + 1)?,
            }
        }
        Ok(())
    }
}
