//! Chain import benchmarks: validate + commit, on a real redb file.
//!
//! - `import_empty`: 1,000 blocks with no transfers (dev parameters, real plots, one redb
//!   transaction and fsync per block) imported into a fresh database; throughput in blocks/s.
//!   `import_empty_1000_blocks_testnet_plot_params`: the same with testnet's plot parameters,
//!   whose proofs cost far more to verify.
//! - `import_full`: blocks of 4,000 transfers from 4,000 premined senders to fresh recipients;
//!   throughput in transfers/s, beside `batch_verify`: the same 4,000 signatures through
//!   `crypto::verify_batch` alone, the bound import cannot beat.
//!
//! The `_batched` variants import the same blocks with `Chain::import_blocks` (one write
//! transaction per run of consecutive blocks, signatures beside the state on both cores), as
//! sync far behind the network does.
//!
//! Run with `cargo bench --bench chain`.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spacetime::chain::{Chain, SoloMiner};
use spacetime::crypto::{SignedMessage, SigningDomain, verify_batch};
use spacetime::genesis::Allocation;
use spacetime::{Amount, Block, Genesis, GenesisConfig, Keypair, PublicKey, UnsignedTransfer};

const EMPTY_BLOCKS: usize = 1_000;
const TRANSFERS: usize = 4_000;
const FULL_BLOCKS: usize = 5;
const NOW: u64 = u64::MAX / 2;

fn mine(
    genesis: &Genesis,
    n: usize,
    transfers: impl Fn(u64) -> Vec<spacetime::Transfer>,
) -> Vec<Block> {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::open(&dir.path().join("c.redb"), genesis.clone()).unwrap();
    let miner = SoloMiner::new(&genesis.config.plot, Keypair::generate(), 1, 64);
    (0..n as u64)
        .map(|i| {
            let b = miner.mine_next(&chain, transfers(i)).unwrap();
            chain.import(b.clone(), NOW).unwrap();
            b
        })
        .collect()
}

/// Imports `blocks` into a fresh database; returns the time taken by the imports alone.
fn import_all(genesis: &Genesis, blocks: &[Block]) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::open(&dir.path().join("c.redb"), genesis.clone()).unwrap();
    // As the node's ChainState actor runs it.
    chain.set_parallel_signatures(true);
    let start = Instant::now();
    for b in blocks {
        chain.import(b.clone(), NOW).unwrap();
    }
    let took = start.elapsed();
    assert_eq!(chain.height(), blocks.len() as u64);
    took
}

/// Imports `blocks` into a fresh database with `Chain::import_blocks` (runs share one write
/// transaction, as sync far behind and `spacetime chain import` do).
fn import_batched(genesis: &Genesis, blocks: &[Block]) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::open(&dir.path().join("c.redb"), genesis.clone()).unwrap();
    chain.set_parallel_signatures(true);
    let blocks = blocks.to_vec();
    let start = Instant::now();
    let out = chain.import_blocks(blocks, NOW);
    let took = start.elapsed();
    assert!(out.results.iter().all(|(_, r)| r.is_ok()));
    assert_eq!(chain.height(), out.results.len() as u64);
    took
}

fn import_empty(c: &mut Criterion) {
    let genesis = Genesis::builtin("dev").unwrap();
    let blocks = mine(&genesis, EMPTY_BLOCKS, |_| Vec::new());
    let mut g = c.benchmark_group("chain");
    g.sample_size(10);
    g.throughput(Throughput::Elements(EMPTY_BLOCKS as u64));
    g.bench_function("import_empty_1000_blocks", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| import_all(&genesis, &blocks)).sum())
    });
    g.bench_function("import_empty_1000_blocks_batched", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| import_batched(&genesis, &blocks)).sum())
    });
    // The same with the testnet plot parameters (G = 2048: a proof costs ~0.4 ms to verify).
    let mut config = GenesisConfig::builtin("dev").unwrap();
    config.plot = GenesisConfig::builtin("testnet").unwrap().plot;
    let testnet_plots = Genesis::new(config).unwrap();
    let blocks = mine(&testnet_plots, EMPTY_BLOCKS, |_| Vec::new());
    g.bench_function("import_empty_1000_blocks_testnet_plot_params", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| import_all(&testnet_plots, &blocks))
                .sum()
        })
    });
    g.finish();
}

fn import_full(c: &mut Criterion) {
    let senders: Vec<Keypair> = (0..TRANSFERS).map(|_| Keypair::generate()).collect();
    let mut config = GenesisConfig::builtin("dev").unwrap();
    config.premine = senders
        .iter()
        .map(|k| Allocation {
            address: k.public(),
            amount: Amount(1_000_000_000),
        })
        .collect();
    let genesis = Genesis::new(config).unwrap();
    let chain_id = genesis.chain_id;
    let blocks = mine(&genesis, FULL_BLOCKS, |height| {
        senders
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let mut to = [0u8; 32];
                to[..8].copy_from_slice(&height.to_le_bytes());
                to[8..16].copy_from_slice(&(i as u64).to_le_bytes());
                UnsignedTransfer {
                    from: k.public(),
                    to: PublicKey(to),
                    amount: Amount(1_000),
                    fee: Amount(1),
                    nonce: height,
                    chain_id,
                }
                .sign(k)
                .unwrap()
            })
            .collect()
    });
    let mut g = c.benchmark_group("chain");
    g.sample_size(10);
    g.throughput(Throughput::Elements((TRANSFERS * FULL_BLOCKS) as u64));
    g.bench_function("import_full_5_blocks_of_4000_transfers", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| import_all(&genesis, &blocks)).sum())
    });
    g.bench_function("import_full_5_blocks_of_4000_transfers_batched", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| import_batched(&genesis, &blocks)).sum())
    });
    let messages: Vec<Vec<u8>> = blocks[0]
        .transfers
        .iter()
        .map(|t| t.signing_bytes())
        .collect();
    g.throughput(Throughput::Elements(TRANSFERS as u64));
    g.bench_function("batch_verify_4000_transfer_signatures", |b| {
        b.iter(|| {
            let items: Vec<SignedMessage<'_>> = blocks[0]
                .transfers
                .iter()
                .zip(&messages)
                .map(|(t, m)| SignedMessage {
                    key: &t.from,
                    message: m,
                    signature: &t.signature,
                })
                .collect();
            verify_batch(SigningDomain::Tx, &items).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, import_empty, import_full);
criterion_main!(benches);
