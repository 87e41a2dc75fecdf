//! PyPy: whether PyPy's own unpickler (the RPython `_pickle`) can be handed a stream a damaged
//! copy of which could crash it. PyPy 8.0's unpickler trusts what it reads in places: it pushes
//! the empty slot of a memo read before anything was put there (a NULL the next opcode
//! dereferences), makes strs of SHORT_BINUNICODE's and GLOBAL's bytes without checking they are
//! UTF-8, lets GLOBAL name its private `pypy._builtin` helpers, and BUILDs into an object
//! without a `__dict__` by dereferencing the dict it does not have
//! (`pypy/module/_pickle/interp_pickle.py`). The first three can be seen without running the
//! stream; BUILD cannot (what it builds into comes from running it).
//!
//! So `fast_path_ok` walks the stream once and says yes only for what a protocol 2-5 pickler
//! writes apart from BUILD (satchel's function, closure and plain-data bodies): the binary
//! opcodes with self-describing arguments, memo reads of slots set earlier, text that is UTF-8,
//! GLOBAL naming anything but `pypy._builtin`. Everything else (BUILD, the text opcodes of
//! protocols 0-1, EXT, a truncated stream, ...) is unpickled by the pure-Python unpickler
//! (`satchel._pypy.SafeUnpickler`), whose checks are Python's. PyPy only; a pure function, so
//! that its unit tests run everywhere.

use super::extent::{arg_of, Arg};

/// Whether `data` (a pickle, from its first byte) may go to PyPy's own unpickler.
#[cfg_attr(not(PyPy), allow(dead_code))]
pub fn fast_path_ok(data: &[u8]) -> bool {
    let mut memo = Memo::default();
    let mut pos = 0;
    loop {
        let at = pos;
        let Some(&op) = data.get(at) else {
            return false; // truncated: the slow path says so precisely
        };
        let Some(arg) = arg_of(op) else {
            return false;
        };
        pos = at + 1;
        // The argument's bytes, for the opcodes that look at them.
        let (start, end) = match arg {
            Arg::None => (pos, pos),
            Arg::Fixed(n) => (pos, pos + n),
            Arg::Counted(width) => {
                let Some(len) = data.get(pos..pos + width) else {
                    return false;
                };
                let mut le = [0u8; 8];
                le[..width].copy_from_slice(len);
                let Some(end) = usize::try_from(u64::from_le_bytes(le))
                    .ok()
                    .and_then(|n| (pos + width).checked_add(n))
                else {
                    return false;
                };
                (pos + width, end)
            }
            Arg::Lines(_) => {
                // Only GLOBAL of the text opcodes: module and name, each UTF-8.
                if op != b'c' {
                    return false;
                }
                let Some((module, rest)) = line(data, pos) else {
                    return false;
                };
                let Some((name, next)) = line(data, rest) else {
                    return false;
                };
                if std::str::from_utf8(module).is_err()
                    || std::str::from_utf8(name).is_err()
                    || module == b"pypy._builtin"
                {
                    return false;
                }
                pos = next;
                continue;
            }
        };
        if end > data.len() {
            return false;
        }
        let arg = &data[start..end];
        // FRAME: a length no longer than what follows (PyPy reads a length of 2**63 or more
        // into a machine int, a fatal RPython OverflowError).
        if op == 0x95 && le_index(arg) > data.len() - end {
            return false;
        }
        match op {
            // PROTO FRAME (its opcodes follow inline) STOP MARK POP POP_MARK DUP NONE NEWTRUE
            // NEWFALSE BININT BININT1 BININT2 LONG1 LONG4 BINFLOAT
            0x80 | 0x95 | b'(' | b'0' | b'1' | b'2' | b'N' | 0x88 | 0x89 | b'J' | b'K' | b'M'
            | 0x8a | 0x8b | b'G' => {}
            b'.' => return true,
            // BINBYTES SHORT_BINBYTES BINBYTES8 BYTEARRAY8
            b'B' | b'C' | 0x8e | 0x96 => {}
            // BINUNICODE SHORT_BINUNICODE BINUNICODE8: UTF-8 (a lone surrogate, which pickle
            // writes with surrogatepass, takes the slow path)
            b'X' | 0x8c | 0x8d => {
                if std::str::from_utf8(arg).is_err() {
                    return false;
                }
            }
            // EMPTY_TUPLE TUPLE TUPLE1-3 EMPTY_LIST LIST APPEND APPENDS EMPTY_DICT DICT SETITEM
            // SETITEMS EMPTY_SET ADDITEMS FROZENSET
            b')' | b't' | 0x85 | 0x86 | 0x87 | b']' | b'l' | b'a' | b'e' | b'}' | b'd' | b's'
            | b'u' | 0x8f | 0x90 | 0x91 => {}
            // STACK_GLOBAL REDUCE NEWOBJ NEWOBJ_EX BINPERSID NEXT_BUFFER READONLY_BUFFER
            0x93 | b'R' | 0x81 | 0x92 | b'Q' | 0x97 | 0x98 => {}
            // MEMOIZE: the next slot
            0x94 => {
                let next = memo.next;
                memo.set(next, data.len());
                memo.next += 1;
            }
            // BINPUT LONG_BINPUT: a slot no further than a pickler could number (a huge
            // index would make PyPy grow its memo list to it)
            b'q' | b'r' => {
                if !memo.set(le_index(arg), data.len()) {
                    return false;
                }
            }
            // BINGET LONG_BINGET: only a slot set earlier
            b'h' | b'j' => {
                if !memo.is_set(le_index(arg)) {
                    return false;
                }
            }
            // BUILD, OBJ, BINPERSID's text twin, EXT1-4, BINSTRING, SHORT_BINSTRING, ...
            _ => return false,
        }
        pos = end;
    }
}

fn le_index(arg: &[u8]) -> usize {
    let mut le = [0u8; 8];
    le[..arg.len()].copy_from_slice(arg);
    usize::try_from(u64::from_le_bytes(le)).unwrap_or(usize::MAX)
}

/// The line at `pos` (without its newline) and where the next begins.
fn line(data: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = data.get(pos..)?;
    let n = rest.iter().position(|&b| b == b'\n')?;
    Some((&rest[..n], pos + n + 1))
}

/// The memo slots set so far, as bits.
#[derive(Default)]
struct Memo {
    bits: Vec<u64>,
    next: usize,
}

impl Memo {
    /// Set slot `i`; false if it is beyond what a stream of `len` bytes could number.
    fn set(&mut self, i: usize, len: usize) -> bool {
        if i > len {
            return false;
        }
        let word = i / 64;
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        self.bits[word] |= 1 << (i % 64);
        true
    }

    fn is_set(&self, i: usize) -> bool {
        self.bits
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::fast_path_ok;

    #[test]
    fn what_a_protocol_5_pickler_writes_without_build_is_fast() {
        // pickle.dumps([1, "a", {"b": (None, True)}, b"x", 1.5], 5)
        let p = b"\x80\x05\x95\x22\x00\x00\x00\x00\x00\x00\x00]\x94(K\x01\x8c\x01a\x94}\x94\x8c\x01b\x94N\x88\x86\x94sC\x01x\x94G?\xf8\x00\x00\x00\x00\x00\x00e.";
        assert!(fast_path_ok(p));
        // GLOBAL and memo reads of set slots (protocol 2).
        assert!(fast_path_ok(b"\x80\x02cbuiltins\nlen\nq\x00h\x00\x85."));
    }

    #[test]
    fn the_known_crashes_of_pypy_unpickler_are_not() {
        // BUILD into a set; a memo slot read before it was set; non-UTF-8 text; pypy's helpers.
        assert!(!fast_path_ok(b"\x8fK\x01b."));
        assert!(!fast_path_ok(b"h\x00\x8c\x01a\x93."));
        assert!(!fast_path_ok(b"h\x00."));
        assert!(!fast_path_ok(b"\x94h\x01."));
        assert!(!fast_path_ok(b"\x8c\x02\xff\xfe."));
        assert!(!fast_path_ok(b"cbuiltins\nle\xffn\n."));
        assert!(!fast_path_ok(b"cpypy._builtin\n_ascii_list_unpickle\n."));
        assert!(!fast_path_ok(b"r\xff\xff\xff\xffN."));
        // A frame longer than the stream (its length read into a machine int: 2**63 is fatal).
        assert!(!fast_path_ok(
            b"\x80\x05\x95\x00\x00\x00\x00\x00\x00\x00\x80N."
        ));
        assert!(!fast_path_ok(
            b"\x80\x05\x95\x03\x00\x00\x00\x00\x00\x00\x00N."
        ));
        assert!(fast_path_ok(
            b"\x80\x05\x95\x02\x00\x00\x00\x00\x00\x00\x00N."
        ));
    }

    #[test]
    fn text_opcodes_truncation_and_trailing_bytes() {
        assert!(!fast_path_ok(b"L1\n."));
        assert!(!fast_path_ok(b"g0\n."));
        assert!(!fast_path_ok(b"\x80\x05K"));
        assert!(!fast_path_ok(b"\x8c\x05ab."));
        assert!(!fast_path_ok(b""));
        // What follows STOP (a signature trailer) is not read.
        assert!(fast_path_ok(b"N.SATCHEL-SIG1\xff"));
    }
}
