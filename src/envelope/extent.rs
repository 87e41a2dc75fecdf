//! Where one pickle ends, without running it: `satchel.load(file)` reads exactly one stream
//! (header, body, and a signature trailer if one follows) from a file that may hold more, so
//! that the stream can be verified (`key=`) and its header read before anything runs.
//!
//! Every opcode's argument says its own length (pickletools' `ArgumentDescriptor`s), so the
//! walk needs no state beyond its position. It reports what it needs to go on, so the reader
//! asks the file for no more than the stream holds: a whole frame or a whole long argument at
//! once, a line for the text opcodes of protocols 0-1.

/// How far a walk got.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// The pickle's STOP opcode ends just before this offset.
    Done(usize),
    /// The opcode at `at` needs the data to be at least `need` bytes long.
    More { at: usize, need: usize },
    /// The opcode at `at` has a newline-terminated argument that has not ended yet.
    Line { at: usize },
    /// Not a pickle: an opcode no protocol defines, or a length that cannot be.
    Bad(String),
}

/// The length of an opcode's argument, as pickletools describes it.
pub(super) enum Arg {
    None,
    Fixed(usize),
    /// A little-endian length of this many bytes, then that many bytes.
    Counted(usize),
    /// One newline-terminated line; two for GLOBAL and INST.
    Lines(usize),
}

pub(super) fn arg_of(op: u8) -> Option<Arg> {
    Some(match op {
        // MARK STOP POP POP_MARK DUP NONE EMPTY_LIST APPEND APPENDS BUILD DICT EMPTY_DICT
        // SETITEM SETITEMS LIST TUPLE EMPTY_TUPLE REDUCE OBJ BINPERSID
        b'(' | b'.' | b'0' | b'1' | b'2' | b'N' | b']' | b'a' | b'e' | b'b' | b'd' | b'}'
        | b's' | b'u' | b'l' | b't' | b')' | b'R' | b'o' | b'Q' => Arg::None,
        // NEWOBJ TUPLE1 TUPLE2 TUPLE3 NEWTRUE NEWFALSE EMPTY_SET ADDITEMS FROZENSET
        // NEWOBJ_EX STACK_GLOBAL MEMOIZE NEXT_BUFFER READONLY_BUFFER
        0x81 | 0x85 | 0x86 | 0x87 | 0x88 | 0x89 | 0x8f | 0x90 | 0x91 | 0x92 | 0x93 | 0x94
        | 0x97 | 0x98 => Arg::None,
        // BININT1 BINGET BINPUT PROTO EXT1
        b'K' | b'h' | b'q' | 0x80 | 0x82 => Arg::Fixed(1),
        // BININT2 EXT2
        b'M' | 0x83 => Arg::Fixed(2),
        // BININT LONG_BINGET LONG_BINPUT EXT4
        b'J' | b'j' | b'r' | 0x84 => Arg::Fixed(4),
        // BINFLOAT; FRAME (its length: the frame's opcodes follow and are walked as usual)
        b'G' | 0x95 => Arg::Fixed(8),
        // SHORT_BINSTRING SHORT_BINBYTES SHORT_BINUNICODE LONG1
        b'U' | b'C' | 0x8c | 0x8a => Arg::Counted(1),
        // BINSTRING BINBYTES BINUNICODE LONG4
        b'T' | b'B' | b'X' | 0x8b => Arg::Counted(4),
        // BINUNICODE8 BINBYTES8 BYTEARRAY8
        0x8d | 0x8e | 0x96 => Arg::Counted(8),
        // INT LONG FLOAT STRING UNICODE GET PUT PERSID
        b'I' | b'L' | b'F' | b'S' | b'V' | b'g' | b'p' | b'P' => Arg::Lines(1),
        // GLOBAL INST
        b'c' | b'i' => Arg::Lines(2),
        _ => return None,
    })
}

/// Walk `data` from `from` (an opcode boundary: 0, or an `at` a previous step returned).
pub fn walk(data: &[u8], from: usize) -> Step {
    let mut pos = from;
    loop {
        let at = pos;
        let Some(&op) = data.get(at) else {
            return Step::More { at, need: at + 1 };
        };
        let Some(arg) = arg_of(op) else {
            return Step::Bad(format!("unknown opcode 0x{op:02x} at byte {at}"));
        };
        pos = at + 1;
        match arg {
            Arg::None => {}
            Arg::Fixed(n) => {
                if data.len() < pos + n {
                    return Step::More { at, need: pos + n };
                }
                if op == 0x95 {
                    // FRAME: ask for the whole frame at once (its content is opcodes).
                    let mut len = [0u8; 8];
                    len.copy_from_slice(&data[pos..pos + 8]);
                    let Some(end) = usize::try_from(u64::from_le_bytes(len))
                        .ok()
                        .and_then(|n| (pos + 8).checked_add(n))
                    else {
                        return Step::Bad(format!("a frame too long at byte {at}"));
                    };
                    if data.len() < end {
                        return Step::More { at, need: end };
                    }
                }
                pos += n;
            }
            Arg::Counted(width) => {
                if data.len() < pos + width {
                    return Step::More {
                        at,
                        need: pos + width,
                    };
                }
                let mut len = [0u8; 8];
                len[..width].copy_from_slice(&data[pos..pos + width]);
                let n = u64::from_le_bytes(len);
                // LONG4 and BINSTRING lengths are signed: a negative one is not a pickle.
                if width == 4 && matches!(op, 0x8b | b'T') && n > i32::MAX as u64 {
                    return Step::Bad(format!("a negative length at byte {at}"));
                }
                let Some(end) = usize::try_from(n)
                    .ok()
                    .and_then(|n| (pos + width).checked_add(n))
                else {
                    return Step::Bad(format!("an argument too long at byte {at}"));
                };
                if data.len() < end {
                    return Step::More { at, need: end };
                }
                pos = end;
            }
            Arg::Lines(lines) => {
                for _ in 0..lines {
                    match data[pos..].iter().position(|&b| b == b'\n') {
                        Some(i) => pos += i + 1,
                        None => return Step::Line { at },
                    }
                }
            }
        }
        if op == b'.' {
            return Step::Done(pos);
        }
    }
}

/// `satchel._satchel._pickle_extent(data, at)`: `walk` for `python/satchel/_load.py`, as
/// `(0, end, 0)` done, `(1, at, need)` more bytes, `(2, at, 0)` a line.
#[pyo3::pyfunction]
pub fn _pickle_extent(
    data: &pyo3::Bound<'_, pyo3::PyAny>,
    at: usize,
) -> pyo3::PyResult<(u8, usize, usize)> {
    let py = data.py();
    let view = pyo3::buffer::PyBuffer::<u8>::get(data)?;
    if !view.is_c_contiguous() {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "a contiguous buffer is needed",
        ));
    }
    let bytes = crate::ffi::buffer_bytes(&view);
    match walk(bytes, at.min(bytes.len())) {
        Step::Done(end) => Ok((0, end, 0)),
        Step::More { at, need } => Ok((1, at, need)),
        Step::Line { at } => Ok((2, at, 0)),
        Step::Bad(reason) => Err(crate::error::Error::NotAPickle { reason }.into_pyerr(py)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_pickle_ends_after_stop() {
        // pickle.dumps([1, "a"], 2)
        let p = b"\x80\x02]q\x00(K\x01X\x01\x00\x00\x00aq\x01e.";
        assert_eq!(walk(p, 0), Step::Done(p.len()));
        let mut more = p.to_vec();
        more.extend_from_slice(b"\x80\x02N.");
        assert_eq!(walk(&more, 0), Step::Done(p.len()));
    }

    #[test]
    fn a_cut_pickle_says_what_it_needs() {
        let p = b"\x80\x02]q\x00(K\x01X\x01\x00\x00\x00aq\x01e.";
        // BINUNICODE at 8: first its 4-byte length, then the whole argument (ends at 14).
        assert_eq!(walk(&p[..12], 0), Step::More { at: 8, need: 13 });
        assert_eq!(walk(&p[..13], 8), Step::More { at: 8, need: 14 });
        assert_eq!(walk(&p[..14], 8), Step::More { at: 14, need: 15 });
        assert_eq!(walk(&p[..0], 0), Step::More { at: 0, need: 1 });
    }

    #[test]
    fn frames_are_asked_for_whole() {
        let mut p = vec![0x80, 4, 0x95];
        p.extend_from_slice(&3u64.to_le_bytes());
        p.extend_from_slice(b"K\x07.");
        assert_eq!(walk(&p[..12], 0), Step::More { at: 2, need: 14 });
        assert_eq!(walk(&p, 2), Step::Done(14));
    }

    #[test]
    fn text_opcodes_ask_for_lines() {
        let p = b"cbuiltins\nlen\n.";
        assert_eq!(walk(&p[..5], 0), Step::Line { at: 0 });
        assert_eq!(walk(&p[..10], 0), Step::Line { at: 0 });
        assert_eq!(walk(p, 0), Step::Done(p.len()));
    }

    #[test]
    fn garbage_is_not_a_pickle() {
        assert!(matches!(walk(b"\xff", 0), Step::Bad(_)));
        assert!(matches!(walk(b"\x8b\xff\xff\xff\xff", 0), Step::Bad(_)));
    }
}
