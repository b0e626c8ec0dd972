//! Key files: decoding never panics, and an accepted file is exactly the file the encoder
//! writes for the key it holds. Half the inputs get their checksum fixed up first, so the
//! fuzzer reaches the kind and public-key checks behind it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spacetime::hash::{hash, tags};
use spacetime::keyfile::{
    KEY_FILE_LEN, KeyFormatError, decode_key_file, decode_node_key_file, encode_key_file,
    encode_node_key_file,
};

/// Offset of the checksum: the last 8 bytes.
const CHECKSUM_AT: usize = KEY_FILE_LEN - 8;

fuzz_target!(|data: &[u8]| {
    let Some((&flag, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if flag & 1 == 1 && bytes.len() == KEY_FILE_LEN {
        let sum = hash(tags::KEY_FILE, &bytes[..CHECKSUM_AT]);
        bytes[CHECKSUM_AT..].copy_from_slice(&sum.as_bytes()[..8]);
    }
    let signing = decode_key_file(&bytes);
    let node = decode_node_key_file(&bytes);
    if bytes.len() != KEY_FILE_LEN {
        assert!(matches!(
            signing,
            Err(KeyFormatError::Truncated { .. } | KeyFormatError::TooLong { .. })
        ));
        assert_eq!(signing.as_ref().err(), node.as_ref().err());
        return;
    }
    // One file holds one kind of key: at most one of the two decoders accepts it.
    assert!(
        signing.is_err() || node.is_err(),
        "a key file decoded as both kinds"
    );
    if let Ok(key) = &signing {
        assert_eq!(
            &encode_key_file(key)[..],
            &bytes[..],
            "signing key file does not round-trip"
        );
        assert!(matches!(node, Err(KeyFormatError::WrongKind { .. })));
    }
    if let Ok(private) = &node {
        assert_eq!(
            &encode_node_key_file(private)[..],
            &bytes[..],
            "node key file does not round-trip"
        );
        assert!(matches!(signing, Err(KeyFormatError::WrongKind { .. })));
    }
    let _ = signing.as_ref().err().map(ToString::to_string);
});
