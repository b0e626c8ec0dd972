//! Chain tests on real redb files with blocks mined by a [`SoloMiner`] over real plot data.

use super::*;
use crate::encoding::BoundedVec;
use crate::genesis::GenesisConfig;
use crate::plot::ProofError;
use crate::state_tree;
use crate::tx::{ChainId, UnsignedTransfer};
use crate::{Keypair, PublicKey, Transfer};

/// Import time far enough in the future that the drift rule never interferes.
pub(crate) const NOW: TimestampMs = u64::MAX / 2;

pub(crate) fn dev() -> Genesis {
    Genesis::builtin("dev").unwrap()
}

pub(crate) struct Node {
    pub dir: tempfile::TempDir,
    pub chain: Chain,
    pub miner: SoloMiner,
}

pub(crate) fn node_with(genesis: Genesis) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::open(&dir.path().join("chain.redb"), genesis).unwrap();
    let miner = SoloMiner::new(&chain.genesis().config.plot, Keypair::generate(), 1, 64);
    Node { dir, chain, miner }
}

pub(crate) fn node() -> Node {
    node_with(dev())
}

impl Node {
    /// Mines and imports `n` empty blocks; returns them.
    pub fn mine(&mut self, n: usize) -> Vec<Block> {
        (0..n).map(|_| self.mine_with(Vec::new())).collect()
    }

    pub fn mine_with(&mut self, transfers: Vec<Transfer>) -> Block {
        let block = self.miner.mine_next(&self.chain, transfers).unwrap();
        let imported = self.chain.import(block.clone(), NOW).unwrap();
        assert_eq!(imported.status, ImportStatus::Extended);
        block
    }

    pub(crate) fn pay(&self, to: Address, amount: u64, fee: u64, nonce: u64) -> Transfer {
        UnsignedTransfer {
            from: self.miner.address(),
            to,
            amount: Amount(amount),
            fee: Amount(fee),
            nonce,
            chain_id: self.chain.genesis().chain_id,
        }
        .sign(self.miner.key())
        .unwrap()
    }
}

/// Recomputes the transaction root and signs the header again.
fn reseal(block: &mut Block, key: &Keypair) {
    block.header.unsigned.tx_root = block.compute_tx_root();
    block.header = block.header.unsigned.clone().sign(key).unwrap();
}

fn rejection(chain: &mut Chain, block: Block) -> InvalidBlock {
    match chain.import(block, NOW) {
        Err(ImportError::Invalid { reason, .. }) => reason,
        other => panic!("expected an invalid block, got {other:?}"),
    }
}

#[test]
fn fresh_chain_starts_at_genesis_and_reopens() {
    let n = node();
    let tip = n.chain.tip();
    assert_eq!(tip.height, 0);
    assert_eq!(tip.hash, dev().network_id);
    assert_eq!(n.chain.supply_at(0).unwrap(), Some(Amount::ZERO));
    let path = n.chain.path().to_path_buf();
    drop(n.chain);
    let again = Chain::open(&path, dev()).unwrap();
    assert_eq!(again.tip(), tip);
}

#[test]
fn mined_chain_extends_and_survives_restart() {
    let mut n = node();
    let blocks = n.mine(30);
    let tip = n.chain.tip();
    assert_eq!(tip.height, 30);
    assert_eq!(tip.hash, blocks[29].hash());
    assert!(tip.work > Work::ZERO);
    // Headers by locator, a block by hash, the transaction index.
    let headers = n.chain.headers_after(&[blocks[9].hash()], None, 5).unwrap();
    assert_eq!(headers.len(), 5);
    assert_eq!(headers[0], blocks[10].header);
    let loc = n.chain.locator();
    assert_eq!(loc[0], tip.hash);
    assert_eq!(*loc.last().unwrap(), dev().network_id);
    assert_eq!(
        n.chain.block(&blocks[3].hash()).unwrap().as_ref(),
        Some(&blocks[3])
    );
    assert_eq!(
        n.chain.tx_location(&blocks[3].coinbase.id()).unwrap(),
        Some((blocks[3].hash(), 0))
    );
    // Supply: every reward claimed, so issued == scheduled.
    let audit = n.chain.supply_audit(0, 100).unwrap();
    assert_eq!(audit.len(), 31);
    assert!(audit.iter().all(|r| r.shortfall() == 0), "{audit:?}");
    // A range past the tip (or inverted) is empty, not an error.
    assert!(n.chain.supply_audit(50, 100).unwrap().is_empty());
    assert!(n.chain.supply_audit(20, 10).unwrap().is_empty());
    // Restart mid-chain and keep mining.
    let path = n.chain.path().to_path_buf();
    drop(n.chain);
    n.chain = Chain::open(&path, dev()).unwrap();
    assert_eq!(n.chain.tip(), tip);
    n.mine(3);
    assert_eq!(n.chain.height(), 33);
}

#[test]
fn opening_refuses_other_networks_versions_damage_and_a_second_writer() {
    let n = node();
    let path = n.chain.path().to_path_buf();
    // Held by the open chain.
    assert!(matches!(
        Chain::open(&path, dev()),
        Err(ChainError::Locked { .. })
    ));
    drop(n.chain);
    let before = std::fs::read(&path).unwrap();
    let testnet = Genesis::builtin("testnet").unwrap();
    let err = Chain::open(&path, testnet).unwrap_err();
    assert!(matches!(err, ChainError::WrongNetwork { .. }), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "refusal touched the file"
    );

    // Another schema version.
    {
        let db = Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(store::META)
            .unwrap()
            .insert(store::META_SCHEMA, 99u32.to_le_bytes().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Chain::open(&path, dev()).unwrap_err();
    assert!(
        matches!(err, ChainError::SchemaVersion { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("schema version 99"));
    assert_eq!(std::fs::read(&path).unwrap(), before);

    // Garbage.
    let junk = n.dir.path().join("junk.redb");
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&junk, &bytes).unwrap();
    let err = Chain::open(&junk, dev()).unwrap_err();
    assert!(matches!(err, ChainError::Damaged { .. }), "{err}");
    assert_eq!(std::fs::read(&junk).unwrap(), bytes);
}

#[test]
fn every_header_and_body_rule_has_its_own_error() {
    let mut n = node();
    n.mine(12);
    let key = n.miner.key().clone();
    let friend = PublicKey([9; 32]);
    let good = n
        .miner
        .mine_next(&n.chain, vec![n.pay(friend, 1_000, 10, 0)])
        .unwrap();
    let chain = &mut n.chain;
    let tweak = |f: &dyn Fn(&mut Block)| {
        let mut b = good.clone();
        f(&mut b);
        reseal(&mut b, &key);
        b
    };

    let b = tweak(&|b| b.header.unsigned.version = 2);
    assert!(matches!(
        rejection(chain, b),
        InvalidBlock::Version { found: 2, .. }
    ));
    let b = tweak(&|b| {
        b.header.unsigned.height = 0;
        b.coinbase.height = 0;
    });
    assert_eq!(rejection(chain, b), InvalidBlock::GenesisHeight);
    let b = tweak(&|b| b.coinbase.height += 1);
    assert!(matches!(
        rejection(chain, b),
        InvalidBlock::CoinbaseHeight { .. }
    ));
    let b = tweak(&|b| b.coinbase.miner = friend);
    assert!(matches!(
        rejection(chain, b),
        InvalidBlock::CoinbaseMiner { .. }
    ));
    let b = tweak(&|b| {
        b.header.unsigned.height += 1;
        b.coinbase.height += 1;
    });
    assert!(matches!(rejection(chain, b), InvalidBlock::Height { .. }));
    let parent_epoch = chain.index().get(&good.header.parent).unwrap().epoch;
    let epoch_ms = chain.genesis().config.network.epoch_ms;
    let b = tweak(&|b| {
        let back = b.header.epoch - parent_epoch;
        b.header.unsigned.epoch = parent_epoch;
        b.header.unsigned.timestamp_ms -= back * epoch_ms;
    });
    assert!(matches!(
        rejection(chain, b),
        InvalidBlock::EpochNotAfterParent { .. }
    ));
    let b = tweak(&|b| b.header.unsigned.timestamp_ms += epoch_ms);
    assert!(matches!(
        rejection(chain, b),
        InvalidBlock::TimestampOutsideEpoch { .. }
    ));
    let drift = chain.genesis().config.network.max_future_drift_ms;
    match chain.import(good.clone(), good.header.timestamp_ms - drift - 1) {
        Err(ImportError::Invalid {
            reason: InvalidBlock::TimestampTooFarAhead { .. },
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let b = tweak(&|b| b.header.unsigned.challenge.0[0] ^= 1);
    assert!(matches!(
        rejection(chain, b),
        InvalidBlock::Challenge { .. }
    ));
    let b = tweak(&|b| b.header.unsigned.target.0[5] ^= 1);
    assert!(matches!(rejection(chain, b), InvalidBlock::Target { .. }));
    let b = tweak(&|b| b.header.unsigned.proof.group += 1);
    assert!(matches!(
        rejection(chain, b),
        InvalidBlock::Proof(ProofError::WrongBucket { .. })
    ));
    let b = tweak(&|b| b.header.unsigned.proof.group = u64::MAX);
    assert!(matches!(
        rejection(chain, b),
        InvalidBlock::Proof(ProofError::GroupOutOfRange { .. })
    ));
    let b = tweak(&|b| b.header.unsigned.score.0[31] ^= 1);
    assert!(matches!(
        rejection(chain, b),
        InvalidBlock::Proof(ProofError::ScoreMismatch { .. })
    ));
    let mut b = good.clone();
    b.header.signature.0[10] ^= 1;
    assert_eq!(rejection(chain, b), InvalidBlock::HeaderSignature);
    let mut b = good.clone();
    b.coinbase.extra_data = crate::BoundedBytes::try_from_slice(b"changed").unwrap();
    b.header = b.header.unsigned.clone().sign(&key).unwrap();
    assert!(matches!(rejection(chain, b), InvalidBlock::TxRoot { .. }));
    let b = tweak(&|b| {
        let mut t = b.transfers[0].unsigned.clone();
        t.chain_id = ChainId(1);
        b.transfers = BoundedVec::try_from_vec(vec![t.sign(&key).unwrap()]).unwrap();
    });
    assert!(matches!(
        rejection(chain, b),
        InvalidBlock::Transfer { index: 0, .. }
    ));
    let b = tweak(&|b| {
        let mut t = b.transfers.to_vec();
        t[0].signature.0[3] ^= 1;
        b.transfers = BoundedVec::try_from_vec(t).unwrap();
    });
    assert_eq!(
        rejection(chain, b),
        InvalidBlock::TransferSignature { index: 0 }
    );
    let b = tweak(&|b| {
        let mut t = b.transfers[0].unsigned.clone();
        t.nonce = 5;
        b.transfers = BoundedVec::try_from_vec(vec![t.sign(&key).unwrap()]).unwrap();
    });
    assert!(matches!(
        rejection(chain, b),
        InvalidBlock::Nonce {
            index: 0,
            expected: 0,
            found: 5
        }
    ));
    let b = tweak(&|b| {
        let mut t = b.transfers[0].unsigned.clone();
        t.amount = Amount(u64::MAX / 2);
        b.transfers = BoundedVec::try_from_vec(vec![t.sign(&key).unwrap()]).unwrap();
    });
    assert!(matches!(
        rejection(chain, b),
        InvalidBlock::InsufficientBalance { .. }
    ));
    let b = tweak(&|b| {
        let mut outs = b.coinbase.outputs.to_vec();
        outs[0].amount = Amount(outs[0].amount.0 + 1);
        b.coinbase.outputs = BoundedVec::try_from_vec(outs).unwrap();
    });
    assert!(matches!(
        rejection(chain, b),
        InvalidBlock::CoinbaseTooLarge { .. }
    ));
    let b = tweak(&|b| {
        let mut outs = b.coinbase.outputs.to_vec();
        outs.push(outs[0].clone());
        outs[1].amount = Amount::MAX;
        b.coinbase.outputs = BoundedVec::try_from_vec(outs).unwrap();
    });
    assert_eq!(rejection(chain, b), InvalidBlock::CoinbaseOverflow);
    let b = tweak(&|b| b.header.unsigned.state_root.0[0] ^= 1);
    let bad_state = b.hash();
    assert!(matches!(
        rejection(chain, b.clone()),
        InvalidBlock::StateRoot { .. }
    ));
    // Refused again without work, and its children are refused for their ancestor.
    assert_eq!(
        rejection(chain, b),
        InvalidBlock::KnownInvalid { hash: bad_state }
    );
    let child = tweak(&|c| {
        c.header.unsigned.parent = bad_state;
        c.header.unsigned.height += 1;
        c.coinbase.height += 1;
    });
    assert_eq!(
        rejection(chain, child),
        InvalidBlock::InvalidAncestor {
            ancestor: bad_state
        }
    );
    // None of this moved the chain; the honest block still imports.
    assert_eq!(chain.height(), 12);
    assert_eq!(
        chain.import(good, NOW).unwrap().status,
        ImportStatus::Extended
    );
}

#[test]
fn a_losing_score_and_a_stale_median_are_refused() {
    let mut n = node();
    n.mine(3);
    let tip = n.chain.tip().hash;
    // The first epoch whose best proof loses.
    let parent_epoch = n.chain.index().get(&tip).unwrap().epoch;
    let (ctx, proof, score) = (parent_epoch + 1..)
        .find_map(|e| {
            let ctx = n.chain.mining_context(&tip, e)?;
            let (p, s) = n.miner.best_proof(&ctx.challenge)?;
            (!ctx.target.is_met_by(&s)).then_some((ctx, p, s))
        })
        .unwrap();
    let block = n
        .chain
        .build_block(
            BlockDraft {
                context: ctx,
                timestamp_ms: ctx.min_timestamp_ms,
                proof,
                score,
                transfers: vec![],
                payees: vec![],
                extra_data: vec![],
            },
            n.miner.key(),
            &mut crate::NodeRng::from_u64(0),
        )
        .unwrap();
    assert!(matches!(
        rejection(&mut n.chain, block.clone()),
        InvalidBlock::ScoreAboveTarget { .. }
    ));
    // Timestamps strictly grow with epochs, so the median rule is implied on a valid chain;
    // it is still checked, here against a median pushed past the block.
    let parent = n.chain.index().get(&tip).unwrap().clone();
    let err = validate::check_header(
        &block.header,
        &parent,
        block.header.timestamp_ms,
        NOW,
        &n.chain.genesis().config,
    )
    .unwrap_err();
    assert!(matches!(err, InvalidBlock::TimestampNotAboveMedian { .. }));
}

#[test]
fn checkpoints_pin_blocks() {
    let mut config = GenesisConfig::builtin("dev").unwrap();
    config.checkpoints.push(crate::genesis::Checkpoint {
        height: 2,
        hash: Hash([7; 32]),
    });
    let mut n = node_with(Genesis::new(config).unwrap());
    n.mine(1);
    let b = n.miner.mine_next(&n.chain, vec![]).unwrap();
    assert!(matches!(
        rejection(&mut n.chain, b),
        InvalidBlock::Checkpoint { height: 2, .. }
    ));
}

#[test]
fn coinbase_spendable_exactly_at_maturity_and_balances_split() {
    let mut n = node();
    let maturity = n.chain.genesis().config.consensus.coinbase_maturity;
    let reward = n.chain.genesis().emission.block_reward(1);
    let friend = PublicKey([9; 32]);
    // Blocks 1..maturity: the first credit (height 1) is spendable in block 1 + maturity.
    n.mine(maturity as usize - 1);
    let acct = n.chain.account(&n.miner.address()).unwrap();
    assert_eq!(acct.mature, Amount::ZERO);
    assert_eq!(acct.immature.0, reward.0 * (maturity - 1));
    assert_eq!(
        state_tree::verify_address(&acct.state_root, &n.miner.address(), &acct.proof).unwrap(),
        acct.stored
    );
    // One block early: refused, by the builder and by validation.
    let spend = n.pay(friend, reward.0, 0, 0);
    match n.miner.mine_next(&n.chain, vec![spend.clone()]) {
        Err(BuildError::Invalid(InvalidBlock::InsufficientBalance { immature, .. })) => {
            assert_eq!(immature.0, reward.0 * (maturity - 1));
        }
        other => panic!("{other:?}"),
    }
    let mut early = n.miner.mine_next(&n.chain, vec![]).unwrap();
    early.transfers = BoundedVec::try_from_vec(vec![spend.clone()]).unwrap();
    reseal(&mut early, n.miner.key());
    assert!(matches!(
        rejection(&mut n.chain, early),
        InvalidBlock::InsufficientBalance { .. }
    ));
    // Block `maturity` itself, then the spend lands at exactly 1 + maturity.
    n.mine(1);
    let b = n.mine_with(vec![spend.clone()]);
    assert_eq!(b.header.height, 1 + maturity);
    let friend_acct = n.chain.account(&friend).unwrap();
    assert_eq!(friend_acct.mature, reward);
    let acct = n.chain.account(&n.miner.address()).unwrap();
    assert_eq!(acct.nonce, 1);
    assert_eq!(acct.mature, Amount::ZERO);
    assert_eq!(acct.immature.0, reward.0 * maturity);
    assert_eq!(
        n.chain.tx_location(&spend.id()).unwrap(),
        Some((b.hash(), 1))
    );
    // The same transfer again is a nonce error.
    let mut replay = n.miner.mine_next(&n.chain, vec![]).unwrap();
    replay.transfers = BoundedVec::try_from_vec(vec![spend]).unwrap();
    reseal(&mut replay, n.miner.key());
    assert!(matches!(
        rejection(&mut n.chain, replay),
        InvalidBlock::Nonce {
            expected: 1,
            found: 0,
            ..
        }
    ));
}

#[test]
fn fees_are_reclaimed_and_unclaimed_rewards_show_in_the_audit() {
    let mut n = node();
    n.mine(11);
    let friend = PublicKey([9; 32]);
    n.mine_with(vec![n.pay(friend, 500, 25, 0)]);
    let audit = n.chain.supply_audit(12, 12).unwrap();
    assert_eq!(
        audit[0].shortfall(),
        0,
        "fees move coins, they do not create them"
    );
    // A block that claims nothing changes no account, so the state root stays the tip's; the
    // audit shows the unclaimed reward as a shortfall from then on.
    let mut empty = n.miner.mine_next(&n.chain, vec![]).unwrap();
    empty.coinbase.outputs = BoundedVec::new();
    empty.header.unsigned.state_root = n.chain.account(&friend).unwrap().state_root;
    reseal(&mut empty, n.miner.key());
    assert_eq!(
        n.chain.import(empty, NOW).unwrap().status,
        ImportStatus::Extended
    );
    let reward = n.chain.genesis().emission.block_reward(13);
    let row = n.chain.supply_audit(13, 13).unwrap()[0];
    assert_eq!(row.shortfall(), i128::from(reward.0));
    assert_eq!(
        row.scheduled,
        n.chain.genesis().emission.cumulative_supply(13)
    );
}

/// Mines `n` blocks on a second node that shares `shared` (imported first), for forks.
fn branch(shared: &[Block], n: usize) -> (Node, Vec<Block>) {
    let mut other = node();
    for b in shared {
        other.chain.import(b.clone(), NOW).unwrap();
    }
    let blocks = other.mine(n);
    (other, blocks)
}

#[test]
fn heavier_branch_reorganises_and_coinbase_credits_follow() {
    let mut a = node();
    let shared = a.mine(2);
    let mine_a = a.mine(4);
    let (b, mine_b) = branch(&shared, 8);
    assert!(b.chain.tip().work > a.chain.tip().work);
    let a_miner = a.miner.address();
    assert_eq!(
        a.chain.account(&a_miner).unwrap().immature.0,
        a.chain.genesis().emission.block_reward(1).0 * 6
    );
    let mut statuses = Vec::new();
    let mut events = Vec::new();
    for blk in &mine_b {
        let imported = a.chain.import(blk.clone(), NOW).unwrap();
        statuses.push(imported.status);
        events.extend(imported.events);
    }
    assert!(
        statuses.contains(&ImportStatus::Reorganized),
        "{statuses:?}"
    );
    assert_eq!(a.chain.tip(), b.chain.tip());
    let reorg = events
        .iter()
        .find(|e| matches!(e, ChainEvent::Reorg { .. }))
        .unwrap();
    if let ChainEvent::Reorg {
        fork_height,
        disconnected,
        ..
    } = reorg
    {
        assert_eq!(*fork_height, 2);
        assert_eq!(disconnected.len(), 4);
        assert_eq!(disconnected[0], mine_a[3].hash());
    }
    // A's credits from its orphaned blocks are gone; B's miner has its own.
    let reward = a.chain.genesis().emission.block_reward(1).0;
    assert_eq!(a.chain.account(&a_miner).unwrap().immature.0, reward * 2);
    assert_eq!(
        a.chain.account(&b.miner.address()).unwrap(),
        b.chain.account(&b.miner.address()).unwrap()
    );
    for blk in &mine_a {
        assert!(!a.chain.is_main(&blk.hash()));
        assert_eq!(a.chain.tx_location(&blk.coinbase.id()).unwrap(), None);
    }
    assert_eq!(
        a.chain.supply_audit(0, 100).unwrap(),
        b.chain.supply_audit(0, 100).unwrap()
    );
    // Survives a restart, and can switch back when A's branch outgrows B's.
    let path = a.chain.path().to_path_buf();
    drop(a.chain);
    a.chain = Chain::open(&path, dev()).unwrap();
    assert_eq!(a.chain.tip(), b.chain.tip());
}

#[test]
fn one_block_race_is_decided_by_work_then_score() {
    let mut a = node();
    let shared = a.mine(3);
    let (mut b, _) = branch(&shared, 0);
    let xa = a.miner.mine_next(&a.chain, vec![]).unwrap();
    let xb = b.miner.mine_next(&b.chain, vec![]).unwrap();
    b.chain.import(xb.clone(), NOW).unwrap();
    a.chain.import(xa.clone(), NOW).unwrap();
    let got = a.chain.import(xb.clone(), NOW).unwrap();
    let ea = a.chain.index().get(&xa.hash()).unwrap().clone();
    let eb = a.chain.index().get(&xb.hash()).unwrap().clone();
    let b_wins = index::better((&xb.hash(), &eb), (&xa.hash(), &ea));
    assert_eq!(got.status == ImportStatus::Reorganized, b_wins);
    assert_eq!(
        a.chain.tip().hash,
        if b_wins { xb.hash() } else { xa.hash() }
    );
    // The loser's child makes its branch heavier: a third node that saw both switches to it.
    let (loser_node, loser) = if b_wins { (&mut a, &xa) } else { (&mut b, &xb) };
    if b_wins {
        // `a` moved to xb; rebuild the loser's view from scratch.
        *loser_node = branch(&shared, 0).0;
        loser_node.chain.import(loser.clone(), NOW).unwrap();
    }
    let child = loser_node
        .miner
        .mine_next(&loser_node.chain, vec![])
        .unwrap();
    let mut importer = branch(&shared, 0).0;
    importer.chain.import(xa.clone(), NOW).unwrap();
    importer.chain.import(xb.clone(), NOW).unwrap();
    let r = importer.chain.import(child.clone(), NOW).unwrap();
    assert_eq!(r.status, ImportStatus::Reorganized);
    assert_eq!(importer.chain.tip().hash, child.hash());
    assert_eq!(importer.chain.height(), 5);
}

#[test]
fn orphans_wait_for_their_parents() {
    let mut a = node();
    let blocks = a.mine(6);
    let mut b = node();
    for blk in blocks[1..].iter().rev() {
        let r = b.chain.import(blk.clone(), NOW).unwrap();
        assert_eq!(r.status, ImportStatus::Orphan);
    }
    assert_eq!(b.chain.orphan_count(), 5);
    let r = b.chain.import(blocks[0].clone(), NOW).unwrap();
    assert_eq!(r.status, ImportStatus::Extended);
    assert_eq!(r.events.len(), 6);
    assert_eq!(b.chain.tip(), a.chain.tip());
    assert_eq!(b.chain.orphan_count(), 0);
}

/// A block on `parent` (any stored, non-invalid block) whose state root is not checked by the
/// builder: the branch is only connected, and so checked, when it becomes the heaviest.
fn forge_on(chain: &Chain, miner: &SoloMiner, parent: &Hash, state_root: Hash) -> Block {
    let (ctx, proof, score) = miner.find_win(chain, parent, 0).unwrap();
    let coinbase = crate::Coinbase {
        height: ctx.height,
        outputs: BoundedVec::new(),
        miner: miner.address(),
        extra_data: crate::BoundedBytes::default(),
    };
    let unsigned = crate::UnsignedHeader {
        version: crate::block::HEADER_VERSION,
        height: ctx.height,
        parent: *parent,
        timestamp_ms: ctx.min_timestamp_ms,
        epoch: ctx.epoch,
        target: ctx.target,
        challenge: ctx.challenge,
        proof,
        score,
        miner: miner.address(),
        tx_root: crate::block::tx_root(&coinbase, &[]),
        state_root,
    };
    Block {
        header: unsigned.sign(miner.key()).unwrap(),
        coinbase,
        transfers: BoundedVec::new(),
    }
}

#[test]
fn failed_reorg_returns_to_the_old_tip_and_marks_the_branch_invalid() {
    let mut a = node();
    let shared = a.mine(1);
    a.mine(6);
    let old_tip = a.chain.tip();
    let forger = SoloMiner::new(&dev().config.plot, Keypair::generate(), 1, 64);
    // A side branch whose first block has a wrong state root, then more blocks on it until the
    // branch outweighs the main chain.
    let bad = forge_on(&a.chain, &forger, &shared[0].hash(), Hash([0xab; 32]));
    assert_eq!(
        a.chain.import(bad.clone(), NOW).unwrap().status,
        ImportStatus::SideBranch
    );
    let mut parent = bad.hash();
    let mut branch = vec![bad.hash()];
    let outcome = loop {
        let next = forge_on(&a.chain, &forger, &parent, Hash([0xcd; 32]));
        parent = next.hash();
        branch.push(parent);
        let r = a.chain.import(next, NOW).unwrap();
        if r.status != ImportStatus::SideBranch {
            break r.status;
        }
    };
    match outcome {
        ImportStatus::ReorgFailed { block, reason } => {
            assert_eq!(block, bad.hash());
            assert!(matches!(reason, InvalidBlock::StateRoot { .. }));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(a.chain.tip(), old_tip);
    for h in &branch {
        assert_eq!(a.chain.index().get(h).unwrap().status, BlockStatus::Invalid);
        assert_eq!(a.chain.block(h).unwrap(), None);
    }
    // The chain still works, and the invalid marks survive a restart.
    a.mine(1);
    let path = a.chain.path().to_path_buf();
    drop(a.chain);
    let reopened = Chain::open(&path, dev()).unwrap();
    assert_eq!(
        reopened.index().get(&bad.hash()).unwrap().status,
        BlockStatus::Invalid
    );
}

#[test]
fn reorgs_deeper_than_the_limit_are_refused() {
    let mut config = GenesisConfig::builtin("dev").unwrap();
    config.consensus.max_reorg_depth = 5;
    let genesis = Genesis::new(config).unwrap();
    let mut a = node_with(genesis.clone());
    a.mine(7);
    let mut b = node_with(genesis);
    let blocks = b.mine(12);
    assert!(b.chain.tip().work > a.chain.tip().work);
    let mut refused = false;
    for blk in blocks {
        if let ImportStatus::ReorgTooDeep { depth } = a.chain.import(blk, NOW).unwrap().status {
            assert_eq!(depth, 7);
            refused = true;
        }
    }
    assert!(refused);
    assert_eq!(a.chain.height(), 7);
}

#[test]
fn large_blocks_verify_signatures_beside_the_state() {
    let mut n = node();
    n.chain.set_parallel_signatures(true);
    n.mine(12);
    let friend = PublicKey([9; 32]);
    let transfers: Vec<Transfer> = (0..70).map(|i| n.pay(friend, 1_000, 1, i)).collect();
    let good = n.miner.mine_next(&n.chain, transfers).unwrap();
    let mut bad = good.clone();
    let mut txs = bad.transfers.to_vec();
    txs[40].signature.0[7] ^= 1;
    bad.transfers = BoundedVec::try_from_vec(txs).unwrap();
    reseal(&mut bad, n.miner.key());
    assert_eq!(
        rejection(&mut n.chain, bad),
        InvalidBlock::TransferSignature { index: 40 }
    );
    assert_eq!(n.chain.height(), 12);
    assert_eq!(
        n.chain.import(good, NOW).unwrap().status,
        ImportStatus::Extended
    );
    assert_eq!(n.chain.account(&friend).unwrap().mature, Amount(70_000));
}

#[test]
fn a_memory_disk_keeps_the_chain_across_reopening_and_refuses_another_network() {
    let disk = MemoryDisk::new("node-0");
    let chain = Chain::open_on(ChainStorage::Memory(disk.clone()), dev()).unwrap();
    let mut n = Node {
        dir: tempfile::tempdir().unwrap(),
        miner: SoloMiner::new(&chain.genesis().config.plot, Keypair::generate(), 1, 64),
        chain,
    };
    n.mine(5);
    let tip = n.chain.tip();
    assert_eq!(tip.height, 5);
    drop(n.chain);
    assert!(!disk.is_empty());
    let before = disk.len_bytes();
    let err = Chain::open_on(
        ChainStorage::Memory(disk.clone()),
        Genesis::builtin("testnet").unwrap(),
    )
    .unwrap_err();
    assert!(matches!(err, ChainError::WrongNetwork { .. }), "{err}");
    assert_eq!(disk.len_bytes(), before);
    let reopened = Chain::open_on(ChainStorage::Memory(disk), dev()).unwrap();
    assert_eq!(reopened.tip(), tip);
    assert_eq!(
        reopened.block_at(3).unwrap().map(|b| b.header.height),
        Some(3)
    );
}
