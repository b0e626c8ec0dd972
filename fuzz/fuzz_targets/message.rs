//! Every wire message: a payload (type byte first) is accepted only as the canonical encoding
//! of a message of that type, within that type's size limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spacetime::wire::{Frame, Message, MessageKind, encode_frame};
use spacetime_fuzz::decode_canonical;

fuzz_target!(|data: &[u8]| {
    let Some(message) = decode_canonical::<Message>(data) else {
        return;
    };
    let kind = message.kind();
    assert_eq!(data[0], kind.tag(), "the first byte is the message type");
    assert_eq!(MessageKind::from_tag(kind.tag()), Some(kind));
    assert!(
        data.len() <= kind.max_len(),
        "{} payload over its limit",
        kind.name()
    );
    // The frame path decodes the same payload to the same message.
    let frame = Frame {
        kind,
        payload: data.to_vec(),
    };
    assert_eq!(frame.decode().as_ref(), Ok(&message));
    let framed = encode_frame(&message);
    assert_eq!(&framed[4..], data);
    assert_eq!(
        u32::from_be_bytes([framed[0], framed[1], framed[2], framed[3]]) as usize,
        data.len()
    );
});
