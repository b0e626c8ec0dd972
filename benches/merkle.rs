//! Merkle tree benchmarks: streaming root, tree build, proof generation and verification.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spacetime::hash::hash;
use spacetime::merkle::{MerkleBuilder, MerkleTree, verify_proof};

const LEAVES: u64 = 1 << 20;

fn leaves() -> Vec<[u8; 32]> {
    (0..LEAVES)
        .map(|i| hash(b"bench", &i.to_le_bytes()).0)
        .collect()
}

fn merkle(c: &mut Criterion) {
    let leaves = leaves();
    let mut group = c.benchmark_group("merkle");
    group.measurement_time(Duration::from_secs(5));
    group.warm_up_time(Duration::from_secs(1));

    group.sample_size(10);
    group.throughput(Throughput::Elements(LEAVES));
    group.bench_function("streaming_root_2^20", |b| {
        b.iter(|| {
            let mut builder = MerkleBuilder::new();
            for leaf in black_box(&leaves) {
                builder.push(leaf);
            }
            builder.finish()
        })
    });
    group.bench_function("tree_build_2^20", |b| {
        b.iter(|| MerkleTree::from_leaves(black_box(&leaves)))
    });

    let tree = MerkleTree::from_leaves(&leaves);
    let root = tree.root();
    let index = LEAVES / 2 + 12_345;
    let Some(proof) = tree.proof(index) else {
        panic!("index {index} is in range");
    };
    let leaf = leaves[index as usize];
    assert_eq!(verify_proof(&root, &leaf, &proof), Ok(()));

    group.sample_size(100);
    group.throughput(Throughput::Elements(1));
    group.bench_function("proof_verify_2^20", |b| {
        b.iter(|| verify_proof(black_box(&root), black_box(&leaf), black_box(&proof)))
    });
    group.bench_function("proof_generate_2^20", |b| {
        b.iter(|| tree.proof(black_box(index)))
    });
    group.finish();
}

criterion_group!(benches, merkle);
criterion_main!(benches);
