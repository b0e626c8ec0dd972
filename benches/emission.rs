//! Benchmarks of `block_reward` and `cumulative_supply` at random heights, per schedule.
//!
//! Run: `cargo bench --bench emission`. Throughput is in calls per second.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spacetime::Amount;
use spacetime::emission::Emission;
use spacetime::genesis::{EmissionConfig, Schedule, ScheduleVersion, TableRange};

const CALLS: usize = 4096;

fn emission(schedule: Schedule, cap: Option<u64>) -> Emission {
    let config = EmissionConfig {
        initial_reward: Amount(5_000_000_000),
        cap: cap.map(Amount),
        floor: Amount::ZERO,
        schedules: vec![ScheduleVersion {
            activation_height: 0,
            schedule,
        }],
    };
    Emission::new(&config, Amount::ZERO).unwrap_or_else(|e| panic!("bench config: {e}"))
}

fn schedules() -> Vec<(&'static str, Emission)> {
    let table = (0..64u64)
        .map(|i| TableRange {
            start: i * 100_000,
            end: (i + 1) * 100_000,
            reward: Amount(5_000_000_000 - i * 50_000_000),
        })
        .collect();
    vec![
        (
            "halving",
            emission(
                Schedule::Halving {
                    interval: 2_100_000,
                },
                None,
            ),
        ),
        (
            "fixed",
            emission(
                Schedule::Fixed {
                    reward: Amount(5_000_000_000),
                },
                Some(2_100_000_000_000_000),
            ),
        ),
        (
            "linear_decay",
            emission(
                Schedule::LinearDecay {
                    decrease_per_block: Amount(1_000),
                },
                None,
            ),
        ),
        (
            "exponential_decay",
            emission(
                Schedule::ExponentialDecay {
                    half_life_blocks: 2_100_000,
                },
                None,
            ),
        ),
        (
            "custom_table",
            emission(Schedule::CustomTable { ranges: table }, None),
        ),
    ]
}

/// Heights spread over the whole schedule and past its end (deterministic xorshift).
fn heights() -> Vec<u64> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..CALLS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % 150_000_000
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let heights = heights();
    let mut reward = c.benchmark_group("block_reward");
    reward.throughput(Throughput::Elements(CALLS as u64));
    for (name, e) in schedules() {
        reward.bench_function(name, |b| {
            b.iter(|| {
                let mut acc = 0u64;
                for &h in black_box(&heights) {
                    acc = acc.wrapping_add(e.block_reward(h).units());
                }
                acc
            })
        });
    }
    reward.finish();
    let mut supply = c.benchmark_group("cumulative_supply");
    supply.throughput(Throughput::Elements(CALLS as u64));
    for (name, e) in schedules() {
        supply.bench_function(name, |b| {
            b.iter(|| {
                let mut acc = 0u64;
                for &h in black_box(&heights) {
                    acc = acc.wrapping_add(e.cumulative_supply(h).units());
                }
                acc
            })
        });
    }
    supply.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = bench
}
criterion_main!(benches);
