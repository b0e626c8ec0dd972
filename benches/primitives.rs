//! Benchmarks of the protocol primitives: hashing, signatures, header encoding.
//!
//! Run: `cargo bench --bench primitives`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use spacetime::block::{BlockHeader, HEADER_VERSION, ProofOfSpace, UnsignedHeader};
use spacetime::crypto::{SignedMessage, verify, verify_batch};
use spacetime::hash::{Hash, hash};
use spacetime::{Keypair, SigningDomain, Target, decode, encode};

fn hashing(c: &mut Criterion) {
    let mut g = c.benchmark_group("blake2b256");
    let small = [7u8; 64];
    g.throughput(Throughput::Bytes(64));
    g.bench_function("64B", |b| b.iter(|| hash(b"bench", black_box(&small))));
    let big = vec![7u8; 1 << 20];
    g.throughput(Throughput::Bytes(1 << 20));
    g.bench_function("1MiB", |b| b.iter(|| hash(b"bench", black_box(&big))));
    g.finish();
}

fn signatures(c: &mut Criterion) {
    const BATCH: usize = 1024;
    let keys: Vec<Keypair> = (0..BATCH).map(|_| Keypair::generate()).collect();
    let publics: Vec<_> = keys.iter().map(Keypair::public).collect();
    let messages: Vec<Vec<u8>> = (0..BATCH as u32)
        .map(|i| i.to_le_bytes().repeat(40))
        .collect();
    let sigs: Vec<_> = keys
        .iter()
        .zip(&messages)
        .map(|(k, m)| k.sign(SigningDomain::Tx, m))
        .collect();

    let mut g = c.benchmark_group("sr25519");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign", |b| {
        b.iter(|| keys[0].sign(SigningDomain::Tx, black_box(&messages[0])))
    });
    g.bench_function("verify_single", |b| {
        b.iter(|| {
            verify(
                SigningDomain::Tx,
                &publics[0],
                black_box(&messages[0]),
                &sigs[0],
            )
        })
    });
    let items: Vec<SignedMessage<'_>> = (0..BATCH)
        .map(|i| SignedMessage {
            key: &publics[i],
            message: &messages[i],
            signature: &sigs[i],
        })
        .collect();
    for n in [64, 256, 1024] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("verify_batch_{n}"), |b| {
            b.iter(|| verify_batch(SigningDomain::Tx, black_box(&items[..n])))
        });
    }
    g.finish();
}

fn header(key: &Keypair) -> BlockHeader {
    UnsignedHeader {
        version: HEADER_VERSION,
        height: 1_234_567,
        parent: Hash([1; 32]),
        timestamp_ms: 1_800_000_000_000,
        epoch: 6_543_210,
        target: Target::from_leading_zero_bits(40),
        challenge: Hash([2; 32]),
        proof: ProofOfSpace {
            plot_seed: Hash([3; 32]),
            group: 987_654_321,
        },
        score: Hash([4; 32]),
        miner: key.public(),
        tx_root: Hash([5; 32]),
        state_root: Hash([6; 32]),
    }
    .sign(key)
    .unwrap_or_else(|e| panic!("bench header: {e}"))
}

fn header_encoding(c: &mut Criterion) {
    let key = Keypair::generate();
    let h = header(&key);
    let bytes = encode(&h);
    let mut g = c.benchmark_group("header");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode", |b| b.iter(|| encode(black_box(&h))));
    g.bench_function("decode", |b| {
        b.iter(|| decode::<BlockHeader>(black_box(&bytes)))
    });
    g.bench_function("encode_decode", |b| {
        b.iter(|| decode::<BlockHeader>(&encode(black_box(&h))))
    });
    g.bench_function("hash", |b| b.iter(|| black_box(&h).hash()));
    g.bench_function("encode_into_reused_buffer", |b| {
        b.iter_batched_ref(
            || Vec::with_capacity(512),
            |buf| {
                buf.clear();
                spacetime::encoding::encode_into(black_box(&h), buf);
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = hashing, signatures, header_encoding
}
criterion_main!(benches);
