//! Consensus attacks against the chain rules (security issue 16), on the `dev` parameters with
//! blocks mined by real plots: replays, reused and stolen proofs, timestamp games, deep
//! reorganisations, equivocation and beacon grinding. Each test asserts the exact outcome the
//! rules give (the `InvalidBlock` variant with its fields, the `ImportStatus`, the tip).
//!
//! Network-level versions (several nodes, real timing) are in `sim/tests/attacks.rs`.

use spacetime::chain::rules::{self, epoch_of, epoch_start};
use spacetime::chain::validate::check_header;
use spacetime::chain::{
    BlockDraft, BlockStatus, Chain, ChainEvent, ChainStorage, HeadersError, ImportError,
    ImportStatus, InvalidBlock, MemoryDisk, MiningContext, PendingHeaders, Precheck, SoloMiner,
    VerifiedHeaders,
};
use spacetime::crypto::SigningDomain;
use spacetime::genesis::Allocation;
use spacetime::plot::{MemoryPlot, ProofError, proof_score};
use spacetime::tx::TxError;
use spacetime::{
    Address, Amount, Block, BlockHeader, BoundedVec, Genesis, GenesisConfig, Hash, Keypair,
    NodeRng, ProofOfSpace, PublicKey, Transfer, UnsignedTransfer, encode,
};

/// Import time far in the future: the drift rule never interferes unless a test sets the clock.
const NOW: u64 = u64::MAX / 2;

fn dev() -> Genesis {
    Genesis::builtin("dev").unwrap()
}

fn dev_with(f: impl FnOnce(&mut GenesisConfig)) -> Genesis {
    let mut config = GenesisConfig::builtin("dev").unwrap();
    f(&mut config);
    Genesis::new(config).unwrap()
}

fn open(genesis: &Genesis) -> Chain {
    Chain::open_on(
        ChainStorage::Memory(MemoryDisk::new("attack")),
        genesis.clone(),
    )
    .unwrap()
}

/// A miner with one 64-group plot, its key fixed by `seed`.
fn miner(genesis: &Genesis, seed: u8) -> SoloMiner {
    SoloMiner::new(&genesis.config.plot, Keypair::from_seed(&[seed; 32]), 1, 64)
}

/// Mines and imports `n` empty blocks on the tip.
fn mine(chain: &mut Chain, miner: &SoloMiner, n: usize) -> Vec<Block> {
    (0..n)
        .map(|_| {
            let block = miner.mine_next(chain, Vec::new()).unwrap();
            let imported = chain.import(block.clone(), NOW).unwrap();
            assert_eq!(imported.status, ImportStatus::Extended);
            block
        })
        .collect()
}

fn import_all(chain: &mut Chain, blocks: &[Block]) -> Vec<ImportStatus> {
    blocks
        .iter()
        .map(|b| chain.import(b.clone(), NOW).unwrap().status)
        .collect()
}

/// The rule `block` breaks when imported at `now`.
fn refused(chain: &mut Chain, block: Block, now: u64) -> InvalidBlock {
    match chain.import(block, now) {
        Err(ImportError::Invalid { reason, .. }) => reason,
        other => panic!("expected an invalid block, got {other:?}"),
    }
}

fn draft(
    context: MiningContext,
    timestamp_ms: u64,
    proof: ProofOfSpace,
    score: Hash,
) -> BlockDraft {
    BlockDraft {
        context,
        timestamp_ms,
        proof,
        score,
        transfers: Vec::new(),
        payees: Vec::new(),
        extra_data: Vec::new(),
    }
}

/// Builds and signs a block on the tip (the builder does not check the proof: the rules do).
fn build(chain: &Chain, key: &Keypair, draft: BlockDraft) -> Block {
    chain
        .build_block(draft, key, &mut NodeRng::from_u64(1))
        .unwrap()
}

/// Re-signs the header after a change of its fields (the transaction root recomputed).
fn reseal(block: &mut Block, key: &Keypair) {
    block.header.unsigned.tx_root = block.compute_tx_root();
    block.header = block.header.unsigned.clone().sign(key).unwrap();
}

fn restamp(block: &Block, timestamp_ms: u64, key: &Keypair) -> Block {
    let mut b = block.clone();
    b.header.unsigned.timestamp_ms = timestamp_ms;
    reseal(&mut b, key);
    b
}

fn lower_hash(a: &Block, b: &Block) -> Hash {
    a.hash().min(b.hash())
}

// ---------------------------------------------------------------------------------------
// 1. Replayed blocks
// ---------------------------------------------------------------------------------------

#[test]
fn a_replayed_block_is_a_duplicate_and_changes_nothing() {
    let g = dev();
    let mut chain = open(&g);
    let m = miner(&g, 1);
    let blocks = mine(&mut chain, &m, 6);
    let tip = chain.tip();
    let account = chain.account(&m.address()).unwrap();
    let supply = chain.supply_audit(0, 10).unwrap();
    for b in [&blocks[2], &blocks[5], &blocks[0]] {
        let record = chain.record(&b.hash()).unwrap();
        let again = chain.import(b.clone(), NOW).unwrap();
        assert_eq!(again.status, ImportStatus::Duplicate);
        assert!(again.events.is_empty() && again.rejected_orphans.is_empty());
        assert_eq!(chain.record(&b.hash()).unwrap(), record);
        assert_eq!(
            chain.precheck(&b.header, &b.hash(), NOW),
            Ok(Precheck::Known)
        );
    }
    // A replay of the whole chain through the batch path is as harmless.
    let out = chain.import_blocks(blocks.clone(), NOW);
    assert!(out.results.iter().all(|(_, r)| matches!(
        r,
        Ok(i) if i.status == ImportStatus::Duplicate
    )));
    assert_eq!(chain.tip(), tip);
    assert_eq!(chain.account(&m.address()).unwrap(), account);
    assert_eq!(chain.supply_audit(0, 10).unwrap(), supply);
    // An orphan replayed while it waits is a duplicate too, and waits once.
    let mut other = open(&g);
    assert_eq!(
        other.import(blocks[3].clone(), NOW).unwrap().status,
        ImportStatus::Orphan
    );
    assert_eq!(
        other.import(blocks[3].clone(), NOW).unwrap().status,
        ImportStatus::Duplicate
    );
    assert_eq!(other.orphan_count(), 1);
}

#[test]
fn a_block_of_another_network_never_connects() {
    let a = dev();
    // One changed field makes another network: another genesis hash and chain id.
    let b = dev_with(|c| c.consensus.coinbase_maturity += 1);
    assert_ne!(a.network_id, b.network_id);
    let mut chain_a = open(&a);
    let mut chain_b = open(&b);
    let m = miner(&a, 1);
    let foreign = mine(&mut chain_a, &m, 3);
    // Replayed as is: its parent (the other genesis) is unknown here, so it waits as an
    // orphan, is never checked against this chain and never joins it.
    for blk in &foreign {
        assert_eq!(
            chain_b.import(blk.clone(), NOW).unwrap().status,
            ImportStatus::Orphan
        );
        assert_eq!(
            chain_b.precheck(&blk.header, &blk.hash(), NOW),
            Ok(Precheck::ParentUnknown)
        );
    }
    let local = mine(&mut chain_b, &miner(&b, 2), 3);
    assert_eq!(chain_b.tip().hash, local[2].hash());
    assert_eq!(chain_b.orphan_count(), 3);
    assert!(
        foreign
            .iter()
            .all(|f| chain_b.index().get(&f.hash()).is_none())
    );
    // Headers-first: the batch does not connect.
    let headers = foreign.iter().map(|f| f.header.clone()).collect();
    let verified = VerifiedHeaders::verify(&b.config, headers).unwrap();
    match chain_b.import_headers(&mut PendingHeaders::default(), verified, NOW) {
        Err(HeadersError::NotConnecting { index: 0, parent }) => {
            assert_eq!(parent, a.network_id);
        }
        other => panic!("{other:?}"),
    }
    // Re-parented on this network's genesis by its own miner (re-signed): the challenge is
    // this network's, so the old proof answers the wrong one.
    let mut moved = foreign[0].clone();
    moved.header.unsigned.parent = b.network_id;
    reseal(&mut moved, m.key());
    let expected = chain_b
        .mining_context(&b.network_id, moved.header.epoch)
        .unwrap()
        .challenge;
    assert_eq!(
        refused(&mut chain_b, moved, NOW),
        InvalidBlock::Challenge {
            expected,
            found: foreign[0].header.challenge
        }
    );
    // A transfer signed for the other network, in an otherwise valid block of this one.
    let spend = UnsignedTransfer {
        from: m.address(),
        to: PublicKey([9; 32]),
        amount: Amount(1),
        fee: Amount(0),
        nonce: 0,
        chain_id: a.chain_id,
    }
    .sign(m.key())
    .unwrap();
    let bm = miner(&b, 2);
    let mut blk = bm.mine_next(&chain_b, Vec::new()).unwrap();
    blk.transfers = BoundedVec::try_from_vec(vec![spend]).unwrap();
    reseal(&mut blk, bm.key());
    assert_eq!(
        refused(&mut chain_b, blk, NOW),
        InvalidBlock::Transfer {
            index: 0,
            error: TxError::WrongChain {
                expected: b.chain_id,
                found: a.chain_id
            }
        }
    );
    assert_eq!(chain_b.tip().hash, local[2].hash());
}

#[test]
fn a_block_replayed_after_a_reorg_stays_off_the_main_chain() {
    let g = dev();
    let (ma, mb) = (miner(&g, 1), miner(&g, 2));
    let mut a = open(&g);
    let shared = mine(&mut a, &ma, 2);
    let dropped = mine(&mut a, &ma, 3);
    let mut b = open(&g);
    import_all(&mut b, &shared);
    let heavier = mine(&mut b, &mb, 7);
    let statuses = import_all(&mut a, &heavier);
    assert!(
        statuses.contains(&ImportStatus::Reorganized),
        "{statuses:?}"
    );
    let tip = b.tip();
    assert_eq!(a.tip(), tip);
    for blk in &dropped {
        let again = a.import(blk.clone(), NOW).unwrap();
        assert_eq!(again.status, ImportStatus::Duplicate);
        assert!(again.events.is_empty());
        assert!(!a.is_main(&blk.hash()));
        assert_eq!(a.tx_location(&blk.coinbase.id()).unwrap(), None);
    }
    assert_eq!(a.tip(), tip);
    // The dropped miner's rewards stay gone: only the shared blocks pay it.
    let reward = g.emission.block_reward(1);
    assert_eq!(
        a.account(&ma.address()).unwrap().immature,
        Amount(reward.0 * 2)
    );
}

// ---------------------------------------------------------------------------------------
// 2. Replayed and stolen proofs
// ---------------------------------------------------------------------------------------

/// What the rules make of `proof` (scored for `miner`) in a header on `ctx`: with the copied
/// score `copied`, and with its honestly recomputed score. Returns which cases were seen.
#[derive(Default, Debug)]
struct Seen {
    wrong_bucket: usize,
    mismatch: usize,
    above_target: usize,
    real_win: usize,
}

fn check_reuse(
    chain: &mut Chain,
    key: &Keypair,
    ctx: MiningContext,
    proof: ProofOfSpace,
    copied: Hash,
    seen: &mut Seen,
) {
    let params = chain.genesis().config.plot.clone();
    let computed = proof_score(&params, &key.public(), &ctx.challenge, &proof);
    let block = build(chain, key, draft(ctx, ctx.min_timestamp_ms, proof, copied));
    let reason = refused(chain, block, NOW);
    match computed {
        Err(e) => {
            assert!(matches!(e, ProofError::WrongBucket { .. }), "{e:?}");
            assert_eq!(reason, InvalidBlock::Proof(e));
            seen.wrong_bucket += 1;
        }
        Ok(score) => {
            assert_ne!(score, copied, "another challenge gives another score");
            assert_eq!(
                reason,
                InvalidBlock::Proof(ProofError::ScoreMismatch {
                    claimed: copied,
                    computed: score
                })
            );
            seen.mismatch += 1;
            // The same plot and group, honestly scored for this challenge: valid only when it
            // really wins this epoch.
            let honest = build(chain, key, draft(ctx, ctx.min_timestamp_ms, proof, score));
            if ctx.target.is_met_by(&score) {
                assert!(matches!(
                    chain.precheck(&honest.header, &honest.hash(), NOW),
                    Ok(Precheck::Valid { .. })
                ));
                seen.real_win += 1;
            } else {
                assert_eq!(
                    refused(chain, honest, NOW),
                    InvalidBlock::ScoreAboveTarget {
                        score,
                        target: ctx.target
                    }
                );
                seen.above_target += 1;
            }
        }
    }
}

#[test]
fn a_proof_replayed_for_another_epoch_or_parent_is_refused() {
    let g = dev();
    let mut chain = open(&g);
    let m = miner(&g, 1);
    mine(&mut chain, &m, 4);
    let tip = chain.tip().hash;
    let won = m.mine_next(&chain, Vec::new()).unwrap();
    let (proof, score, epoch) = (won.header.proof, won.header.score, won.header.epoch);

    // The header moved to a later epoch as is: its challenge is not that epoch's.
    let later = chain.mining_context(&tip, epoch + 1).unwrap();
    let mut stale = later;
    stale.challenge = won.header.challenge;
    let b = build(
        &chain,
        m.key(),
        draft(stale, later.min_timestamp_ms, proof, score),
    );
    assert_eq!(
        refused(&mut chain, b, NOW),
        InvalidBlock::Challenge {
            expected: later.challenge,
            found: won.header.challenge
        }
    );

    // With each later epoch's real challenge, on the same parent.
    let mut seen = Seen::default();
    for e in epoch + 1..epoch + 41 {
        let ctx = chain.mining_context(&tip, e).unwrap();
        check_reuse(&mut chain, m.key(), ctx, proof, score, &mut seen);
    }
    // And on another parent: the winning block itself, for the epochs after it.
    assert_eq!(
        chain.import(won.clone(), NOW).unwrap().status,
        ImportStatus::Extended
    );
    for e in epoch + 1..epoch + 41 {
        let ctx = chain.mining_context(&won.hash(), e).unwrap();
        check_reuse(&mut chain, m.key(), ctx, proof, score, &mut seen);
    }
    println!("{seen:?}");
    // Every kind of refusal happened (dev: 4 buckets, one in 16 proofs wins).
    assert!(seen.wrong_bucket > 0 && seen.mismatch > 0 && seen.above_target > 0);
    assert_eq!(chain.tip().hash, won.hash(), "no refusal moved the tip");
}

#[test]
fn another_miners_proof_signed_with_my_key_is_refused() {
    let g = dev();
    let mut chain = open(&g);
    let victim = miner(&g, 1);
    let thief = Keypair::from_seed(&[66; 32]);
    mine(&mut chain, &victim, 3);
    let tip = chain.tip().hash;
    let params = g.config.plot.clone();
    let parent_epoch = chain.index().get(&tip).unwrap().epoch;
    let (mut wrong_bucket, mut mismatch) = (0, 0);
    let mut from = parent_epoch + 1;
    // The victim's winning proofs of successive epochs, each claimed by the thief.
    while wrong_bucket == 0 || mismatch == 0 {
        let (ctx, proof, score) = victim.find_win(&chain, &tip, from).unwrap();
        from = ctx.epoch + 1;
        assert!(from < parent_epoch + 2_000, "too few wins");
        // The plot id is H(miner key || seed || params): under the thief's key the seed names
        // another plot, whose leaf is not the winning one.
        let stolen = build(
            &chain,
            &thief,
            draft(ctx, ctx.min_timestamp_ms, proof, score),
        );
        assert_eq!(stolen.header.miner, thief.public());
        let expected = match proof_score(&params, &thief.public(), &ctx.challenge, &proof) {
            Err(e) => {
                wrong_bucket += 1;
                InvalidBlock::Proof(e)
            }
            Ok(computed) => {
                mismatch += 1;
                InvalidBlock::Proof(ProofError::ScoreMismatch {
                    claimed: score,
                    computed,
                })
            }
        };
        assert_eq!(refused(&mut chain, stolen, NOW), expected);

        // Keeping the victim as the miner but signing with the thief's key.
        let honest = build(
            &chain,
            victim.key(),
            draft(ctx, ctx.min_timestamp_ms, proof, score),
        );
        let forged = Block {
            header: BlockHeader {
                unsigned: honest.header.unsigned.clone(),
                signature: thief.sign(SigningDomain::Block, &encode(&honest.header.unsigned)),
            },
            ..honest.clone()
        };
        assert_eq!(
            refused(&mut chain, forged, NOW),
            InvalidBlock::HeaderSignature
        );
        // Redirecting the victim's reward: the transaction root changes, and with it the
        // signed header, which only the victim can sign.
        let mut redirected = honest.clone();
        let mut outputs = redirected.coinbase.outputs.to_vec();
        outputs[0].to = thief.public();
        redirected.coinbase.outputs = BoundedVec::try_from_vec(outputs).unwrap();
        assert!(matches!(
            refused(&mut chain, redirected.clone(), NOW),
            InvalidBlock::TxRoot { .. }
        ));
        redirected.header.unsigned.tx_root = redirected.compute_tx_root();
        assert_eq!(
            refused(&mut chain, redirected, NOW),
            InvalidBlock::HeaderSignature
        );
    }
    assert_eq!(chain.tip().hash, tip);
}

// ---------------------------------------------------------------------------------------
// 3. Timestamp games
// ---------------------------------------------------------------------------------------

#[test]
fn timestamps_must_lie_inside_the_epoch_and_both_ends_of_it_are_accepted() {
    let g = dev();
    let epoch_ms = g.config.network.epoch_ms;
    let mut chain = open(&g);
    let m = miner(&g, 1);
    mine(&mut chain, &m, 4);
    let b = m.mine_next(&chain, Vec::new()).unwrap();
    let epoch = b.header.epoch;
    let start = epoch_start(&g.config.network, epoch).unwrap();
    assert_eq!(
        b.header.timestamp_ms, start,
        "mined at the earliest time allowed"
    );
    for ts in [start - 1, start + epoch_ms, start - epoch_ms] {
        assert_eq!(
            refused(&mut chain, restamp(&b, ts, m.key()), NOW),
            InvalidBlock::TimestampOutsideEpoch {
                timestamp_ms: ts,
                epoch
            }
        );
    }
    // The first and the last millisecond of the epoch: both valid (the same proof, so the
    // same score; the lower hash wins the tie).
    let first = restamp(&b, start, m.key());
    let last = restamp(&b, start + epoch_ms - 1, m.key());
    assert_eq!(
        chain.import(first.clone(), NOW).unwrap().status,
        ImportStatus::Extended
    );
    let second = chain.import(last.clone(), NOW).unwrap().status;
    if last.hash() < first.hash() {
        assert_eq!(second, ImportStatus::Reorganized);
    } else {
        assert_eq!(second, ImportStatus::SideBranch);
    }
    assert_eq!(chain.tip().hash, lower_hash(&first, &last));
}

#[test]
fn the_median_of_eleven_refuses_a_timestamp_at_or_below_it() {
    let g = dev();
    let mut chain = open(&g);
    let m = miner(&g, 1);
    mine(&mut chain, &m, 12);
    let tip = chain.tip().hash;
    let b = m.mine_next(&chain, Vec::new()).unwrap();
    let ts = b.header.timestamp_ms;
    let parent = chain.index().get(&tip).unwrap().clone();
    // On a real chain the median lies below the parent, which lies below the epoch start:
    // the epoch rule implies the median rule. Checked directly against a pushed median.
    let median = chain.index().median_time_past(&tip).unwrap();
    assert!(median < parent.timestamp_ms && parent.timestamp_ms < ts);
    assert_eq!(
        check_header(&b.header, &parent, ts, NOW, &g.config),
        Err(InvalidBlock::TimestampNotAboveMedian {
            timestamp_ms: ts,
            median_ms: ts
        })
    );
    assert_eq!(
        check_header(&b.header, &parent, ts + 1, NOW, &g.config),
        Err(InvalidBlock::TimestampNotAboveMedian {
            timestamp_ms: ts,
            median_ms: ts + 1
        })
    );
    assert_eq!(
        check_header(&b.header, &parent, ts - 1, NOW, &g.config),
        Ok(())
    );
    assert_eq!(chain.import(b, NOW).unwrap().status, ImportStatus::Extended);
}

#[test]
fn the_future_drift_is_enforced_on_both_sides_of_its_boundary() {
    let g = dev();
    let drift = g.config.network.max_future_drift_ms;
    let epoch_ms = g.config.network.epoch_ms;
    let mut chain = open(&g);
    let m = miner(&g, 1);
    mine(&mut chain, &m, 3);
    let b = m.mine_next(&chain, Vec::new()).unwrap();
    // Stamped at its epoch start, or at its last millisecond.
    for block in [
        b.clone(),
        restamp(&b, b.header.timestamp_ms + epoch_ms - 1, m.key()),
    ] {
        let ts = block.header.timestamp_ms;
        let hash = block.hash();
        // One millisecond too early: refused, and not remembered as invalid.
        let early = ts - drift - 1;
        let expected = InvalidBlock::TimestampTooFarAhead {
            timestamp_ms: ts,
            limit_ms: ts - 1,
        };
        assert_eq!(
            chain.precheck(&block.header, &hash, early),
            Err(expected.clone())
        );
        assert_eq!(refused(&mut chain, block.clone(), early), expected);
        assert!(chain.index().get(&hash).is_none());
        // Exactly at the drift: accepted (for the epoch-start stamp, while the local clock is
        // still in the epoch before: a block may claim the epoch about to start).
        let now = ts - drift;
        if ts == epoch_start(&g.config.network, block.header.epoch).unwrap() {
            assert_eq!(
                epoch_of(&g.config.network, now),
                Some(block.header.epoch - 1)
            );
        }
        assert!(matches!(
            chain.precheck(&block.header, &hash, now),
            Ok(Precheck::Valid { .. })
        ));
        let status = chain.import(block, now).unwrap().status;
        assert!(
            matches!(
                status,
                ImportStatus::Extended | ImportStatus::Reorganized | ImportStatus::SideBranch
            ),
            "{status:?}"
        );
    }
}

#[test]
fn epoch_jumps_are_bounded_by_the_clock_and_never_go_back() {
    let g = dev();
    let net = g.config.network.clone();
    let drift = net.max_future_drift_ms;
    let mut chain = open(&g);
    let m = miner(&g, 1);
    mine(&mut chain, &m, 3);
    let tip = chain.tip().hash;
    let parent = chain.index().get(&tip).unwrap().clone();
    let b = m.mine_next(&chain, Vec::new()).unwrap();
    // Back to the parent's epoch or before it.
    for epoch in [parent.epoch, parent.epoch - 1] {
        let mut x = b.clone();
        x.header.unsigned.epoch = epoch;
        x.header.unsigned.timestamp_ms = parent.timestamp_ms + 1;
        reseal(&mut x, m.key());
        assert_eq!(
            refused(&mut chain, x, NOW),
            InvalidBlock::EpochNotAfterParent {
                epoch,
                parent_epoch: parent.epoch
            }
        );
    }
    // A far epoch claimed with a timestamp of the current one, or an epoch no timestamp
    // reaches.
    for epoch in [b.header.epoch + 1_000, u64::MAX] {
        let mut x = b.clone();
        x.header.unsigned.epoch = epoch;
        reseal(&mut x, m.key());
        assert_eq!(
            refused(&mut chain, x, NOW),
            InvalidBlock::TimestampOutsideEpoch {
                timestamp_ms: b.header.timestamp_ms,
                epoch
            }
        );
    }
    // The last millisecond there is.
    let mut x = b.clone();
    x.header.unsigned.timestamp_ms = u64::MAX;
    x.header.unsigned.epoch = epoch_of(&net, u64::MAX).unwrap();
    reseal(&mut x, m.key());
    assert_eq!(
        refused(&mut chain, x, NOW),
        InvalidBlock::TimestampTooFarAhead {
            timestamp_ms: u64::MAX,
            limit_ms: NOW + drift
        }
    );
    // A real win 1,000 epochs ahead: refused while the clock is at the honest block's time,
    // valid once that epoch has come (a chain may skip epochs nobody won), and the gap then
    // eases the target (ASERT: the chain fell behind its schedule).
    let (ctx, proof, score) = m.find_win(&chain, &tip, b.header.epoch + 1_000).unwrap();
    let far = build(
        &chain,
        m.key(),
        draft(ctx, ctx.min_timestamp_ms, proof, score),
    );
    let ts = far.header.timestamp_ms;
    let clock = b.header.timestamp_ms;
    assert_eq!(
        refused(&mut chain, far.clone(), clock),
        InvalidBlock::TimestampTooFarAhead {
            timestamp_ms: ts,
            limit_ms: clock + drift
        }
    );
    assert_eq!(
        chain.import(far.clone(), ts - drift).unwrap().status,
        ImportStatus::Extended
    );
    let next = chain
        .mining_context(&far.hash(), far.header.epoch + 1)
        .unwrap();
    assert!(next.target > ctx.target);
}

// ---------------------------------------------------------------------------------------
// 5. Long-range forks
// ---------------------------------------------------------------------------------------

fn depth_limited(depth: u64) -> Genesis {
    dev_with(|c| c.consensus.max_reorg_depth = depth)
}

#[test]
fn a_heavier_fork_deeper_than_max_reorg_depth_is_stored_but_not_followed() {
    let g = depth_limited(5);
    let (ma, mb) = (miner(&g, 1), miner(&g, 2));
    // A long-range fork from genesis: 6 blocks would be reverted, one more than allowed.
    let disk = MemoryDisk::new("deep");
    let mut a = Chain::open_on(ChainStorage::Memory(disk.clone()), g.clone()).unwrap();
    let ours = mine(&mut a, &ma, 6);
    let tip = a.tip();
    let mut b = open(&g);
    let theirs = mine(&mut b, &mb, 14);
    assert!(b.tip().work > tip.work);
    let next = mine(&mut b, &mb, 1).remove(0);
    let statuses = import_all(&mut a, &theirs);
    let refusals = statuses
        .iter()
        .filter(|s| **s == ImportStatus::ReorgTooDeep { depth: 6 })
        .count();
    assert!(refusals > 0, "{statuses:?}");
    assert!(
        statuses.iter().all(
            |s| *s == ImportStatus::SideBranch || *s == ImportStatus::ReorgTooDeep { depth: 6 }
        ),
        "{statuses:?}"
    );
    assert_eq!(a.tip(), tip);
    assert_eq!(a.tip().hash, ours[5].hash());
    for blk in &theirs {
        assert_eq!(
            a.index().get(&blk.hash()).unwrap().status,
            BlockStatus::Stored
        );
        assert_eq!(a.block(&blk.hash()).unwrap().as_ref(), Some(blk));
        assert!(!a.is_main(&blk.hash()));
    }
    // Sync follows our tip, not the branch it may not switch to, and its next block passes
    // the cheap checks but is not worth relaying: it would not become our tip.
    assert_eq!(a.best_header().hash, tip.hash);
    match a.precheck(&next.header, &next.hash(), NOW) {
        Ok(Precheck::Valid { work, better }) => {
            assert!(work > tip.work);
            assert!(!better);
        }
        other => panic!("{other:?}"),
    }
    // Our own chain keeps growing on top of the old tip.
    mine(&mut a, &ma, 1);
    assert_eq!(a.height(), 7);
    let tip = a.tip();
    // And so after a restart.
    drop(a);
    let a = Chain::open_on(ChainStorage::Memory(disk), g.clone()).unwrap();
    assert_eq!(a.tip(), tip);
    assert_eq!(a.best_header().hash, tip.hash);
}

/// The same long-range fork arriving headers first, as sync fetches it: the headers are
/// stored, but the chain's best header (what sync works towards) stays our tip, before and
/// after the bodies and across a restart, so the node does not believe itself behind a chain
/// it will never follow.
#[test]
fn a_too_deep_fork_sent_headers_first_never_becomes_the_best_header() {
    let g = depth_limited(5);
    let (ma, mb) = (miner(&g, 1), miner(&g, 2));
    let disk = MemoryDisk::new("deep-headers");
    let mut a = Chain::open_on(ChainStorage::Memory(disk.clone()), g.clone()).unwrap();
    mine(&mut a, &ma, 6);
    let tip = a.tip();
    let mut b = open(&g);
    let theirs = mine(&mut b, &mb, 14);
    let headers = theirs.iter().map(|t| t.header.clone()).collect();
    let verified = VerifiedHeaders::verify(&g.config, headers).unwrap();
    let outcome = a
        .import_headers(&mut PendingHeaders::default(), verified, NOW)
        .unwrap();
    assert!(
        matches!(
            outcome,
            spacetime::chain::HeadersOutcome::Stored { count: 14, .. }
        ),
        "{outcome:?}"
    );
    assert_eq!(a.best_header().hash, tip.hash);
    assert!(
        a.missing_bodies(100).is_empty(),
        "no bodies to fetch for it"
    );
    let statuses = import_all(&mut a, &theirs);
    assert!(
        statuses.contains(&ImportStatus::ReorgTooDeep { depth: 6 }),
        "{statuses:?}"
    );
    assert_eq!(a.tip(), tip);
    assert_eq!(a.best_header().hash, tip.hash);
    drop(a);
    let a = Chain::open_on(ChainStorage::Memory(disk), g.clone()).unwrap();
    assert_eq!(a.tip(), tip);
    assert_eq!(a.best_header().hash, tip.hash);
}

#[test]
fn a_heavier_fork_exactly_max_reorg_depth_deep_is_followed() {
    let g = depth_limited(5);
    let (ma, mb) = (miner(&g, 1), miner(&g, 2));
    let mut a = open(&g);
    let shared = mine(&mut a, &ma, 2);
    let ours = mine(&mut a, &ma, 5);
    let mut b = open(&g);
    import_all(&mut b, &shared);
    let theirs = mine(&mut b, &mb, 12);
    let mut events = Vec::new();
    let mut statuses = Vec::new();
    for blk in &theirs {
        let imported = a.import(blk.clone(), NOW).unwrap();
        statuses.push(imported.status);
        events.extend(imported.events);
    }
    assert!(
        statuses.contains(&ImportStatus::Reorganized),
        "{statuses:?}"
    );
    assert!(
        !statuses
            .iter()
            .any(|s| matches!(s, ImportStatus::ReorgTooDeep { .. }))
    );
    assert_eq!(a.tip(), b.tip());
    let reorg = events
        .iter()
        .find(|e| matches!(e, ChainEvent::Reorg { .. }))
        .unwrap();
    let ChainEvent::Reorg {
        fork_height,
        disconnected,
        ..
    } = reorg
    else {
        unreachable!()
    };
    assert_eq!(*fork_height, 2);
    let gone: Vec<Hash> = ours.iter().rev().map(Block::hash).collect();
    assert_eq!(
        disconnected, &gone,
        "exactly max_reorg_depth blocks reverted"
    );
}

// ---------------------------------------------------------------------------------------
// 6. Equivocation
// ---------------------------------------------------------------------------------------

#[test]
fn equivocating_blocks_are_both_stored_and_every_order_picks_the_same_tip() {
    let g = dev();
    let m = miner(&g, 1);
    let mut base = open(&g);
    let shared = mine(&mut base, &m, 3);
    let tip = base.tip().hash;
    let (ctx, proof, score) = m.find_win(&base, &tip, 0).unwrap();
    // One miner, one parent, one epoch, one proof: two blocks that differ in their body.
    let mut dx = draft(ctx, ctx.min_timestamp_ms, proof, score);
    dx.extra_data = b"x".to_vec();
    let mut dy = draft(ctx, ctx.min_timestamp_ms, proof, score);
    dy.extra_data = b"y".to_vec();
    let x = build(&base, m.key(), dx);
    let y = build(&base, m.key(), dy);
    assert_ne!(x.hash(), y.hash());
    assert_eq!(x.header.score, y.header.score);
    let winner = lower_hash(&x, &y);
    for (first, second) in [(&x, &y), (&y, &x)] {
        let mut chain = open(&g);
        import_all(&mut chain, &shared);
        assert_eq!(
            chain.import(first.clone(), NOW).unwrap().status,
            ImportStatus::Extended
        );
        let expected = if second.hash() == winner {
            ImportStatus::Reorganized
        } else {
            ImportStatus::SideBranch
        };
        assert_eq!(chain.import(second.clone(), NOW).unwrap().status, expected);
        // Equal work, equal score: the lower hash, whatever the order of arrival.
        assert_eq!(chain.tip().hash, winner);
        for b in [&x, &y] {
            assert_eq!(chain.block(&b.hash()).unwrap().as_ref(), Some(b));
        }
        // Replays of either change nothing.
        assert_eq!(
            chain.import(first.clone(), NOW).unwrap().status,
            ImportStatus::Duplicate
        );
        assert_eq!(chain.tip().hash, winner);
    }
}

#[test]
fn two_winners_of_one_epoch_are_decided_by_the_lower_score_in_any_order() {
    let g = dev();
    let (m1, m2) = (miner(&g, 1), miner(&g, 2));
    let mut base = open(&g);
    let shared = mine(&mut base, &m1, 3);
    let tip = base.tip().hash;
    let parent_epoch = base.index().get(&tip).unwrap().epoch;
    // An epoch both miners win.
    let (ctx, p1, s1, p2, s2) = (parent_epoch + 1..parent_epoch + 2_000)
        .find_map(|e| {
            let ctx = base.mining_context(&tip, e)?;
            let (p1, s1) = m1.best_proof(&ctx.challenge)?;
            let (p2, s2) = m2.best_proof(&ctx.challenge)?;
            (ctx.target.is_met_by(&s1) && ctx.target.is_met_by(&s2))
                .then_some((ctx, p1, s1, p2, s2))
        })
        .unwrap();
    let b1 = build(&base, m1.key(), draft(ctx, ctx.min_timestamp_ms, p1, s1));
    let b2 = build(&base, m2.key(), draft(ctx, ctx.min_timestamp_ms, p2, s2));
    let winner = if s1 < s2 { b1.hash() } else { b2.hash() };
    for order in [[&b1, &b2], [&b2, &b1]] {
        let mut chain = open(&g);
        import_all(&mut chain, &shared);
        import_all(&mut chain, &[order[0].clone(), order[1].clone()]);
        assert_eq!(chain.tip().hash, winner);
    }
}

/// Documents the tie rule as it stands (see the report of issue 16): a sibling of the tip from
/// a *later* epoch, with the same work (same parent, so the same target) and a lower score,
/// displaces the tip. A miner that keeps scanning the tip's parent can so replace a block it
/// did not win while nobody has extended it yet.
#[test]
fn a_later_sibling_with_a_lower_score_displaces_the_tip() {
    let g = dev();
    let (honest, sniper) = (miner(&g, 1), miner(&g, 2));
    let mut chain = open(&g);
    mine(&mut chain, &honest, 3);
    let parent = chain.tip().hash;
    let (hctx, hp, hs) = honest.find_win(&chain, &parent, 0).unwrap();
    let h = build(
        &chain,
        honest.key(),
        draft(hctx, hctx.min_timestamp_ms, hp, hs),
    );
    // The sniper's first later epoch on the same parent whose best proof scores below h's.
    let (sctx, sp, ss) = (hctx.epoch + 1..hctx.epoch + 5_000)
        .find_map(|e| {
            let ctx = chain.mining_context(&parent, e)?;
            let (p, s) = sniper.best_proof(&ctx.challenge)?;
            (s < hs).then_some((ctx, p, s))
        })
        .unwrap();
    let s = build(
        &chain,
        sniper.key(),
        draft(sctx, sctx.min_timestamp_ms, sp, ss),
    );
    assert_eq!(
        chain.import(h.clone(), NOW).unwrap().status,
        ImportStatus::Extended
    );
    assert!(s.header.epoch > h.header.epoch);
    let work = chain.index().get(&h.hash()).unwrap().work;
    assert_eq!(
        chain.import(s.clone(), NOW).unwrap().status,
        ImportStatus::Reorganized
    );
    assert_eq!(chain.tip().hash, s.hash());
    assert_eq!(chain.tip().work, work, "no more work, only a lower score");
}

// ---------------------------------------------------------------------------------------
// 7. Beacon grinding
// ---------------------------------------------------------------------------------------

#[test]
fn the_next_challenge_depends_on_the_proof_only() {
    let key = Keypair::from_seed(&[1; 32]);
    let g = dev_with(|c| {
        c.premine.push(Allocation {
            address: key.public(),
            amount: Amount(1_000_000),
        })
    });
    let m = SoloMiner::new(&g.config.plot, key.clone(), 1, 64);
    let mut chain = open(&g);
    mine(&mut chain, &m, 3);
    let tip = chain.tip().hash;
    let (ctx, proof, score) = m.find_win(&chain, &tip, 0).unwrap();
    let pay = |nonce: u64, to: u8| -> Transfer {
        UnsignedTransfer {
            from: key.public(),
            to: PublicKey([to; 32]),
            amount: Amount(10),
            fee: Amount(1),
            nonce,
            chain_id: g.chain_id,
        }
        .sign(&key)
        .unwrap()
    };
    let friend: Address = PublicKey([7; 32]);
    let base = draft(ctx, ctx.min_timestamp_ms, proof, score);
    let mut drafts = vec![base.clone()];
    let mut d = base.clone();
    d.extra_data = b"grind".to_vec();
    drafts.push(d);
    let mut d = base.clone();
    d.timestamp_ms = ctx.max_timestamp_ms;
    drafts.push(d);
    let mut d = base.clone();
    d.payees = vec![(friend, 1), (key.public(), 3)];
    drafts.push(d);
    let mut d = base.clone();
    d.transfers = vec![pay(0, 8)];
    drafts.push(d);
    let mut d = base.clone();
    d.transfers = vec![pay(0, 9), pay(1, 8)];
    drafts.push(d);
    let mut blocks: Vec<Block> = drafts.into_iter().map(|d| build(&chain, &key, d)).collect();
    // The same block re-signed with other witness randomness: another signature, another hash.
    let resigned = chain
        .build_block(base, &key, &mut NodeRng::from_u64(99))
        .unwrap();
    assert_ne!(resigned.header.signature, blocks[0].header.signature);
    blocks.push(resigned);
    let hashes: std::collections::BTreeSet<Hash> = blocks.iter().map(Block::hash).collect();
    assert_eq!(hashes.len(), blocks.len(), "all variants differ");
    let parent_beacon = chain.index().get(&tip).unwrap().beacon;
    for b in &blocks {
        let status = chain.import(b.clone(), NOW).unwrap().status;
        assert!(
            matches!(
                status,
                ImportStatus::Extended | ImportStatus::SideBranch | ImportStatus::Reorganized
            ),
            "{status:?}"
        );
    }
    let expected_beacon = rules::beacon(&parent_beacon, &score);
    for b in &blocks {
        let entry = chain.index().get(&b.hash()).unwrap();
        assert_eq!(entry.beacon, expected_beacon);
        for e in ctx.epoch + 1..ctx.epoch + 6 {
            assert_eq!(
                chain.mining_context(&b.hash(), e).unwrap().challenge,
                rules::challenge(&expected_beacon, e)
            );
        }
    }
    // The timestamp moves the next target (ASERT), never the challenge, and by at most
    // 2^(epoch_ms / half_life) = 2^(1/60).
    let t_first = chain
        .mining_context(&blocks[0].hash(), ctx.epoch + 1)
        .unwrap()
        .target;
    let t_last = chain
        .mining_context(&blocks[2].hash(), ctx.epoch + 1)
        .unwrap()
        .target;
    let ratio = target_f64(t_last) / target_f64(t_first);
    let bound =
        2f64.powf((g.config.network.epoch_ms - 1) as f64 / g.config.difficulty.half_life_ms as f64);
    assert!(
        ratio > 1.0 && ratio <= bound * (1.0 + 2e-4),
        "{ratio} vs {bound}"
    );
}

/// `target / 2^256` as a float (for ratios in assertions only).
fn target_f64(t: spacetime::Target) -> f64 {
    t.0.iter().fold(0.0, |acc, b| acc * 256.0 + f64::from(*b)) / 2f64.powi(256)
}

#[test]
fn another_beacon_needs_another_winning_proof() {
    let g = dev();
    let key = Keypair::from_seed(&[3; 32]);
    let plots: Vec<MemoryPlot> = (0..6u8)
        .map(|i| MemoryPlot::new(&g.config.plot, &key.public(), Hash([i; 32]), 64))
        .collect();
    let mut chain = open(&g);
    mine(&mut chain, &miner(&g, 1), 3);
    let tip = chain.tip().hash;
    let parent = chain.index().get(&tip).unwrap().clone();
    // An epoch in which at least two plots win and at least one loses.
    let (ctx, proofs) = (parent.epoch + 1..parent.epoch + 2_000)
        .find_map(|e| {
            let ctx = chain.mining_context(&tip, e)?;
            let proofs: Vec<(ProofOfSpace, Hash)> = plots
                .iter()
                .filter_map(|p| p.best_proof(&ctx.challenge))
                .collect();
            let wins = proofs
                .iter()
                .filter(|(_, s)| ctx.target.is_met_by(s))
                .count();
            (wins >= 2 && wins < proofs.len()).then_some((ctx, proofs))
        })
        .unwrap();
    let blocks: Vec<(Block, Hash)> = proofs
        .into_iter()
        .map(|(proof, score)| {
            let b = build(&chain, &key, draft(ctx, ctx.min_timestamp_ms, proof, score));
            (b, score)
        })
        .collect();
    let mut beacons = std::collections::BTreeSet::new();
    for (b, score) in blocks {
        if ctx.target.is_met_by(&score) {
            chain.import(b.clone(), NOW).unwrap();
            let beacon = chain.index().get(&b.hash()).unwrap().beacon;
            assert_eq!(beacon, rules::beacon(&parent.beacon, &score));
            assert!(beacons.insert(beacon), "each winning proof its own beacon");
        } else {
            // A losing proof cannot buy another beacon.
            assert_eq!(
                refused(&mut chain, b, NOW),
                InvalidBlock::ScoreAboveTarget {
                    score,
                    target: ctx.target
                }
            );
        }
    }
    assert!(beacons.len() >= 2);
}
