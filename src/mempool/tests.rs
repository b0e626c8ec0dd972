use core::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;

use super::queue::FeeRate;
use super::*;
use crate::crypto::{Keypair, PublicKey, SignatureError};
use crate::encoding::encode;
use crate::tx::UnsignedTransfer;

const CHAIN: ChainId = ChainId(42);
const RICH: u64 = 1_000_000_000_000;

fn key(i: u64) -> Keypair {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&i.to_le_bytes());
    Keypair::from_seed(&seed)
}

fn unsigned(key: &Keypair, nonce: u64, fee: u64, amount: u64) -> UnsignedTransfer {
    UnsignedTransfer {
        from: key.public(),
        to: PublicKey([7; 32]),
        amount: Amount(amount),
        fee: Amount(fee),
        nonce,
        chain_id: CHAIN,
    }
}

fn tx_amount(key: &Keypair, nonce: u64, fee: u64, amount: u64) -> Transfer {
    unsigned(key, nonce, fee, amount).sign(key).unwrap()
}

fn tx(key: &Keypair, nonce: u64, fee: u64) -> Transfer {
    tx_amount(key, nonce, fee, 1_000)
}

/// Accounts at the tip; unknown accounts are rich with nonce 0.
#[derive(Default)]
struct Ledger(HashMap<Address, AccountSnapshot>);

impl Ledger {
    fn set(&mut self, key: &Keypair, mature: u64, nonce: u64) {
        self.0.insert(
            key.public(),
            AccountSnapshot {
                mature: Amount(mature),
                nonce,
            },
        );
    }
}

impl AccountSource for Ledger {
    fn account(&self, address: &Address) -> AccountSnapshot {
        self.0.get(address).copied().unwrap_or(AccountSnapshot {
            mature: Amount(RICH),
            nonce: 0,
        })
    }
}

fn pool() -> Mempool {
    Mempool::new(MempoolConfig::default(), CHAIN)
}

fn pool_with(config: MempoolConfig) -> Mempool {
    Mempool::new(config, CHAIN)
}

fn size_of(tx: &Transfer) -> usize {
    encode(tx).len()
}

impl Mempool {
    /// Every index agrees with the queues, and every queue is a valid chain for `accounts`.
    fn check(&self, accounts: &impl AccountSource) {
        let mut bytes = 0;
        let mut count = 0;
        let mut tails = BTreeSet::new();
        for (sender, queue) in &self.senders {
            assert!(!queue.entries.is_empty(), "empty queue kept");
            let account = accounts.account(sender);
            assert_eq!(
                queue.base, account.nonce,
                "queue does not start at the nonce"
            );
            assert!(queue.entries.len() <= self.config.max_per_sender);
            let mut total = 0u128;
            for (i, e) in queue.entries.iter().enumerate() {
                assert_eq!(e.tx.from, *sender);
                assert_eq!(e.tx.nonce, queue.base + i as u64, "gap in a chain");
                assert_eq!(self.ids.get(&e.id), Some(&(*sender, e.tx.nonce)));
                assert_eq!(
                    self.by_time.get(&(e.added_ms, e.seq)),
                    Some(&(*sender, e.tx.nonce))
                );
                assert_eq!(e.size, size_of(&e.tx));
                assert_eq!(e.id, e.tx.id());
                assert_eq!(e.debit, e.tx.total_debit().unwrap());
                bytes += e.size;
                count += 1;
                total += e.debit();
            }
            assert_eq!(queue.total, total);
            assert!(total <= u128::from(account.mature.units()), "unaffordable");
            tails.insert(Tail::of(*sender, queue.entries.back().unwrap()));
        }
        assert_eq!(self.bytes, bytes);
        assert_eq!(self.ids.len(), count);
        assert_eq!(self.by_time.len(), count);
        assert_eq!(self.tails, tails);
        assert!(self.bytes <= self.config.max_bytes);
    }
}

#[test]
fn admits_and_indexes() {
    let mut pool = pool();
    let ledger = Ledger::default();
    let a = key(1);
    let t = tx(&a, 0, 10);
    let admitted = pool.add(t.clone(), 5, &ledger).unwrap();
    assert_eq!(
        admitted,
        Admitted {
            id: t.id(),
            replaced: None,
            evicted: vec![]
        }
    );
    assert!(pool.contains(&t.id()));
    assert_eq!(pool.get(&t.id()), Some(&t));
    assert_eq!((pool.len(), pool.sender_count()), (1, 1));
    assert_eq!(pool.bytes(), size_of(&t));
    assert!(!pool.is_empty());
    pool.check(&ledger);
}

#[test]
fn closures_are_account_sources() {
    let mut pool = pool();
    let a = key(1);
    let accounts = |_: &Address| AccountSnapshot {
        mature: Amount(5_000),
        nonce: 3,
    };
    pool.add(tx(&a, 3, 10), 0, &accounts).unwrap();
    assert_eq!(pool.pending_nonce(&a.public(), &accounts), 4);
}

#[test]
fn refuses_wrong_chain() {
    let a = key(1);
    let mut u = unsigned(&a, 0, 10, 1_000);
    u.chain_id = ChainId(43);
    let t = u.sign(&a).unwrap();
    assert_eq!(
        pool().add(t, 0, &Ledger::default()),
        Err(MempoolError::WrongChain {
            expected: CHAIN,
            found: ChainId(43)
        })
    );
}

#[test]
fn refuses_zero_amount() {
    let a = key(1);
    assert_eq!(
        pool().add(tx_amount(&a, 0, 10, 0), 0, &Ledger::default()),
        Err(MempoolError::ZeroAmount)
    );
}

#[test]
fn refuses_amount_overflow() {
    let a = key(1);
    assert_eq!(
        pool().add(tx_amount(&a, 0, 2, u64::MAX), 0, &Ledger::default()),
        Err(MempoolError::AmountOverflow {
            amount: Amount::MAX,
            fee: Amount(2)
        })
    );
}

#[test]
fn refuses_fee_below_minimum() {
    let mut pool = pool_with(MempoolConfig {
        min_fee: Amount(5),
        ..MempoolConfig::default()
    });
    let ledger = Ledger::default();
    let a = key(1);
    assert_eq!(
        pool.add(tx(&a, 0, 4), 0, &ledger),
        Err(MempoolError::FeeTooLow {
            fee: Amount(4),
            min: Amount(5)
        })
    );
    pool.add(tx(&a, 0, 5), 0, &ledger).unwrap();
    // The default minimum is one unit: a free transfer is refused.
    let b = key(2);
    assert!(matches!(
        self::pool().add(tx(&b, 0, 0), 0, &ledger),
        Err(MempoolError::FeeTooLow { .. })
    ));
}

#[test]
fn refuses_used_nonce() {
    let mut ledger = Ledger::default();
    let a = key(1);
    ledger.set(&a, RICH, 3);
    assert_eq!(
        pool().add(tx(&a, 2, 10), 0, &ledger),
        Err(MempoolError::NonceTooLow {
            nonce: 2,
            expected: 3
        })
    );
}

#[test]
fn refuses_nonce_gap() {
    let mut pool = pool();
    let ledger = Ledger::default();
    let a = key(1);
    assert_eq!(
        pool.add(tx(&a, 1, 10), 0, &ledger),
        Err(MempoolError::NonceGap { nonce: 1, next: 0 })
    );
    pool.add(tx(&a, 0, 10), 0, &ledger).unwrap();
    assert_eq!(
        pool.add(tx(&a, 2, 10), 0, &ledger),
        Err(MempoolError::NonceGap { nonce: 2, next: 1 })
    );
    pool.add(tx(&a, 1, 10), 0, &ledger).unwrap();
    pool.add(tx(&a, 2, 10), 0, &ledger).unwrap();
    pool.check(&ledger);
}

#[test]
fn refuses_duplicate() {
    let mut pool = pool();
    let ledger = Ledger::default();
    let t = tx(&key(1), 0, 10);
    pool.add(t.clone(), 0, &ledger).unwrap();
    assert_eq!(
        pool.add(t.clone(), 1, &ledger),
        Err(MempoolError::Duplicate { id: t.id() })
    );
    assert_eq!(pool.len(), 1);
}

#[test]
fn refuses_replacement_without_enough_bump() {
    let mut pool = pool();
    let ledger = Ledger::default();
    let a = key(1);
    pool.add(tx(&a, 0, 100), 0, &ledger).unwrap();
    assert_eq!(
        pool.add(tx(&a, 0, 109), 0, &ledger),
        Err(MempoolError::ReplacementFeeTooLow {
            nonce: 0,
            old_fee: Amount(100),
            fee: Amount(109),
            required: 110
        })
    );
    // A zero bump still demands strictly more.
    let mut flat = pool_with(MempoolConfig {
        replace_bump_percent: 0,
        ..MempoolConfig::default()
    });
    flat.add(tx_amount(&a, 0, 100, 1), 0, &ledger).unwrap();
    assert!(matches!(
        flat.add(tx_amount(&a, 0, 100, 2), 0, &ledger),
        Err(MempoolError::ReplacementFeeTooLow { required: 101, .. })
    ));
    flat.add(tx_amount(&a, 0, 101, 2), 0, &ledger).unwrap();
}

#[test]
fn replacement_replaces() {
    let mut pool = pool();
    let ledger = Ledger::default();
    let a = key(1);
    let old = tx(&a, 0, 100);
    let next = tx(&a, 1, 100);
    pool.add(old.clone(), 0, &ledger).unwrap();
    pool.add(next.clone(), 0, &ledger).unwrap();
    let new = tx(&a, 0, 110);
    let admitted = pool.add(new.clone(), 1, &ledger).unwrap();
    assert_eq!(admitted.replaced, Some(old.id()));
    assert!(admitted.evicted.is_empty());
    assert!(!pool.contains(&old.id()));
    assert!(pool.contains(&new.id()) && pool.contains(&next.id()));
    assert_eq!(pool.len(), 2);
    assert_eq!(pool.template(10, 10_000), vec![new, next]);
    pool.check(&ledger);
}

#[test]
fn replacement_must_keep_later_transfers_affordable() {
    let mut pool = pool();
    let mut ledger = Ledger::default();
    let a = key(1);
    ledger.set(&a, 3_000, 0);
    pool.add(tx(&a, 0, 10), 0, &ledger).unwrap();
    pool.add(tx(&a, 1, 10), 0, &ledger).unwrap();
    // Affordable on its own (2,520 <= 3,000) but not with nonce 1 after it.
    assert_eq!(
        pool.add(tx_amount(&a, 0, 20, 2_500), 0, &ledger),
        Err(MempoolError::ReplacementUnaffordable {
            needed: 2_520 + 1_010,
            mature: Amount(3_000)
        })
    );
    // Replacing nonce 1: 1,010 for nonce 0 first, then 2,520.
    assert_eq!(
        pool.add(tx_amount(&a, 1, 20, 2_500), 0, &ledger),
        Err(MempoolError::InsufficientBalance {
            needed: 1_010 + 2_520,
            queued: 1_010,
            mature: Amount(3_000)
        })
    );
    pool.add(tx_amount(&a, 1, 20, 1_900), 0, &ledger).unwrap();
    pool.check(&ledger);
}

#[test]
fn balance_counts_earlier_queued_transfers() {
    let mut pool = pool();
    let mut ledger = Ledger::default();
    let a = key(1);
    ledger.set(&a, 2_500, 0);
    pool.add(tx(&a, 0, 10), 0, &ledger).unwrap();
    pool.add(tx(&a, 1, 10), 0, &ledger).unwrap();
    assert_eq!(
        pool.add(tx(&a, 2, 10), 0, &ledger),
        Err(MempoolError::InsufficientBalance {
            needed: 3_030,
            queued: 2_020,
            mature: Amount(2_500)
        })
    );
    pool.add(tx_amount(&a, 2, 10, 470), 0, &ledger).unwrap();
    pool.check(&ledger);
}

#[test]
fn refuses_too_many_from_one_sender() {
    let mut pool = pool_with(MempoolConfig {
        max_per_sender: 3,
        ..MempoolConfig::default()
    });
    let ledger = Ledger::default();
    let a = key(1);
    for nonce in 0..3 {
        pool.add(tx(&a, nonce, 10), 0, &ledger).unwrap();
    }
    assert_eq!(
        pool.add(tx(&a, 3, 10), 0, &ledger),
        Err(MempoolError::TooManyFromSender { queued: 3, max: 3 })
    );
    // Replacing a queued nonce is still allowed at the limit.
    pool.add(tx(&a, 2, 20), 0, &ledger).unwrap();
    pool.check(&ledger);
}

#[test]
fn refuses_bad_signature() {
    let mut pool = pool();
    let ledger = Ledger::default();
    let mut t = tx(&key(1), 0, 10);
    t.unsigned.amount = Amount(1_001);
    assert_eq!(
        pool.add(t, 0, &ledger),
        Err(MempoolError::BadSignature(SignatureError::Mismatch))
    );
    assert!(pool.is_empty());
}

#[test]
fn signature_is_checked_last() {
    let mut pool = pool();
    let mut ledger = Ledger::default();
    let a = key(1);
    ledger.set(&a, 100, 0);
    let mut forged = tx(&a, 0, 10);
    forged.unsigned.amount = Amount(1_001);
    assert!(matches!(
        pool.add(forged.clone(), 0, &ledger),
        Err(MempoolError::InsufficientBalance { .. })
    ));
    forged.unsigned.chain_id = ChainId(1);
    assert!(matches!(
        pool.add(forged, 0, &ledger),
        Err(MempoolError::WrongChain { .. })
    ));
}

#[test]
fn reasons_are_distinct() {
    let errors = [
        MempoolError::TooLarge { size: 1, max: 0 },
        MempoolError::WrongChain {
            expected: CHAIN,
            found: ChainId(1),
        },
        MempoolError::ZeroAmount,
        MempoolError::AmountOverflow {
            amount: Amount::MAX,
            fee: Amount(1),
        },
        MempoolError::Malformed(crate::tx::TxError::CoinbaseOverflow),
        MempoolError::FeeTooLow {
            fee: Amount(0),
            min: Amount(1),
        },
        MempoolError::NonceTooLow {
            nonce: 0,
            expected: 1,
        },
        MempoolError::NonceGap { nonce: 2, next: 1 },
        MempoolError::TooManyFromSender { queued: 1, max: 1 },
        MempoolError::Duplicate { id: Hash::ZERO },
        MempoolError::ReplacementFeeTooLow {
            nonce: 0,
            old_fee: Amount(1),
            fee: Amount(1),
            required: 2,
        },
        MempoolError::InsufficientBalance {
            needed: 2,
            queued: 0,
            mature: Amount(1),
        },
        MempoolError::ReplacementUnaffordable {
            needed: 2,
            mature: Amount(1),
        },
        MempoolError::BadSignature(SignatureError::Mismatch),
        MempoolError::PoolFull {
            fee: Amount(1),
            size: 136,
            bytes: 10,
            max_bytes: 10,
        },
    ];
    let labels: BTreeSet<&str> = errors.iter().map(MempoolError::reason).collect();
    assert_eq!(labels.len(), errors.len());
    let message = errors[11].to_string();
    assert!(message.contains('2') && message.contains('1'), "{message}");
}

#[test]
fn template_orders_by_fee_rate_and_nonce() {
    let mut pool = pool();
    let ledger = Ledger::default();
    let (a, b, c) = (key(1), key(2), key(3));
    let a0 = tx(&a, 0, 10);
    let a1 = tx(&a, 1, 100);
    let b0 = tx(&b, 0, 50);
    let c0 = tx(&c, 0, 20);
    let c1 = tx(&c, 1, 20);
    for t in [&a0, &a1, &c0, &c1, &b0] {
        pool.add(t.clone(), 0, &ledger).unwrap();
    }
    // Same sizes: rates follow fees. a1 pays most but waits for a0; c0 and c1 tie with
    // each other, c0 first by nonce.
    let all = pool.template(100, 1 << 20);
    assert_eq!(all, vec![b0.clone(), c0.clone(), c1, a0, a1]);
    assert_eq!(pool.template(2, 1 << 20), vec![b0.clone(), c0.clone()]);
    let two = size_of(&b0) + size_of(&c0);
    assert_eq!(pool.template(100, two + 10), vec![b0, c0]);
    assert!(pool.template(0, 1 << 20).is_empty());
    assert!(pool.template(100, MIN_TRANSFER_BYTES - 1).is_empty());
}

#[test]
fn template_breaks_ties_by_admission_order() {
    let mut pool = pool();
    let ledger = Ledger::default();
    let keys: Vec<Keypair> = (10..16).map(key).collect();
    let txs: Vec<Transfer> = keys.iter().map(|k| tx(k, 0, 30)).collect();
    for t in &txs {
        pool.add(t.clone(), 0, &ledger).unwrap();
    }
    assert_eq!(pool.template(100, 1 << 20), txs);
}

#[test]
fn min_transfer_bytes_is_the_smallest_encoding() {
    let a = key(1);
    let mut u = unsigned(&a, 0, 0, 1);
    u.chain_id = ChainId(0);
    assert_eq!(size_of(&u.sign(&a).unwrap()), MIN_TRANSFER_BYTES);
}

#[test]
fn fee_rates_compare_exactly() {
    let r = |fee, size| FeeRate { fee, size };
    assert_eq!(r(1, 3), r(2, 6));
    assert!(r(1, 3) < r(1, 2));
    assert!(r(u64::MAX - 1, 168) < r(u64::MAX, 168));
    assert!(r(u64::MAX, 168) < r(u64::MAX, 167));
    assert!(r(0, 132) < r(1, 168));
}

/// Three transfers of identical size from three senders fill a pool of `3 * size` bytes.
fn full_pool_of_three(fees: [u64; 3]) -> (Mempool, Vec<Transfer>, usize) {
    let txs: Vec<Transfer> = fees
        .iter()
        .enumerate()
        .map(|(i, &fee)| tx(&key(100 + i as u64), 0, fee))
        .collect();
    let size = size_of(&txs[0]);
    let mut pool = pool_with(MempoolConfig {
        max_bytes: 3 * size,
        ..MempoolConfig::default()
    });
    for t in &txs {
        assert_eq!(size_of(t), size);
        pool.add(t.clone(), 0, &Ledger::default()).unwrap();
    }
    (pool, txs, size)
}

#[test]
fn evicts_lowest_fee_rate_first() {
    let ledger = Ledger::default();
    let (mut pool, txs, size) = full_pool_of_three([5, 1, 3]);
    assert_eq!(pool.bytes(), 3 * size);
    let t = tx(&key(1), 0, 4);
    let admitted = pool.add(t.clone(), 0, &ledger).unwrap();
    assert_eq!(admitted.evicted, vec![txs[1].id()]);
    assert!(!pool.contains(&txs[1].id()) && pool.contains(&t.id()));
    assert_eq!(pool.bytes(), 3 * size);
    pool.check(&ledger);
}

#[test]
fn pool_full_refuses_low_fee_rate_and_changes_nothing() {
    let ledger = Ledger::default();
    let (mut pool, txs, _) = full_pool_of_three([5, 2, 3]);
    for fee in [1, 2] {
        // A lower rate, or an equal one (the newest goes first among equals), is refused.
        let err = pool.add(tx(&key(1), 0, fee), 0, &ledger).unwrap_err();
        assert!(matches!(err, MempoolError::PoolFull { .. }), "{err}");
        assert_eq!(err.reason(), "pool_full");
        assert!(err.to_string().contains("fee rate too low"));
    }
    assert_eq!(pool.len(), 3);
    assert!(txs.iter().all(|t| pool.contains(&t.id())));
    pool.check(&ledger);
    // A replacement that does not fit either is undone whole.
    let mut tiny = pool_with(MempoolConfig {
        max_bytes: size_of(&txs[0]),
        ..MempoolConfig::default()
    });
    let a = key(1);
    let small = tx(&a, 0, 100);
    tiny.add(small.clone(), 0, &ledger).unwrap();
    let bigger = tx_amount(&a, 0, 1_000, 1_000_000); // longer varints
    assert!(size_of(&bigger) > size_of(&small));
    assert!(matches!(
        tiny.add(bigger, 0, &ledger),
        Err(MempoolError::PoolFull { .. })
    ));
    assert_eq!(tiny.template(10, 1 << 20), vec![small]);
    tiny.check(&ledger);
}

#[test]
fn eviction_takes_chains_from_their_end() {
    let ledger = Ledger::default();
    let (a, b) = (key(1), key(2));
    let a0 = tx(&a, 0, 1);
    let a1 = tx(&a, 1, 100);
    let b0 = tx(&b, 0, 50);
    let size = size_of(&a0);
    let mut pool = pool_with(MempoolConfig {
        max_bytes: 3 * size,
        ..MempoolConfig::default()
    });
    for t in [&a0, &a1, &b0] {
        pool.add(t.clone(), 0, &ledger).unwrap();
    }
    // a0 pays least but a1 depends on it: b0 is the lowest evictable.
    let c0 = tx(&key(3), 0, 60);
    assert_eq!(
        pool.add(c0.clone(), 0, &ledger).unwrap().evicted,
        vec![b0.id()]
    );
    let d0 = tx(&key(4), 0, 120);
    assert_eq!(
        pool.add(d0.clone(), 0, &ledger).unwrap().evicted,
        vec![c0.id()]
    );
    // Now a1 is the lowest tail; once it goes, a0 becomes evictable.
    let e0 = tx(&key(5), 0, 110);
    assert_eq!(
        pool.add(e0.clone(), 0, &ledger).unwrap().evicted,
        vec![a1.id()]
    );
    let f0 = tx(&key(6), 0, 2);
    assert_eq!(
        pool.add(f0.clone(), 0, &ledger).unwrap().evicted,
        vec![a0.id()]
    );
    pool.check(&ledger);
    assert_eq!(pool.template(10, 1 << 20), vec![d0, e0, f0]);
}

#[test]
fn spam_keeps_the_pool_under_its_byte_cap() {
    const SENDERS: u64 = 2_000;
    const NONCES: u64 = 10;
    const MAX_BYTES: usize = 1 << 20;
    let ledger = Ledger::default();
    let mut pool = pool_with(MempoolConfig {
        max_bytes: MAX_BYTES,
        ..MempoolConfig::default()
    });
    let keys: Vec<Keypair> = (0..SENDERS).map(|i| key(1_000 + i)).collect();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut rate_of: HashMap<Hash, FeeRate> = HashMap::new();
    let (mut admitted, mut refused, mut evicted) = (0, 0, 0);
    for nonce in 0..NONCES {
        for k in &keys {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let fee = 1 + rng % 100_000;
            let t = tx(k, nonce, fee);
            let rate = FeeRate {
                fee,
                size: size_of(&t) as u64,
            };
            rate_of.insert(t.id(), rate);
            match pool.add(t, 0, &ledger) {
                Ok(a) => {
                    admitted += 1;
                    evicted += a.evicted.len();
                    // Nothing evicted pays a better rate than what came in.
                    for id in &a.evicted {
                        assert!(rate_of[id] <= rate);
                    }
                }
                Err(MempoolError::PoolFull { .. }) => {
                    refused += 1;
                    // Refused only when it would itself be the lowest evictable.
                    let lowest = pool.tails.first().unwrap();
                    assert!(rate <= lowest.rate);
                }
                // The sender's previous nonce was evicted or refused: the chain cannot grow.
                Err(MempoolError::NonceGap { .. }) => {}
                Err(e) => panic!("unexpected refusal: {e}"),
            }
            assert!(pool.bytes() <= MAX_BYTES);
        }
    }
    pool.check(&ledger);
    assert!(pool.bytes() > MAX_BYTES - MAX_TRANSFER_BYTES);
    assert!(
        refused > 0 && evicted > 0,
        "{refused} refused, {evicted} evicted"
    );
    assert_eq!(admitted - evicted, pool.len());
    // The template of the full pool is a valid block order.
    let block = pool.template(12_000, 2 << 20);
    assert_eq!(block.len(), pool.len());
    assert_valid_order(&block, &ledger);
}

/// Each sender's transfers appear in nonce order from its account nonce, without gaps.
fn assert_valid_order(block: &[Transfer], accounts: &impl AccountSource) {
    let mut next: HashMap<Address, u64> = HashMap::new();
    for t in block {
        let expected = next
            .entry(t.from)
            .or_insert_with(|| accounts.account(&t.from).nonce);
        assert_eq!(t.nonce, *expected, "out of nonce order");
        *expected += 1;
    }
}

#[test]
fn update_chain_removes_included_transfers() {
    let mut pool = pool();
    let mut ledger = Ledger::default();
    let (a, b) = (key(1), key(2));
    let a_txs: Vec<Transfer> = (0..3).map(|n| tx(&a, n, 10)).collect();
    let b0 = tx(&b, 0, 10);
    for t in a_txs.iter().chain([&b0]) {
        pool.add(t.clone(), 0, &ledger).unwrap();
    }
    // The block holds a0, a1 and another transfer of b with nonce 0.
    let b0_other = tx(&b, 0, 20);
    ledger.set(&a, RICH, 2);
    ledger.set(&b, RICH, 1);
    let included = vec![a_txs[0].clone(), a_txs[1].clone(), b0_other];
    let removed = pool.update_chain(&included, &[], 1, &ledger);
    assert_eq!(removed, {
        let mut ids = vec![a_txs[0].id(), a_txs[1].id(), b0.id()];
        // Senders are visited in address order.
        if b.public() < a.public() {
            ids.rotate_left(2);
        }
        ids
    });
    assert_eq!(pool.template(10, 1 << 20), vec![a_txs[2].clone()]);
    pool.check(&ledger);
}

#[test]
fn update_chain_puts_reverted_transfers_back() {
    let mut pool = pool();
    let mut ledger = Ledger::default();
    let a = key(1);
    let txs: Vec<Transfer> = (0..4).map(|n| tx(&a, n, 10 + n)).collect();
    // a0 and a1 are in the tip block; a2, a3 wait in the pool.
    ledger.set(&a, RICH, 2);
    pool.add(txs[2].clone(), 0, &ledger).unwrap();
    pool.add(txs[3].clone(), 0, &ledger).unwrap();
    // A reorg reverts that block; the new branch includes a0 only.
    ledger.set(&a, RICH, 1);
    let removed = pool.update_chain(
        &[txs[0].clone()],
        &[txs[1].clone(), txs[0].clone()],
        5,
        &ledger,
    );
    assert!(removed.is_empty());
    assert_eq!(pool.template(10, 1 << 20), txs[1..].to_vec());
    pool.check(&ledger);
    // The new branch turns out empty: a0 comes back too, ahead of the rest.
    ledger.set(&a, RICH, 0);
    assert!(
        pool.update_chain(&[], &[txs[0].clone()], 6, &ledger)
            .is_empty()
    );
    assert_eq!(pool.template(10, 1 << 20), txs);
    assert_eq!(pool.pending_nonce(&a.public(), &ledger), 4);
    pool.check(&ledger);
}

#[test]
fn update_chain_drops_unaffordable_chains() {
    let mut pool = pool();
    let mut ledger = Ledger::default();
    let (a, rich) = (key(1), key(2));
    ledger.set(&a, 5_000, 0);
    let a_txs: Vec<Transfer> = (0..3).map(|n| tx(&a, n, 10)).collect();
    for t in &a_txs {
        pool.add(t.clone(), 0, &ledger).unwrap();
    }
    // A reorg reverts a payment of 2,500 to a: a can afford two of its three transfers, and
    // the payment itself returns to the pool.
    let mut payment = unsigned(&rich, 0, 10, 2_500);
    payment.to = a.public();
    let payment = payment.sign(&rich).unwrap();
    ledger.set(&a, 2_500, 0);
    let removed = pool.update_chain(&[], core::slice::from_ref(&payment), 1, &ledger);
    assert_eq!(removed, vec![a_txs[2].id()]);
    assert!(pool.contains(&payment.id()));
    assert_eq!(pool.len(), 3);
    pool.check(&ledger);
}

#[test]
fn update_chain_drops_chains_left_with_a_gap() {
    let mut pool = pool();
    let mut ledger = Ledger::default();
    let a = key(1);
    ledger.set(&a, RICH, 5);
    let queued = [tx(&a, 5, 10), tx(&a, 6, 10)];
    for t in &queued {
        pool.add(t.clone(), 0, &ledger).unwrap();
    }
    // The reorg reverts nonces 3 and 4, but they paid no fee: below this pool's minimum,
    // they do not come back, and 5 and 6 cannot be mined without them.
    ledger.set(&a, RICH, 3);
    let reverted = [tx(&a, 3, 0), tx(&a, 4, 0)];
    let removed = pool.update_chain(&[], &reverted, 1, &ledger);
    assert_eq!(removed.len(), 2);
    assert!(pool.is_empty());
    pool.check(&ledger);
}

#[test]
fn update_chain_respects_the_byte_cap() {
    let ledger = Ledger::default();
    let (mut pool, txs, _) = full_pool_of_three([5, 6, 7]);
    let back = tx(&key(1), 0, 1);
    let removed = pool.update_chain(&[], core::slice::from_ref(&back), 0, &ledger);
    // The reverted transfer pays least: it is the one that goes again.
    assert_eq!(removed, vec![back.id()]);
    assert!(txs.iter().all(|t| pool.contains(&t.id())));
    pool.check(&ledger);
}

#[test]
fn revalidate_checks_every_sender() {
    let mut pool = pool();
    let mut ledger = Ledger::default();
    let (a, b) = (key(1), key(2));
    let a0 = tx(&a, 0, 10);
    let b0 = tx(&b, 0, 10);
    pool.add(a0.clone(), 0, &ledger).unwrap();
    pool.add(b0.clone(), 0, &ledger).unwrap();
    ledger.set(&a, 10, 0);
    assert_eq!(pool.revalidate(&ledger), vec![a0.id()]);
    assert!(pool.contains(&b0.id()));
    pool.check(&ledger);
}

#[test]
fn add_drops_stale_transfers_of_the_sender() {
    let mut pool = pool();
    let mut ledger = Ledger::default();
    let a = key(1);
    let txs: Vec<Transfer> = (0..3).map(|n| tx(&a, n, 10)).collect();
    pool.add(txs[0].clone(), 0, &ledger).unwrap();
    pool.add(txs[1].clone(), 0, &ledger).unwrap();
    // The tip moved (a0 included) before update_chain reached the pool.
    ledger.set(&a, RICH, 1);
    let admitted = pool.add(txs[2].clone(), 0, &ledger).unwrap();
    assert_eq!(admitted.evicted, vec![txs[0].id()]);
    assert_eq!(pool.template(10, 1 << 20), txs[1..].to_vec());
    pool.check(&ledger);
}

#[test]
fn expiry_drops_old_transfers_with_their_descendants() {
    let mut pool = pool_with(MempoolConfig {
        expiry_ms: 1_000,
        ..MempoolConfig::default()
    });
    let ledger = Ledger::default();
    let (a, b) = (key(1), key(2));
    let a0 = tx(&a, 0, 10);
    let a1 = tx(&a, 1, 10);
    let b0 = tx(&b, 0, 10);
    pool.add(a0.clone(), 100, &ledger).unwrap();
    pool.add(a1.clone(), 500, &ledger).unwrap();
    pool.add(b0.clone(), 600, &ledger).unwrap();
    assert!(pool.expire(0).is_empty());
    assert!(pool.expire(1_100).is_empty(), "exactly expiry_ms old stays");
    assert_eq!(pool.expire(1_101), vec![a1.id(), a0.id()]);
    assert_eq!(pool.len(), 1);
    pool.check(&ledger);
    // A replacement restarts the clock of its nonce.
    let b0_new = tx(&b, 0, 20);
    pool.add(b0_new.clone(), 1_500, &ledger).unwrap();
    assert!(pool.expire(1_601).is_empty());
    assert_eq!(pool.expire(2_501), vec![b0_new.id()]);
    assert!(pool.is_empty());
    pool.check(&ledger);
}

#[test]
fn pending_nonce_follows_the_queue() {
    let mut pool = pool();
    let mut ledger = Ledger::default();
    let a = key(1);
    ledger.set(&a, RICH, 5);
    assert_eq!(pool.pending_nonce(&a.public(), &ledger), 5);
    pool.add(tx(&a, 5, 10), 0, &ledger).unwrap();
    pool.add(tx(&a, 6, 10), 0, &ledger).unwrap();
    assert_eq!(pool.pending_nonce(&a.public(), &ledger), 7);
    // The chain moved past the queue before the pool heard of it.
    ledger.set(&a, RICH, 9);
    assert_eq!(pool.pending_nonce(&a.public(), &ledger), 9);
}

#[test]
fn config_reads_from_toml_with_defaults() {
    let config: MempoolConfig = toml::from_str("min_fee = 5\nmax_per_sender = 8\n").unwrap();
    assert_eq!(
        config,
        MempoolConfig {
            min_fee: Amount(5),
            max_per_sender: 8,
            ..MempoolConfig::default()
        }
    );
    assert_eq!(MempoolConfig::default().max_bytes, 64 * 1024 * 1024);
    assert_eq!(MempoolConfig::default().expiry_ms, 6 * 3_600_000);
    let err = toml::from_str::<MempoolConfig>("max_byte = 5\n").unwrap_err();
    assert!(err.to_string().contains("max_byte"), "{err}");
    let text = toml::to_string(&MempoolConfig::default()).unwrap();
    assert_eq!(
        toml::from_str::<MempoolConfig>(&text).unwrap(),
        MempoolConfig::default()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn templates_of_random_pools_are_valid_blocks(
        senders in proptest::collection::vec(
            (0u64..3, proptest::collection::vec(1u64..2_000, 0..6)),
            1..6,
        ),
        max_count in 0usize..30,
        max_bytes in 0usize..4_000,
    ) {
        let mut pool = pool();
        let mut ledger = Ledger::default();
        let keys: Vec<Keypair> = (0..senders.len() as u64).map(key).collect();
        for (k, (nonce, _)) in keys.iter().zip(&senders) {
            ledger.set(k, RICH, *nonce);
        }
        // Interleave the senders, each in nonce order.
        let longest = senders.iter().map(|(_, fees)| fees.len()).max().unwrap_or(0);
        for i in 0..longest {
            for (k, (nonce, fees)) in keys.iter().zip(&senders) {
                if let Some(&fee) = fees.get(i) {
                    pool.add(tx(k, nonce + i as u64, fee), i as u64, &ledger).unwrap();
                }
            }
        }
        pool.check(&ledger);
        let block = pool.template(max_count, max_bytes);
        prop_assert!(block.len() <= max_count);
        prop_assert!(block.iter().map(size_of).sum::<usize>() <= max_bytes);
        assert_valid_order(&block, &ledger);
        prop_assert!(block.iter().all(|t| pool.contains(&t.id())));
        // Greedy: with room to spare for everything, everything is taken.
        if max_count >= pool.len() && max_bytes >= pool.bytes() {
            prop_assert_eq!(block.len(), pool.len());
        }
        // The first pick is the best head, when it fits.
        let best = pool
            .senders
            .values()
            .map(|q| &q.entries[0])
            .max_by_key(|e| (e.rate(), Reverse(e.seq)));
        if let Some(best) = best.filter(|b| max_count > 0 && b.size <= max_bytes) {
            prop_assert_eq!(&block[0], &best.tx);
        }
    }
}
