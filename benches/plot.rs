//! Benchmarks of the plot rules: one chain step (the unit of the attacker arithmetic), a whole
//! group (plotting), and proof verification at testnet parameters.
//!
//! Run: `cargo bench --bench plot`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spacetime::block::ProofOfSpace;
use spacetime::hash::{Hasher, hash, tags};
use spacetime::plot::{GroupChain, PlotShape, group_bucket, plot_id, proof_score, select};
use spacetime::{GenesisConfig, Hash, PublicKey, encoding::encoded_len};

fn primitives(c: &mut Criterion) {
    let mut g = c.benchmark_group("plot_hash");
    let data = [7u8; 64];
    g.throughput(Throughput::Elements(1));
    g.bench_function("blake2b_64B_raw_bound", |b| {
        b.iter(|| hash(tags::PLOT_CHAIN, black_box(&data)))
    });
    let three = [7u8; 96];
    g.bench_function("mix_hash_96B", |b| {
        b.iter(|| hash(tags::PLOT_LEAF, black_box(&three)))
    });
    let base = Hasher::new(tags::PLOT_CHAIN);
    g.bench_function("chain_step_cloned_state", |b| {
        b.iter(|| {
            let mut h = base.clone();
            h.update(black_box(&data));
            h.finalize()
        })
    });
    g.finish();
}

/// The same hash through `blake2b_simd`: one at a time (AVX2 inside one compression) and many
/// independent ones at once (AVX2 across 4 lanes): what an emulating attacker would use.
fn attacker_hashing(c: &mut Criterion) {
    use blake2b_simd::many::{HashManyJob, hash_many};
    let mut input = vec![tags::PLOT_CHAIN.len() as u8];
    input.extend_from_slice(tags::PLOT_CHAIN);
    input.extend_from_slice(&[7u8; 64]);
    let mut params = blake2b_simd::Params::new();
    params.hash_length(32);
    assert_eq!(
        params.hash(&input).as_bytes(),
        hash(tags::PLOT_CHAIN, &[7u8; 64]).as_bytes(),
        "same function"
    );
    let mut g = c.benchmark_group("attacker_hash");
    g.throughput(Throughput::Elements(1));
    g.bench_function("blake2b_simd_one", |b| {
        b.iter(|| params.hash(black_box(&input)))
    });
    const LANES: usize = 16;
    g.throughput(Throughput::Elements(LANES as u64));
    g.bench_function("blake2b_simd_many_16", |b| {
        b.iter(|| {
            let mut jobs: Vec<HashManyJob> = (0..LANES)
                .map(|_| HashManyJob::new(&params, black_box(&input)))
                .collect();
            hash_many(jobs.iter_mut());
            black_box(jobs[0].to_hash())
        })
    });
    g.finish();
}

fn rules(c: &mut Criterion) {
    for network in ["dev", "testnet"] {
        let params = GenesisConfig::builtin(network).unwrap().plot;
        let shape = PlotShape::from(&params);
        let miner = PublicKey([1; 32]);
        let seed = Hash([2; 32]);
        let id = plot_id(&shape, &miner, &seed);
        let mut g = c.benchmark_group(format!("plot_{network}"));
        g.throughput(Throughput::Bytes(shape.group_bytes()));
        let mut chain = GroupChain::new();
        let mut leaves = vec![[0u8; 32]; shape.group_leaves() as usize];
        g.bench_function("plot_one_group", |b| {
            b.iter(|| {
                chain.compute(&shape, &id, black_box(5));
                chain.leaves_into(&mut leaves);
            })
        });
        // A valid proof: the first group of the selected bucket.
        let challenge = Hash([3; 32]);
        let sel = select(&shape, &challenge, &id);
        let group = (0..u64::from(shape.buckets))
            .find(|g| group_bucket(&shape, *g) == sel.bucket)
            .unwrap();
        let proof = ProofOfSpace {
            plot_seed: seed,
            group,
        };
        assert!(proof_score(&params, &miner, &challenge, &proof).is_ok());
        eprintln!(
            "{network}: G={} W={} B={} proof size {} bytes (postcard, group {group})",
            shape.group_leaves(),
            shape.chain_window,
            shape.buckets,
            encoded_len(&ProofOfSpace {
                plot_seed: seed,
                group: params.max_groups - 1
            })
        );
        g.throughput(Throughput::Elements(1));
        g.bench_function("verify_proof", |b| {
            b.iter(|| proof_score(&params, &miner, black_box(&challenge), &proof).unwrap())
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = primitives, attacker_hashing, rules
}
criterion_main!(benches);
