//! Every decoder of untrusted bytes, fed random and hostile input, returns an error instead of
//! panicking, and never makes a large allocation that the input does not pay for.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use spacetime::encoding::{Canonical, encode};
use spacetime::merkle::MerkleProof;
use spacetime::{Block, BlockHeader, Coinbase, Transfer, decode};

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
