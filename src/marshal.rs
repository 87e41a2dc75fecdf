//! Canonical marshal bytes for code objects: the same code gives the same bytes in every
//! process, including one that loaded it from a stream (chained determinism: pickle a dynamic
//! function or class, load it elsewhere, pickle it again there, and get the same bytes).
//!
//! CPython's marshal writes two things that depend on the process rather than on the code:
//! - `FLAG_REF` (bit 7 of the type byte) on every object whose reference count is above 1
//!   (`w_ref` in Python/marshal.c), so a constant tuple the compiler shares with another
//!   function, or a `co_code` that someone read before (it is then cached), is flagged in one
//!   process and not in another; and back references (`TYPE_REF`) follow object identity;
//! - the interned variants of str (`t`, `A`, `Z`) for strings that happen to be interned, which
//!   differs between a freshly compiled code object and one loaded from marshal data.
//!
//! `canonical` re-encodes marshal data so that neither shows: strings are written in their
//! plain (not interned) form and shared **by value** (the first of several equal strings is
//! flagged, the others refer to it), and every other back reference is expanded into a copy.
//! What the data decodes to is unchanged, apart from the identity of equal constants (the code
//! constructor interns names again on load). On the whole standard library it is within 0.1%
//! of marshal's own size on CPython 3.11-3.15. Anything it does not recognise (an unknown type
//! code, trailing bytes, a back reference to nothing, too deep or too large an expansion) makes
//! it return None, and the caller keeps marshal's bytes: correct, only not canonical.
//!
//! The code object layout (`TYPE_CODE`) is the one CPython 3.11-3.15 write: five int32
//! (argcount, posonlyargcount, kwonlyargcount, stacksize, flags), eight objects (code, consts,
//! names, localsplusnames, localspluskinds, filename, name, qualname), int32 firstlineno, two
//! objects (linetable, exceptiontable). Callers enable this only on those versions.

use std::ops::Range;

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rustc_hash::FxHashMap;

const FLAG_REF: u8 = 0x80;
/// Deeper nesting than this (in the data or in an expansion) is left to marshal's own bytes.
const MAX_DEPTH: usize = 200;

enum Part {
    Bytes(Range<usize>),
    Node(usize),
}

enum Node {
    /// A type byte (without FLAG_REF), then parts in order.
    Other { ty: u8, parts: Vec<Part> },
    /// A str: its plain type byte, its length-and-data bytes, and the text (the sharing key).
    Str {
        ty: u8,
        body: Range<usize>,
        text: Range<usize>,
    },
}

struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    nodes: Vec<Node>,
    /// FLAG_REF'd objects in the order marshal numbers them (pre-order), as node indexes;
    /// None while the object is still being read.
    refs: Vec<Option<usize>>,
}

impl Parser<'_> {
    fn take(&mut self, n: usize) -> Option<Range<usize>> {
        let end = self.pos.checked_add(n)?;
        if end > self.data.len() {
            return None;
        }
        let range = self.pos..end;
        self.pos = end;
        Some(range)
    }

    fn byte(&mut self) -> Option<u8> {
        let r = self.take(1)?;
        Some(self.data[r.start])
    }

    fn i32(&mut self) -> Option<(Range<usize>, i32)> {
        let r = self.take(4)?;
        let v = i32::from_le_bytes(self.data[r.clone()].try_into().ok()?);
        Some((r, v))
    }

    fn count(&mut self) -> Option<(Range<usize>, usize)> {
        let (r, n) = self.i32()?;
        Some((r, usize::try_from(n).ok()?))
    }

    fn push(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn object(&mut self, depth: usize) -> Option<usize> {
        if depth > MAX_DEPTH {
            return None;
        }
        let code = self.byte()?;
        let ty = code & !FLAG_REF;
        let slot = (code & FLAG_REF != 0).then(|| {
            self.refs.push(None);
            self.refs.len() - 1
        });
        let mut parts = Vec::new();
        match ty {
            b'0' | b'N' | b'F' | b'T' | b'S' | b'.' => {}
            b'i' => parts.push(Part::Bytes(self.take(4)?)),
            b'I' | b'g' => parts.push(Part::Bytes(self.take(8)?)),
            b'y' => parts.push(Part::Bytes(self.take(16)?)),
            b'f' | b'x' => {
                // Text floats (and complexes, two of them): a length byte, then the text.
                for _ in 0..(if ty == b'f' { 1 } else { 2 }) {
                    let start = self.pos;
                    let n = self.byte()? as usize;
                    self.take(n)?;
                    parts.push(Part::Bytes(start..self.pos));
                }
            }
            b'l' => {
                let (head, n) = self.i32()?;
                let digits = self.take(2 * n.unsigned_abs() as usize)?;
                parts.push(Part::Bytes(head.start..digits.end));
            }
            b's' => {
                let (head, n) = self.count()?;
                let payload = self.take(n)?;
                parts.push(Part::Bytes(head.start..payload.end));
            }
            b't' | b'u' | b'a' | b'A' | b'z' | b'Z' => {
                let start = self.pos;
                let n = if matches!(ty, b'z' | b'Z') {
                    self.byte()? as usize
                } else {
                    self.count()?.1
                };
                let text = self.take(n)?;
                let plain = match ty {
                    b't' => b'u',
                    b'A' => b'a',
                    b'Z' => b'z',
                    other => other,
                };
                let node = self.push(Node::Str {
                    ty: plain,
                    body: start..text.end,
                    text,
                });
                return self.filled(slot, node);
            }
            b'(' | b'[' | b'<' | b'>' | b')' => {
                let (head, n) = if ty == b')' {
                    let start = self.pos;
                    (start..start + 1, self.byte()? as usize)
                } else {
                    self.count()?
                };
                parts.push(Part::Bytes(head));
                for _ in 0..n {
                    parts.push(Part::Node(self.object(depth + 1)?));
                }
            }
            b':' => {
                for _ in 0..3 {
                    parts.push(Part::Node(self.object(depth + 1)?));
                }
            }
            b'{' => loop {
                let key = self.object(depth + 1)?;
                parts.push(Part::Node(key));
                if matches!(&self.nodes[key], Node::Other { ty: b'0', .. }) {
                    break;
                }
                parts.push(Part::Node(self.object(depth + 1)?));
            },
            b'r' => {
                if slot.is_some() {
                    return None;
                }
                let (_, index) = self.count()?;
                return *self.refs.get(index)?;
            }
            b'c' => {
                parts.push(Part::Bytes(self.take(20)?));
                for _ in 0..8 {
                    parts.push(Part::Node(self.object(depth + 1)?));
                }
                parts.push(Part::Bytes(self.take(4)?));
                for _ in 0..2 {
                    parts.push(Part::Node(self.object(depth + 1)?));
                }
            }
            _ => return None,
        }
        let node = self.push(Node::Other { ty, parts });
        self.filled(slot, node)
    }

    fn filled(&mut self, slot: Option<usize>, node: usize) -> Option<usize> {
        if let Some(slot) = slot {
            self.refs[slot] = Some(node);
        }
        Some(node)
    }
}

struct Writer<'a> {
    data: &'a [u8],
    nodes: &'a [Node],
    /// How often each text occurs in the expanded tree.
    counts: FxHashMap<&'a [u8], u32>,
    /// Ref indexes given to texts written so far (flagged on first write).
    index: FxHashMap<&'a [u8], u32>,
    out: Vec<u8>,
    /// Nodes visited or bytes written so far, against `budget`.
    spent: usize,
    budget: usize,
}

impl<'a> Writer<'a> {
    fn count(&mut self, node: usize, depth: usize) -> Option<()> {
        self.spent += 1;
        if depth > 2 * MAX_DEPTH || self.spent > self.budget {
            return None;
        }
        match &self.nodes[node] {
            Node::Str { text, .. } => {
                *self.counts.entry(&self.data[text.clone()]).or_insert(0) += 1;
            }
            Node::Other { parts, .. } => {
                for part in parts {
                    if let Part::Node(child) = part {
                        self.count(*child, depth + 1)?;
                    }
                }
            }
        }
        Some(())
    }

    fn write(&mut self, node: usize) -> Option<()> {
        if self.out.len() > self.budget {
            return None;
        }
        match &self.nodes[node] {
            Node::Str { ty, body, text } => {
                let key = &self.data[text.clone()];
                if let Some(&i) = self.index.get(key) {
                    self.out.push(b'r');
                    self.out.extend_from_slice(&i.to_le_bytes());
                } else {
                    let shared = self.counts.get(key).is_some_and(|&n| n > 1);
                    if shared {
                        let i = u32::try_from(self.index.len()).ok()?;
                        self.index.insert(key, i);
                        self.out.push(ty | FLAG_REF);
                    } else {
                        self.out.push(*ty);
                    }
                    self.out.extend_from_slice(&self.data[body.clone()]);
                }
            }
            Node::Other { ty, parts } => {
                self.out.push(*ty);
                for part in parts {
                    match part {
                        Part::Bytes(r) => self.out.extend_from_slice(&self.data[r.clone()]),
                        Part::Node(child) => self.write(*child)?,
                    }
                }
            }
        }
        Some(())
    }
}

/// `data` (marshal bytes of one object) in canonical form, or None when it cannot be
/// canonicalised (then marshal's own bytes stand).
pub fn canonical(data: &[u8]) -> Option<Vec<u8>> {
    let mut parser = Parser {
        data,
        pos: 0,
        nodes: Vec::new(),
        refs: Vec::new(),
    };
    let root = parser.object(0)?;
    if parser.pos != data.len() {
        return None;
    }
    let mut writer = Writer {
        data,
        nodes: &parser.nodes,
        counts: FxHashMap::default(),
        index: FxHashMap::default(),
        out: Vec::with_capacity(data.len()),
        spent: 0,
        // Expanding back references may grow the data; not beyond this.
        budget: 4 * data.len() + 65536,
    };
    writer.count(root, 0)?;
    writer.write(root)?;
    Some(writer.out)
}

/// Whether this interpreter writes the code layout `canonical` knows (CPython 3.11-3.15; a new
/// version is added here once `tests/test_marshal.py`'s corpus check passes on it).
pub fn enabled(py: Python<'_>) -> bool {
    let v = py.version_info();
    !cfg!(PyPy) && (3, 11) <= (v.major, v.minor) && (v.major, v.minor) <= (3, 15)
}

/// `data` in canonical form where this interpreter allows it, else `data` itself.
pub fn canonical_bytes<'py>(data: Bound<'py, PyBytes>) -> Bound<'py, PyBytes> {
    let py = data.py();
    if !enabled(py) {
        return data;
    }
    match canonical(data.as_bytes()) {
        Some(out) if out.as_slice() != data.as_bytes() => PyBytes::new(py, &out),
        _ => data,
    }
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn unreferenced_flags_and_interning_are_dropped() {
        // (FLAG_REF|')' 2, FLAG_REF|'Z' "ab", 'z' "c")
        let data = b"\xa9\x02\xda\x02abz\x01c";
        assert_eq!(canonical(data).unwrap(), b")\x02z\x02abz\x01c");
    }

    #[test]
    fn equal_strings_are_shared_by_value() {
        // Two distinct equal strings, one interned: the first is flagged, the second refers.
        let data = b")\x02Z\x02abz\x02ab";
        assert_eq!(
            canonical(data).unwrap(),
            b")\x02\xfa\x02abr\x00\x00\x00\x00"
        );
        // Identity sharing that was there comes out the same.
        let shared = b")\x02\xda\x02abr\x00\x00\x00\x00";
        assert_eq!(
            canonical(shared).unwrap(),
            b")\x02\xfa\x02abr\x00\x00\x00\x00"
        );
    }

    #[test]
    fn other_back_references_are_expanded() {
        // (t, t) with t = (1,) shared by identity: written twice.
        let data = b")\x02\xa9\x01i\x01\x00\x00\x00r\x00\x00\x00\x00";
        assert_eq!(
            canonical(data).unwrap(),
            b")\x02)\x01i\x01\x00\x00\x00)\x01i\x01\x00\x00\x00"
        );
    }

    #[test]
    fn ref_indexes_count_only_shared_strings() {
        // ("x", "x", ("y", "y")) with a flagged, unreferenced tuple in between.
        let data = b")\x03\xfa\x01xr\x00\x00\x00\x00\xa9\x02\xfa\x01yr\x02\x00\x00\x00";
        assert_eq!(
            canonical(data).unwrap(),
            b")\x03\xfa\x01xr\x00\x00\x00\x00)\x02\xfa\x01yr\x01\x00\x00\x00"
        );
    }

    #[test]
    fn anything_unknown_is_refused() {
        assert!(canonical(b"").is_none());
        assert!(canonical(b"?").is_none());
        assert!(canonical(b"N\x00").is_none()); // trailing bytes
        assert!(canonical(b")\x01r\x00\x00\x00\x00").is_none()); // ref to nothing
        assert!(canonical(b"\xa9\x01r\x00\x00\x00\x00").is_none()); // ref to itself
        assert!(canonical(b"z\x05ab").is_none()); // truncated
        assert!(canonical(b"(\xff\xff\xff\xff").is_none()); // negative count
    }

    #[test]
    fn exponential_expansion_is_refused() {
        // t0 = (1,), t(k) = (t(k-1), t(k-1)) by reference: 2**40 leaves once expanded.
        fn level(k: u32, n: u32, out: &mut Vec<u8>) {
            if k == 0 {
                out.extend_from_slice(b"\xa9\x01i\x01\x00\x00\x00");
                return;
            }
            out.extend_from_slice(b"\xa9\x02");
            level(k - 1, n, out);
            out.push(b'r');
            out.extend_from_slice(&(n - k + 1).to_le_bytes());
        }
        let mut data = Vec::new();
        level(40, 40, &mut data);
        assert!(canonical(&data).is_none());
        // A few levels expand fine.
        let mut small = Vec::new();
        level(3, 3, &mut small);
        assert_eq!(
            canonical(&small).unwrap().len(),
            2 + 2 * (2 + 2 * (2 + 2 * 7))
        );
    }

    #[test]
    fn dicts_and_slices_round_trip() {
        let data = b"{z\x01az\x01bz\x01cZ\x01b0";
        assert_eq!(
            canonical(data).unwrap(),
            b"{z\x01a\xfa\x01bz\x01cr\x00\x00\x00\x000"
        );
        let slice = b":NNi\x02\x00\x00\x00";
        assert_eq!(canonical(slice).unwrap(), slice.to_vec());
    }
}
