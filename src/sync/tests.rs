use super::*;
use crate::u256::U256;

fn h(n: u64) -> Hash {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&n.to_be_bytes());
    b[31] = 1;
    Hash(b)
}

fn w(n: u64) -> Work {
    Work::from_u256(U256::from_u64(n))
}

fn at(height: Height) -> BlockRef {
    BlockRef {
        hash: h(height),
        height,
        work: w(height),
    }
}

/// Tip at `tip`, best header at `best` (work == height), the window above the tip missing.
fn view(tip: Height, best: Height, window: usize) -> SyncView {
    let missing = (tip + 1..=best).take(window).map(|n| (h(n), n)).collect();
    SyncView {
        tip: at(tip),
        best_header: at(best),
        missing,
    }
}

fn small() -> SyncConfig {
    SyncConfig {
        window: 16,
        per_peer_in_flight: 4,
        request_batch: 2,
        ..SyncConfig::default()
    }
}

fn p(n: u64) -> PeerId {
    PeerId(n)
}

/// A state at `tip` with headers to `best` and the given peers (id, claimed height = work).
fn state(config: SyncConfig, tip: Height, best: Height, peers: &[(u64, u64)]) -> SyncState {
    let window = config.window;
    let mut s = SyncState::new(config, 0);
    s.handle(0, SyncInput::View(view(tip, best, window)));
    for &(id, height) in peers {
        connect(&mut s, 0, id, height);
    }
    s
}

fn connect(s: &mut SyncState, now: u64, id: u64, height: u64) -> Vec<SyncAction> {
    s.handle(
        now,
        SyncInput::PeerConnected {
            peer: p(id),
            work: w(height),
            height,
        },
    )
}

fn imported(
    s: &mut SyncState,
    now: u64,
    id: u64,
    report: HeadersReport,
    n: usize,
) -> Vec<SyncAction> {
    s.handle(
        now,
        SyncInput::HeadersImported {
            peer: p(id),
            report,
            batch_len: n,
        },
    )
}

fn stored(height: Height, count: usize) -> HeadersReport {
    HeadersReport::Stored {
        last: at(height),
        count,
    }
}

fn got(s: &mut SyncState, now: u64, id: u64, n: u64) -> Vec<SyncAction> {
    s.handle(
        now,
        SyncInput::BlockReceived {
            peer: p(id),
            hash: h(n),
        },
    )
}

fn header_reqs(actions: &[SyncAction]) -> Vec<(PeerId, Option<Hash>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            SyncAction::RequestHeaders { peer, after } => Some((*peer, *after)),
            _ => None,
        })
        .collect()
}

fn block_reqs(actions: &[SyncAction]) -> Vec<(PeerId, Vec<Hash>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            SyncAction::RequestBlocks { peer, hashes } => Some((*peer, hashes.clone())),
            _ => None,
        })
        .collect()
}

fn requested_from(actions: &[SyncAction], id: u64) -> Vec<Hash> {
    block_reqs(actions)
        .into_iter()
        .filter(|(peer, _)| *peer == p(id))
        .flat_map(|(_, hashes)| hashes)
        .collect()
}

fn penalty(peer: u64, what: Misbehavior) -> SyncAction {
    SyncAction::Penalize {
        peer: p(peer),
        what,
    }
}

fn imports(actions: &[SyncAction]) -> Vec<(Vec<Hash>, bool)> {
    actions
        .iter()
        .filter_map(|a| match a {
            SyncAction::Import { hashes, batch } => Some((hashes.clone(), *batch)),
            _ => None,
        })
        .collect()
}

fn hs(range: std::ops::RangeInclusive<u64>) -> Vec<Hash> {
    range.map(h).collect()
}

#[test]
fn ibd_follows_claimed_work_against_our_best_header() {
    let mut s = state(small(), 10, 10, &[]);
    assert!(connect(&mut s, 0, 1, 10).is_empty());
    assert!(connect(&mut s, 0, 2, 5).is_empty());
    let st = s.status(0);
    assert!(!st.in_ibd);
    assert_eq!(
        (st.phase, st.permille, st.target_height),
        (SyncPhase::Synced, 1000, 10)
    );
    let out = s.handle(
        1,
        SyncInput::PeerAnnounced {
            peer: p(2),
            work: w(50),
            height: 50,
        },
    );
    assert_eq!(header_reqs(&out), vec![(p(2), None)]);
    let st = s.status(1);
    assert!(st.in_ibd);
    assert_eq!(
        (st.phase, st.target_height, st.permille),
        (SyncPhase::Headers, 50, 200)
    );
    // The tip far behind our own headers is IBD too, even when no peer claims more.
    let s = state(small(), 0, 100, &[(1, 100)]);
    assert!(s.status(0).in_ibd);
    assert_eq!(s.status(0).phase, SyncPhase::Blocks);
    let s = state(small(), 90, 100, &[(1, 100)]);
    assert!(!s.status(0).in_ibd);
}

#[test]
fn one_headers_request_to_the_most_work_peer_and_full_batches_continue() {
    let mut s = state(small(), 0, 0, &[]);
    let mut out = connect(&mut s, 0, 1, 5_000);
    out.extend(connect(&mut s, 0, 2, 8_000));
    out.extend(connect(&mut s, 0, 3, 6_000));
    assert_eq!(header_reqs(&out), vec![(p(1), None)]);
    // Only one in flight node-wide: the better peer waits for the next turn.
    assert!(s.expects_headers(p(1)) && !s.expects_headers(p(2)));
    assert!(
        s.handle(
            1,
            SyncInput::HeadersReceived {
                peer: p(1),
                count: 2000
            }
        )
        .is_empty()
    );
    assert!(!s.expects_headers(p(1)));
    let out = imported(&mut s, 2, 1, stored(2_000, 2_000), 2_000);
    // The next request continues after the batch (the view may not show it yet).
    assert_eq!(header_reqs(&out), vec![(p(1), Some(h(2_000)))]);
    let pending = HeadersReport::Pending {
        last: at(4_000),
        count: 2_000,
    };
    let out = imported(&mut s, 3, 1, pending, 2_000);
    assert_eq!(header_reqs(&out), vec![(p(1), Some(h(4_000)))]);
    // Peer 1 shows its whole claim: no penalty, and the most-work peer is next.
    let out = imported(&mut s, 4, 1, stored(5_000, 1_000), 1_000);
    assert_eq!(header_reqs(&out), vec![(p(2), None)]);
    assert!(!out.iter().any(|a| matches!(a, SyncAction::Penalize { .. })));
    s.handle(5, SyncInput::View(view(0, 5_000, 16)));
    let out = imported(&mut s, 6, 2, stored(8_000, 3_000), 2_000);
    assert_eq!(header_reqs(&out), vec![(p(2), Some(h(8_000)))]);
    s.handle(7, SyncInput::View(view(0, 8_000, 16)));
    let out = imported(&mut s, 8, 2, stored(8_000, 0), 0);
    // Peer 3's claim (6000) is below our best header now: nobody left to ask.
    assert!(header_reqs(&out).is_empty());
    assert_eq!(s.status(8).phase, SyncPhase::Blocks);
    assert_eq!(s.peer_stats()[0].1.headers_received, 2_000);
}

#[test]
fn a_short_batch_below_the_claim_is_unproven_work() {
    let mut s = state(small(), 10, 10, &[(1, 100), (2, 90)]);
    let out = imported(&mut s, 1, 1, stored(70, 60), 60);
    assert_eq!(out[0], penalty(1, Misbehavior::UnprovenWork));
    assert_eq!(header_reqs(&out), vec![(p(2), None)]);
    // Nothing new counts as our best header's work (10 < 90).
    let out = imported(&mut s, 2, 2, stored(10, 0), 0);
    assert_eq!(out, vec![penalty(2, Misbehavior::UnprovenWork)]);
    // Neither is believed again, whatever they announce.
    let out = s.handle(
        3,
        SyncInput::PeerAnnounced {
            peer: p(1),
            work: w(500),
            height: 500,
        },
    );
    assert!(header_reqs(&out).is_empty());
    assert!(!s.status(3).in_ibd);
    // A pending (not more work) short batch below the claim is the same.
    let mut s = state(small(), 10, 10, &[(1, 100)]);
    let pending = HeadersReport::Pending {
        last: at(9),
        count: 5,
    };
    let out = imported(&mut s, 1, 1, pending, 5);
    assert_eq!(out, vec![penalty(1, Misbehavior::UnprovenWork)]);
}

#[test]
fn headers_timeout_penalizes_and_switches_peer() {
    let mut s = state(small(), 0, 0, &[(1, 100), (2, 90)]);
    assert!(s.expects_headers(p(1)));
    assert!(header_reqs(&s.handle(29_999, SyncInput::Tick)).is_empty());
    let out = s.handle(30_000, SyncInput::Tick);
    assert!(out.contains(&penalty(1, Misbehavior::Timeout)));
    assert_eq!(header_reqs(&out), vec![(p(2), None)]);
    // Its late answer is dropped quietly once; a second unasked one is penalized.
    assert!(!s.expects_headers(p(1)));
    let late = SyncInput::HeadersReceived {
        peer: p(1),
        count: 5,
    };
    assert!(s.handle(30_001, late.clone()).is_empty());
    assert_eq!(
        s.handle(30_002, late),
        vec![penalty(1, Misbehavior::UnexpectedMessage)]
    );
    // Once answered, verification may take its time.
    s.handle(
        30_003,
        SyncInput::HeadersReceived {
            peer: p(2),
            count: 5,
        },
    );
    let out = s.handle(90_000, SyncInput::Tick);
    assert!(!out.contains(&penalty(2, Misbehavior::Timeout)));
}

#[test]
fn unasked_headers_are_penalized() {
    let mut s = state(small(), 10, 10, &[(1, 10)]);
    assert!(!s.expects_headers(p(1)));
    let out = s.handle(
        1,
        SyncInput::HeadersReceived {
            peer: p(1),
            count: 1,
        },
    );
    assert_eq!(out, vec![penalty(1, Misbehavior::UnexpectedMessage)]);
    // An import report nobody asked for changes nothing.
    assert!(imported(&mut s, 2, 1, stored(50, 40), 40).is_empty());
}

#[test]
fn bad_headers_are_penalized_by_kind() {
    let mut s = state(small(), 0, 0, &[(1, 100), (2, 90), (3, 80)]);
    let out = imported(&mut s, 1, 1, HeadersReport::Invalid, 10);
    assert_eq!(out[0], penalty(1, Misbehavior::InvalidBlock));
    assert_eq!(header_reqs(&out), vec![(p(2), None)]);
    let out = imported(&mut s, 2, 2, HeadersReport::NotConnecting, 10);
    assert_eq!(out[0], penalty(2, Misbehavior::NonConnectingHeaders));
    // The non-connecting peer is still believed but tried after the others.
    assert_eq!(header_reqs(&out), vec![(p(3), None)]);
    let out = imported(&mut s, 3, 3, HeadersReport::TooManyPending, 2_000);
    assert_eq!(out[0], penalty(3, Misbehavior::UnprovenWork));
    assert_eq!(header_reqs(&out), vec![(p(2), None)]);
    let out = imported(&mut s, 4, 2, HeadersReport::NotConnecting, 10);
    assert_eq!(header_reqs(&out), vec![(p(2), None)]);
}

#[test]
fn full_header_storage_pauses_headers_until_the_gap_halves() {
    let mut s = state(small(), 0, 1_000, &[(1, 5_000), (2, 5_000)]);
    assert!(s.expects_headers(p(1)));
    let out = imported(&mut s, 1, 1, HeadersReport::Full, 2_000);
    assert!(!out.iter().any(|a| matches!(a, SyncAction::Penalize { .. })));
    assert!(header_reqs(&out).is_empty());
    assert!(header_reqs(&s.handle(60_000, SyncInput::Tick)).is_empty());
    let out = s.handle(60_001, SyncInput::View(view(400, 1_000, 16)));
    assert!(header_reqs(&out).is_empty());
    let out = s.handle(60_002, SyncInput::View(view(501, 1_000, 16)));
    assert_eq!(header_reqs(&out), vec![(p(1), None)]);
}

#[test]
fn bodies_spread_over_three_peers_in_batches() {
    let mut s = SyncState::new(SyncConfig::default(), 0);
    for id in 1..=3 {
        assert!(connect(&mut s, 0, id, 2_000).is_empty());
    }
    let out = s.handle(0, SyncInput::View(view(0, 2_000, 1_024)));
    assert!(header_reqs(&out).is_empty());
    let reqs = block_reqs(&out);
    assert!(reqs.iter().all(|(_, hashes)| hashes.len() <= 128));
    let mut all: Vec<Hash> = Vec::new();
    for id in 1..=3 {
        let mine = requested_from(&out, id);
        assert_eq!(mine.len(), 256, "peer {id}");
        all.extend(mine);
    }
    assert_eq!(s.status(0).in_flight, 768);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 768);
    // The lowest heights go first: 1..=768 are exactly the ones asked for.
    assert_eq!(all, {
        let mut v = hs(1..=768);
        v.sort();
        v
    });
    // Round robin, one chunk per peer per round.
    let order: Vec<PeerId> = reqs.iter().map(|(peer, _)| *peer).collect();
    assert_eq!(order, [1, 2, 3, 1, 2, 3].map(p));
    assert_eq!(reqs[0], (p(1), hs(1..=128)));
    assert_eq!(reqs[1], (p(2), hs(129..=256)));
    assert_eq!(reqs[5], (p(3), hs(641..=768)));
    // A peer joining later gets the rest of the window.
    let out = connect(&mut s, 1, 4, 2_000);
    assert_eq!(requested_from(&out, 4), hs(769..=1_024));
}

#[test]
fn a_peer_is_refilled_when_half_empty() {
    let mut s = state(small(), 0, 100, &[]);
    let out = connect(&mut s, 0, 1, 100);
    assert_eq!(block_reqs(&out), vec![(p(1), hs(1..=2)), (p(1), hs(3..=4))]);
    assert!(block_reqs(&got(&mut s, 1, 1, 1)).is_empty());
    let out = got(&mut s, 2, 1, 2);
    assert_eq!(block_reqs(&out), vec![(p(1), hs(5..=6))]);
    assert_eq!(s.peer_stats()[0].1.in_flight, 4);
    assert_eq!(s.peer_stats()[0].1.blocks_received, 2);
}

#[test]
fn only_peers_that_have_a_block_are_asked_and_not_found_goes_elsewhere() {
    let mut s = state(small(), 0, 10, &[]);
    connect(&mut s, 0, 1, 3);
    let out = connect(&mut s, 0, 2, 10);
    assert_eq!(requested_from(&out, 2), hs(4..=7));
    let out = s.handle(
        1,
        SyncInput::NotFound {
            peer: p(2),
            hashes: vec![h(4), h(5), h(99)],
        },
    );
    // 2 has two in flight (half): it is refilled, but not with what it lacks.
    assert_eq!(requested_from(&out, 2), hs(8..=9));
    assert!(s.is_expected_block(p(2), &h(4)));
    // A third peer takes the hashes peer 2 did not have.
    let out = connect(&mut s, 2, 3, 10);
    assert_eq!(requested_from(&out, 3), vec![h(4), h(5), h(10)]);
}

#[test]
fn an_unanswered_block_request_times_out_and_goes_elsewhere() {
    let mut s = state(small(), 0, 4, &[(1, 4)]);
    assert_eq!(s.status(0).in_flight, 4);
    connect(&mut s, 1, 2, 4);
    assert!(
        s.handle(19_999, SyncInput::Tick)
            .iter()
            .all(|a| !matches!(a, SyncAction::Penalize { .. }))
    );
    let out = s.handle(20_000, SyncInput::Tick);
    assert_eq!(out[0], penalty(1, Misbehavior::Timeout));
    assert_eq!(requested_from(&out, 2), hs(1..=4));
    assert!(requested_from(&out, 1).is_empty());
}

#[test]
fn contiguous_bodies_are_imported_one_batch_at_a_time() {
    let mut s = state(small(), 0, 100, &[(1, 100)]);
    assert!(imports(&got(&mut s, 1, 1, 2)).is_empty());
    assert!(imports(&got(&mut s, 1, 1, 3)).is_empty());
    assert_eq!(imports(&got(&mut s, 2, 1, 1)), vec![(hs(1..=3), true)]);
    assert!(imports(&got(&mut s, 3, 1, 4)).is_empty());
    let results = vec![
        (h(1), BlockReport::Connected),
        (h(2), BlockReport::Connected),
        (h(3), BlockReport::Connected),
    ];
    // The connected blocks leave the window at once, so the next received one follows without
    // waiting for a fresh view, and the view does not import it twice.
    assert_eq!(
        imports(&s.handle(4, SyncInput::Imported { results })),
        vec![(vec![h(4)], true)]
    );
    let out = s.handle(5, SyncInput::View(view(3, 100, 16)));
    assert!(imports(&out).is_empty());
    // Near the best header the import is not batched.
    let mut s = state(small(), 90, 100, &[(1, 100)]);
    assert_eq!(imports(&got(&mut s, 1, 1, 91)), vec![(vec![h(91)], false)]);
    // The view arriving before the answer keeps the blocks being imported.
    let out = s.handle(2, SyncInput::View(view(91, 100, 16)));
    assert!(!out.iter().any(|a| matches!(a, SyncAction::Discard { .. })));
}

#[test]
fn max_import_bounds_one_import() {
    let config = SyncConfig {
        max_import: 3,
        ..small()
    };
    let mut s = state(config, 0, 100, &[(1, 100)]);
    for n in [2, 3, 4] {
        got(&mut s, 1, 1, n);
    }
    assert_eq!(imports(&got(&mut s, 1, 1, 1)), vec![(hs(1..=3), true)]);
}

fn stall_config() -> SyncConfig {
    SyncConfig {
        window: 4,
        per_peer_in_flight: 4,
        request_batch: 4,
        ..SyncConfig::default()
    }
}

#[test]
fn a_staller_is_dropped_and_the_stall_timeout_doubles_then_decays() {
    let mut s = state(stall_config(), 0, 100, &[(1, 100)]);
    // Alone, peer 1 is only slow: no stall while nobody else could take work.
    for t in [500, 1_000, 5_000] {
        assert!(s.handle(t, SyncInput::Tick).is_empty());
    }
    assert!(block_reqs(&connect(&mut s, 5_000, 2, 100)).is_empty());
    assert!(s.handle(5_500, SyncInput::Tick).is_empty());
    assert!(s.handle(7_499, SyncInput::Tick).is_empty());
    let out = s.handle(7_500, SyncInput::Tick);
    assert_eq!(out[0], SyncAction::Disconnect { peer: p(1) });
    assert_eq!(requested_from(&out, 2), hs(1..=4));
    assert_eq!(s.status(7_500).stall_timeout_ms, 4_000);
    assert_eq!(s.status(7_500).peers, 1);
    s.handle(7_600, SyncInput::PeerDisconnected { peer: p(1) });
    // Each connected block decays it by x0.85, never below the base.
    for n in 1..=4 {
        got(&mut s, 8_000, 2, n);
    }
    let results = (1..=4).map(|n| (h(n), BlockReport::Connected)).collect();
    s.handle(8_001, SyncInput::Imported { results });
    assert_eq!(s.status(8_001).stall_timeout_ms, 2_087);
    let results = (5..=6).map(|n| (h(n), BlockReport::Connected)).collect();
    s.handle(8_002, SyncInput::Imported { results });
    assert_eq!(s.status(8_002).stall_timeout_ms, 2_000);
}

#[test]
fn the_stall_timeout_is_capped() {
    let config = SyncConfig {
        block_timeout_ms: u64::MAX,
        ..stall_config()
    };
    let mut s = state(config, 0, 100, &[(1, 100)]);
    let mut now = 0;
    let mut timeouts = Vec::new();
    for id in 1..=7 {
        // The next peer makes the current holder a staller.
        connect(&mut s, now, id + 1, 100);
        s.handle(now, SyncInput::Tick);
        let timeout = s.status(now).stall_timeout_ms;
        timeouts.push(timeout);
        let stalled = |out: &[SyncAction]| out.contains(&SyncAction::Disconnect { peer: p(id) });
        assert!(!stalled(&s.handle(now + timeout - 1, SyncInput::Tick)));
        now += timeout;
        let out = s.handle(now, SyncInput::Tick);
        assert!(stalled(&out), "{id}: {out:?}");
        assert_eq!(requested_from(&out, id + 1), hs(1..=4));
    }
    assert_eq!(timeouts, [2, 4, 8, 16, 32, 64, 64].map(|s| s * 1_000));
    assert_eq!(s.status(now).stall_timeout_ms, 64_000);
}

#[test]
fn a_bad_body_bans_its_sender_and_is_fetched_elsewhere() {
    let mut s = state(small(), 0, 2, &[(1, 2)]);
    got(&mut s, 1, 1, 1);
    connect(&mut s, 1, 2, 2);
    let results = vec![(h(1), BlockReport::BodyMismatch)];
    let out = s.handle(2, SyncInput::Imported { results });
    assert_eq!(
        out[..3],
        [
            penalty(1, Misbehavior::InvalidBlock),
            SyncAction::Discard { hashes: vec![h(1)] },
            SyncAction::RefreshView
        ]
    );
    assert_eq!(block_reqs(&out), vec![(p(2), vec![h(1)])]);
    // A state-rule failure costs the sender too; a local failure costs nobody.
    got(&mut s, 3, 2, 1);
    let out = s.handle(
        4,
        SyncInput::Imported {
            results: vec![(h(1), BlockReport::Invalid)],
        },
    );
    assert_eq!(out[0], penalty(2, Misbehavior::InvalidBlock));
    assert!(out.contains(&SyncAction::RefreshView));
    let mut s = state(small(), 0, 2, &[(1, 2)]);
    got(&mut s, 1, 1, 1);
    let out = s.handle(
        2,
        SyncInput::Imported {
            results: vec![(h(1), BlockReport::Failed)],
        },
    );
    assert_eq!(
        out[..2],
        [
            SyncAction::Discard { hashes: vec![h(1)] },
            SyncAction::RefreshView
        ]
    );
    assert_eq!(block_reqs(&out), vec![(p(1), vec![h(1)])]);
}

#[test]
fn a_disconnected_peers_requests_return_to_the_pool_at_once() {
    let mut s = state(small(), 0, 8, &[(1, 8), (2, 8)]);
    assert_eq!(s.status(0).in_flight, 8);
    let out = s.handle(1, SyncInput::PeerDisconnected { peer: p(1) });
    // Peer 2 is full (4 in flight): the blocks wait in the pool until it has room.
    assert!(block_reqs(&out).is_empty());
    assert_eq!(s.status(1).in_flight, 4);
    got(&mut s, 2, 2, 5);
    let out = got(&mut s, 2, 2, 6);
    assert_eq!(requested_from(&out, 2), vec![h(1), h(2)]);
    let out = connect(&mut s, 3, 3, 8);
    assert_eq!(requested_from(&out, 3), vec![h(3), h(4)]);
}

#[test]
fn synced_nodes_poll_one_peer_per_interval_round_robin() {
    let mut s = state(small(), 10, 10, &[(1, 10), (2, 10), (3, 5)]);
    assert!(s.handle(9_999, SyncInput::Tick).is_empty());
    let mut polled = Vec::new();
    for i in 1..=4u64 {
        let out = s.handle(i * 10_000, SyncInput::Tick);
        let reqs = header_reqs(&out);
        assert_eq!(reqs.len(), 1);
        polled.push(reqs[0].0);
        let out = imported(&mut s, i * 10_000 + 1, reqs[0].0.0, stored(10, 0), 0);
        assert!(out.is_empty(), "{out:?}");
    }
    assert_eq!(polled, vec![p(1), p(2), p(3), p(1)]);
    // A poll that finds a long new chain keeps asking the same peer.
    let out = s.handle(50_000, SyncInput::Tick);
    assert_eq!(header_reqs(&out), vec![(p(2), None)]);
    let out = imported(&mut s, 50_001, 2, stored(2_010, 2_000), 2_000);
    assert_eq!(header_reqs(&out), vec![(p(2), Some(h(2_010)))]);
}

#[test]
fn no_progress_warns_once_per_interval() {
    let mut s = state(small(), 0, 100, &[]);
    let warns = |out: &[SyncAction]| {
        out.iter()
            .filter(|a| matches!(a, SyncAction::Warn(_)))
            .count()
    };
    let mut total = 0;
    for t in (0..=299_500).step_by(500) {
        total += warns(&s.handle(t, SyncInput::Tick));
    }
    assert_eq!(total, 0);
    let out = s.handle(300_000, SyncInput::Tick);
    assert!(out.contains(&SyncAction::Warn(SyncWarning::NoProgress {
        for_ms: 300_000,
        peers_height: 100,
        tip_height: 0
    })));
    for t in (300_500..=599_500).step_by(500) {
        total += warns(&s.handle(t, SyncInput::Tick));
    }
    assert_eq!(total, 0);
    assert_eq!(warns(&s.handle(600_000, SyncInput::Tick)), 1);
    // The tip moving restarts the clock; nobody ahead means no warning at all.
    s.handle(600_001, SyncInput::View(view(100, 100, 16)));
    assert_eq!(s.status(900_000).no_progress_ms, 0);
    assert_eq!(warns(&s.handle(900_000, SyncInput::Tick)), 0);
}

#[test]
fn unsolicited_blocks_are_rate_limited_and_window_blocks_taken_from_anyone() {
    let mut s = state(small(), 0, 8, &[(1, 8), (2, 8)]);
    let mut out = Vec::new();
    for n in 500..504 {
        out.extend(got(&mut s, 10, 1, n));
    }
    let expected: Vec<SyncAction> = (500..503)
        .map(|n| SyncAction::ImportUnsolicited {
            peer: p(1),
            hash: h(n),
        })
        .chain([SyncAction::Discard {
            hashes: vec![h(503)],
        }])
        .collect();
    assert_eq!(out, expected);
    assert_eq!(
        got(&mut s, 1_010, 1, 504),
        vec![SyncAction::ImportUnsolicited {
            peer: p(1),
            hash: h(504)
        }]
    );
    // Block 5 is in flight from peer 2, but peer 1's copy is taken too.
    assert!(s.is_expected_block(p(1), &h(5)));
    assert!(!s.is_expected_block(p(9), &h(5)));
    assert!(!s.is_expected_block(p(1), &h(500)));
    got(&mut s, 1_011, 1, 5);
    assert!(!s.is_expected_block(p(2), &h(5)));
    assert_eq!(s.peer_stats()[1].1.in_flight, 3);
    // Peer 2's late copy is ignored.
    assert!(got(&mut s, 1_012, 2, 5).is_empty());
}

#[test]
fn bodies_off_the_best_chain_are_discarded() {
    let mut s = state(small(), 0, 8, &[(1, 8)]);
    got(&mut s, 1, 1, 3);
    let mut fork = view(0, 8, 16);
    fork.missing.retain(|(_, n)| *n < 3);
    let out = s.handle(2, SyncInput::View(fork));
    assert_eq!(out[0], SyncAction::Discard { hashes: vec![h(3)] });
    assert!(s.received.is_empty());
    assert_eq!(s.in_flight.len(), 2);
}

#[test]
fn no_view_asks_for_one() {
    let mut s = SyncState::new(SyncConfig::default(), 0);
    assert!(connect(&mut s, 0, 1, 100).is_empty());
    assert_eq!(
        s.handle(500, SyncInput::Tick),
        vec![SyncAction::RefreshView]
    );
    assert_eq!(s.status(500).phase, SyncPhase::Idle);
}

/// A scripted catch-up with peers that deliver, miss and drop out.
fn scenario(order: &[u64]) -> (Vec<SyncAction>, usize, usize) {
    let config = SyncConfig {
        window: 64,
        per_peer_in_flight: 16,
        request_batch: 8,
        ..SyncConfig::default()
    };
    let mut s = SyncState::new(config, 0);
    for &id in order {
        assert!(connect(&mut s, 0, id, 500).is_empty());
    }
    let mut log = s.handle(0, SyncInput::View(view(0, 500, 64)));
    let mut trace = log.clone();
    let (mut tip, mut max_flight, mut max_held) = (0, 0, 0);
    for step in 1..400u64 {
        let now = step * 250;
        let mut out = s.handle(now, SyncInput::Tick);
        for (peer, hashes) in block_reqs(&log) {
            for hash in hashes {
                let input = if peer.0 == 3 && hash.0[7] % 5 == 0 {
                    SyncInput::NotFound {
                        peer,
                        hashes: vec![hash],
                    }
                } else {
                    SyncInput::BlockReceived { peer, hash }
                };
                if peer.0 != 4 || step < 3 {
                    out.extend(s.handle(now, input));
                }
            }
        }
        let mut seen = 0;
        while let Some((hashes, _)) = imports(&out).get(seen).cloned() {
            seen += 1;
            let results = hashes
                .iter()
                .map(|x| (*x, BlockReport::Connected))
                .collect();
            out.extend(s.handle(now, SyncInput::Imported { results }));
            tip += hashes.len() as u64;
            out.extend(s.handle(now, SyncInput::View(view(tip, 500, 64))));
        }
        max_flight = max_flight.max(s.in_flight.len());
        max_held = max_held.max(s.received.len());
        trace.extend(out.iter().cloned());
        log = out;
    }
    assert_eq!(tip, 500, "the scenario catches up");
    (trace, max_flight, max_held)
}

#[test]
fn actions_are_deterministic_and_bounded_by_the_window() {
    let (a, flight, held) = scenario(&[1, 2, 3, 4]);
    let (b, _, _) = scenario(&[4, 3, 2, 1]);
    assert_eq!(a, b);
    assert_eq!(flight, 64);
    assert!(held <= 64, "{held}");
    // Peer 4 went silent and was dealt with; the others carried the download.
    assert!(a.iter().any(|x| matches!(x,
        SyncAction::Disconnect { peer } | SyncAction::Penalize { peer, what: Misbehavior::Timeout }
            if *peer == p(4))));
}

#[test]
fn a_peer_ahead_is_asked_for_headers_at_once_once() {
    let mut s = state(SyncConfig::default(), 10, 10, &[(1, 10), (2, 10)]);
    // Synced: no poll is due for 10 s, but a relayed block that does not connect asks now.
    assert!(header_reqs(&s.handle(100, SyncInput::Tick)).is_empty());
    let reqs = header_reqs(&s.handle(200, SyncInput::PeerAhead { peer: p(2) }));
    assert_eq!(reqs, vec![(p(2), None)]);
    // While that request is out, another hint waits for it instead of a second request.
    assert!(header_reqs(&s.handle(300, SyncInput::PeerAhead { peer: p(1) })).is_empty());
    // An unknown peer is no reason to ask anyone.
    let mut s = state(SyncConfig::default(), 10, 10, &[(1, 10)]);
    assert!(header_reqs(&s.handle(200, SyncInput::PeerAhead { peer: p(9) })).is_empty());
}
