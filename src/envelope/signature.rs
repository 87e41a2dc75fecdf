//! Signed streams: `dumps(..., key=K)` appends `MAGIC + HMAC-SHA256(K, stream)` after the
//! pickle's STOP, where `pickle.loads` never reads; `loads(data, key=K)` checks it, in constant
//! time, before a single opcode runs. A list of keys is accepted on load (key rotation): the
//! MAC is computed under every key, whichever matches.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Marks a signature trailer (format 1.2): 12 bytes, then the 32-byte MAC.
pub const MAGIC: &[u8; 12] = b"SATCHEL-SIG1";
pub const MAC_LEN: usize = 32;
pub const TRAILER_LEN: usize = MAGIC.len() + MAC_LEN;

type HmacSha256 = Hmac<Sha256>;

/// `MAGIC + HMAC-SHA256(key, stream)`.
pub fn trailer(key: &[u8], stream: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(stream);
    let mut out = Vec::with_capacity(TRAILER_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&mac.finalize().into_bytes());
    out
}

/// The signed stream and its MAC, if `data` ends with a trailer.
pub fn split(data: &[u8]) -> Option<(&[u8], &[u8])> {
    if data.len() < TRAILER_LEN {
        return None;
    }
    let (stream, trailer) = data.split_at(data.len() - TRAILER_LEN);
    let (magic, mac) = trailer.split_at(MAGIC.len());
    (magic == MAGIC).then_some((stream, mac))
}

/// Whether `mac` is the MAC of `stream` under any of `keys`. Every key is tried (no early
/// exit), and each comparison is constant-time (`Mac::verify_slice`).
pub fn verify(keys: &[Vec<u8>], stream: &[u8], mac: &[u8]) -> bool {
    let mut ok = false;
    for key in keys {
        let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
        m.update(stream);
        ok |= m.verify_slice(mac).is_ok();
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn the_mac_is_hmac_sha256() {
        // RFC 4231, test case 2: the trailer is wire format, so pin the algorithm.
        let t = trailer(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(&t[..MAGIC.len()], MAGIC);
        assert_eq!(
            hex(&t[MAGIC.len()..]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(t.len(), TRAILER_LEN);
    }

    #[test]
    fn a_signed_stream_splits_and_verifies_under_its_key_only() {
        let stream = b"\x80\x05K\x01.".to_vec();
        let mut signed = stream.clone();
        signed.extend(trailer(b"k1", &stream));
        let (body, mac) = split(&signed).expect("a trailer");
        assert_eq!(body, &stream[..]);
        assert!(verify(&[b"k1".to_vec()], body, mac));
        assert!(verify(&[b"old".to_vec(), b"k1".to_vec()], body, mac)); // key rotation
        assert!(!verify(&[b"k2".to_vec()], body, mac));
        assert!(!verify(&[], body, mac));
        let mut tampered = body.to_vec();
        tampered[2] ^= 1;
        assert!(!verify(&[b"k1".to_vec()], &tampered, mac));
    }

    #[test]
    fn unsigned_or_short_data_has_no_trailer() {
        assert!(split(b"\x80\x05K\x01.").is_none());
        assert!(split(&[0; TRAILER_LEN - 1]).is_none());
        let mut fake = vec![0u8; TRAILER_LEN];
        fake[..MAGIC.len()].copy_from_slice(b"SATCHEL-SIG2");
        assert!(split(&fake).is_none());
    }
}
