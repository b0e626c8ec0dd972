//! Mempool benchmarks, on a pool holding 100,000 pending transfers (10,000 senders with 10
//! consecutive nonces each, fees spread over 1..10,000 units).
//!
//! - `admit_5000_into_100000`: admitting 5,000 fresh transfers (distinct senders) into a clone
//!   of the filled pool (the clone is untimed); throughput in transfers/s.
//! - `verify_5000_signatures`: `Transfer::verify_signature` alone on the same 5,000 transfers,
//!   the part of admission that is not the pool's own work.
//! - `admit_5000_into_full_pool`: the same admissions into a pool whose byte limit is reached,
//!   so that each one evicts the lowest fee rate.
//! - `template_12000_2mib`: a block template of 12,000 transfers / 2 MiB from the 100,000.
//!
//! Before the criterion runs, the split between signature check and the pool's own work is
//! timed by hand (each signature verified alone, then the transfer admitted, interleaved) and
//! printed. Run with `cargo bench --bench mempool`.

use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use spacetime::crypto::Address;
use spacetime::mempool::{AccountSnapshot, Mempool, MempoolConfig};
use spacetime::{Amount, ChainId, Keypair, PublicKey, Transfer, UnsignedTransfer};

const SENDERS: u64 = 10_000;
const NONCES: u64 = 10;
const FRESH: u64 = 5_000;
const CHAIN: ChainId = ChainId(7);
const NOW: u64 = 1_000_000;
const TEMPLATE_COUNT: usize = 12_000;
const TEMPLATE_BYTES: usize = 2 * 1024 * 1024;

fn accounts(_: &Address) -> AccountSnapshot {
    AccountSnapshot {
        mature: Amount(u64::MAX),
        nonce: 0,
    }
}

fn key(i: u64) -> Keypair {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&i.to_le_bytes());
    Keypair::from_seed(&seed)
}

fn transfer(key: &Keypair, nonce: u64, fee: u64) -> Transfer {
    UnsignedTransfer {
        from: key.public(),
        to: PublicKey([9; 32]),
        amount: Amount(1_000),
        fee: Amount(fee),
        nonce,
        chain_id: CHAIN,
    }
    .sign(key)
    .unwrap()
}

/// A deterministic spread of fees in `1..=10_000`.
fn fee(i: u64) -> u64 {
    1 + i.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) % 10_000
}

struct Setup {
    filled: Mempool,
    fresh: Vec<Transfer>,
}

fn setup() -> Setup {
    let start = Instant::now();
    let mut filled = Mempool::new(MempoolConfig::default(), CHAIN);
    for s in 0..SENDERS {
        let k = key(s);
        for nonce in 0..NONCES {
            let t = transfer(&k, nonce, fee(s * NONCES + nonce));
            filled.add(t, NOW, &accounts).unwrap();
        }
    }
    // Fresh senders, paying more than anything pooled: in the full pool each one evicts.
    let fresh = (0..FRESH)
        .map(|i| transfer(&key(SENDERS + i), 0, 10_001 + fee(i)))
        .collect();
    println!(
        "mempool bench setup: {} transfers, {} bytes, built in {:.1?}",
        filled.len(),
        filled.bytes(),
        start.elapsed()
    );
    Setup { filled, fresh }
}

fn admit_all(mut pool: Mempool, fresh: Vec<Transfer>) -> Mempool {
    for t in fresh {
        pool.add(t, NOW, &accounts).unwrap();
    }
    pool
}

fn verify_all(fresh: &[Transfer]) {
    for t in fresh {
        t.verify_signature().unwrap();
    }
}

/// Admits `fresh` into `pool` one by one; returns the time spent in `add` and the time spent
/// verifying the same signatures alone just before each admission.
fn split(mut pool: Mempool, fresh: &[Transfer]) -> (Duration, Duration) {
    let (mut admit, mut verify) = (Duration::ZERO, Duration::ZERO);
    for t in fresh {
        let copy = t.clone();
        let t0 = Instant::now();
        t.verify_signature().unwrap();
        verify += t0.elapsed();
        let t0 = Instant::now();
        pool.add(copy, NOW, &accounts).unwrap();
        admit += t0.elapsed();
    }
    assert!(pool.contains(&fresh[0].id()) && pool.bytes() <= pool.config().max_bytes);
    (admit, verify)
}

fn per_tx(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6 / FRESH as f64
}

fn mempool(c: &mut Criterion) {
    let Setup { filled, fresh } = setup();
    let mut full = filled.clone();
    full = {
        let config = MempoolConfig {
            max_bytes: full.bytes(),
            ..MempoolConfig::default()
        };
        let mut pool = Mempool::new(config, CHAIN);
        for t in full.template(usize::MAX, usize::MAX) {
            pool.add(t, NOW, &accounts).unwrap();
        }
        pool
    };

    // The split, timed by hand: each transfer's signature check alone, then its admission,
    // interleaved so that noise from the rest of the machine hits both alike; three rounds.
    for round in 1..=3 {
        let (admit, verify) = split(filled.clone(), &fresh);
        let (admit_full, _) = split(full.clone(), &fresh);
        println!(
            "round {round}: admission of {FRESH} into {}: {admit:.1?} ({:.0} tx/s, {:.1} us/tx); \
             verify_signature alone: {verify:.1?} ({:.1} us/tx, {:.0}% of admission); \
             pool work without the signature: {:.2} us/tx; \
             into the full pool (one eviction each): {admit_full:.1?} ({:.2} us/tx without the \
             signature)",
            filled.len(),
            FRESH as f64 / admit.as_secs_f64(),
            per_tx(admit),
            per_tx(verify),
            100.0 * verify.as_secs_f64() / admit.as_secs_f64(),
            per_tx(admit.saturating_sub(verify)),
            per_tx(admit_full.saturating_sub(verify)),
        );
    }

    let mut g = c.benchmark_group("mempool");
    g.sample_size(10);
    g.throughput(Throughput::Elements(FRESH));
    g.bench_function("admit_5000_into_100000", |b| {
        b.iter_batched(
            || (filled.clone(), fresh.clone()),
            |(pool, batch)| admit_all(pool, batch),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("verify_5000_signatures", |b| b.iter(|| verify_all(&fresh)));
    g.bench_function("admit_5000_into_full_pool", |b| {
        b.iter_batched(
            || (full.clone(), fresh.clone()),
            |(pool, batch)| admit_all(pool, batch),
            BatchSize::LargeInput,
        )
    });
    let block = filled.template(TEMPLATE_COUNT, TEMPLATE_BYTES);
    println!("template from {}: {} transfers", filled.len(), block.len());
    g.throughput(Throughput::Elements(block.len() as u64));
    g.bench_function("template_12000_2mib", |b| {
        b.iter(|| filled.template(TEMPLATE_COUNT, TEMPLATE_BYTES))
    });
    g.finish();
}

criterion_group!(benches, mempool);
criterion_main!(benches);
