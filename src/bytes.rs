//! Fixed-size byte strings: hex text form for people, raw bytes on the wire.
//!
//! Every fixed-width value of the protocol (hashes, keys, signatures, targets) is a newtype over
//! `[u8; N]` made by [`fixed_bytes!`]. In human-readable formats (TOML, JSON) it is a lowercase
//! hex string; in postcard it is exactly `N` raw bytes with no length prefix.

use core::fmt;

/// Why a hex string could not be read as a fixed-size value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// The string does not have exactly `2 * N` hex digits.
    #[error("expected {expected} hex digits, found {found}")]
    Length {
        /// Digits required.
        expected: usize,
        /// Digits given.
        found: usize,
    },
    /// A character is not a hex digit.
    #[error("invalid hex character {0:?}")]
    Char(char),
}

/// Decodes exactly `N` bytes from `2 * N` hex digits (either case, optional `0x` prefix).
pub fn decode_hex<const N: usize>(s: &str) -> Result<[u8; N], HexError> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    let digits = s.as_bytes();
    if digits.len() != 2 * N {
        return Err(HexError::Length {
            expected: 2 * N,
            found: s.chars().count(),
        });
    }
    let mut out = [0u8; N];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Ok(out)
}

/// The value of one hex digit (either case).
pub(crate) fn nibble(c: u8) -> Result<u8, HexError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(HexError::Char(char::from(c))),
    }
}

/// Writes `bytes` as lowercase hex.
pub fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 128];
    for chunk in bytes.chunks(buf.len() / 2) {
        for (i, b) in chunk.iter().enumerate() {
            buf[2 * i] = DIGITS[usize::from(b >> 4)];
            buf[2 * i + 1] = DIGITS[usize::from(b & 0x0f)];
        }
        // The buffer holds only ASCII hex digits, so this conversion cannot fail.
        f.write_str(core::str::from_utf8(&buf[..2 * chunk.len()]).map_err(|_| fmt::Error)?)?;
    }
    Ok(())
}

/// Encodes `bytes` as a lowercase hex string.
pub fn to_hex(bytes: &[u8]) -> String {
    struct Hex<'a>(&'a [u8]);
    impl fmt::Display for Hex<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write_hex(f, self.0)
        }
    }
    Hex(bytes).to_string()
}

/// Serde support shared by every fixed-size byte newtype.
pub mod serde_fixed {
    use core::fmt;
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::ser::SerializeTuple;
    use serde::{Deserializer, Serializer};

    /// Serializes `N` bytes as hex text or as an `N`-tuple of bytes.
    pub fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&super::to_hex(bytes))
        } else {
            let mut tuple = serializer.serialize_tuple(N)?;
            for b in bytes {
                tuple.serialize_element(b)?;
            }
            tuple.end()
        }
    }

    /// Deserializes what [`serialize`] wrote.
    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        deserializer: D,
    ) -> Result<[u8; N], D::Error> {
        struct HexVisitor<const N: usize>;
        impl<const N: usize> Visitor<'_> for HexVisitor<N> {
            type Value = [u8; N];
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} hex digits", 2 * N)
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
                super::decode_hex::<N>(v).map_err(E::custom)
            }
        }
        struct TupleVisitor<const N: usize>;
        impl<'de, const N: usize> Visitor<'de> for TupleVisitor<N> {
            type Value = [u8; N];
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{N} bytes")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = [0u8; N];
                for (i, slot) in out.iter_mut().enumerate() {
                    *slot = seq
                        .next_element()?
                        .ok_or_else(|| A::Error::invalid_length(i, &self))?;
                }
                Ok(out)
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(HexVisitor::<N>)
        } else {
            deserializer.deserialize_tuple(N, TupleVisitor::<N>)
        }
    }
}

/// Defines a `[u8; N]` newtype with hex `Display`/`FromStr`/`Debug` and [`serde_fixed`] serde.
#[macro_export]
macro_rules! fixed_bytes {
    ($(#[$meta:meta])* $name:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Number of bytes.
            pub const LEN: usize = $len;
            /// The all-zero value.
            pub const ZERO: Self = Self([0u8; $len]);

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::ZERO
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl From<[u8; $len]> for $name {
            fn from(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                $crate::bytes::write_hex(f, &self.0)
            }
        }

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(concat!(stringify!($name), "("))?;
                $crate::bytes::write_hex(f, &self.0)?;
                f.write_str(")")
            }
        }

        impl ::core::str::FromStr for $name {
            type Err = $crate::bytes::HexError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $crate::bytes::decode_hex::<$len>(s).map(Self)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                $crate::bytes::serde_fixed::serialize(&self.0, s)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::bytes::serde_fixed::deserialize::<D, $len>(d).map(Self)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fixed_bytes!(
        /// A test value.
        Six,
        6
    );

    #[test]
    fn hex_round_trip() {
        let v = Six([0, 1, 0xab, 0xcd, 0xef, 0xff]);
        assert_eq!(Six::LEN, 6);
        assert_eq!(v.as_bytes(), &[0, 1, 0xab, 0xcd, 0xef, 0xff]);
        assert_eq!(v.to_string(), "0001abcdefff");
        assert_eq!("0001ABCDEFFF".parse::<Six>(), Ok(v));
        assert_eq!("0x0001abcdefff".parse::<Six>(), Ok(v));
        assert_eq!(format!("{v:?}"), "Six(0001abcdefff)");
    }

    #[test]
    fn hex_rejects_bad_input() {
        assert_eq!(
            "0001".parse::<Six>(),
            Err(HexError::Length {
                expected: 12,
                found: 4
            })
        );
        assert_eq!("0001abcdefzz".parse::<Six>(), Err(HexError::Char('z')));
        // Multi-byte characters must not panic on slicing.
        assert!("ééééééé".parse::<Six>().is_err());
        assert!("é0001abcdef".parse::<Six>().is_err());
    }

    #[test]
    fn postcard_form_is_raw_bytes() {
        let v = Six([9, 8, 7, 6, 5, 4]);
        let bytes = postcard::to_allocvec(&v).unwrap();
        assert_eq!(bytes, vec![9, 8, 7, 6, 5, 4]);
        assert_eq!(postcard::from_bytes::<Six>(&bytes).unwrap(), v);
        assert!(postcard::from_bytes::<Six>(&bytes[..5]).is_err());
    }

    #[test]
    fn toml_form_is_hex() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct W {
            v: Six,
        }
        let w = W {
            v: Six([1, 2, 3, 4, 5, 6]),
        };
        let text = toml::to_string(&w).unwrap();
        assert_eq!(text.trim(), "v = \"010203040506\"");
        assert_eq!(toml::from_str::<W>(&text).unwrap(), w);
        assert!(toml::from_str::<W>("v = \"0102\"").is_err());
    }
}
