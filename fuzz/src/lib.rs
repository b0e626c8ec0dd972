//! Helpers shared by the fuzz targets: the canonical-decoding check and the fixed identities
//! the session target (and its seeds, written by `examples/fuzz_seeds.rs`) use.

use core::fmt::Debug;

use spacetime::Hash;
use spacetime::encoding::{Canonical, decode, encode, encoded_len, is_encoding_of};

/// Network id of the local node in the session target.
pub const SESSION_NETWORK_ID: Hash = Hash([0x11; 32]);
/// Node id of the local node in the session target.
pub const SESSION_LOCAL_NODE_ID: Hash = Hash([0x22; 32]);
/// Node id the Noise handshake proved for the remote peer in the session target.
pub const SESSION_REMOTE_NODE_ID: Hash = Hash([0x33; 32]);

/// Decodes `data` as a `T`; anything accepted must be the value's one canonical encoding.
pub fn decode_canonical<T: Canonical + PartialEq + Debug>(data: &[u8]) -> Option<T> {
    let value = decode::<T>(data).ok()?;
    assert!(
        data.len() <= T::MAX_ENCODED_LEN,
        "{}: accepted over-long input",
        T::NAME
    );
    assert_eq!(
        encode(&value),
        data,
        "{}: decode then encode changed the bytes",
        T::NAME
    );
    assert_eq!(
        encoded_len(&value),
        data.len(),
        "{}: encoded_len disagrees",
        T::NAME
    );
    assert!(
        is_encoding_of(&value, data),
        "{}: is_encoding_of disagrees",
        T::NAME
    );
    assert_eq!(
        decode::<T>(data).as_ref(),
        Ok(&value),
        "{}: decoding is not deterministic",
        T::NAME
    );
    Some(value)
}

/// A small cursor over fuzzer input, for targets that read several fields from one input.
#[derive(Debug)]
pub struct Input<'a>(pub &'a [u8]);

impl<'a> Input<'a> {
    /// The next `n` bytes, or `None` when fewer remain.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    /// The next byte.
    pub fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// The next two bytes, little-endian.
    pub fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    /// The next 32 bytes as a hash.
    pub fn hash(&mut self) -> Option<Hash> {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.take(32)?);
        Some(Hash(out))
    }

    /// Everything not yet read.
    pub fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.0)
    }
}
