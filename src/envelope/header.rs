//! The header: a short pickle-opcode prefix before the body. It never uses the memo and leaves
//! the stack as it found it, so the body is exactly what the C pickler wrote.
//!
//! ```text
//! [PROTO p]            compressed streams only: the body opens with its own PROTO
//! lean (format 1.5):   GLOBAL '<LEAN_MODULE>'.c  SHORT_BINBYTES packed  TUPLE1 REDUCE POP
//!                      packed = major minor patch flags fingerprint[16] producer[5] (25 bytes;
//!                      producer: b'c'/b'p', language major, minor, bytecode u16 LE)
//!                      (protocols 0-1, or no packed label: MARK version flags fingerprint
//!                      producer TUPLE REDUCE, the 1.4 arguments)
//! lean (format 1.4):   GLOBAL '<LEAN_MODULE_1_4>'.c  MARK version flags fingerprint producer
//!                      TUPLE REDUCE POP    (producer compact: "cp311/3495", fingerprint.rs)
//! standalone:          GLOBAL builtins.exec (zlib.decompress(blob), {"V": version}) REDUCE POP
//!                      GLOBAL _satchel_boot_1.check  MARK ... (as 1.4's)
//! ```
//! A lean header names its check through `wire::LEAN_MODULE`, whose name is the message a receiver
//! without satchel 1.5+ reads: `No module named 'satchel 1_5+ or standalone=True'` (a 1.4
//! receiver has only `LEAN_MODULE_1_4`, whose check takes four arguments). Streams before format
//! 1.4 named `_satchel_boot_1.check` there; all three are read.
//! A compressed stream continues with `GLOBAL _satchel_boot_1.load_zstd (frame) REDUCE STOP`,
//! or, when it has out-of-band buffers (format 1.3), `GLOBAL _satchel_boot_1.load_zstd_buffers
//! MARK frame (MARK flags itemsize chunk... TUPLE)... TUPLE REDUCE STOP`;
//! an uncompressed one with the body (PROTO ... STOP).

use crate::envelope::fingerprint::{label_of_compact, label_of_packed, Fingerprint, PACKED_LABEL};

use crate::wire::{BOOT_MODULE, LEAN_MODULE};
pub use crate::wire::{
    FLAG_COMPRESSED, FLAG_GENERATORS, FLAG_NONPORTABLE, FLAG_STANDALONE, FLAG_STREAMED,
};

/// How a lean header's first global starts (GLOBAL opcode, module line).
const LEAN_OPENING: &[u8] = concat!("c", lean_module!(), "\n").as_bytes();
/// The attribute of LEAN_MODULE the lean header calls (one byte: the header's budget).
pub const LEAN_CHECK: &str = "c";
/// A lean header's whole first global, as bytes (parsed without allocating).
const LEAN_GLOBAL: &[u8] = concat!("c", lean_module!(), "\nc\n").as_bytes();
/// Format 1.4's lean header's opening and first global.
const LEAN_OPENING_1_4: &[u8] = concat!("c", lean_module_1_4!(), "\n").as_bytes();
const LEAN_GLOBAL_1_4: &[u8] = concat!("c", lean_module_1_4!(), "\nc\n").as_bytes();
/// A packed lean header's argument: version (3), flags, fingerprint (16), producer.
pub const PACKED_LEN: usize = 3 + 1 + 16 + PACKED_LABEL;

/// `FORMAT_VERSION`'s three numbers as a packed header writes them, when each fits a byte.
fn packed_version(version: &str) -> Option<[u8; 3]> {
    let mut parts = version.split('.').map(|p| p.parse::<u8>().ok());
    let v = [parts.next()??, parts.next()??, parts.next()??];
    parts.next().is_none().then_some(v)
}

// Pickle opcodes used here (Lib/pickle.py names).
const PROTO: u8 = 0x80;
const FRAME: u8 = 0x95;
const GLOBAL: u8 = b'c';
const MARK: u8 = b'(';
const TUPLE: u8 = b't';
const TUPLE1: u8 = 0x85;
const REDUCE: u8 = b'R';
const POP: u8 = b'0';
const STOP: u8 = b'.';
const EMPTY_DICT: u8 = b'}';
const SETITEM: u8 = b's';
const SHORT_BINUNICODE: u8 = 0x8c;
const BINUNICODE: u8 = b'X';
const UNICODE: u8 = b'V';
const SHORT_BINBYTES: u8 = b'C';
const BINBYTES: u8 = b'B';
const BINBYTES8: u8 = 0x8e;
const BININT1: u8 = b'K';
const INT: u8 = b'I';

/// What the header of a stream says.
#[derive(Debug, Clone)]
pub struct Header {
    pub protocol: Option<u8>,
    pub version: String,
    pub flags: u8,
    pub fingerprint: Vec<u8>,
    pub producer: String,
    pub standalone_payload: usize,
    /// Bytes before the body (or before the compressed frame's wrapper).
    pub header_len: usize,
    /// For a compressed stream, where the zstd frame is.
    pub compressed: Option<(usize, usize)>,
    /// A compressed stream's out-of-band buffers (envelope/buffers.rs), in the body's order.
    pub buffers: Vec<BufferSpec>,
    /// The fingerprint as the stream wrote it: bytes, or hex text below protocol 2.
    pub fingerprint_is_text: bool,
}

/// One out-of-band buffer of a compressed stream: its flags, the element size its chunks are
/// shuffled by (1: not shuffled), and where each chunk's zstd frame is.
#[derive(Debug, Clone)]
pub struct BufferSpec {
    pub flags: u8,
    pub itemsize: u8,
    /// Format 1.4 (`FLAG_CHECKED`): where the buffer's check is.
    pub check: Option<(usize, usize)>,
    pub chunks: Vec<(usize, usize)>,
}

impl BufferSpec {
    /// The spec with its chunks as slices of the stream `data` it was parsed from.
    pub fn slices<'a>(&self, data: &'a [u8]) -> crate::envelope::buffers::Encoded<'a> {
        crate::envelope::buffers::Encoded {
            flags: self.flags,
            itemsize: self.itemsize,
            check: self.check.map(|(start, n)| &data[start..start + n]),
            chunks: self
                .chunks
                .iter()
                .map(|&(start, n)| &data[start..start + n])
                .collect(),
        }
    }
}

struct Writer {
    out: Vec<u8>,
    protocol: u8,
}

impl Writer {
    fn global(&mut self, module: &str, name: &str) {
        self.out.push(GLOBAL);
        self.out.extend_from_slice(module.as_bytes());
        self.out.push(b'\n');
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'\n');
    }

    // From protocol 2 on the header uses the short binary opcodes whatever the protocol (the
    // unpickler accepts every opcode it knows; the body keeps the requested protocol's).
    fn str(&mut self, s: &str) {
        if self.protocol >= 2 && s.len() < 256 {
            self.out.push(SHORT_BINUNICODE);
            self.out.push(s.len() as u8);
        } else if self.protocol >= 1 {
            self.out.push(BINUNICODE);
            self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        } else {
            // Protocol 0 text: header strings are ASCII without newlines or backslashes.
            self.out.push(UNICODE);
            self.out.extend_from_slice(s.as_bytes());
            self.out.push(b'\n');
            return;
        }
        self.out.extend_from_slice(s.as_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        self.bytes_opcode(b.len());
        self.out.extend_from_slice(b);
    }

    /// The opcode and length of a bytes argument of `len` bytes, without the bytes.
    fn bytes_opcode(&mut self, len: usize) {
        if len < 256 {
            self.out.push(SHORT_BINBYTES);
            self.out.push(len as u8);
        } else if len <= u32::MAX as usize {
            self.out.push(BINBYTES);
            self.out.extend_from_slice(&(len as u32).to_le_bytes());
        } else {
            self.out.push(BINBYTES8);
            self.out.extend_from_slice(&(len as u64).to_le_bytes());
        }
    }

    fn int(&mut self, n: u8) {
        if self.protocol >= 1 {
            self.out.push(BININT1);
            self.out.push(n);
        } else {
            self.out.push(INT);
            self.out.extend_from_slice(n.to_string().as_bytes());
            self.out.push(b'\n');
        }
    }
}

/// The header bytes. `standalone` is the zlib blob of the loader and the bootstrap; it needs
/// protocol >= 3 (bytes), which the caller enforces.
pub fn build(
    protocol: u8,
    flags: u8,
    version: &str,
    fp: &Fingerprint,
    standalone: Option<&[u8]>,
) -> Vec<u8> {
    let mut w = Writer {
        out: Vec::with_capacity(128),
        protocol,
    };
    if let Some(blob) = standalone {
        w.global("builtins", "exec");
        w.out.push(MARK);
        w.global("zlib", "decompress");
        w.bytes(blob);
        w.out.push(TUPLE1);
        w.out.push(REDUCE);
        w.out.push(EMPTY_DICT);
        w.str("V");
        w.str(version);
        w.out.push(SETITEM);
        w.out.push(TUPLE);
        w.out.push(REDUCE);
        w.out.push(POP);
    }
    if standalone.is_some() {
        w.global(BOOT_MODULE, "check");
    } else {
        w.global(LEAN_MODULE, LEAN_CHECK);
        // Format 1.5: one bytes argument (25 bytes) instead of four (43), where the producer
        // has a packed label (CPython, PyPy) and the protocol has bytes opcodes.
        if let (true, Some(label), Some(v)) = (protocol >= 2, fp.packed, packed_version(version)) {
            let mut packed = Vec::with_capacity(PACKED_LEN);
            packed.extend_from_slice(&v);
            packed.push(flags);
            packed.extend_from_slice(&fp.digest);
            packed.extend_from_slice(&label);
            w.bytes(&packed);
            w.out.extend_from_slice(&[TUPLE1, REDUCE, POP]);
            return with_proto(w.out, protocol, flags);
        }
    }
    w.out.push(MARK);
    w.str(version);
    w.int(flags);
    if protocol >= 2 {
        w.bytes(&fp.digest);
    } else {
        let hex: String = fp.digest.iter().map(|b| format!("{b:02x}")).collect();
        w.str(&hex);
    }
    // A lean header names its producer compactly where it can (7 of its bytes): every 1.4
    // reader passes the label through to its mismatch message, and this one expands it
    // (`parse`, `unwrap::lean_check`). A standalone header keeps the full label, which its own
    // bootstrap's check prints as it is.
    match (&fp.compact, standalone) {
        (Some(compact), None) => w.str(compact),
        _ => w.str(&fp.label),
    }
    w.out.push(TUPLE);
    w.out.push(REDUCE);
    w.out.push(POP);
    with_proto(w.out, protocol, flags)
}

/// The header's opcodes `ops`, after a PROTO where it needs one.
fn with_proto(ops: Vec<u8>, protocol: u8, flags: u8) -> Vec<u8> {
    // No FRAME: the body that follows starts its own framing, and a frame here would only add
    // nine bytes to every stream. No PROTO either when the body follows: the body opens with
    // its own, which is where the protocol's rules begin to matter (the header's opcodes are
    // read alike at every protocol), and two bytes of every stream are saved. A compressed
    // stream has no PROTO after the header, so its header keeps one.
    if protocol >= 2 && flags & FLAG_COMPRESSED != 0 {
        let mut out = Vec::with_capacity(ops.len() + 2);
        out.extend_from_slice(&[PROTO, protocol]);
        out.extend_from_slice(&ops);
        return out;
    }
    ops
}

/// Whether a packed header's version bytes are this reader's `FORMAT_VERSION`.
pub fn is_current_packed(version: &[u8]) -> bool {
    static OURS: std::sync::OnceLock<Option<[u8; 3]>> = std::sync::OnceLock::new();
    OURS.get_or_init(|| packed_version(crate::wire::FORMAT_VERSION))
        .is_some_and(|ours| ours == version)
}

/// The packed argument of a format 1.5 lean header: (version, flags, fingerprint, producer).
/// A version newer than this reader's may pack something else: it comes back with no flags,
/// fingerprint or producer, for the check to refuse by its version.
pub fn unpack(packed: &[u8]) -> Option<(String, u8, &[u8], String)> {
    let [major, minor, patch] = *packed.get(..3)? else {
        return None;
    };
    let version = format!("{major}.{minor}.{patch}");
    let ours = packed_version(crate::wire::FORMAT_VERSION)?;
    if major != ours[0] || minor > ours[1] {
        return Some((version, 0, &[], String::new()));
    }
    if packed.len() != PACKED_LEN {
        return None;
    }
    let producer = label_of_packed(&packed[20..])?;
    Some((version, packed[3], &packed[4..20], producer))
}

/// The opcodes that wrap a compressed body: `load_zstd(frame)`, or with out-of-band buffers
/// `load_zstd_buffers(frame, *buffers)`, as the stream's value,
/// as pieces to write in order: opcodes, and the frames themselves (moved, not copied).
pub fn compressed_wrapper(
    protocol: u8,
    frame: Vec<u8>,
    buffers: Vec<crate::envelope::buffers::Packed>,
) -> Vec<Vec<u8>> {
    let mut pieces = Vec::new();
    let mut w = Writer {
        out: Vec::new(),
        protocol,
    };
    // The opcodes so far, then a frame's bytes as a piece of its own.
    let bytes = |w: &mut Writer, data: Vec<u8>, pieces: &mut Vec<Vec<u8>>| {
        w.bytes_opcode(data.len());
        pieces.push(std::mem::take(&mut w.out));
        pieces.push(data);
    };
    if buffers.is_empty() {
        w.global(BOOT_MODULE, "load_zstd");
        bytes(&mut w, frame, &mut pieces);
        w.out.push(TUPLE1);
    } else {
        w.global(BOOT_MODULE, "load_zstd_buffers");
        w.out.push(MARK);
        bytes(&mut w, frame, &mut pieces);
        for b in buffers {
            w.out.push(MARK);
            w.int(b.flags);
            w.int(b.itemsize);
            if b.flags & crate::envelope::buffers::FLAG_CHECKED != 0 {
                w.bytes(&b.check);
            }
            for chunk in b.frames {
                bytes(&mut w, chunk, &mut pieces);
            }
            w.out.push(TUPLE);
        }
        w.out.push(TUPLE);
    }
    w.out.push(REDUCE);
    w.out.push(STOP);
    pieces.push(w.out);
    pieces
}

/// Why a header could not be read.
pub enum ParseError {
    /// Not a satchel stream (a plain pickle): no header to read.
    NotSatchel,
    Corrupt(String),
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn err<T>(&self, what: &str) -> Result<T, ParseError> {
        Err(ParseError::Corrupt(format!("{what} at byte {}", self.pos)))
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        match self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
        {
            Some(end) => {
                let s = &self.data[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => self.err("truncated"),
        }
    }

    fn byte(&mut self) -> Result<u8, ParseError> {
        Ok(self.take(1)?[0])
    }

    fn expect(&mut self, op: u8, what: &str) -> Result<(), ParseError> {
        if self.byte()? != op {
            self.pos -= 1;
            return self.err(&format!("expected {what}"));
        }
        Ok(())
    }

    fn line(&mut self) -> Result<&'a [u8], ParseError> {
        let rest = &self.data[self.pos..];
        match rest.iter().take(256).position(|&b| b == b'\n') {
            Some(i) => {
                let s = &rest[..i];
                self.pos += i + 1;
                Ok(s)
            }
            // The data ended inside the line: cut short, like any other truncation.
            None if rest.len() < 256 => self.err("truncated"),
            None => self.err("unterminated line"),
        }
    }

    fn u32(&mut self) -> Result<usize, ParseError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn u64(&mut self) -> Result<u64, ParseError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn global(&mut self) -> Result<(String, String), ParseError> {
        self.expect(GLOBAL, "GLOBAL")?;
        let module = std::str::from_utf8(self.line()?).map(str::to_owned);
        let name = std::str::from_utf8(self.line()?).map(str::to_owned);
        match (module, name) {
            (Ok(m), Ok(n)) => Ok((m, n)),
            _ => self.err("invalid UTF-8 in a global name"),
        }
    }

    fn str(&mut self) -> Result<String, ParseError> {
        let raw = match self.byte()? {
            SHORT_BINUNICODE => {
                let n = self.byte()? as usize;
                self.take(n)?
            }
            BINUNICODE => {
                let n = self.u32()?;
                self.take(n)?
            }
            UNICODE => self.line()?,
            _ => {
                self.pos -= 1;
                return self.err("expected a string");
            }
        };
        match std::str::from_utf8(raw) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => self.err("invalid UTF-8 in a string"),
        }
    }

    /// A bytes argument: (start, len) in the data.
    fn bytes(&mut self) -> Result<(usize, usize), ParseError> {
        let n = match self.byte()? {
            SHORT_BINBYTES => self.byte()? as usize,
            BINBYTES => self.u32()?,
            BINBYTES8 => match usize::try_from(self.u64()?) {
                Ok(n) => n,
                Err(_) => return self.err("bytes too long"),
            },
            _ => {
                self.pos -= 1;
                return self.err("expected bytes");
            }
        };
        let start = self.pos;
        self.take(n)?;
        Ok((start, n))
    }

    fn int(&mut self) -> Result<u8, ParseError> {
        match self.byte()? {
            BININT1 => self.byte(),
            INT => {
                // Canonical decimal only (what satchel writes): the unpickler reads INT with
                // strtol base 0, so b"010" is 8 to it and 10 to a decimal parser; a leading
                // zero, a sign or a space would let the two read one stream apart.
                let line = self.line()?;
                let canonical = !line.is_empty()
                    && line.iter().all(u8::is_ascii_digit)
                    && (line.len() == 1 || line[0] != b'0');
                match std::str::from_utf8(line)
                    .ok()
                    .filter(|_| canonical)
                    .and_then(|s| s.parse::<u8>().ok())
                {
                    Some(n) => Ok(n),
                    None => self.err("bad flags"),
                }
            }
            _ => {
                self.pos -= 1;
                self.err("expected flags")
            }
        }
    }
}

/// The standalone block after its GLOBAL builtins.exec: the payload size and the next global.
fn standalone_block(r: &mut Reader<'_>) -> Result<(usize, (String, String)), ParseError> {
    r.expect(MARK, "MARK")?;
    if r.global()? != ("zlib".to_owned(), "decompress".to_owned()) {
        return r.err("expected the standalone payload");
    }
    let n = r.bytes()?.1;
    for (op, what) in [
        (TUPLE1, "TUPLE1"),
        (REDUCE, "REDUCE"),
        (EMPTY_DICT, "EMPTY_DICT"),
    ] {
        r.expect(op, what)?;
    }
    if r.str()? != "V" {
        return r.err("expected the payload version");
    }
    r.str()?;
    for (op, what) in [
        (SETITEM, "SETITEM"),
        (TUPLE, "TUPLE"),
        (REDUCE, "REDUCE"),
        (POP, "POP"),
    ] {
        r.expect(op, what)?;
    }
    r.global().map(|g| (n, g))
}

/// Read the header of `data` without running anything.
pub fn parse(data: &[u8]) -> Result<Header, ParseError> {
    let mut r = Reader { data, pos: 0 };
    let mut protocol = None;
    if r.peek() == Some(PROTO) {
        r.byte()?;
        let p = r.byte()?;
        if p > 5 {
            return Err(ParseError::NotSatchel);
        }
        protocol = Some(p);
    }
    if r.peek() == Some(FRAME) {
        r.byte()?;
        r.u64()?;
    }
    if r.peek() != Some(GLOBAL) {
        return Err(ParseError::NotSatchel);
    }
    let mut standalone_payload = 0;
    // Only satchel's own first global makes this a satchel stream; any other (a plain pickle
    // that names something in _satchel_boot_1, a long protocol-0 module name) is not one. Bytes
    // that stop inside one of satchel's own opening globals are a truncated satchel header.
    let rest = &data[r.pos..];
    let opening: [&[u8]; 4] = [
        b"c_satchel_boot_",
        b"cbuiltins\nexec\n",
        LEAN_OPENING,
        LEAN_OPENING_1_4,
    ];
    let cut_short = opening
        .iter()
        .any(|o| rest.len() < o.len() && o.starts_with(rest));
    if rest.starts_with(LEAN_GLOBAL) {
        // The common case, a lean header (format 1.5+): its module stands for the bootstrap of
        // format major 1.
        r.pos += LEAN_GLOBAL.len();
        if matches!(r.peek(), Some(SHORT_BINBYTES) | Some(BINBYTES)) {
            let (start, n) = r.bytes()?;
            let Some((version, flags, fp, producer)) = unpack(&data[start..start + n]) else {
                return r.err("bad packed header");
            };
            let fingerprint = fp.to_vec();
            for (op, what) in [(TUPLE1, "TUPLE1"), (REDUCE, "REDUCE"), (POP, "POP")] {
                r.expect(op, what)?;
            }
            return after_check(r, protocol, version, flags, fingerprint, false, producer, 0);
        }
    } else if rest.starts_with(LEAN_GLOBAL_1_4) {
        // Format 1.4's lean header.
        r.pos += LEAN_GLOBAL_1_4.len();
    } else {
        let (module, name) = match r.global() {
            Ok(g) => g,
            Err(e)
                if cut_short
                    || opening
                        .iter()
                        .any(|o| o != &opening[1] && rest.starts_with(o)) =>
            {
                return Err(e)
            }
            Err(_) => return Err(ParseError::NotSatchel),
        };
        let ours = (module.as_str(), name.as_str()) == ("builtins", "exec")
            || (module.starts_with("_satchel_boot_") && name == "check");
        if !ours {
            return Err(ParseError::NotSatchel);
        }
        let (module, name) = if (module.as_str(), name.as_str()) == ("builtins", "exec") {
            // The standalone block; anything else that starts with builtins.exec is not ours.
            match standalone_block(&mut r) {
                Ok((n, global)) => {
                    standalone_payload = n;
                    global
                }
                // Cut short, it is a damaged header; shaped otherwise, it is not satchel's.
                Err(ParseError::Corrupt(reason)) if reason.starts_with("truncated") => {
                    return Err(ParseError::Corrupt(reason))
                }
                Err(_) => return Err(ParseError::NotSatchel),
            }
        } else {
            (module, name)
        };
        let Some(major) = module.strip_prefix("_satchel_boot_") else {
            return Err(ParseError::NotSatchel);
        };
        if major.is_empty() || !major.bytes().all(|b| b.is_ascii_digit()) {
            return r.err("bad bootstrap module name");
        }
        if name != "check" {
            return r.err("expected the header check");
        }
    }
    r.expect(MARK, "MARK")?;
    let version = r.str()?;
    let flags = r.int()?;
    let fingerprint_is_text = !matches!(r.peek(), Some(SHORT_BINBYTES) | Some(BINBYTES));
    let fingerprint = match r.peek() {
        Some(SHORT_BINBYTES) | Some(BINBYTES) => {
            let (start, n) = r.bytes()?;
            data[start..start + n].to_vec()
        }
        _ => {
            let hex = r.str()?;
            match (0..hex.len())
                .step_by(2)
                .map(|i| {
                    hex.get(i..i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                })
                .collect::<Option<Vec<u8>>>()
            {
                Some(v) => v,
                None => return r.err("bad fingerprint"),
            }
        }
    };
    let producer = r.str()?;
    // A compact label (a lean header's, "cp311/3495") stands for the full one.
    let producer = label_of_compact(&producer).unwrap_or(producer);
    for (op, what) in [(TUPLE, "TUPLE"), (REDUCE, "REDUCE"), (POP, "POP")] {
        r.expect(op, what)?;
    }
    after_check(
        r,
        protocol,
        version,
        flags,
        fingerprint,
        fingerprint_is_text,
        producer,
        standalone_payload,
    )
}

/// The rest of `parse`, once the check's call is read: where the body is, or the compressed
/// wrapper and its buffers.
#[allow(clippy::too_many_arguments)]
fn after_check(
    mut r: Reader<'_>,
    mut protocol: Option<u8>,
    version: String,
    flags: u8,
    fingerprint: Vec<u8>,
    fingerprint_is_text: bool,
    producer: String,
    standalone_payload: usize,
) -> Result<Header, ParseError> {
    let data = r.data;
    let header_len = r.pos;
    // A header followed by its body has no PROTO (satchel 1.5 on): the body's own says.
    if protocol.is_none() && data.get(header_len) == Some(&PROTO) {
        protocol = data.get(header_len + 1).copied().filter(|&p| p <= 5);
    }
    let mut compressed = None;
    let mut buffers = Vec::new();
    if flags & FLAG_COMPRESSED != 0 {
        let (_, name) = r.global()?;
        if name == "load_zstd_buffers" {
            r.expect(MARK, "MARK")?;
            compressed = Some(r.bytes()?);
            while r.peek() == Some(MARK) {
                r.pos += 1;
                let flags = r.int()?;
                let itemsize = r.int()?;
                let check = if flags & crate::envelope::buffers::FLAG_CHECKED != 0
                    && r.peek() != Some(TUPLE)
                {
                    Some(r.bytes()?)
                } else {
                    None
                };
                let mut chunks = Vec::new();
                while r.peek() != Some(TUPLE) {
                    chunks.push(r.bytes()?);
                }
                r.pos += 1;
                buffers.push(BufferSpec {
                    flags,
                    itemsize,
                    check,
                    chunks,
                });
            }
            r.expect(TUPLE, "TUPLE")?;
        } else if name == "load_zstd" {
            compressed = Some(r.bytes()?);
            r.expect(TUPLE1, "TUPLE1")?;
        } else {
            return r.err("expected the compressed body");
        }
        for (op, what) in [(REDUCE, "REDUCE"), (STOP, "STOP")] {
            r.expect(op, what)?;
        }
    }
    Ok(Header {
        protocol,
        version,
        flags,
        fingerprint,
        producer,
        standalone_payload,
        header_len,
        compressed,
        buffers,
        fingerprint_is_text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp() -> Fingerprint {
        Fingerprint {
            text: String::new(),
            digest: [7; 16],
            label: "CPython 3.11/3495".into(),
            compact: Some("cp311/3495".into()),
            packed: Some([b'c', 3, 11, 0xa7, 0x0d]),
        }
    }

    #[test]
    fn lean_header_round_trips_within_budget() {
        let v = crate::wire::FORMAT_VERSION;
        for protocol in 0..=5 {
            let h = build(protocol, FLAG_NONPORTABLE, v, &fp(), None);
            // The budget is for the binary protocols; below 2 the header is text.
            assert!(protocol < 2 || h.len() <= 96, "{} bytes", h.len());
            // The bytes parse() matches without allocating are what build() writes.
            assert!(h.starts_with(LEAN_GLOBAL));
            let mut stream = h.clone();
            stream.extend_from_slice(b"\x80\x05N.");
            let parsed = parse(&stream).ok().expect("a lean header parses");
            assert_eq!(parsed.header_len, h.len());
            // The protocol is the body's.
            assert_eq!(parsed.protocol, Some(5));
            assert_eq!(parsed.version, v);
            assert_eq!(parsed.flags, FLAG_NONPORTABLE);
            assert_eq!(parsed.fingerprint, vec![7; 16]);
            assert_eq!(parsed.producer, "CPython 3.11/3495");
        }
    }

    #[test]
    fn the_lean_header_is_packed() {
        // Format 1.5: 65 bytes (1.4's: 85 with its PROTO, 83 without).
        let v = crate::wire::FORMAT_VERSION;
        for protocol in 2..=5 {
            let h = build(protocol, FLAG_NONPORTABLE, v, &fp(), None);
            assert_eq!(
                h.len(),
                LEAN_GLOBAL.len() + 2 + PACKED_LEN + 3,
                "protocol {protocol}"
            );
            assert_eq!(h.len(), 65);
            let mut packed = packed_version(v).expect("a packed version").to_vec();
            packed.push(FLAG_NONPORTABLE);
            packed.extend_from_slice(&[7; 16]);
            packed.extend_from_slice(&[b'c', 3, 11, 0xa7, 0x0d]);
            let tail = [
                &[SHORT_BINBYTES, PACKED_LEN as u8][..],
                &packed,
                &[TUPLE1, REDUCE, POP],
            ]
            .concat();
            assert_eq!(&h[LEAN_GLOBAL.len()..], &tail[..]);
            assert_eq!(
                unpack(&packed).map(|u| u.3),
                Some("CPython 3.11/3495".into())
            );
        }
        // Below protocol 2, the four arguments, the producer compact.
        let h = build(1, FLAG_NONPORTABLE, v, &fp(), None);
        let tail = [
            &[BINUNICODE, 10, 0, 0, 0][..],
            b"cp311/3495",
            &[TUPLE, REDUCE, POP],
        ]
        .concat();
        assert!(h.ends_with(&tail));
        // A packed version from a newer minor is read as far as its version; one of this
        // version with another length is corrupt.
        assert_eq!(
            unpack(&[1, 200, 0]).map(|u| u.0),
            Some("1.200.0".to_owned())
        );
        assert!(unpack(&packed_version(v).unwrap()).is_none());
        assert!(label_of_packed(&[b'x', 3, 11, 0, 0]).is_none());
        // An implementation without a compact label writes its full one, in four arguments.
        let mut other = fp();
        other.compact = None;
        other.packed = None;
        let h = build(5, FLAG_NONPORTABLE, v, &other, None);
        assert_eq!(h.len(), LEAN_GLOBAL.len() + 50);
        let mut stream = h;
        stream.extend_from_slice(b"\x80\x05N.");
        assert_eq!(
            parse(&stream).ok().expect("parses").producer,
            "CPython 3.11/3495"
        );
        // A standalone header keeps the full label: its own bootstrap's check prints it as is.
        let h = build(
            5,
            FLAG_NONPORTABLE | FLAG_STANDALONE,
            v,
            &fp(),
            Some(b"blob"),
        );
        assert!(h.windows(17).any(|w| w == b"CPython 3.11/3495"));
    }

    #[test]
    fn compact_labels_expand_and_nothing_else_does() {
        assert_eq!(label_of_compact("cp311/3495").unwrap(), "CPython 3.11/3495");
        assert_eq!(label_of_compact("cp39/3425").unwrap(), "CPython 3.9/3425");
        assert_eq!(label_of_compact("pp311/3495").unwrap(), "PyPy 3.11/3495");
        for full in [
            "CPython 3.11/3495",
            "graalpy 3.11/3495",
            "cp3/1",
            "cpx11/3",
            "cp311/",
            "",
        ] {
            assert_eq!(label_of_compact(full), None, "{full}");
        }
    }

    #[test]
    fn headers_before_format_1_5_still_parse() {
        // Format 1.4's lean header (1.4's module, four arguments) and the ones before it
        // (`_satchel_boot_1.check`, full label).
        for (global, version, compact) in [
            (LEAN_GLOBAL_1_4, "1.4.0", true),
            (&b"c_satchel_boot_1\ncheck\n"[..], "1.3.0", false),
        ] {
            let mut old = b"\x80\x05".to_vec();
            old.extend_from_slice(global);
            let mut old_fp = fp();
            old_fp.packed = None;
            if !compact {
                old_fp.compact = None;
            }
            let h = build(5, FLAG_NONPORTABLE, version, &old_fp, None);
            assert_eq!(h[LEAN_GLOBAL.len()], MARK);
            old.extend_from_slice(&h[LEAN_GLOBAL.len()..]);
            old.extend_from_slice(b"\x80\x05N.");
            let parsed = parse(&old).ok().expect("an old lean header parses");
            assert_eq!(parsed.version, version);
            assert_eq!(parsed.producer, "CPython 3.11/3495");
            assert_eq!(parsed.header_len, old.len() - 4);
        }
    }

    #[test]
    fn a_lean_header_cut_inside_its_module_name_is_truncated() {
        let h = build(
            5,
            FLAG_NONPORTABLE,
            crate::wire::FORMAT_VERSION,
            &fp(),
            None,
        );
        assert!(matches!(parse(&h[..20]), Err(ParseError::Corrupt(_))));
        // Another attribute of that module is not satchel's header.
        let mut other = h[..LEAN_OPENING.len()].to_vec();
        other.extend_from_slice(b"x\n.");
        assert!(matches!(parse(&other), Err(ParseError::NotSatchel)));
    }
}
