//! Unit tests of [`RelayState`]: they drive `handle` and look at the actions and the counters.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::hash::Hash;
use crate::p2p::{Misbehavior, PeerId};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn hash(n: u64) -> Hash {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&n.to_le_bytes());
    b[31] = 0xAB;
    Hash(b)
}

fn block(n: u64) -> ItemId {
    ItemId::new(ItemKind::Block, hash(n))
}

fn tx(n: u64) -> ItemId {
    ItemId::new(ItemKind::Tx, hash(n))
}

fn item(kind: ItemKind, n: u64) -> ItemId {
    ItemId::new(kind, hash(n))
}

const A: PeerId = PeerId(1);
const B: PeerId = PeerId(2);
const C: PeerId = PeerId(3);
const D: PeerId = PeerId(4);

fn config(blocks: BlockRelay, txs: TxRelay) -> RelayConfig {
    RelayConfig {
        blocks,
        txs,
        ..RelayConfig::default()
    }
}

/// A machine at time 0 with `peers` up; the actions of bringing them up are dropped.
fn machine(config: RelayConfig, peers: &[PeerId]) -> RelayState {
    let mut s = RelayState::new(config, 0);
    for &peer in peers {
        s.handle(0, RelayInput::PeerUp { peer });
    }
    s
}

fn received(peer: PeerId, id: ItemId) -> RelayInput {
    RelayInput::Received { peer, id }
}

fn announced(peer: PeerId, id: ItemId) -> RelayInput {
    RelayInput::Announced { peer, id }
}

fn relay_ok(id: ItemId, bytes: u32) -> RelayInput {
    RelayInput::Checked {
        id,
        verdict: Verdict::Relay { bytes },
    }
}

fn local(id: ItemId, bytes: u32) -> RelayInput {
    RelayInput::Local {
        id,
        bytes,
        again: false,
    }
}

/// The single-item sends, in order.
fn sends(actions: &[RelayAction]) -> Vec<(PeerId, ItemId, Delivery)> {
    actions
        .iter()
        .filter_map(|a| match a {
            RelayAction::Send { peer, id, delivery } => Some((*peer, *id, *delivery)),
            _ => None,
        })
        .collect()
}

/// The transfer batches, in order.
fn tx_batches(actions: &[RelayAction]) -> Vec<(PeerId, Vec<Hash>, Delivery)> {
    actions
        .iter()
        .filter_map(|a| match a {
            RelayAction::SendTxs {
                peer,
                ids,
                delivery,
            } => Some((*peer, ids.clone(), *delivery)),
            _ => None,
        })
        .collect()
}

fn penalties(actions: &[RelayAction]) -> Vec<(PeerId, Misbehavior)> {
    actions
        .iter()
        .filter_map(|a| match a {
            RelayAction::Penalize { peer, what } => Some((*peer, *what)),
            _ => None,
        })
        .collect()
}

fn checks(actions: &[RelayAction]) -> Vec<(ItemId, PeerId)> {
    actions
        .iter()
        .filter_map(|a| match a {
            RelayAction::Check { id, from } => Some((*id, *from)),
            _ => None,
        })
        .collect()
}

fn block_fetches(actions: &[RelayAction]) -> Vec<(PeerId, Hash)> {
    actions
        .iter()
        .filter_map(|a| match a {
            RelayAction::FetchBlock { peer, hash } => Some((*peer, *hash)),
            _ => None,
        })
        .collect()
}

fn tx_fetches(actions: &[RelayAction]) -> Vec<(PeerId, Vec<Hash>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            RelayAction::FetchTxs { peer, ids } => Some((*peer, ids.clone())),
            _ => None,
        })
        .collect()
}

fn set_push(actions: &[RelayAction]) -> Vec<(PeerId, bool)> {
    actions
        .iter()
        .filter_map(|a| match a {
            RelayAction::SetPush { peer, push } => Some((*peer, *push)),
            _ => None,
        })
        .collect()
}

/// Every item a peer got, single or batched.
fn items_to(actions: &[RelayAction], to: PeerId) -> Vec<ItemId> {
    let mut got = Vec::new();
    for a in actions {
        match a {
            RelayAction::Send { peer, id, .. } if *peer == to => got.push(*id),
            RelayAction::SendTxs { peer, ids, .. } if *peer == to => {
                got.extend(ids.iter().map(|h| ItemId::new(ItemKind::Tx, *h)));
            }
            _ => {}
        }
    }
    got
}

fn of(array: &[u64; 5], kind: ItemKind) -> u64 {
    RelayCounters::of(array, kind)
}

// ---------------------------------------------------------------------------------------------
// 1. Blocks received and relayed
// ---------------------------------------------------------------------------------------------

#[test]
fn a_new_block_is_checked_before_it_goes_anywhere() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Push), &[A, B, C]);
    let out = s.handle(10, received(A, block(1)));
    assert_eq!(
        out,
        vec![RelayAction::Check {
            id: block(1),
            from: A
        }]
    );
    assert!(s.has_seen(&block(1)));
    assert!(s.peer_knows(A, &block(1)));
    assert!(!s.peer_knows(B, &block(1)));
    assert_eq!(of(&s.counters().received, ItemKind::Block), 1);
    assert_eq!(s.queued(), 0);
}

#[test]
fn push_mode_pushes_a_checked_block_to_every_other_peer_once() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Push), &[A, B, C, D]);
    s.handle(10, received(A, block(1)));
    let out = s.handle(11, relay_ok(block(1), 1_000));
    let mut got = sends(&out);
    got.sort_by_key(|g| (g.0, g.1));
    assert_eq!(
        got,
        vec![
            (B, block(1), Delivery::Push),
            (C, block(1), Delivery::Push),
            (D, block(1), Delivery::Push),
        ]
    );
    for peer in [A, B, C, D] {
        assert!(s.peer_knows(peer, &block(1)));
    }
    assert_eq!(of(&s.counters().relayed, ItemKind::Block), 1);
    assert_eq!(of(&s.counters().pushed, ItemKind::Block), 3);
    // Nothing more, whatever happens next.
    assert!(sends(&s.handle(12, relay_ok(block(1), 1_000))).is_empty());
    assert!(sends(&s.handle(13, local(block(1), 1_000))).is_empty());
    assert!(sends(&s.handle(5_000, RelayInput::Tick)).is_empty());
    assert_eq!(of(&s.counters().relayed, ItemKind::Block), 1);
}

#[test]
fn announce_mode_announces_to_every_other_peer() {
    let mut s = machine(config(BlockRelay::Announce, TxRelay::Push), &[A, B, C]);
    // Even a peer that asks for pushes gets announcements in this mode.
    s.handle(
        1,
        RelayInput::PeerWantsPush {
            peer: B,
            push: true,
        },
    );
    s.handle(10, received(A, block(1)));
    let out = s.handle(11, relay_ok(block(1), 1_000));
    let mut got = sends(&out);
    got.sort_by_key(|g| (g.0, g.1));
    assert_eq!(
        got,
        vec![
            (B, block(1), Delivery::Announce),
            (C, block(1), Delivery::Announce)
        ]
    );
    assert_eq!(of(&s.counters().announcements, ItemKind::Block), 2);
    assert_eq!(of(&s.counters().pushed, ItemKind::Block), 0);
}

#[test]
fn a_block_a_peer_has_without_more_work_is_neither_fetched_nor_sent_to_it() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Push), &[A, B]);
    let out = s.handle(
        5,
        RelayInput::PeerHas {
            peer: B,
            id: block(1),
        },
    );
    assert!(block_fetches(&out).is_empty());
    assert!(s.peer_knows(B, &block(1)));
    assert!(!s.has_seen(&block(1)));
    s.handle(10, received(A, block(1)));
    let out = s.handle(11, relay_ok(block(1), 1_000));
    // B said it has it: only nobody else is left to send it to.
    assert!(sends(&out).is_empty(), "{out:?}");
    assert_eq!(of(&s.counters().announced, ItemKind::Block), 1);
}

#[test]
fn high_bandwidth_mode_pushes_a_block_this_node_mined_to_every_peer() {
    let mut s = machine(config(BlockRelay::HighBandwidth, TxRelay::Push), &[A, B, C]);
    let out = s.handle(10, local(block(1), 1_000));
    let mut got = sends(&out);
    got.sort_by_key(|g| g.0);
    assert_eq!(
        got,
        vec![
            (A, block(1), Delivery::Push),
            (B, block(1), Delivery::Push),
            (C, block(1), Delivery::Push)
        ]
    );
}

#[test]
fn high_bandwidth_mode_pushes_to_who_asked_and_announces_to_the_rest() {
    let mut s = machine(
        config(BlockRelay::HighBandwidth, TxRelay::Push),
        &[A, B, C, D],
    );
    s.handle(
        1,
        RelayInput::PeerWantsPush {
            peer: B,
            push: true,
        },
    );
    s.handle(
        1,
        RelayInput::PeerWantsPush {
            peer: D,
            push: true,
        },
    );
    s.handle(
        2,
        RelayInput::PeerWantsPush {
            peer: D,
            push: false,
        },
    );
    // A asked too, but it is the sender.
    s.handle(
        2,
        RelayInput::PeerWantsPush {
            peer: A,
            push: true,
        },
    );
    s.handle(10, received(A, block(1)));
    let out = s.handle(11, relay_ok(block(1), 1_000));
    let mut got = sends(&out);
    got.sort_by_key(|g| (g.0, g.1));
    assert_eq!(
        got,
        vec![
            (B, block(1), Delivery::Push),
            (C, block(1), Delivery::Announce),
            (D, block(1), Delivery::Announce),
        ]
    );
}

#[test]
fn a_second_copy_is_a_duplicate_and_the_same_sender_twice_is_penalised() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Push), &[A, B, C]);
    s.handle(10, received(A, block(1)));
    // B's copy while the check runs: a duplicate, no second check, no blame.
    let out = s.handle(11, received(B, block(1)));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(of(&s.counters().duplicates, ItemKind::Block), 1);
    let out = s.handle(12, relay_ok(block(1), 1_000));
    assert_eq!(
        sends(&out),
        vec![(C, block(1), Delivery::Push)],
        "B has it already"
    );
    // A again: it knows we have it.
    let out = s.handle(13, received(A, block(1)));
    assert_eq!(penalties(&out), vec![(A, Misbehavior::RepeatedItem)]);
    assert!(checks(&out).is_empty());
    assert_eq!(s.counters().repeats, 1);
    // B again too.
    let out = s.handle(14, received(B, block(1)));
    assert_eq!(penalties(&out), vec![(B, Misbehavior::RepeatedItem)]);
    assert_eq!(s.counters().repeats, 2);
    assert_eq!(of(&s.counters().received, ItemKind::Block), 4);
}

#[test]
fn a_repeated_transfer_is_counted_not_penalised() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Push), &[A, B]);
    s.handle(10, received(A, tx(1)));
    s.handle(11, relay_ok(tx(1), 200));
    // After a reorg A relays it again, maybe before we reorg ourselves.
    let out = s.handle(12, received(A, tx(1)));
    assert!(penalties(&out).is_empty(), "{out:?}");
    assert!(checks(&out).is_empty());
    assert_eq!(s.counters().repeats, 1);
    assert_eq!(of(&s.counters().duplicates, ItemKind::Tx), 1);
}

#[test]
fn a_repeat_before_the_check_is_penalised_too() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Push), &[A, B]);
    s.handle(10, received(A, block(1)));
    let out = s.handle(11, received(A, block(1)));
    assert_eq!(penalties(&out), vec![(A, Misbehavior::RepeatedItem)]);
    assert!(checks(&out).is_empty());
}

#[test]
fn a_copy_crossing_ours_is_not_a_repeat() {
    // We push to B while B pushes the same block to us: B did nothing wrong.
    let mut s = machine(config(BlockRelay::Push, TxRelay::Push), &[A, B]);
    s.handle(10, received(A, block(1)));
    s.handle(11, relay_ok(block(1), 1_000));
    let out = s.handle(12, received(B, block(1)));
    assert!(penalties(&out).is_empty());
    assert_eq!(of(&s.counters().duplicates, ItemKind::Block), 1);
}

#[test]
fn every_kind_is_relayed_whole_except_announced_blocks_and_txs() {
    let mut s = machine(config(BlockRelay::Announce, TxRelay::Announce), &[A, B]);
    for (n, kind) in [ItemKind::Challenge, ItemKind::Proof, ItemKind::Accepted]
        .into_iter()
        .enumerate()
    {
        let id = item(kind, n as u64);
        let out = s.handle(10, received(A, id));
        assert_eq!(checks(&out), vec![(id, A)]);
        let out = s.handle(11, relay_ok(id, 300));
        assert_eq!(sends(&out), vec![(B, id, Delivery::Push)]);
        assert_eq!(of(&s.counters().pushed, kind), 1);
    }
}

#[test]
fn items_from_unknown_peers_are_ignored() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Push), &[A]);
    assert!(s.handle(1, received(B, block(1))).is_empty());
    assert!(s.handle(1, announced(B, block(1))).is_empty());
    assert!(!s.has_seen(&block(1)));
    assert!(
        s.handle(
            1,
            RelayInput::PeerWantsPush {
                peer: B,
                push: true
            }
        )
        .is_empty()
    );
    assert!(
        s.handle(
            1,
            RelayInput::Served {
                peer: B,
                id: block(1)
            }
        )
        .is_empty()
    );
    assert!(s.handle(1, RelayInput::PeerDown { peer: B }).is_empty());
    assert_eq!(s.peer_count(), 1);
}

// ---------------------------------------------------------------------------------------------
// 2. Verdicts
// ---------------------------------------------------------------------------------------------

#[test]
fn an_invalid_item_penalises_its_first_sender_and_goes_nowhere() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Push), &[A, B, C]);
    s.handle(10, received(A, block(1)));
    s.handle(11, received(B, block(1)));
    let out = s.handle(
        12,
        RelayInput::Checked {
            id: block(1),
            verdict: Verdict::Invalid(Misbehavior::InvalidBlock),
        },
    );
    assert_eq!(
        out,
        vec![RelayAction::Penalize {
            peer: A,
            what: Misbehavior::InvalidBlock
        }]
    );
    assert_eq!(of(&s.counters().refused, ItemKind::Block), 1);
    assert_eq!(of(&s.counters().relayed, ItemKind::Block), 0);
    assert_eq!(s.queued(), 0);
    // Still remembered: a later copy is not checked again.
    assert!(s.has_seen(&block(1)));
    assert!(checks(&s.handle(13, received(C, block(1)))).is_empty());
    // Nor relayed later by a stray verdict.
    assert!(sends(&s.handle(14, relay_ok(block(1), 100))).is_empty());
    assert!(sends(&s.handle(15_000, RelayInput::Tick)).is_empty());
}

#[test]
fn an_invalid_transfer_uses_the_given_misbehaviour() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Push), &[A, B]);
    s.handle(10, received(B, tx(7)));
    let out = s.handle(
        11,
        RelayInput::Checked {
            id: tx(7),
            verdict: Verdict::Invalid(Misbehavior::InvalidTransaction),
        },
    );
    assert_eq!(penalties(&out), vec![(B, Misbehavior::InvalidTransaction)]);
    assert!(tx_batches(&s.handle(1_000, RelayInput::Tick)).is_empty());
}

#[test]
fn an_ignored_item_goes_nowhere_and_blames_nobody() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Push), &[A, B]);
    s.handle(10, received(A, tx(1)));
    let out = s.handle(
        11,
        RelayInput::Checked {
            id: tx(1),
            verdict: Verdict::Ignore,
        },
    );
    assert!(out.is_empty(), "{out:?}");
    assert!(s.handle(1_000, RelayInput::Tick).is_empty());
    assert_eq!(of(&s.counters().refused, ItemKind::Tx), 1);
    assert_eq!(s.queued(), 0);
    // A stray second verdict blames nobody either.
    let out = s.handle(
        1_001,
        RelayInput::Checked {
            id: tx(1),
            verdict: Verdict::Invalid(Misbehavior::InvalidTransaction),
        },
    );
    assert!(penalties(&out).is_empty(), "{out:?}");
}

#[test]
fn a_verdict_for_an_unknown_item_does_nothing() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Push), &[A, B]);
    assert!(s.handle(1, relay_ok(block(9), 100)).is_empty());
    assert!(!s.has_seen(&block(9)));
    assert_eq!(of(&s.counters().relayed, ItemKind::Block), 0);
}

#[test]
fn a_block_whose_body_fails_penalises_its_sender_below_a_ban() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Push), &[A, B]);
    s.handle(10, received(B, block(1)));
    s.handle(11, relay_ok(block(1), 1_000));
    let out = s.handle(
        12,
        RelayInput::BodyInvalid {
            hash: block(1).hash,
        },
    );
    assert_eq!(
        out,
        vec![RelayAction::Penalize {
            peer: B,
            what: Misbehavior::InvalidRelayedBlock
        }]
    );
    assert!(Misbehavior::InvalidRelayedBlock.penalty() < crate::p2p::score::BAN_THRESHOLD);
    // Our own block, or one we never saw, blames nobody.
    s.handle(13, local(block(2), 1_000));
    assert!(
        s.handle(
            14,
            RelayInput::BodyInvalid {
                hash: block(2).hash
            }
        )
        .is_empty()
    );
    assert!(
        s.handle(
            15,
            RelayInput::BodyInvalid {
                hash: block(3).hash
            }
        )
        .is_empty()
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Announcements and fetches
// ---------------------------------------------------------------------------------------------

#[test]
fn an_announced_block_is_fetched_once_from_the_first_announcer() {
    let mut s = machine(config(BlockRelay::Announce, TxRelay::Push), &[A, B, C]);
    let out = s.handle(10, announced(A, block(1)));
    assert_eq!(
        out,
        vec![RelayAction::FetchBlock {
            peer: A,
            hash: block(1).hash
        }]
    );
    assert!(s.peer_knows(A, &block(1)));
    assert!(!s.has_seen(&block(1)), "announced is not had");
    // More announcements wait.
    assert!(block_fetches(&s.handle(11, announced(B, block(1)))).is_empty());
    assert!(block_fetches(&s.handle(12, announced(C, block(1)))).is_empty());
    assert!(block_fetches(&s.handle(12, announced(A, block(1)))).is_empty());
    assert_eq!(of(&s.counters().announced, ItemKind::Block), 4);
    assert_eq!(of(&s.counters().fetched, ItemKind::Block), 1);
    // A answers: checked, then relayed to nobody (everyone announced it).
    let out = s.handle(20, received(A, block(1)));
    assert_eq!(checks(&out), vec![(block(1), A)]);
    assert!(penalties(&out).is_empty(), "answering a fetch is no repeat");
    let out = s.handle(21, relay_ok(block(1), 1_000));
    assert!(sends(&out).is_empty(), "{out:?}");
    // The fetch is over: no timeouts later.
    assert!(block_fetches(&s.handle(10_000, RelayInput::Tick)).is_empty());
    assert_eq!(s.counters().fetch_timeouts, 0);
}

#[test]
fn an_unanswered_fetch_goes_to_the_next_announcer_after_the_timeout() {
    let mut cfg = config(BlockRelay::Announce, TxRelay::Push);
    cfg.fetch_timeout_ms = 1_000;
    let mut s = machine(cfg, &[A, B, C]);
    s.handle(100, announced(A, block(1)));
    s.handle(150, announced(B, block(1)));
    s.handle(160, announced(C, block(1)));
    assert!(block_fetches(&s.handle(1_099, RelayInput::Tick)).is_empty());
    let out = s.handle(1_100, RelayInput::Tick);
    assert_eq!(block_fetches(&out), vec![(B, block(1).hash)]);
    assert_eq!(s.counters().fetch_timeouts, 1);
    // And on to C a timeout later, then nobody is left.
    assert!(block_fetches(&s.handle(2_099, RelayInput::Tick)).is_empty());
    assert_eq!(
        block_fetches(&s.handle(2_100, RelayInput::Tick)),
        vec![(C, block(1).hash)]
    );
    assert!(block_fetches(&s.handle(3_100, RelayInput::Tick)).is_empty());
    assert!(block_fetches(&s.handle(9_100, RelayInput::Tick)).is_empty());
    assert_eq!(s.counters().fetch_timeouts, 3);
    assert_eq!(of(&s.counters().fetched, ItemKind::Block), 3);
    // A later announcement starts afresh.
    assert_eq!(
        block_fetches(&s.handle(9_200, announced(D, block(1)))),
        vec![]
    );
    s.handle(9_200, RelayInput::PeerUp { peer: D });
    assert_eq!(
        block_fetches(&s.handle(9_201, announced(D, block(1)))),
        vec![(D, block(1).hash)]
    );
}

#[test]
fn late_answers_from_any_announcer_are_not_repeats() {
    let mut cfg = config(BlockRelay::Announce, TxRelay::Push);
    cfg.fetch_timeout_ms = 1_000;
    let mut s = machine(cfg, &[A, B, C]);
    s.handle(0, announced(A, block(1)));
    s.handle(0, announced(B, block(1)));
    assert_eq!(
        block_fetches(&s.handle(1_000, RelayInput::Tick)),
        vec![(B, block(1).hash)]
    );
    // A was slow, not gone: its answer comes, then B's.
    let out = s.handle(1_010, received(A, block(1)));
    assert_eq!(checks(&out), vec![(block(1), A)]);
    let out = s.handle(1_020, received(B, block(1)));
    assert!(penalties(&out).is_empty(), "B answered our fetch: {out:?}");
    assert_eq!(of(&s.counters().duplicates, ItemKind::Block), 1);
    let out = s.handle(1_030, relay_ok(block(1), 1_000));
    assert_eq!(sends(&out), vec![(C, block(1), Delivery::Announce)]);
}

#[test]
fn a_fetch_answered_by_a_pusher_meanwhile_is_no_repeat() {
    // A announces a transfer, we fetch; B pushes it meanwhile; then A answers our fetch.
    let mut s = machine(config(BlockRelay::Push, TxRelay::Announce), &[A, B]);
    s.handle(0, announced(A, tx(1)));
    s.handle(1, received(B, tx(1)));
    let out = s.handle(2, received(A, tx(1)));
    assert!(penalties(&out).is_empty(), "{out:?}");
    assert_eq!(s.counters().repeats, 0);
}

#[test]
fn the_next_announcer_is_asked_when_the_first_disconnects() {
    let mut s = machine(config(BlockRelay::Announce, TxRelay::Push), &[A, B, C]);
    s.handle(0, announced(A, block(1)));
    s.handle(1, announced(B, block(1)));
    s.handle(2, announced(C, block(1)));
    // B leaving changes nothing; A leaving moves the fetch on to C at once.
    assert!(block_fetches(&s.handle(3, RelayInput::PeerDown { peer: B })).is_empty());
    let out = s.handle(4, RelayInput::PeerDown { peer: A });
    assert_eq!(block_fetches(&out), vec![(C, block(1).hash)]);
    assert_eq!(s.counters().fetch_timeouts, 0);
    // The new fetch has its own timeout.
    assert!(block_fetches(&s.handle(2_003, RelayInput::Tick)).is_empty());
    assert!(
        block_fetches(&s.handle(2_004, RelayInput::Tick)).is_empty(),
        "nobody left"
    );
    assert_eq!(s.counters().fetch_timeouts, 1);
}

#[test]
fn announcements_of_seen_items_fetch_nothing() {
    let mut s = machine(config(BlockRelay::Announce, TxRelay::Announce), &[A, B, C]);
    s.handle(0, received(A, block(1)));
    assert!(
        s.handle(1, announced(B, block(1))).is_empty(),
        "seen while checking"
    );
    s.handle(2, relay_ok(block(1), 1_000));
    assert!(block_fetches(&s.handle(3, announced(C, block(1)))).is_empty());
    s.handle(4, local(tx(1), 200));
    assert!(tx_fetches(&s.handle(5, announced(B, tx(1)))).is_empty());
    // Refused items are not fetched again either.
    s.handle(6, received(A, block(2)));
    s.handle(
        7,
        RelayInput::Checked {
            id: block(2),
            verdict: Verdict::Ignore,
        },
    );
    assert!(block_fetches(&s.handle(8, announced(B, block(2)))).is_empty());
    assert_eq!(of(&s.counters().fetched, ItemKind::Block), 0);
    assert_eq!(of(&s.counters().fetched, ItemKind::Tx), 0);
    // Nor are the kinds that are always pushed.
    assert!(
        s.handle(9, announced(B, item(ItemKind::Proof, 3)))
            .is_empty()
    );
}

#[test]
fn an_announcer_is_not_sent_what_it_announced() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Push), &[A, B, C]);
    s.handle(0, announced(C, block(1)));
    s.handle(1, received(A, block(1)));
    let out = s.handle(2, relay_ok(block(1), 1_000));
    assert_eq!(sends(&out), vec![(B, block(1), Delivery::Push)]);
}

#[test]
fn an_item_the_node_got_otherwise_is_not_fetched_again() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Announce), &[A, B]);
    assert_eq!(tx_fetches(&s.handle(0, announced(A, tx(1)))).len(), 1);
    s.handle(0, announced(B, tx(1)));
    // Our own pool admitted it meanwhile (a wallet submitted it).
    s.handle(10, local(tx(1), 200));
    let out = s.handle(5_000, RelayInput::Tick);
    assert!(tx_fetches(&out).is_empty(), "{out:?}");
    assert!(s.fetches.is_empty());
}

#[test]
fn fetches_in_flight_are_bounded() {
    let mut cfg = config(BlockRelay::Announce, TxRelay::Push);
    cfg.seen_capacity = 4;
    let mut s = machine(cfg, &[A]);
    let mut fetched = 0;
    for n in 0..10 {
        fetched += block_fetches(&s.handle(0, announced(A, block(n)))).len();
    }
    assert_eq!(fetched, 4);
    assert_eq!(s.fetches.len(), 4);
    // Answers make room again.
    s.handle(1, received(A, block(0)));
    assert_eq!(
        block_fetches(&s.handle(2, announced(A, block(20)))).len(),
        1
    );
}

#[test]
fn announced_transfers_are_fetched_in_one_batch_per_peer_per_handle() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Announce), &[A, B]);
    let out = s.handle(0, announced(A, tx(1)));
    assert_eq!(tx_fetches(&out), vec![(A, vec![tx(1).hash])]);
    // A second announcer of tx 1 waits; its tx 2 is fetched from it.
    let out = s.handle(1, announced(B, tx(1)));
    assert!(tx_fetches(&out).is_empty());
    let out = s.handle(1, announced(B, tx(2)));
    assert_eq!(tx_fetches(&out), vec![(B, vec![tx(2).hash])]);
    assert_eq!(of(&s.counters().fetched, ItemKind::Tx), 2);
    // Timeout: tx 1 goes to B, tx 2 has nobody else.
    let out = s.handle(2_000, RelayInput::Tick);
    assert_eq!(tx_fetches(&out), vec![(B, vec![tx(1).hash])]);
    assert_eq!(s.counters().fetch_timeouts, 1);
    let out = s.handle(2_001, RelayInput::Tick);
    assert!(tx_fetches(&out).is_empty());
    assert_eq!(s.counters().fetch_timeouts, 2);
}

#[test]
fn many_transfer_timeouts_in_one_tick_make_one_fetch_per_peer() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Announce), &[A, B, C]);
    for n in 0..10 {
        s.handle(0, announced(A, tx(n)));
        s.handle(0, announced(if n % 2 == 0 { B } else { C }, tx(n)));
    }
    let out = s.handle(2_000, RelayInput::Tick);
    let fetches = tx_fetches(&out);
    assert_eq!(fetches.len(), 2, "{fetches:?}");
    let to_b: Vec<Hash> = (0..10).filter(|n| n % 2 == 0).map(|n| tx(n).hash).collect();
    let to_c: Vec<Hash> = (0..10).filter(|n| n % 2 == 1).map(|n| tx(n).hash).collect();
    for (peer, ids) in fetches {
        let mut ids = ids;
        ids.sort();
        let mut want = if peer == B {
            to_b.clone()
        } else {
            to_c.clone()
        };
        want.sort();
        assert_eq!(ids, want);
    }
}

#[test]
fn a_flood_of_announced_transfers_is_fetched_in_full_size_messages() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Announce), &[A]);
    // One `handle` per id: one fetch each, and a fetch never exceeds the message bound.
    for n in 0..3 {
        let out = s.handle(0, announced(A, tx(n)));
        assert_eq!(tx_fetches(&out).len(), 1);
    }
    let mut cfg = config(BlockRelay::Push, TxRelay::Announce);
    cfg.fetch_timeout_ms = 10;
    let mut s = machine(cfg, &[A, B]);
    let n = MAX_TX_IDS_PER_MESSAGE as u64 + 5;
    for i in 0..n {
        s.handle(0, announced(A, tx(i)));
        s.handle(0, announced(B, tx(i)));
    }
    let fetches = tx_fetches(&s.handle(10, RelayInput::Tick));
    let sizes: Vec<usize> = fetches.iter().map(|f| f.1.len()).collect();
    assert_eq!(sizes, vec![MAX_TX_IDS_PER_MESSAGE, 5]);
    assert!(fetches.iter().all(|f| f.0 == B));
}

// ---------------------------------------------------------------------------------------------
// 4. Transfers
// ---------------------------------------------------------------------------------------------

#[test]
fn local_transfers_are_batched_until_the_batch_is_old_enough() {
    let mut cfg = config(BlockRelay::Push, TxRelay::Push);
    cfg.tx_batch_ms = 100;
    let mut s = machine(cfg, &[A, B]);
    for n in 0..5 {
        let out = s.handle(1_000 + n, local(tx(n), 250));
        assert!(tx_batches(&out).is_empty(), "{out:?}");
    }
    assert_eq!(s.queued(), 10);
    assert!(tx_batches(&s.handle(1_099, RelayInput::Tick)).is_empty());
    let out = s.handle(1_100, RelayInput::Tick);
    let mut batches = tx_batches(&out);
    batches.sort_by_key(|b| b.0);
    let all: Vec<Hash> = (0..5).map(|n| tx(n).hash).collect();
    assert_eq!(
        batches,
        vec![(A, all.clone(), Delivery::Push), (B, all, Delivery::Push)]
    );
    assert_eq!(s.queued(), 0);
    assert_eq!(of(&s.counters().pushed, ItemKind::Tx), 10);
    assert_eq!(of(&s.counters().relayed, ItemKind::Tx), 5);
    // A new batch starts its own clock.
    s.handle(1_150, local(tx(9), 250));
    assert!(tx_batches(&s.handle(1_200, RelayInput::Tick)).is_empty());
    assert_eq!(tx_batches(&s.handle(1_250, RelayInput::Tick)).len(), 2);
}

#[test]
fn a_compact_block_push_sends_the_waiting_transfers_first() {
    for compact in [true, false] {
        let mut cfg = config(BlockRelay::Push, TxRelay::Push);
        cfg.compact_blocks = compact;
        let mut s = machine(cfg, &[A]);
        for n in 0..3 {
            assert!(tx_batches(&s.handle(1_000 + n, local(tx(n), 200))).is_empty());
        }
        let out = s.handle(1_010, local(block(1), 1_000));
        let order: Vec<&str> = out
            .iter()
            .filter_map(|a| match a {
                RelayAction::SendTxs { .. } => Some("txs"),
                RelayAction::Send { .. } => Some("block"),
                _ => None,
            })
            .collect();
        if compact {
            // The peer rebuilds the block from transfers that arrived just before it.
            assert_eq!(order, vec!["txs", "block"], "{out:?}");
            let all: Vec<Hash> = (0..3).map(|n| tx(n).hash).collect();
            assert_eq!(tx_batches(&out), vec![(A, all, Delivery::Push)]);
        } else {
            // A whole block carries its transfers; theirs wait for the batch.
            assert_eq!(order, vec!["block"], "{out:?}");
            assert_eq!(tx_batches(&s.handle(1_100, RelayInput::Tick)).len(), 1);
        }
        assert_eq!(s.queued(), 0);
    }
}

#[test]
fn a_relayed_transfer_is_batched_for_the_others_only() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Push), &[A, B, C]);
    s.handle(0, received(A, tx(1)));
    s.handle(1, received(C, tx(1)));
    s.handle(2, relay_ok(tx(1), 200));
    let out = s.handle(500, RelayInput::Tick);
    assert_eq!(
        tx_batches(&out),
        vec![(B, vec![tx(1).hash], Delivery::Push)]
    );
}

#[test]
fn a_full_push_batch_goes_at_once() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Push), &[A]);
    let mut sent = Vec::new();
    for n in 0..MAX_TXS_PER_MESSAGE as u64 {
        let out = s.handle(0, local(tx(n), 100));
        sent.extend(tx_batches(&out));
        if n + 1 < MAX_TXS_PER_MESSAGE as u64 {
            assert!(sent.is_empty(), "early batch after {n}");
        }
    }
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.len(), MAX_TXS_PER_MESSAGE);
    assert_eq!(sent[0].2, Delivery::Push);
    assert_eq!(
        sent[0].1,
        (0..MAX_TXS_PER_MESSAGE as u64)
            .map(|n| tx(n).hash)
            .collect::<Vec<_>>()
    );
    assert_eq!(s.queued(), 0);
}

#[test]
fn a_full_announce_batch_goes_at_once() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Announce), &[A]);
    let mut sent = Vec::new();
    for n in 0..MAX_TX_IDS_PER_MESSAGE as u64 + 3 {
        let out = s.handle(0, local(tx(n), 100));
        sent.extend(tx_batches(&out));
        if n + 1 == MAX_TXS_PER_MESSAGE as u64 {
            assert!(
                sent.is_empty(),
                "an announce batch holds more than a push batch"
            );
        }
    }
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.len(), MAX_TX_IDS_PER_MESSAGE);
    assert_eq!(sent[0].2, Delivery::Announce);
    assert_eq!(s.queued(), 3);
    assert_eq!(
        of(&s.counters().announcements, ItemKind::Tx),
        MAX_TX_IDS_PER_MESSAGE as u64
    );
    let out = s.handle(100, RelayInput::Tick);
    assert_eq!(tx_batches(&out)[0].1.len(), 3);
}

#[test]
fn announce_mode_sends_transfer_ids() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Announce), &[A, B]);
    s.handle(0, received(A, tx(1)));
    s.handle(0, relay_ok(tx(1), 300));
    s.handle(1, local(tx(2), 300));
    let out = s.handle(100, RelayInput::Tick);
    assert_eq!(
        tx_batches(&out),
        vec![(B, vec![tx(1).hash, tx(2).hash], Delivery::Announce)]
    );
    assert_eq!(of(&s.counters().announcements, ItemKind::Tx), 2);
    assert_eq!(of(&s.counters().pushed, ItemKind::Tx), 0);
}

#[test]
fn local_again_relays_to_peers_that_had_it() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Push), &[A, B, C]);
    s.handle(0, received(A, tx(1)));
    s.handle(0, relay_ok(tx(1), 300));
    let out = s.handle(100, RelayInput::Tick);
    assert_eq!(tx_batches(&out).len(), 2);
    // Without `again` nothing happens.
    s.handle(200, local(tx(1), 300));
    assert!(tx_batches(&s.handle(400, RelayInput::Tick)).is_empty());
    // With it, every peer gets it again (a reorg brought it back).
    s.handle(
        500,
        RelayInput::Local {
            id: tx(1),
            bytes: 300,
            again: true,
        },
    );
    let mut got: Vec<PeerId> = tx_batches(&s.handle(600, RelayInput::Tick))
        .into_iter()
        .map(|b| {
            assert_eq!(b.1, vec![tx(1).hash]);
            b.0
        })
        .collect();
    got.sort();
    assert_eq!(got, vec![A, B, C]);
    assert_eq!(of(&s.counters().relayed, ItemKind::Tx), 2);
    // And after that, a copy from A is no repeat: we forgot it had it.
    let out = s.handle(700, received(A, tx(1)));
    assert!(penalties(&out).is_empty());
}

#[test]
fn local_again_does_not_queue_an_item_twice() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Push), &[A]);
    s.handle(0, local(tx(1), 300));
    s.handle(
        10,
        RelayInput::Local {
            id: tx(1),
            bytes: 300,
            again: true,
        },
    );
    assert_eq!(s.queued(), 1);
    let out = s.handle(100, RelayInput::Tick);
    assert_eq!(
        tx_batches(&out),
        vec![(A, vec![tx(1).hash], Delivery::Push)]
    );
}

#[test]
fn a_peer_that_sends_what_is_queued_for_it_is_not_sent_it() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Push), &[A, B]);
    s.handle(0, local(tx(1), 300));
    s.handle(0, local(tx(2), 300));
    s.handle(0, local(tx(3), 300));
    // A sends tx 1, announces tx 2, fetches tx 3 before the batch goes.
    s.handle(10, received(A, tx(1)));
    s.handle(10, announced(A, tx(2)));
    s.handle(10, RelayInput::Served { peer: A, id: tx(3) });
    let out = s.handle(100, RelayInput::Tick);
    let mut batches = tx_batches(&out);
    batches.sort_by_key(|b| b.0);
    assert_eq!(
        batches,
        vec![(B, vec![tx(1).hash, tx(2).hash, tx(3).hash], Delivery::Push)]
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Priorities, bounds and rates
// ---------------------------------------------------------------------------------------------

/// Drains a throttle's burst with one big item, so that what comes next waits.
const BIG: u32 = 200_000;

#[test]
fn under_a_peer_rate_limit_blocks_go_before_proofs_before_transfers() {
    let mut cfg = config(BlockRelay::Push, TxRelay::Push);
    cfg.peer_upload_bytes_per_sec = 10_000; // 10 bytes per ms; the burst is 64 KiB.
    cfg.tx_batch_ms = 0;
    // Whole blocks: a compact push takes the waiting transfers along first.
    cfg.compact_blocks = false;
    let mut s = machine(cfg, &[A]);
    // The first item goes (the bucket was full) and leaves a debt of 200 KB - 64 KiB.
    let out = s.handle(0, local(item(ItemKind::Challenge, 0), BIG));
    assert_eq!(sends(&out).len(), 1);
    s.handle(1, local(tx(1), 1_000));
    s.handle(2, local(item(ItemKind::Accepted, 2), 1_000));
    s.handle(3, local(item(ItemKind::Proof, 3), 1_000));
    s.handle(4, local(block(4), 1_000));
    s.handle(5, local(item(ItemKind::Challenge, 5), 1_000));
    let out = s.handle(6, RelayInput::Tick);
    assert!(out.is_empty(), "still in debt: {out:?}");
    assert_eq!(s.queued(), 5);
    // Once the debt is repaid everything goes, highest class first, in arrival order.
    let out = s.handle(60_000, RelayInput::Tick);
    assert_eq!(
        items_to(&out, A),
        vec![
            block(4),
            item(ItemKind::Challenge, 5),
            item(ItemKind::Accepted, 2),
            item(ItemKind::Proof, 3),
            tx(1),
        ]
    );
    assert_eq!(s.queued(), 0);
}

#[test]
fn a_peer_rate_limit_lets_part_out_now_and_the_rest_later() {
    let mut cfg = config(BlockRelay::Push, TxRelay::Push);
    cfg.peer_upload_bytes_per_sec = 100_000; // 100 bytes per ms, burst 100 KB.
    let mut s = machine(cfg, &[A, B]);
    // Three 40 KB blocks from A: two fit B's burst (the second goes into debt), the third waits.
    for n in 0..3 {
        s.handle(0, received(A, block(n)));
    }
    let mut got = Vec::new();
    for n in 0..3 {
        got.extend(sends(&s.handle(0, relay_ok(block(n), 40_000))));
    }
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.iter().all(|g| g.0 == B));
    // The queue is not over: it takes every item at once under no rate...
    let mut cfg = config(BlockRelay::Push, TxRelay::Push);
    cfg.peer_upload_bytes_per_sec = 100_000;
    let mut s = machine(cfg, &[B]);
    let mut got = Vec::new();
    for n in 0..5 {
        got.extend(sends(&s.handle(0, local(block(n), 40_000))));
    }
    // 100 KB burst: 40 + 40 + 40 (the third makes the debt); 2 wait.
    assert_eq!(got.len(), 3);
    assert_eq!(s.queued(), 2);
    // 20 KB of debt: repaid at 200 ms, then one more goes; the last waits 400 ms more.
    assert!(sends(&s.handle(199, RelayInput::Tick)).is_empty());
    assert_eq!(
        sends(&s.handle(200, RelayInput::Tick)),
        vec![(B, block(3), Delivery::Push)]
    );
    assert!(sends(&s.handle(599, RelayInput::Tick)).is_empty());
    assert_eq!(
        sends(&s.handle(600, RelayInput::Tick)),
        vec![(B, block(4), Delivery::Push)]
    );
    assert_eq!(s.queued(), 0);
}

#[test]
fn a_rate_limited_peer_does_not_hold_back_the_others() {
    let mut cfg = config(BlockRelay::Push, TxRelay::Push);
    cfg.peer_upload_bytes_per_sec = 1_000;
    let mut s = machine(cfg, &[A, B, C]);
    s.handle(0, received(A, block(0)));
    s.handle(0, relay_ok(block(0), BIG));
    // B and C are in debt now; D is fresh.
    s.handle(0, RelayInput::PeerUp { peer: D });
    s.handle(1, received(A, block(1)));
    let out = s.handle(2, relay_ok(block(1), 1_000));
    assert_eq!(sends(&out), vec![(D, block(1), Delivery::Push)]);
    assert_eq!(s.queued(), 2);
}

#[test]
fn a_full_queue_drops_transfers_first_and_counts_it() {
    let mut cfg = config(BlockRelay::Push, TxRelay::Push);
    cfg.peer_upload_bytes_per_sec = 1_000;
    cfg.queue_per_peer = 4;
    let mut s = machine(cfg, &[A]);
    // In debt for a long while.
    s.handle(0, local(block(100), BIG));
    for n in 0..4 {
        s.handle(1, local(tx(n), 100));
    }
    assert_eq!(s.queued(), 4);
    // A fifth transfer is itself dropped; a block and a proof displace the oldest transfers.
    s.handle(2, local(tx(4), 100));
    assert_eq!(of(&s.counters().queue_dropped, ItemKind::Tx), 1);
    assert!(
        !s.peer_knows(A, &tx(4)),
        "a dropped item never reached the peer"
    );
    s.handle(3, local(block(1), 100));
    s.handle(4, local(item(ItemKind::Proof, 2), 100));
    assert_eq!(of(&s.counters().queue_dropped, ItemKind::Tx), 3);
    assert!(!s.peer_knows(A, &tx(0)) && !s.peer_knows(A, &tx(1)));
    assert!(s.peer_knows(A, &tx(2)) && s.peer_knows(A, &block(1)));
    // Four blocks then fill it; a fifth block is the one dropped.
    s.handle(5, local(block(2), 100));
    s.handle(5, local(block(3), 100));
    s.handle(5, local(block(4), 100));
    assert_eq!(of(&s.counters().queue_dropped, ItemKind::Tx), 5);
    assert_eq!(of(&s.counters().queue_dropped, ItemKind::Proof), 1);
    assert_eq!(of(&s.counters().queue_dropped, ItemKind::Block), 0);
    s.handle(5, local(block(5), 100));
    assert_eq!(of(&s.counters().queue_dropped, ItemKind::Block), 1);
    assert_eq!(s.queued(), 4);
    // Later, what stayed goes out, in order.
    let out = s.handle(1_000_000, RelayInput::Tick);
    assert_eq!(
        items_to(&out, A),
        vec![block(1), block(2), block(3), block(4)]
    );
}

#[test]
fn the_node_wide_rate_is_shared_and_time_lets_the_rest_out() {
    let mut cfg = config(BlockRelay::Push, TxRelay::Push);
    cfg.upload_bytes_per_sec = 100_000; // 100 bytes per ms, burst 100 KB.
    let mut s = machine(cfg, &[A, B, C]);
    let mut out = Vec::new();
    for n in 0..4 {
        out.extend(s.handle(0, local(block(n), 30_000)));
    }
    // 100 KB burst: four 30 KB sends (the fourth makes the debt), of twelve.
    assert_eq!(sends(&out).len(), 4);
    assert_eq!(s.queued(), 8);
    let mut total = sends(&out).len();
    let mut now = 0;
    while s.queued() > 0 {
        now += 100;
        assert!(now < 10_000, "stuck");
        total += sends(&s.handle(now, RelayInput::Tick)).len();
    }
    assert_eq!(total, 12);
    // A send goes while the bucket is not in debt: the twelfth once the first eleven
    // (330 KB) are paid for, 100 KB from the burst and 230 KB at 100 bytes per ms.
    assert_eq!(now, 2_300);
}

#[test]
fn no_peer_starves_under_the_node_wide_rate() {
    let mut cfg = config(BlockRelay::Push, TxRelay::Push);
    cfg.upload_bytes_per_sec = 100_000; // 100 bytes per ms
    let mut s = machine(cfg, &[A, B]);
    // Plenty queued for both; each send costs two ticks of budget.
    for n in 0..40 {
        s.handle(0, local(item(ItemKind::Proof, n), 20_000));
    }
    let mut per_peer: BTreeMap<PeerId, usize> = BTreeMap::new();
    for t in 1..=40 {
        for (peer, _, _) in sends(&s.handle(t * 100, RelayInput::Tick)) {
            *per_peer.entry(peer).or_default() += 1;
        }
    }
    let a = per_peer.get(&A).copied().unwrap_or(0);
    let b = per_peer.get(&B).copied().unwrap_or(0);
    assert!(a + b >= 15, "{per_peer:?}");
    assert!(a.abs_diff(b) <= 1, "unfair: {per_peer:?}");
}

#[test]
fn no_peer_starves_whatever_else_the_node_handles() {
    // Other inputs flush too; the share still rotates.
    let mut cfg = config(BlockRelay::Push, TxRelay::Push);
    cfg.upload_bytes_per_sec = 100_000;
    let mut s = machine(cfg, &[A, B, C]);
    for n in 0..60 {
        s.handle(0, local(item(ItemKind::Proof, n), 20_000));
    }
    let mut per_peer: BTreeMap<PeerId, usize> = BTreeMap::new();
    for t in 1..=60u64 {
        let mut out = s.handle(t * 100, RelayInput::Tick);
        // Unrelated inputs in between (items nobody needs to get).
        out.extend(s.handle(
            t * 100,
            RelayInput::PeerWantsPush {
                peer: A,
                push: t % 2 == 0,
            },
        ));
        for (peer, _, _) in sends(&out) {
            *per_peer.entry(peer).or_default() += 1;
        }
    }
    let counts: Vec<usize> = [A, B, C]
        .iter()
        .map(|p| per_peer.get(p).copied().unwrap_or(0))
        .collect();
    let (min, max) = (counts.iter().min().copied(), counts.iter().max().copied());
    assert!(
        min.zip(max).is_some_and(|(lo, hi)| lo > 0 && hi - lo <= 1),
        "unfair: {counts:?}"
    );
}

#[test]
fn a_throttled_transfer_batch_waits_whole() {
    let mut cfg = config(BlockRelay::Push, TxRelay::Push);
    cfg.peer_upload_bytes_per_sec = 1_000;
    cfg.tx_batch_ms = 100;
    let mut s = machine(cfg, &[A]);
    s.handle(0, local(block(0), BIG));
    for n in 0..10 {
        s.handle(1, local(tx(n), 100));
    }
    assert!(tx_batches(&s.handle(500, RelayInput::Tick)).is_empty());
    assert_eq!(s.queued(), 10);
    let out = s.handle(1_000_000, RelayInput::Tick);
    let batches = tx_batches(&out);
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].1.len(), 10);
}

// ---------------------------------------------------------------------------------------------
// 6. High-bandwidth peers
// ---------------------------------------------------------------------------------------------

/// A delivers the first copy of block `n` (which the others then also send).
fn deliver_first(s: &mut RelayState, now: u64, from: PeerId, n: u64) -> Vec<RelayAction> {
    let mut out = s.handle(now, received(from, block(n)));
    out.extend(s.handle(now, relay_ok(block(n), 1_000)));
    out
}

#[test]
fn the_first_peer_up_is_asked_to_push() {
    let mut s = RelayState::new(config(BlockRelay::HighBandwidth, TxRelay::Push), 0);
    let out = s.handle(0, RelayInput::PeerUp { peer: A });
    assert_eq!(
        out,
        vec![RelayAction::SetPush {
            peer: A,
            push: true
        }]
    );
    assert!(s.handle(1, RelayInput::PeerUp { peer: B }).is_empty());
    assert!(s.handle(1, RelayInput::PeerUp { peer: C }).is_empty());
    assert_eq!(s.pushers(), vec![A]);
}

#[test]
fn the_peer_that_delivers_new_blocks_first_takes_over() {
    let mut s = RelayState::new(config(BlockRelay::HighBandwidth, TxRelay::Push), 0);
    for peer in [A, B, C] {
        s.handle(0, RelayInput::PeerUp { peer });
    }
    assert_eq!(s.pushers(), vec![A]);
    let mut switches = Vec::new();
    const R: u64 = PUSHER_REVIEW_MS;
    for n in 0..3 {
        let out = deliver_first(&mut s, (n + 1) * R, B, n);
        switches.extend(set_push(&out));
        // The others' later copies change nothing.
        assert!(set_push(&s.handle((n + 1) * R, received(A, block(n)))).is_empty());
    }
    assert_eq!(switches, vec![(A, false), (B, true)]);
    assert_eq!(s.pushers(), vec![B]);
    // A single lucky block from C does not move it.
    // (B has credit from three blocks.)
    let out = deliver_first(&mut s, 20 * R, C, 10);
    assert!(set_push(&out).is_empty(), "{out:?}");
    // But a run of them does.
    let mut switches = Vec::new();
    for n in 11..20 {
        switches.extend(set_push(&deliver_first(&mut s, (20 + n) * R, C, n)));
    }
    assert_eq!(switches, vec![(B, false), (C, true)]);
    assert_eq!(s.pushers(), vec![C]);
}

#[test]
fn the_high_bandwidth_choice_is_reviewed_at_most_once_per_period() {
    let mut s = machine(config(BlockRelay::HighBandwidth, TxRelay::Push), &[A, B]);
    assert_eq!(s.pushers(), vec![A]);
    // B delivers first many times within one period: nothing changes until it ends.
    let mut switches = Vec::new();
    for n in 0..10 {
        switches.extend(set_push(&deliver_first(&mut s, 100 + n, B, n)));
    }
    assert!(switches.is_empty(), "{switches:?}");
    let out = deliver_first(&mut s, PUSHER_REVIEW_MS, B, 10);
    assert_eq!(set_push(&out), vec![(A, false), (B, true)]);
}

#[test]
fn a_lost_high_bandwidth_peer_is_replaced() {
    let mut cfg = config(BlockRelay::HighBandwidth, TxRelay::Push);
    cfg.high_bandwidth_peers = 2;
    let mut s = RelayState::new(cfg, 0);
    let mut out = Vec::new();
    for peer in [A, B, C, D] {
        out.extend(s.handle(0, RelayInput::PeerUp { peer }));
    }
    assert_eq!(set_push(&out), vec![(A, true), (B, true)]);
    // D delivers a block first: it ranks first, and B (lowest among the tied) leaves.
    deliver_first(&mut s, PUSHER_REVIEW_MS, D, 1);
    assert_eq!(s.pushers().len(), 2);
    assert!(s.pushers().contains(&D));
    let before = s.pushers();
    let gone = before[0];
    // A free slot is filled at once, before the next review.
    let out = s.handle(PUSHER_REVIEW_MS + 1, RelayInput::PeerDown { peer: gone });
    let changes = set_push(&out);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(changes[0].1, "a new pusher, no one told to stop");
    assert!(!before.contains(&changes[0].0));
    assert_eq!(s.pushers().len(), 2);
    assert!(!s.pushers().contains(&gone));
    // Down to one peer, then none.
    for peer in [A, B, C, D] {
        s.handle(3, RelayInput::PeerDown { peer });
    }
    assert!(s.pushers().is_empty());
}

#[test]
fn the_chosen_peer_down_moves_the_choice_to_another() {
    let mut s = machine(config(BlockRelay::HighBandwidth, TxRelay::Push), &[A, B, C]);
    deliver_first(&mut s, PUSHER_REVIEW_MS, C, 1);
    deliver_first(&mut s, 2 * PUSHER_REVIEW_MS, B, 2);
    assert_eq!(s.pushers(), vec![B]);
    let out = s.handle(2 * PUSHER_REVIEW_MS + 1, RelayInput::PeerDown { peer: B });
    // C delivered more recently than A ever did.
    assert_eq!(set_push(&out), vec![(C, true)]);
    assert_eq!(s.pushers(), vec![C]);
}

#[test]
fn push_and_announce_modes_never_ask_for_pushes() {
    for mode in [BlockRelay::Push, BlockRelay::Announce] {
        let mut s = RelayState::new(config(mode, TxRelay::Push), 0);
        let mut out = Vec::new();
        for peer in [A, B, C] {
            out.extend(s.handle(0, RelayInput::PeerUp { peer }));
        }
        for n in 0..5 {
            out.extend(deliver_first(&mut s, n, if n < 2 { B } else { C }, n));
        }
        out.extend(s.handle(10, RelayInput::PeerDown { peer: A }));
        out.extend(s.handle(10, RelayInput::PeerDown { peer: C }));
        assert!(set_push(&out).is_empty(), "{mode:?}: {out:?}");
        assert!(s.pushers().is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// 7. New tip
// ---------------------------------------------------------------------------------------------

#[test]
fn a_new_tip_is_announced_to_peers_that_do_not_know_it() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Push), &[A, B, C, D]);
    s.handle(0, announced(A, block(1)));
    s.handle(
        0,
        RelayInput::Served {
            peer: B,
            id: block(1),
        },
    );
    let out = s.handle(
        1,
        RelayInput::NewTip {
            hash: block(1).hash,
        },
    );
    let mut got = sends(&out);
    got.sort_by_key(|g| (g.0, g.1));
    assert_eq!(
        got,
        vec![
            (C, block(1), Delivery::Announce),
            (D, block(1), Delivery::Announce)
        ]
    );
    assert_eq!(of(&s.counters().announcements, ItemKind::Block), 2);
    // Once only.
    assert!(
        sends(&s.handle(
            2,
            RelayInput::NewTip {
                hash: block(1).hash
            }
        ))
        .is_empty()
    );
    // A tip we relayed already is not announced again.
    s.handle(3, received(A, block(2)));
    s.handle(3, relay_ok(block(2), 1_000));
    assert!(
        sends(&s.handle(
            4,
            RelayInput::NewTip {
                hash: block(2).hash
            }
        ))
        .is_empty()
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Bounded memory
// ---------------------------------------------------------------------------------------------

#[test]
fn a_flood_of_distinct_items_stays_within_the_capacities() {
    let mut cfg = config(BlockRelay::HighBandwidth, TxRelay::Announce);
    cfg.seen_capacity = 64;
    cfg.known_per_peer = 32;
    cfg.queue_per_peer = 16;
    let mut s = machine(cfg, &[A, B, C]);
    for n in 0..2_000u64 {
        let from = [A, B, C][(n % 3) as usize];
        let kind = ItemKind::ALL[(n % 5) as usize];
        let id = item(kind, n);
        match n % 4 {
            0 => {
                s.handle(n, received(from, id));
                s.handle(n, relay_ok(id, 500));
            }
            1 => {
                s.handle(n, announced(from, id));
            }
            2 => {
                s.handle(n, local(id, 500));
            }
            _ => {
                s.handle(n, received(from, id));
            }
        }
        assert!(s.seen_len() <= 64);
        for p in s.peers.values() {
            assert!(p.known.len() <= 32, "{}", p.known.len());
            assert!(p.queue.len() <= 16);
        }
        assert!(s.fetches.len() <= 64, "{}", s.fetches.len());
    }
    assert_eq!(s.seen_len(), 64);
    // The oldest are forgotten, the newest remembered.
    assert!(!s.has_seen(&item(ItemKind::Block, 0)));
    assert!(s.has_seen(&item(ItemKind::ALL[(1_999 % 5) as usize], 1_999)));
}

#[test]
fn a_forgotten_item_is_checked_again() {
    let mut cfg = config(BlockRelay::Push, TxRelay::Push);
    cfg.seen_capacity = 2;
    let mut s = machine(cfg, &[A, B]);
    s.handle(0, received(A, tx(1)));
    s.handle(0, received(A, tx(2)));
    s.handle(0, received(A, tx(3)));
    assert!(!s.has_seen(&tx(1)));
    let out = s.handle(1, received(B, tx(1)));
    assert_eq!(checks(&out), vec![(tx(1), B)]);
}

// ---------------------------------------------------------------------------------------------
// 9. Random sequences
// ---------------------------------------------------------------------------------------------

const PEERS: [PeerId; 4] = [A, B, C, D];

fn arb_kind() -> impl Strategy<Value = ItemKind> {
    prop::sample::select(ItemKind::ALL.to_vec())
}

fn arb_item() -> impl Strategy<Value = ItemId> {
    (arb_kind(), 0u64..6).prop_map(|(k, n)| item(k, n))
}

fn arb_peer() -> impl Strategy<Value = PeerId> {
    prop::sample::select(PEERS.to_vec())
}

fn arb_verdict() -> impl Strategy<Value = Verdict> {
    prop_oneof![
        4 => (1u32..50_000).prop_map(|bytes| Verdict::Relay { bytes }),
        1 => Just(Verdict::Ignore),
        1 => Just(Verdict::Invalid(Misbehavior::InvalidBlock)),
    ]
}

fn arb_input() -> impl Strategy<Value = RelayInput> {
    prop_oneof![
        1 => arb_peer().prop_map(|peer| RelayInput::PeerUp { peer }),
        1 => arb_peer().prop_map(|peer| RelayInput::PeerDown { peer }),
        4 => (arb_peer(), arb_item()).prop_map(|(peer, id)| RelayInput::Received { peer, id }),
        3 => (arb_peer(), arb_item()).prop_map(|(peer, id)| RelayInput::Announced { peer, id }),
        4 => (arb_item(), arb_verdict()).prop_map(|(id, verdict)| RelayInput::Checked { id, verdict }),
        2 => (arb_item(), 1u32..50_000, prop::bool::weighted(0.2))
            .prop_map(|(id, bytes, again)| RelayInput::Local { id, bytes, again }),
        1 => (0u64..6).prop_map(|n| RelayInput::NewTip { hash: hash(n) }),
        1 => (0u64..6).prop_map(|n| RelayInput::BodyInvalid { hash: hash(n) }),
        1 => (arb_peer(), any::<bool>()).prop_map(|(peer, push)| RelayInput::PeerWantsPush { peer, push }),
        1 => (arb_peer(), arb_item()).prop_map(|(peer, id)| RelayInput::Served { peer, id }),
        2 => Just(RelayInput::Tick),
    ]
}

fn arb_config() -> impl Strategy<Value = RelayConfig> {
    (
        prop::sample::select(vec![
            BlockRelay::Push,
            BlockRelay::Announce,
            BlockRelay::HighBandwidth,
        ]),
        0usize..3,
        prop::sample::select(vec![TxRelay::Push, TxRelay::Announce]),
        1usize..6,
        prop::sample::select(vec![0u64, 20_000, 200_000]),
        prop::sample::select(vec![0u64, 50_000]),
        0u64..300,
        1u64..3_000,
    )
        .prop_map(
            |(blocks, hb, txs, queue, peer_rate, rate, batch, timeout)| RelayConfig {
                blocks,
                high_bandwidth_peers: hb,
                compact_blocks: true,
                txs,
                // Large enough that nothing is forgotten: the no-resend invariant needs memory.
                seen_capacity: 1_000,
                known_per_peer: 1_000,
                queue_per_peer: queue,
                peer_upload_bytes_per_sec: peer_rate,
                upload_bytes_per_sec: rate,
                tx_batch_ms: batch,
                fetch_timeout_ms: timeout,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_inputs_keep_the_invariants(
        cfg in arb_config(),
        steps in prop::collection::vec((0u64..400, arb_input()), 1..150),
    ) {
        let mut s = RelayState::new(cfg.clone(), 0);
        let mut now = 0u64;
        // Per session: what a peer sent or announced to us, and what we sent it.
        let mut up: BTreeSet<PeerId> = BTreeSet::new();
        let mut from: BTreeMap<PeerId, BTreeSet<ItemId>> = BTreeMap::new();
        let mut to: BTreeMap<PeerId, BTreeSet<ItemId>> = BTreeMap::new();
        let mut pushers: BTreeSet<PeerId> = BTreeSet::new();
        for (dt, input) in steps {
            now += dt;
            match &input {
                RelayInput::PeerUp { peer } | RelayInput::PeerDown { peer } => {
                    from.remove(peer);
                    to.remove(peer);
                }
                RelayInput::Received { peer, id } | RelayInput::Announced { peer, id }
                    if up.contains(peer) =>
                {
                    from.entry(*peer).or_default().insert(*id);
                }
                RelayInput::Local { id, again: true, .. } => {
                    for set in from.values_mut().chain(to.values_mut()) {
                        set.remove(id);
                    }
                }
                _ => {}
            }
            match &input {
                RelayInput::PeerUp { peer } => { up.insert(*peer); }
                RelayInput::PeerDown { peer } => { up.remove(peer); }
                _ => {}
            }
            let out = s.handle(now, input.clone());
            for action in &out {
                let sent: Vec<(PeerId, ItemId)> = match action {
                    RelayAction::Send { peer, id, .. } => vec![(*peer, *id)],
                    RelayAction::SendTxs { peer, ids, .. } => {
                        prop_assert!(!ids.is_empty());
                        let limit = match cfg.txs {
                            TxRelay::Push => MAX_TXS_PER_MESSAGE,
                            TxRelay::Announce => MAX_TX_IDS_PER_MESSAGE,
                        };
                        prop_assert!(ids.len() <= limit);
                        ids.iter().map(|h| (*peer, ItemId::new(ItemKind::Tx, *h))).collect()
                    }
                    RelayAction::FetchTxs { ids, .. } => {
                        prop_assert!(!ids.is_empty() && ids.len() <= MAX_TX_IDS_PER_MESSAGE);
                        vec![]
                    }
                    RelayAction::SetPush { peer, push } => {
                        prop_assert_eq!(cfg.blocks, BlockRelay::HighBandwidth);
                        if *push {
                            prop_assert!(pushers.insert(*peer), "asked twice: {:?}", action);
                        } else {
                            prop_assert!(pushers.remove(peer), "stopped twice: {:?}", action);
                        }
                        vec![]
                    }
                    _ => vec![],
                };
                for (peer, id) in sent {
                    prop_assert!(up.contains(&peer), "sent to a peer that is down: {:?}", action);
                    prop_assert!(
                        !from.get(&peer).is_some_and(|f| f.contains(&id)),
                        "sent {:?} back to {:?}, which gave it to us", id, peer
                    );
                    prop_assert!(
                        to.entry(peer).or_default().insert(id),
                        "sent {:?} twice to {:?}", id, peer
                    );
                    prop_assert!(s.peer_knows(peer, &id));
                }
            }
            pushers.retain(|p| up.contains(p));
            let mut want: Vec<PeerId> = pushers.iter().copied().collect();
            want.sort();
            prop_assert_eq!(s.pushers(), want);
            if cfg.blocks == BlockRelay::HighBandwidth {
                prop_assert_eq!(s.pushers().len(), cfg.high_bandwidth_peers.min(up.len()));
            }
            prop_assert_eq!(s.peer_count(), up.len());
            prop_assert!(s.seen_len() <= cfg.seen_capacity);
            for p in s.peers.values() {
                prop_assert!(p.queue.len() <= cfg.queue_per_peer);
            }
        }
        // Time lets everything out (a burst at a time), to peers that lack it.
        for _ in 0..20 {
            now += 1_000_000;
            for action in s.handle(now, RelayInput::Tick) {
                if let RelayAction::Send { peer, id, .. } = action {
                    prop_assert!(to.entry(peer).or_default().insert(id), "sent {:?} twice", id);
                }
            }
        }
        prop_assert_eq!(s.queued(), 0);
    }
}

#[test]
fn an_item_refused_for_now_is_checked_again_from_the_next_sender() {
    let mut s = machine(config(BlockRelay::Push, TxRelay::Push), &[A, B, C]);
    s.handle(10, received(A, tx(1)));
    let out = s.handle(
        11,
        RelayInput::Checked {
            id: tx(1),
            verdict: Verdict::Later,
        },
    );
    assert!(out.is_empty(), "{out:?}");
    assert!(!s.has_seen(&tx(1)));
    // Another peer's copy (its nonce gap now filled) is checked and relayed, not to A.
    let out = s.handle(20, received(B, tx(1)));
    assert!(
        out.contains(&RelayAction::Check { id: tx(1), from: B }),
        "{out:?}"
    );
    s.handle(21, relay_ok(tx(1), 150));
    let out = s.handle(1_000, RelayInput::Tick);
    let to: Vec<PeerId> = out
        .iter()
        .filter_map(|a| match a {
            RelayAction::SendTxs { peer, ids, .. } if ids.contains(&tx(1).hash) => Some(*peer),
            _ => None,
        })
        .collect();
    assert_eq!(to, vec![C]);
}
