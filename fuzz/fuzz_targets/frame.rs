//! The frame reader: however the byte stream is cut into pieces, the decoder yields the same
//! frames and the same error as when fed all at once, and every frame is a slice of the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spacetime::wire::{Frame, FrameDecoder, FrameError, LENGTH_PREFIX_BYTES, MessageKind};
use spacetime_fuzz::Input;

/// Feeds `pieces` in order, stopping at the first error as a session would.
fn run<'a>(pieces: impl Iterator<Item = &'a [u8]>) -> (Vec<Frame>, Option<FrameError>, bool) {
    let mut decoder = FrameDecoder::new();
    let mut frames = Vec::new();
    for piece in pieces {
        if let Err(e) = decoder.push(piece, &mut frames) {
            return (frames, Some(e), false);
        }
    }
    let idle = decoder.is_idle();
    (frames, None, idle)
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    // The first bytes pick how the rest is cut: a list of piece lengths, cycled.
    let Some(n) = input.byte() else { return };
    let Some(lengths) = input.take(usize::from(n % 8)) else {
        return;
    };
    let stream = input.rest();

    let (whole, whole_err, whole_idle) = run(core::iter::once(stream));

    let mut pieces = Vec::new();
    let mut rest = stream;
    let mut i = 0;
    while !rest.is_empty() {
        let len = lengths
            .get(i % lengths.len().max(1))
            .map_or(1, |&l| usize::from(l).max(1));
        let (piece, tail) = rest.split_at(len.min(rest.len()));
        pieces.push(piece);
        // Empty pushes must change nothing.
        pieces.push(&[][..]);
        rest = tail;
        i += 1;
    }
    let (split, split_err, split_idle) = run(pieces.into_iter());
    assert_eq!(whole, split, "frames depend on the chunking");
    assert_eq!(whole_err, split_err, "the error depends on the chunking");
    assert_eq!(whole_idle, split_idle);

    // Each frame is the next slice of the stream: prefix, then its payload.
    let mut at = 0;
    for frame in &whole {
        let len = u32::from_be_bytes([stream[at], stream[at + 1], stream[at + 2], stream[at + 3]]);
        assert_eq!(len as usize, frame.payload.len());
        assert!(frame.payload.len() <= frame.kind.max_len());
        assert_eq!(MessageKind::from_tag(frame.payload[0]), Some(frame.kind));
        at += LENGTH_PREFIX_BYTES;
        assert_eq!(&stream[at..at + frame.payload.len()], &frame.payload[..]);
        at += frame.payload.len();
        // A frame's payload decodes exactly as the message decoder says.
        let _ = frame.decode();
    }
    if whole_err.is_none() {
        // Idle exactly when the stream ended between frames.
        assert_eq!(whole_idle, at == stream.len());
    }

    // push_messages: a stream error first (nothing decoded), else frames decoded in order up
    // to the first payload that is not a canonical message.
    let mut decoder = FrameDecoder::new();
    let mut messages = Vec::new();
    let result = decoder.push_messages(stream, &mut messages);
    let mut expected = Vec::new();
    let expected_err = match whole_err {
        Some(e) => Some(e),
        None => whole.iter().find_map(|frame| match frame.decode() {
            Ok(m) => {
                expected.push(m);
                None
            }
            Err(e) => Some(e),
        }),
    };
    assert_eq!(messages, expected);
    assert_eq!(result.err(), expected_err);
});
