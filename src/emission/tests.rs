use super::*;
use proptest::prelude::*;

fn config(initial: u64, schedules: Vec<(u64, Schedule)>) -> EmissionConfig {
    EmissionConfig {
        initial_reward: Amount(initial),
        cap: None,
        floor: Amount::ZERO,
        schedules: schedules
            .into_iter()
            .map(|(activation_height, schedule)| ScheduleVersion {
                activation_height,
                schedule,
            })
            .collect(),
    }
}

fn halving(interval: u64) -> Schedule {
    Schedule::Halving { interval }
}

fn build(c: &EmissionConfig) -> Emission {
    Emission::new(c, Amount::ZERO).unwrap()
}

/// Checks `cumulative_supply` against summing `block_reward` over `0..=up_to`.
fn assert_closed_form_matches_sum(e: &Emission, up_to: u64) {
    let mut sum = u128::from(e.premine().units());
    for h in 0..=up_to {
        sum += u128::from(e.block_reward(h).units());
        assert_eq!(
            u128::from(e.cumulative_supply(h).units()),
            sum,
            "height {h}"
        );
    }
}

#[test]
fn genesis_pays_nothing_and_block_one_pays_the_initial_reward() {
    let e = build(&config(50, vec![(0, halving(10))]));
    assert_eq!(e.block_reward(0), Amount::ZERO);
    assert_eq!(e.block_reward(1), Amount(50));
    assert_eq!(e.cumulative_supply(0), Amount::ZERO);
    assert_eq!(e.cumulative_supply(1), Amount(50));
}

#[test]
fn halving_edges() {
    let e = build(&config(1000, vec![(0, halving(10))]));
    for (h, r) in [
        (1, 1000),
        (10, 1000),
        (11, 500),
        (20, 500),
        (21, 250),
        (31, 125),
        (101, 0),
    ] {
        assert_eq!(e.block_reward(h), Amount(r), "height {h}");
    }
    // 10 blocks each of 1000, 500, 250, 125, 62, 31, 15, 7, 3, 1.
    assert_eq!(e.supply_limit(), Amount(19_940));
    assert_closed_form_matches_sum(&e, 150);
}

#[test]
fn fixed_and_linear() {
    let f = build(&EmissionConfig {
        cap: Some(Amount(1_000)),
        ..config(7, vec![(0, Schedule::Fixed { reward: Amount(7) })])
    });
    assert_eq!(f.block_reward(1), Amount(7));
    assert_eq!(f.block_reward(142), Amount(7));
    // 142 * 7 = 994; block 143 gets the last 6 units.
    assert_eq!(f.cap_height(), Some(143));
    assert_eq!(f.block_reward(143), Amount(6));
    assert_eq!(f.block_reward(144), Amount::ZERO);
    assert_closed_form_matches_sum(&f, 200);

    let l = build(&config(
        100,
        vec![(
            0,
            Schedule::LinearDecay {
                decrease_per_block: Amount(30),
            },
        )],
    ));
    let rewards: Vec<u64> = (0..7).map(|h| l.block_reward(h).units()).collect();
    assert_eq!(rewards, vec![0, 100, 70, 40, 10, 0, 0]);
    assert_eq!(l.supply_limit(), Amount(220));
    assert_closed_form_matches_sum(&l, 50);
}

#[test]
fn custom_table_with_gaps_pays_the_floor() {
    let table = Schedule::CustomTable {
        ranges: vec![
            TableRange {
                start: 0,
                end: 5,
                reward: Amount(100),
            },
            TableRange {
                start: 8,
                end: 10,
                reward: Amount(3),
            },
            TableRange {
                start: 10,
                end: 12,
                reward: Amount(50),
            },
        ],
    };
    let c = EmissionConfig {
        floor: Amount(5),
        cap: Some(Amount(10_000)),
        ..config(100, vec![(0, table)])
    };
    let e = build(&c);
    let rewards: Vec<u64> = (0..14).map(|h| e.block_reward(h).units()).collect();
    assert_eq!(
        rewards,
        vec![0, 100, 100, 100, 100, 5, 5, 5, 5, 5, 50, 50, 5, 5]
    );
    assert_closed_form_matches_sum(&e, 300);
}

#[test]
fn floor_engages_and_holds_until_the_cap() {
    let c = EmissionConfig {
        floor: Amount(100),
        cap: Some(Amount(10_000)),
        ..config(1000, vec![(0, halving(5))])
    };
    let e = build(&c);
    // 5 x 1000, 5 x 500, 5 x 250, 5 x 125, then the floor of 100 (62 < 100).
    assert_eq!(e.block_reward(20), Amount(125));
    assert_eq!(e.block_reward(21), Amount(100));
    assert_eq!(e.cumulative_supply(20), Amount(9_375));
    // 9_375 + 6 * 100 = 9_975; block 27 is clipped to 25.
    assert_eq!(e.cap_height(), Some(27));
    assert_eq!(e.block_reward(26), Amount(100));
    assert_eq!(e.block_reward(27), Amount(25));
    assert_eq!(e.block_reward(28), Amount::ZERO);
    assert_eq!(e.cumulative_supply(u64::MAX), Amount(10_000));
    assert_closed_form_matches_sum(&e, 60);
}

#[test]
fn version_activation_continues_the_curve() {
    let c = config(
        1024,
        vec![
            (0, halving(10)),
            (
                25,
                Schedule::LinearDecay {
                    decrease_per_block: Amount(100),
                },
            ),
        ],
    );
    let e = build(&c);
    assert_eq!(e.block_reward(24), Amount(256));
    // The halving would have paid 256 at height 25: the linear decay starts there.
    assert_eq!(e.block_reward(25), Amount(256));
    assert_eq!(e.block_reward(26), Amount(156));
    assert_eq!(e.block_reward(27), Amount(56));
    assert_eq!(e.block_reward(28), Amount::ZERO);
    assert_eq!(e.activation_heights().collect::<Vec<_>>(), vec![1, 25]);
    assert_closed_form_matches_sum(&e, 80);
}

#[test]
fn premine_counts_toward_supply_and_cap() {
    let c = EmissionConfig {
        cap: Some(Amount(1_000)),
        ..config(100, vec![(0, halving(1000))])
    };
    let e = Emission::new(&c, Amount(950)).unwrap();
    assert_eq!(e.cumulative_supply(0), Amount(950));
    assert_eq!(e.block_reward(1), Amount(50));
    assert_eq!(e.block_reward(2), Amount::ZERO);
    let all = Emission::new(&c, Amount(1_000)).unwrap();
    assert_eq!(all.block_reward(1), Amount::ZERO);
    assert!(Emission::new(&c, Amount(1_001)).is_err());
}

// Known answers from published schedules of real chains.

#[test]
fn bitcoin() {
    // 50 BTC halving every 210,000 blocks. Bitcoin's genesis reward is unspendable; our block h
    // corresponds to Bitcoin's block h - 1, so our total is Bitcoin's published maximum supply
    // of 20,999,999.9769 BTC.
    let e = build(&config(50_0000_0000, vec![(0, halving(210_000))]));
    assert_eq!(e.supply_limit(), Amount(2_099_999_997_690_000));
    assert_eq!(e.block_reward(210_000), Amount(50_0000_0000)); // Bitcoin block 209,999
    assert_eq!(e.block_reward(210_001), Amount(25_0000_0000)); // Bitcoin block 210,000
    assert_eq!(e.block_reward(840_001), Amount(3_1250_0000)); // Bitcoin block 840,000 (2024)
    assert_eq!(e.cumulative_supply(210_000), Amount(1_050_000_000_000_000));
    // 33 halvings pay something; 6,930,000 blocks in all.
    assert_eq!(e.block_reward(6_930_000), Amount(1));
    assert_eq!(e.block_reward(6_930_001), Amount::ZERO);
    assert_eq!(e.height_reaching(e.supply_limit()), Some(6_930_000));
}

#[test]
fn litecoin() {
    // 50 LTC halving every 840,000 blocks: 83,999,999.9076 LTC.
    let e = build(&config(50_0000_0000, vec![(0, halving(840_000))]));
    assert_eq!(e.supply_limit(), Amount(8_399_999_990_760_000));
}

#[test]
fn ethereum_proof_of_work_block_rewards() {
    // Base block rewards in gwei: 5 ETH from block 1, 3 ETH from Byzantium (4,370,000), 2 ETH
    // from Constantinople (7,280,000), nothing after the Merge (15,537,394). Uncle rewards are
    // not part of the schedule.
    let gwei = 1_000_000_000u64;
    let fixed = |eth: u64| Schedule::Fixed {
        reward: Amount(eth * gwei),
    };
    let e = build(&config(
        5 * gwei,
        vec![
            (0, fixed(5)),
            (4_370_000, fixed(3)),
            (7_280_000, fixed(2)),
            (15_537_394, fixed(0)),
        ],
    ));
    assert_eq!(e.block_reward(4_369_999), Amount(5 * gwei));
    assert_eq!(e.block_reward(4_370_000), Amount(3 * gwei));
    assert_eq!(e.block_reward(15_537_393), Amount(2 * gwei));
    assert_eq!(e.block_reward(15_537_394), Amount::ZERO);
    assert_eq!(e.supply_limit(), Amount(47_094_783_000_000_000));
    assert_eq!(
        e.cumulative_supply(u64::MAX),
        Amount(47_094_783_000_000_000)
    );
}

#[test]
fn exponential_decay_halves_each_half_life() {
    let e = build(&config(
        1 << 40,
        vec![(
            0,
            Schedule::ExponentialDecay {
                half_life_blocks: 1000,
            },
        )],
    ));
    assert_eq!(e.block_reward(1), Amount(1 << 40));
    assert_eq!(e.block_reward(1001), Amount(1 << 39));
    assert_eq!(e.block_reward(5001), Amount(1 << 35));
    let mut prev = u64::MAX;
    for h in 1..5000 {
        let r = e.block_reward(h).units();
        assert!(r <= prev);
        prev = r;
    }
    // Converges to about R * H / ln 2.
    let limit = e.supply_limit().units() as f64;
    let smooth = (1u64 << 40) as f64 * 1000.0 / std::f64::consts::LN_2;
    assert!((limit / smooth - 1.0).abs() < 0.003, "{limit} vs {smooth}");
    assert_closed_form_matches_sum(&e, 3000);
}

#[test]
fn refused_configs_name_the_problem() {
    let err = |c: &EmissionConfig| Emission::new(c, Amount::ZERO).unwrap_err();
    let fixed = config(
        7,
        vec![(
            0,
            Schedule::Fixed {
                reward: Amount(u64::MAX / 4),
            },
        )],
    );
    let e = err(&fixed);
    assert_eq!(e.field, "emission");
    assert!(e.reason.contains("at height 5"), "{e}");
    // The same schedule under a cap is fine.
    assert!(
        Emission::new(
            &EmissionConfig {
                cap: Some(Amount(u64::MAX)),
                ..fixed
            },
            Amount::ZERO
        )
        .is_ok()
    );

    let floor = EmissionConfig {
        floor: Amount(8),
        ..config(7, vec![(0, halving(1))])
    };
    assert_eq!(err(&floor).field, "emission.floor");
    let order = config(7, vec![(0, halving(1)), (10, halving(1)), (10, halving(2))]);
    assert_eq!(err(&order).field, "emission.schedules[2].activation_height");
    let overlap = config(
        7,
        vec![(
            0,
            Schedule::CustomTable {
                ranges: vec![
                    TableRange {
                        start: 0,
                        end: 10,
                        reward: Amount(1),
                    },
                    TableRange {
                        start: 9,
                        end: 12,
                        reward: Amount(1),
                    },
                ],
            },
        )],
    );
    assert_eq!(err(&overlap).field, "emission.schedules[0].ranges[1]");
    let outside = config(
        7,
        vec![
            (
                0,
                Schedule::CustomTable {
                    ranges: vec![TableRange {
                        start: 0,
                        end: 20,
                        reward: Amount(1),
                    }],
                },
            ),
            (10, halving(1)),
        ],
    );
    assert_eq!(err(&outside).field, "emission.schedules[0].ranges[0]");
    let zero = config(7, vec![(0, halving(0))]);
    assert_eq!(err(&zero).field, "emission.schedules[0].interval");
    let linear_overflow = config(
        u64::MAX,
        vec![(
            0,
            Schedule::LinearDecay {
                decrease_per_block: Amount(1),
            },
        )],
    );
    assert_eq!(err(&linear_overflow).field, "emission");
}

fn arb_schedule() -> impl Strategy<Value = Schedule> {
    prop_oneof![
        (1u64..50).prop_map(|interval| Schedule::Halving { interval }),
        (1u64..600).prop_map(|half_life_blocks| Schedule::ExponentialDecay { half_life_blocks }),
        (0u64..5_000).prop_map(|d| Schedule::LinearDecay {
            decrease_per_block: Amount(d)
        }),
        (0u64..100_000).prop_map(|r| Schedule::Fixed { reward: Amount(r) }),
        proptest::collection::vec((1u64..20, 0u64..20, 0u64..200_000), 0..5).prop_map(|steps| {
            let mut start = 0;
            let ranges = steps
                .into_iter()
                .map(|(len, gap, reward)| {
                    let r = TableRange {
                        start: start + gap,
                        end: start + gap + len,
                        reward: Amount(reward),
                    };
                    start = r.end;
                    r
                })
                .collect();
            Schedule::CustomTable { ranges }
        }),
    ]
}

fn arb_config() -> impl Strategy<Value = EmissionConfig> {
    (
        1u64..1_000_000,
        proptest::option::of(1u64..50_000_000),
        0u64..1_000,
        proptest::collection::vec((1u64..150, arb_schedule()), 0..3),
        arb_schedule(),
    )
        .prop_map(|(initial, cap, floor, later, first)| {
            let mut schedules = vec![ScheduleVersion {
                activation_height: 0,
                schedule: first,
            }];
            let mut height = 0;
            for (gap, schedule) in later {
                height += gap;
                schedules.push(ScheduleVersion {
                    activation_height: height,
                    schedule,
                });
            }
            EmissionConfig {
                initial_reward: Amount(initial),
                // Always capped, so fixed and floored schedules stay in range.
                cap: Some(Amount(cap.unwrap_or(u64::MAX))),
                floor: Amount(floor.min(initial)),
                schedules,
            }
        })
}

/// Shifts table ranges of later versions into their segment (generated from 0).
fn normalise(mut c: EmissionConfig) -> EmissionConfig {
    let activations: Vec<u64> = c.schedules.iter().map(|v| v.activation_height).collect();
    for (i, v) in c.schedules.iter_mut().enumerate() {
        let next = activations.get(i + 1).copied().unwrap_or(u64::MAX);
        if let Schedule::CustomTable { ranges } = &mut v.schedule {
            for r in ranges.iter_mut() {
                r.start += v.activation_height;
                r.end += v.activation_height;
            }
            ranges.retain(|r| r.end <= next);
        }
    }
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn closed_form_equals_summation(c in arb_config().prop_map(normalise), premine in 0u64..1000) {
        let Ok(e) = Emission::new(&c, Amount(premine.min(c.cap.map_or(u64::MAX, Amount::units)))) else {
            return Ok(());
        };
        let mut sum = u128::from(e.premine().units());
        for h in 0..=1_500u64 {
            sum += u128::from(e.block_reward(h).units());
            prop_assert_eq!(u128::from(e.cumulative_supply(h).units()), sum, "height {}", h);
        }
    }

    #[test]
    fn supply_never_exceeds_the_cap_and_is_deterministic(c in arb_config().prop_map(normalise), h: u64) {
        let Ok(e) = Emission::new(&c, Amount::ZERO) else { return Ok(()) };
        let again = Emission::new(&c, Amount::ZERO).unwrap();
        prop_assert_eq!(&e, &again);
        let cap = c.cap.unwrap_or(Amount::MAX);
        prop_assert!(e.cumulative_supply(h) <= cap);
        prop_assert!(e.cumulative_supply(u64::MAX) <= cap);
        prop_assert_eq!(e.block_reward(h), again.block_reward(h));
        // The supply at the cap height is the cap (when the cap is reached).
        if let Some(hc) = e.cap_height() {
            prop_assert_eq!(e.cumulative_supply(hc), cap);
            prop_assert!(hc == 0 || e.cumulative_supply(hc - 1) < cap);
        }
    }

    #[test]
    fn decaying_schedules_never_increase(
        schedule in arb_schedule().prop_filter("decaying", |s| !matches!(s, Schedule::CustomTable { .. })),
        initial in 1u64..u64::MAX / 2,
        floor in 0u64..1000,
        start in 1u64..1_000_000_000,
    ) {
        let c = EmissionConfig {
            floor: Amount(floor.min(initial)),
            cap: Some(Amount::MAX),
            ..config(initial, vec![(0, schedule)])
        };
        let e = Emission::new(&c, Amount::ZERO).unwrap();
        let mut prev = e.block_reward(start);
        for h in start + 1..start + 500 {
            let r = e.block_reward(h);
            prop_assert!(r <= prev, "height {}: {} > {}", h, r, prev);
            prev = r;
        }
    }

    #[test]
    fn supply_is_monotone_at_random_heights(c in arb_config().prop_map(normalise), a: u64, b: u64) {
        let Ok(e) = Emission::new(&c, Amount::ZERO) else { return Ok(()) };
        let (lo, hi) = (a.min(b), a.max(b));
        prop_assert!(e.cumulative_supply(lo) <= e.cumulative_supply(hi));
    }
}
