//! Every decoder of untrusted bytes, fed random and hostile input, returns an error instead of
//! panicking, and never makes a large allocation that the input does not pay for.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use spacetime::encoding::{Canonical, encode};
use spacetime::merkle::MerkleProof;
use spacetime::p2p::bans::MAX_BANS;
use spacetime::p2p::{BanHistory, BanList};
use spacetime::wire::{
    FrameDecoder, FrameError, GetBlocks, MAX_BLOCKS_PER_REQUEST, Message, MessageKind, NotFound,
};
use spacetime::{Block, BlockHeader, BoundedVec, Coinbase, DecodeError, Hash, Transfer, decode};

/// Records the largest single allocation made by the current thread while tracking is on.
struct Tracking;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with` so allocations during thread teardown never panic.
    let _ = TRACKING.try_with(|on| {
        if on.get() {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        }
    });
}

// SAFETY: delegates every call to the system allocator unchanged; only observes sizes.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// The largest single allocation `f` makes on this thread.
fn largest_allocation(f: impl FnOnce()) -> usize {
    LARGEST.with(|l| l.set(0));
    TRACKING.with(|t| t.set(true));
    f();
    TRACKING.with(|t| t.set(false));
    LARGEST.with(Cell::get)
}

/// A decoder may preallocate up to 64 KiB on a lying length prefix, plus small fixed buffers;
/// beyond that, it may only allocate in proportion to the input it was given.
fn allowed(input_len: usize) -> usize {
    128 * 1024 + 4 * input_len
}

/// A deterministic xorshift generator, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = (self.next() % (max_len as u64 + 1)) as usize;
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn check<T: Canonical + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
    let mut result = None;
    let largest = largest_allocation(|| result = Some(decode::<T>(bytes)));
    assert!(
        largest <= allowed(bytes.len()),
        "{}: decoding {} bytes allocated {largest} bytes at once",
        T::NAME,
        bytes.len()
    );
    if let Some(Ok(value)) = result {
        // Anything accepted is canonical: it re-encodes to exactly the input.
        assert_eq!(encode(&value), bytes, "{}", T::NAME);
    }
}

fn check_all(bytes: &[u8]) {
    check::<Transfer>(bytes);
    check::<Coinbase>(bytes);
    check::<BlockHeader>(bytes);
    check::<Block>(bytes);
    check::<MerkleProof>(bytes);
    check::<Message>(bytes);
}

#[test]
fn random_bytes() {
    let mut rng = Rng(0x5eed_1234_abcd_9876);
    for _ in 0..20_000 {
        check_all(&rng.bytes(600));
    }
}

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

#[test]
fn hostile_length_prefixes() {
    // Lengths at and just above each bound and far beyond, placed at every offset of a
    // header-sized prefix so they land in every length field of every type. The input behind
    // the prefix is long enough that the parser believes small lengths, so only our own bounds
    // stand between a lying prefix and a large preallocation.
    let lengths = [
        12_000,
        12_001,
        256,
        257,
        100,
        101,
        20_000,
        u64::from(u32::MAX),
        u64::MAX,
    ];
    let mut rng = Rng(42);
    for len in lengths {
        let tail = len.min(20_100) as usize + 64;
        for offset in 0..420 {
            let mut bytes = vec![1u8; offset];
            bytes.extend_from_slice(&varint(len));
            bytes.extend((0..tail).map(|_| rng.next() as u8 & 0x7f));
            check_all(&bytes);
        }
    }
}

#[test]
fn hostile_message_length_prefixes() {
    // Every message type followed by a lying first length field: the count of `GetBlocks`,
    // `NotFound`, `PeerList`, `GetHeaders` and `Headers`, garbage for the others. Bounds at and
    // above 128 (block requests), 64 (locators), 1,000 (peers), 2,000 (headers), and huge.
    let lengths = [
        127,
        128,
        129,
        64,
        65,
        1000,
        1001,
        2000,
        2001,
        u64::from(u32::MAX),
        u64::MAX,
    ];
    let mut rng = Rng(99);
    for kind in MessageKind::ALL {
        for len in lengths {
            for tail in [0, 31, 32, 4096, 70_000] {
                let mut bytes = vec![kind.tag()];
                bytes.extend_from_slice(&varint(len));
                bytes.extend((0..tail).map(|_| rng.next() as u8));
                check::<Message>(&bytes);
                if is_block_request(kind) && len > MAX_BLOCKS_PER_REQUEST as u64 {
                    assert!(
                        decode::<Message>(&bytes).is_err(),
                        "{} with {len} hashes",
                        kind.name()
                    );
                }
            }
        }
    }
}

fn is_block_request(kind: MessageKind) -> bool {
    matches!(kind, MessageKind::GetBlocks | MessageKind::NotFound)
}

/// Valid `GetBlocks` and `NotFound` messages of 0, 1, 2 and the most hashes.
fn block_requests() -> Vec<Message> {
    let mut out = Vec::new();
    for n in [0, 1, 2, MAX_BLOCKS_PER_REQUEST] {
        let hashes: Vec<Hash> = (0..n).map(|i| Hash([i as u8; 32])).collect();
        let hashes = BoundedVec::try_from_vec(hashes).expect("within the bound");
        out.push(Message::GetBlocks(GetBlocks {
            hashes: hashes.clone(),
        }));
        out.push(Message::NotFound(NotFound { hashes }));
    }
    out
}

#[test]
fn truncated_padded_and_mutated_block_requests() {
    let mut rng = Rng(11);
    for m in block_requests() {
        let valid = encode(&m);
        assert!(valid.len() <= m.kind().max_len(), "{}", m.kind().name());
        assert_eq!(decode::<Message>(&valid).as_ref(), Ok(&m));
        // Every strict prefix is an error.
        for cut in 0..valid.len() {
            check::<Message>(&valid[..cut]);
            assert!(decode::<Message>(&valid[..cut]).is_err(), "cut at {cut}");
        }
        // Any trailing byte is an error.
        for extra in [0u8, 1, 0xff] {
            let mut long = valid.clone();
            long.push(extra);
            check::<Message>(&long);
            assert!(decode::<Message>(&long).is_err(), "trailing {extra}");
        }
        // Random mutations decode to a canonical message or fail.
        for _ in 0..2_000 {
            let mut bytes = valid.clone();
            for _ in 0..1 + rng.next() % 3 {
                let i = (rng.next() as usize) % bytes.len();
                bytes[i] = rng.next() as u8;
            }
            check_all(&bytes);
        }
    }
    // One hash over the bound, with all its bytes present.
    for tag in [MessageKind::GetBlocks.tag(), MessageKind::NotFound.tag()] {
        let mut over = vec![tag];
        over.extend_from_slice(&varint(MAX_BLOCKS_PER_REQUEST as u64 + 1));
        over.extend_from_slice(&vec![0; (MAX_BLOCKS_PER_REQUEST + 1) * 32]);
        check::<Message>(&over);
        assert!(decode::<Message>(&over).is_err());
    }
}

#[test]
fn oversized_block_request_frames_are_refused_from_the_header() {
    for kind in [MessageKind::GetBlocks, MessageKind::NotFound] {
        for len in [kind.max_len() as u32 + 1, u32::MAX] {
            let mut header = len.to_be_bytes().to_vec();
            header.push(kind.tag());
            let mut out = Vec::new();
            let mut result = None;
            let largest = largest_allocation(|| {
                result = Some(FrameDecoder::new().push_messages(&header, &mut out));
            });
            assert!(
                matches!(result, Some(Err(FrameError::TooLarge { .. }))),
                "{}: {result:?}",
                kind.name()
            );
            assert!(largest <= allowed(header.len()), "{largest}");
            assert!(out.is_empty());
        }
        // A frame of the largest allowed length that stops short yields nothing.
        let mut frame = (kind.max_len() as u32).to_be_bytes().to_vec();
        frame.push(kind.tag());
        frame.extend_from_slice(&[0x81, 0x01]);
        let mut d = FrameDecoder::new();
        let mut out = Vec::new();
        assert!(d.push_messages(&frame, &mut out).is_ok());
        assert!(out.is_empty() && !d.is_idle());
    }
}

#[test]
fn mutated_valid_blocks() {
    let genesis = spacetime::Genesis::builtin("dev").expect("dev genesis");
    let valid = encode(&genesis.block);
    check::<Block>(&valid);
    let mut rng = Rng(7);
    for _ in 0..20_000 {
        let mut bytes = valid.clone();
        for _ in 0..1 + rng.next() % 4 {
            let i = (rng.next() as usize) % bytes.len();
            bytes[i] = rng.next() as u8;
        }
        if rng.next().is_multiple_of(8) {
            bytes.truncate((rng.next() as usize) % bytes.len());
        }
        check_all(&bytes);
    }
}

/// A ban list or ban history file of `entries` distinct IPv4 addresses, each with `value`.
fn ip_map_file(entries: u32, value: &[u8]) -> Vec<u8> {
    let mut bytes = varint(u64::from(entries));
    for i in 0..entries {
        // Variant 0 (IPv4), then the four address bytes, in increasing order.
        bytes.push(0);
        bytes.extend_from_slice(&(0x0a00_0000 + i).to_be_bytes());
        bytes.extend_from_slice(value);
    }
    bytes
}

#[test]
fn peer_store_files_hold_at_most_max_bans() {
    // The ban list and ban history keep at most MAX_BANS addresses; a file with one more
    // (well within the byte limit) used to load whole.
    let max = MAX_BANS as u32;
    let bans = |n| ip_map_file(n, &[5]);
    let history = |n| ip_map_file(n, &[1, 5]);
    assert_eq!(decode::<BanList>(&bans(max)).map(|b| b.len()), Ok(MAX_BANS));
    assert_eq!(
        decode::<BanHistory>(&history(max)).map(|h| h.len()),
        Ok(MAX_BANS)
    );
    for bytes in [bans(max + 1), bans(4 * max)] {
        assert!(bytes.len() <= BanList::MAX_ENCODED_LEN);
        assert!(matches!(
            decode::<BanList>(&bytes),
            Err(DecodeError::Malformed { .. })
        ));
    }
    for bytes in [history(max + 1), history(2 * max)] {
        assert!(bytes.len() <= BanHistory::MAX_ENCODED_LEN);
        assert!(matches!(
            decode::<BanHistory>(&bytes),
            Err(DecodeError::Malformed { .. })
        ));
    }
    // Duplicates and disorder stay refused as non-canonical.
    let mut twice = ip_map_file(2, &[5]);
    twice.truncate(1);
    twice.extend_from_slice(&[0, 10, 0, 0, 1, 5, 0, 10, 0, 0, 1, 5]);
    assert!(matches!(
        decode::<BanList>(&twice),
        Err(DecodeError::NonCanonical { .. })
    ));
    let mut disorder = ip_map_file(2, &[5]);
    disorder.truncate(1);
    disorder.extend_from_slice(&[0, 10, 0, 0, 2, 5, 0, 10, 0, 0, 1, 5]);
    assert!(matches!(
        decode::<BanList>(&disorder),
        Err(DecodeError::NonCanonical { .. })
    ));
}
