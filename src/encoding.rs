//! Canonical binary encoding: one [`encode`] and one [`decode`] over postcard.
//!
//! A value has exactly one valid encoding. [`decode`] rejects input longer than the type's
//! [`Canonical::MAX_ENCODED_LEN`] before parsing, rejects trailing bytes, and rejects any input
//! that does not re-encode to the same bytes (overlong varints, for instance). Variable-length
//! fields use [`BoundedVec`] and [`BoundedBytes`], whose length prefix is checked against a
//! compile-time bound before anything is allocated.

use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;

use postcard::ser_flavors::Flavor;
use serde::de::{DeserializeOwned, Error as _, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A protocol type with a canonical encoding and an upper bound on its encoded size.
pub trait Canonical: Serialize + DeserializeOwned {
    /// Name used in error messages.
    const NAME: &'static str;
    /// The largest valid encoding, in bytes; longer input is refused before parsing.
    const MAX_ENCODED_LEN: usize;
}

/// Why bytes could not be decoded as a protocol value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input is longer than any valid encoding of the type.
    #[error("{what}: {len} bytes exceeds the limit of {max}")]
    TooLong {
        /// Type name.
        what: &'static str,
        /// Input length.
        len: usize,
        /// The type's limit.
        max: usize,
    },
    /// The input is not a valid encoding of the type.
    #[error("{what}: malformed encoding: {reason}")]
    Malformed {
        /// Type name.
        what: &'static str,
        /// What the parser objected to.
        reason: String,
    },
    /// A valid value is followed by extra bytes.
    #[error("{what}: {count} trailing bytes after the value")]
    Trailing {
        /// Type name.
        what: &'static str,
        /// Number of extra bytes.
        count: usize,
    },
    /// The input decodes, but is not the value's one canonical encoding.
    #[error("{what}: non-canonical encoding")]
    NonCanonical {
        /// Type name.
        what: &'static str,
    },
}

/// Encodes a value canonically.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// Appends the canonical encoding of `value` to `out` (reuse `out` to avoid allocations).
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    // Serialising protocol types into a growable buffer cannot fail: they contain no maps of
    // unknown length, no non-string keys, and no custom impls that return errors.
    if let Err(e) = postcard::to_extend(value, core::mem::take(out)).map(|v| *out = v) {
        unreachable!("postcard serialization into a Vec failed: {e}");
    }
}

/// The length of the canonical encoding of `value`, computed without allocating.
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> usize {
    postcard::serialize_with_flavor(value, Counter(0)).unwrap_or(usize::MAX)
}

/// Decodes the canonical encoding of a `T`, refusing anything else.
pub fn decode<T: Canonical>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > T::MAX_ENCODED_LEN {
        return Err(DecodeError::TooLong {
            what: T::NAME,
            len: bytes.len(),
            max: T::MAX_ENCODED_LEN,
        });
    }
    let (value, rest) =
        postcard::take_from_bytes::<T>(bytes).map_err(|e| DecodeError::Malformed {
            what: T::NAME,
            reason: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(DecodeError::Trailing {
            what: T::NAME,
            count: rest.len(),
        });
    }
    if !is_encoding_of(&value, bytes) {
        return Err(DecodeError::NonCanonical { what: T::NAME });
    }
    Ok(value)
}

/// True when `bytes` is exactly the canonical encoding of `value`; compares without allocating.
pub fn is_encoding_of<T: Serialize + ?Sized>(value: &T, bytes: &[u8]) -> bool {
    postcard::serialize_with_flavor(
        value,
        Compare {
            expected: bytes,
            pos: 0,
        },
    )
    .unwrap_or(false)
}

/// `hash(tag, encode(value))`, streamed into the hasher without building the encoding.
pub fn hash_encoded<T: Serialize + ?Sized>(tag: &[u8], value: &T) -> crate::Hash {
    let sink = HashSink {
        hasher: crate::hash::Hasher::new(tag),
        buf: [0; 256],
        len: 0,
    };
    match postcard::serialize_with_flavor(value, sink) {
        Ok(h) => h,
        Err(e) => unreachable!("hashing sink never fails: {e}"),
    }
}

/// A postcard sink that feeds a hasher through a small buffer (postcard emits fixed-size
/// arrays one byte at a time, and per-byte hasher updates would cost more than the hash).
struct HashSink {
    hasher: crate::hash::Hasher,
    buf: [u8; 256],
    len: usize,
}

impl HashSink {
    fn flush(&mut self) {
        self.hasher.update(&self.buf[..self.len]);
        self.len = 0;
    }
}

impl Flavor for HashSink {
    type Output = crate::Hash;
    fn try_push(&mut self, b: u8) -> postcard::Result<()> {
        if self.len == self.buf.len() {
            self.flush();
        }
        self.buf[self.len] = b;
        self.len += 1;
        Ok(())
    }
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if data.len() > self.buf.len() - self.len {
            self.flush();
            self.hasher.update(data);
        } else {
            self.buf[self.len..self.len + data.len()].copy_from_slice(data);
            self.len += data.len();
        }
        Ok(())
    }
    fn finalize(mut self) -> postcard::Result<crate::Hash> {
        self.flush();
        Ok(self.hasher.finalize())
    }
}

/// A postcard sink that counts bytes.
struct Counter(usize);

impl Flavor for Counter {
    type Output = usize;
    fn try_push(&mut self, _: u8) -> postcard::Result<()> {
        self.0 += 1;
        Ok(())
    }
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0 += data.len();
        Ok(())
    }
    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.0)
    }
}

/// A postcard sink that checks the output against expected bytes.
struct Compare<'a> {
    expected: &'a [u8],
    pos: usize,
}

impl Flavor for Compare<'_> {
    type Output = bool;
    fn try_push(&mut self, b: u8) -> postcard::Result<()> {
        self.try_extend(&[b])
    }
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        let end = self
            .pos
            .checked_add(data.len())
            .ok_or(postcard::Error::SerializeBufferFull)?;
        match self.expected.get(self.pos..end) {
            Some(slice) if slice == data => {
                self.pos = end;
                Ok(())
            }
            _ => Err(postcard::Error::SerializeBufferFull),
        }
    }
    fn finalize(self) -> postcard::Result<bool> {
        Ok(self.pos == self.expected.len())
    }
}

/// Preallocation ceiling while decoding a bounded sequence: a lying length prefix on short input
/// can make the decoder reserve at most this many bytes before the input runs out.
const MAX_PREALLOC_BYTES: usize = 64 * 1024;

/// A `Vec<T>` of at most `N` elements; the bound is checked before allocation when decoding.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BoundedVec<T, const N: usize>(Vec<T>);

impl<T, const N: usize> Default for BoundedVec<T, N> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

/// A vector or byte string was longer than its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{len} elements exceeds the bound of {max}")]
pub struct BoundExceeded {
    /// Elements given.
    pub len: usize,
    /// The bound.
    pub max: usize,
}

impl<T, const N: usize> BoundedVec<T, N> {
    /// The maximum number of elements.
    pub const BOUND: usize = N;

    /// An empty vector.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// The items, unwrapped.
    pub fn into_vec(self) -> Vec<T> {
        self.0
    }

    /// Wraps `items`, or fails if there are more than `N`.
    pub fn try_from_vec(items: Vec<T>) -> Result<Self, BoundExceeded> {
        if items.len() > N {
            return Err(BoundExceeded {
                len: items.len(),
                max: N,
            });
        }
        Ok(Self(items))
    }

    /// Appends an element, or fails when full.
    pub fn try_push(&mut self, item: T) -> Result<(), BoundExceeded> {
        if self.0.len() >= N {
            return Err(BoundExceeded {
                len: self.0.len() + 1,
                max: N,
            });
        }
        self.0.push(item);
        Ok(())
    }

    /// The last element, mutable (changing an element cannot break the bound).
    pub fn last_mut(&mut self) -> Option<&mut T> {
        self.0.last_mut()
    }

    /// Removes the first `n` elements (all of them when `n` exceeds the length), in place.
    pub fn remove_front(&mut self, n: usize) {
        let n = n.min(self.0.len());
        self.0.drain(..n);
    }

    /// The elements as a `Vec`.
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }
}

impl<T, const N: usize> Deref for BoundedVec<T, N> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T, const N: usize> TryFrom<Vec<T>> for BoundedVec<T, N> {
    type Error = BoundExceeded;
    fn try_from(items: Vec<T>) -> Result<Self, BoundExceeded> {
        Self::try_from_vec(items)
    }
}

impl<T: fmt::Debug, const N: usize> fmt::Debug for BoundedVec<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: Serialize, const N: usize> Serialize for BoundedVec<T, N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for BoundedVec<T, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, const N: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for V<T, N> {
            type Value = BoundedVec<T, N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a sequence of at most {N} elements")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let hint = seq.size_hint().unwrap_or(0);
                if hint > N {
                    return Err(A::Error::custom(BoundExceeded { len: hint, max: N }));
                }
                let per_item = core::mem::size_of::<T>().max(1);
                let mut items = Vec::with_capacity(hint.min(MAX_PREALLOC_BYTES / per_item));
                while let Some(item) = seq.next_element()? {
                    if items.len() == N {
                        return Err(A::Error::custom(BoundExceeded { len: N + 1, max: N }));
                    }
                    items.push(item);
                }
                Ok(BoundedVec(items))
            }
        }
        d.deserialize_seq(V::<T, N>(PhantomData))
    }
}

/// A byte string of at most `N` bytes; hex in text formats, length-prefixed bytes on the wire.
#[derive(Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct BoundedBytes<const N: usize>(Vec<u8>);

impl<const N: usize> BoundedBytes<N> {
    /// The maximum length.
    pub const BOUND: usize = N;

    /// An empty byte string.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// Copies `bytes`, or fails if longer than `N`.
    pub fn try_from_slice(bytes: &[u8]) -> Result<Self, BoundExceeded> {
        if bytes.len() > N {
            return Err(BoundExceeded {
                len: bytes.len(),
                max: N,
            });
        }
        Ok(Self(bytes.to_vec()))
    }
}

impl<const N: usize> Deref for BoundedBytes<N> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl<const N: usize> fmt::Debug for BoundedBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        crate::bytes::write_hex(f, &self.0)
    }
}

impl<const N: usize> Serialize for BoundedBytes<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&crate::bytes::to_hex(&self.0))
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de, const N: usize> Deserialize<'de> for BoundedBytes<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const N: usize>;
        impl<const N: usize> Visitor<'_> for V<N> {
            type Value = BoundedBytes<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "at most {N} bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                BoundedBytes::try_from_slice(v).map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let digits = v.strip_prefix("0x").unwrap_or(v);
                if !digits.len().is_multiple_of(2) || digits.len() / 2 > N {
                    return Err(E::custom(format!(
                        "expected at most {} hex digits in pairs",
                        2 * N
                    )));
                }
                let mut out = Vec::with_capacity(digits.len() / 2);
                for pair in digits.as_bytes().chunks_exact(2) {
                    let hi = crate::bytes::nibble(pair[0]).map_err(E::custom)?;
                    let lo = crate::bytes::nibble(pair[1]).map_err(E::custom)?;
                    out.push((hi << 4) | lo);
                }
                Ok(BoundedBytes(out))
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V::<N>)
        } else {
            d.deserialize_bytes(V::<N>)
        }
    }
}

/// A UTF-8 string of at most `N` bytes; the length prefix is checked before copying.
#[derive(Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct BoundedString<const N: usize>(String);

impl<const N: usize> BoundedString<N> {
    /// The maximum length in bytes.
    pub const BOUND: usize = N;

    /// Copies `s`, or fails if longer than `N` bytes.
    pub fn try_from_str(s: &str) -> Result<Self, BoundExceeded> {
        if s.len() > N {
            return Err(BoundExceeded {
                len: s.len(),
                max: N,
            });
        }
        Ok(Self(s.to_owned()))
    }

    /// Copies at most `N` bytes of `s`, cut at a character boundary.
    pub fn truncating(s: &str) -> Self {
        let mut end = s.len().min(N);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        Self(s[..end].to_owned())
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const N: usize> Deref for BoundedString<N> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<const N: usize> fmt::Debug for BoundedString<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<const N: usize> fmt::Display for BoundedString<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const N: usize> Serialize for BoundedString<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de, const N: usize> Deserialize<'de> for BoundedString<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const N: usize>;
        impl<const N: usize> Visitor<'_> for V<N> {
            type Value = BoundedString<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a string of at most {N} bytes")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                BoundedString::try_from_str(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V::<N>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Sample {
        n: u64,
        flag: bool,
        items: BoundedVec<u32, 4>,
        data: BoundedBytes<8>,
    }

    impl Canonical for Sample {
        const NAME: &'static str = "sample";
        const MAX_ENCODED_LEN: usize = 10 + 1 + 1 + 4 * 5 + 1 + 8;
    }

    fn sample() -> Sample {
        Sample {
            n: 300,
            flag: true,
            items: BoundedVec::try_from_vec(vec![1, 2, 3]).unwrap(),
            data: BoundedBytes::try_from_slice(b"abc").unwrap(),
        }
    }

    #[test]
    fn round_trip_and_length() {
        let s = sample();
        let bytes = encode(&s);
        assert_eq!(encoded_len(&s), bytes.len());
        assert_eq!(decode::<Sample>(&bytes), Ok(s));
    }

    #[test]
    fn hash_encoded_equals_hash_of_encoding() {
        let s = sample();
        assert_eq!(hash_encoded(b"t", &s), crate::hash::hash(b"t", &encode(&s)));
        // Long values cross the sink's buffer both byte by byte and in one slice.
        let bytes: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        assert_eq!(
            hash_encoded(b"t", &bytes),
            crate::hash::hash(b"t", &encode(&bytes))
        );
        let slice = BoundedBytes::<2000>::try_from_slice(&bytes).unwrap();
        assert_eq!(
            hash_encoded(b"t", &(7u8, &slice)),
            crate::hash::hash(b"t", &encode(&(7u8, &slice)))
        );
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut bytes = encode(&sample());
        bytes.push(0);
        assert_eq!(
            decode::<Sample>(&bytes),
            Err(DecodeError::Trailing {
                what: "sample",
                count: 1
            })
        );
    }

    #[test]
    fn rejects_overlong_varint() {
        let bytes = encode(&sample());
        // 300 encodes as [0xac, 0x02]; re-encode it with a redundant continuation byte.
        assert_eq!(&bytes[..2], &[0xac, 0x02]);
        let mut overlong = vec![0xac, 0x82, 0x00];
        overlong.extend_from_slice(&bytes[2..]);
        assert_eq!(
            decode::<Sample>(&overlong),
            Err(DecodeError::NonCanonical { what: "sample" })
        );
    }

    #[test]
    fn rejects_non_boolean_byte() {
        let mut bytes = encode(&sample());
        bytes[2] = 2;
        assert!(matches!(
            decode::<Sample>(&bytes),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn rejects_input_over_the_limit_before_parsing() {
        let bytes = vec![0u8; Sample::MAX_ENCODED_LEN + 1];
        assert!(matches!(
            decode::<Sample>(&bytes),
            Err(DecodeError::TooLong { .. })
        ));
    }

    #[test]
    fn rejects_lengths_over_bound() {
        // n = 0, flag = false, 5 items (bound is 4).
        let bytes = [0u8, 0, 5, 1, 1, 1, 1, 1, 0];
        assert!(matches!(
            decode::<Sample>(&bytes),
            Err(DecodeError::Malformed { .. })
        ));
        // The same bytes with a length of 4 decode.
        let ok = [0u8, 0, 4, 1, 1, 1, 1, 0];
        assert!(decode::<Sample>(&ok).is_ok());
        // Byte string of 9 (bound is 8).
        let mut bytes = vec![0u8, 0, 0, 9];
        bytes.extend_from_slice(&[7; 9]);
        assert!(decode::<Sample>(&bytes).is_err());
    }

    #[test]
    fn huge_length_prefix_on_short_input_fails_cleanly() {
        #[derive(Debug, Serialize, Deserialize)]
        struct Big(BoundedVec<[u8; 32], 1_000_000>);
        impl Canonical for Big {
            const NAME: &'static str = "big";
            const MAX_ENCODED_LEN: usize = 40_000_000;
        }
        // Length prefix 999_999 with no elements behind it.
        let bytes = [0xbf, 0x84, 0x3d];
        assert!(decode::<Big>(&bytes).is_err());
    }

    #[test]
    fn bounded_strings() {
        assert!(BoundedString::<3>::try_from_str("abcd").is_err());
        let s = BoundedString::<3>::try_from_str("abc").unwrap();
        assert_eq!(decode_plain::<BoundedString<3>>(&encode(&s)), Some(s));
        // "é" is two bytes: truncation never splits it.
        assert_eq!(BoundedString::<3>::truncating("aéé").as_str(), "aé");
        // A 4-byte string where the bound is 3 is refused on decode.
        assert_eq!(
            decode_plain::<BoundedString<3>>(&[4, b'a', b'b', b'c', b'd']),
            None
        );
        // Invalid UTF-8 is refused.
        assert_eq!(decode_plain::<BoundedString<3>>(&[2, 0xc3, 0x28]), None);
    }

    fn decode_plain<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
        postcard::from_bytes(bytes).ok()
    }

    #[test]
    fn bounded_constructors() {
        assert!(BoundedVec::<u8, 2>::try_from_vec(vec![1, 2, 3]).is_err());
        let mut v = BoundedVec::<u8, 2>::new();
        v.try_push(1).unwrap();
        v.try_push(2).unwrap();
        assert_eq!(v.try_push(3), Err(BoundExceeded { len: 3, max: 2 }));
        if let Some(last) = v.last_mut() {
            *last = 9;
        }
        v.remove_front(1);
        assert_eq!(&v[..], &[9]);
        v.remove_front(5);
        assert!(v.is_empty());
        assert!(BoundedBytes::<2>::try_from_slice(b"abc").is_err());
    }

    #[test]
    fn bounded_bytes_text_form() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct W {
            b: BoundedBytes<2>,
        }
        let w = W {
            b: BoundedBytes::try_from_slice(&[0xab, 0x01]).unwrap(),
        };
        let text = toml::to_string(&w).unwrap();
        assert_eq!(text.trim(), "b = \"ab01\"");
        assert_eq!(toml::from_str::<W>(&text).unwrap(), w);
        assert!(toml::from_str::<W>("b = \"ab01ff\"").is_err());
        assert!(toml::from_str::<W>("b = \"abé\"").is_err());
        // Only hex digits: a sign is not part of the canonical text form.
        assert!(toml::from_str::<W>("b = \"+a+b\"").is_err());
        assert_eq!(
            toml::from_str::<W>("b = \"AB01\"").unwrap(),
            w,
            "either case reads"
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(v) = decode::<Sample>(&bytes) {
                prop_assert_eq!(encode(&v), bytes);
            }
        }

        #[test]
        fn round_trips(n: u64, flag: bool, items in proptest::collection::vec(any::<u32>(), 0..=4),
                       data in proptest::collection::vec(any::<u8>(), 0..=8)) {
            let s = Sample {
                n,
                flag,
                items: BoundedVec::try_from_vec(items).unwrap(),
                data: BoundedBytes::try_from_slice(&data).unwrap(),
            };
            let bytes = encode(&s);
            prop_assert!(bytes.len() <= Sample::MAX_ENCODED_LEN);
            prop_assert_eq!(decode::<Sample>(&bytes), Ok(s));
        }
    }
}
