//! Tests of the parent module.

use super::*;
use crate::p2p::rate_limit::default_limit;
use crate::wire::{Disconnect, FrameDecoder, MessageKind, encode_frame_into};

const T0: u64 = 1_700_000_000_000;
const SALT: u64 = 0x0123_4567_89ab_cdef;

fn session() -> PeerSession {
    PeerSession::new(T0, SessionConfig::default(), SALT)
}

/// The frame of `message`, as the peer's decoder yields it.
fn frame(message: &Message) -> Frame {
    let mut bytes = Vec::new();
    encode_frame_into(message, &mut bytes);
    frames(&bytes).pop().unwrap()
}

/// Every frame in `bytes` (which must be a valid frame stream).
fn frames(bytes: &[u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    FrameDecoder::new().push(bytes, &mut out).unwrap();
    out
}

fn drain(s: &mut PeerSession) -> Vec<SessionAction> {
    std::iter::from_fn(|| s.poll()).collect()
}

fn ping(nonce: u64) -> Message {
    Message::Ping(Ping { nonce })
}

fn pong(nonce: u64) -> Message {
    Message::Pong(Ping { nonce })
}

/// Runs the first ping tick and returns the nonce it sent.
fn first_ping(s: &mut PeerSession) -> u64 {
    let at = s.next_timeout_ms();
    s.on_timeout(at);
    match drain(s).as_slice() {
        [SessionAction::Send(Message::Ping(p))] => p.nonce,
        other => panic!("expected one ping, got {other:?}"),
    }
}

#[test]
fn periodic_minimum_respects_default_limits() {
    for kind in [
        MessageKind::Ping,
        MessageKind::Pong,
        MessageKind::RequestPeers,
        MessageKind::PeerList,
    ] {
        let limit = default_limit(kind);
        assert!(limit.per_second >= 1, "{kind:?}");
        assert!(
            MIN_PERIODIC_INTERVAL_MS >= 1000 / u64::from(limit.per_second),
            "{kind:?}"
        );
    }
}

#[test]
fn ping_interval_is_clamped_to_the_minimum() {
    let config = SessionConfig {
        ping_interval_ms: 10,
        idle_ms: 5_000,
    };
    let s = PeerSession::new(T0, config, SALT);
    assert_eq!(s.config().ping_interval_ms, MIN_PERIODIC_INTERVAL_MS);
    assert_eq!(s.config().idle_ms, 5_000);
    assert_eq!(s.next_timeout_ms(), T0 + MIN_PERIODIC_INTERVAL_MS);
    let zero = PeerSession::new(
        T0,
        SessionConfig {
            ping_interval_ms: 0,
            idle_ms: 0,
        },
        SALT,
    );
    assert_eq!(zero.next_timeout_ms(), T0 + MIN_PERIODIC_INTERVAL_MS);
}

#[test]
fn first_ping_goes_out_one_interval_after_opening() {
    let mut s = session();
    assert_eq!(s.next_timeout_ms(), T0 + 30_000);
    assert_eq!(s.poll(), None, "nothing to do at opening");
    // Early and spurious wake-ups do nothing.
    s.on_timeout(T0);
    s.on_timeout(T0 + 29_999);
    assert_eq!(s.poll(), None);
    assert_eq!(s.next_timeout_ms(), T0 + 30_000);
    s.on_timeout(T0 + 30_000);
    let now = T0 + 30_000;
    assert_eq!(
        drain(&mut s),
        vec![SessionAction::Send(ping(now ^ SALT.rotate_left(32)))]
    );
    assert_eq!(s.next_timeout_ms(), T0 + 60_000);
}

#[test]
fn ticks_keep_their_grid_and_skip_missed_ones() {
    let mut s = session();
    // A tick handled late keeps the schedule anchored at the opening time.
    s.on_frame(T0 + 30_500, &frame(&Message::RequestPeers));
    drain(&mut s);
    s.on_timeout(T0 + 30_700);
    assert_eq!(s.next_timeout_ms(), T0 + 60_000);
    drain(&mut s);
    // A call far behind schedule sends one ping, not one per missed tick.
    s.on_frame(T0 + 100_000, &frame(&Message::RequestPeers));
    drain(&mut s);
    s.on_timeout(T0 + 100_000);
    let sent = drain(&mut s);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(matches!(sent[0], SessionAction::Send(Message::Ping(_))));
    assert_eq!(s.next_timeout_ms(), T0 + 120_000);
    // A call exactly on a later tick moves to the one after it.
    s.on_timeout(T0 + 120_000);
    assert_eq!(s.next_timeout_ms(), T0 + 150_000);
}

#[test]
fn nonces_differ_between_sessions() {
    let mut a = PeerSession::new(T0, SessionConfig::default(), 1);
    let mut b = PeerSession::new(T0, SessionConfig::default(), 2);
    assert_ne!(first_ping(&mut a), first_ping(&mut b));
}

#[test]
fn ping_is_answered_with_the_same_nonce() {
    let mut s = session();
    s.on_frame(T0 + 5, &frame(&ping(42)));
    assert_eq!(drain(&mut s), vec![SessionAction::Send(pong(42))]);
}

#[test]
fn matching_pong_reports_latency() {
    let mut s = session();
    let nonce = first_ping(&mut s);
    s.on_frame(T0 + 30_000 + 73, &frame(&pong(nonce)));
    assert_eq!(drain(&mut s), vec![SessionAction::Latency { rtt_ms: 73 }]);
    // The ping is answered: a second pong is unexpected.
    s.on_frame(T0 + 30_100, &frame(&pong(nonce)));
    assert_eq!(
        drain(&mut s),
        vec![SessionAction::Misbehaved(Misbehavior::UnexpectedMessage)]
    );
}

#[test]
fn unmatched_pong_is_unexpected_and_keeps_the_pending_ping() {
    let mut s = session();
    // A pong before any ping.
    s.on_frame(T0 + 1, &frame(&pong(7)));
    assert_eq!(
        drain(&mut s),
        vec![SessionAction::Misbehaved(Misbehavior::UnexpectedMessage)]
    );
    let nonce = first_ping(&mut s);
    s.on_frame(T0 + 30_010, &frame(&pong(nonce.wrapping_add(1))));
    assert_eq!(
        drain(&mut s),
        vec![SessionAction::Misbehaved(Misbehavior::UnexpectedMessage)]
    );
    // The right answer still counts, timed from the ping.
    s.on_frame(T0 + 30_200, &frame(&pong(nonce)));
    assert_eq!(drain(&mut s), vec![SessionAction::Latency { rtt_ms: 200 }]);
}

#[test]
fn a_new_ping_replaces_an_unanswered_one() {
    let mut s = session();
    let first = first_ping(&mut s);
    s.on_frame(T0 + 45_000, &frame(&Message::RequestPeers));
    drain(&mut s);
    let second = first_ping(&mut s);
    assert_ne!(first, second);
    s.on_frame(T0 + 60_050, &frame(&pong(first)));
    assert_eq!(
        drain(&mut s),
        vec![SessionAction::Misbehaved(Misbehavior::UnexpectedMessage)]
    );
    s.on_frame(T0 + 60_090, &frame(&pong(second)));
    assert_eq!(drain(&mut s), vec![SessionAction::Latency { rtt_ms: 90 }]);
}

#[test]
fn silent_peer_is_dropped_at_the_first_tick_past_idle() {
    let mut s = session();
    // Silent for 30, 60, 90, 120 s: not more than the 120 s idle limit yet, so pinged.
    for k in 1..=4 {
        let at = T0 + k * 30_000;
        assert_eq!(s.next_timeout_ms(), at);
        s.on_timeout(at);
        let actions = drain(&mut s);
        assert!(
            matches!(actions.as_slice(), [SessionAction::Send(Message::Ping(_))]),
            "tick {k}: {actions:?}"
        );
    }
    s.on_timeout(T0 + 150_000);
    let end = SessionEnd::Disconnected {
        reason: DisconnectReason::Timeout,
    };
    assert_eq!(
        drain(&mut s),
        vec![
            SessionAction::Misbehaved(Misbehavior::Timeout),
            SessionAction::Close(end.clone()),
        ]
    );
    assert_eq!(end.farewell(), Some(DisconnectReason::Timeout));
    assert_eq!(end.to_string(), "disconnected: Timeout");
    assert!(s.is_closed());
    assert_eq!(s.next_timeout_ms(), u64::MAX);
}

#[test]
fn any_frame_resets_idle_even_a_rate_limited_one() {
    let mut s = PeerSession::new(
        T0,
        SessionConfig {
            ping_interval_ms: 1_000,
            idle_ms: 2_500,
        },
        SALT,
    );
    // Use up the Hello allowance so that the next Hello is refused by the limiter.
    let hello = frame(&one_hello());
    s.on_frame(T0, &hello);
    drain(&mut s);
    for k in 1..=10 {
        let at = T0 + k * 1_000;
        s.on_frame(at - 1, &hello);
        assert_eq!(
            drain(&mut s),
            vec![SessionAction::Misbehaved(Misbehavior::RateLimited)]
        );
        s.on_timeout(at);
        let actions = drain(&mut s);
        assert!(
            matches!(actions.as_slice(), [SessionAction::Send(Message::Ping(_))]),
            "tick {k}: {actions:?}"
        );
    }
    // Now silence: ticks at 11, 12 s are within 2.5 s; 13 s is past it.
    s.on_timeout(T0 + 11_000);
    s.on_timeout(T0 + 12_000);
    assert_eq!(drain(&mut s).len(), 2);
    s.on_timeout(T0 + 13_000);
    assert!(matches!(
        drain(&mut s).as_slice(),
        [
            SessionAction::Misbehaved(Misbehavior::Timeout),
            SessionAction::Close(SessionEnd::Disconnected {
                reason: DisconnectReason::Timeout
            })
        ]
    ));
}

#[test]
fn a_flood_is_rate_limited_and_the_session_goes_on() {
    let mut s = session();
    let limit = default_limit(MessageKind::Ping);
    let flood = u64::from(limit.burst) * 3;
    // Send the whole flood as one byte stream, as a peer would.
    let mut bytes = Vec::new();
    for n in 0..flood {
        encode_frame_into(&ping(n), &mut bytes);
    }
    for f in frames(&bytes) {
        s.on_frame(T0, &f);
    }
    let actions = drain(&mut s);
    let answered: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            SessionAction::Send(Message::Pong(p)) => Some(p.nonce),
            _ => None,
        })
        .collect();
    assert_eq!(answered, (0..u64::from(limit.burst)).collect::<Vec<_>>());
    let limited = actions
        .iter()
        .filter(|a| **a == SessionAction::Misbehaved(Misbehavior::RateLimited))
        .count();
    assert_eq!(limited as u64, flood - u64::from(limit.burst));
    assert_eq!(actions.len() as u64, flood, "nothing else happened");
    assert!(!s.is_closed());
    // Other message types have their own budget.
    s.on_frame(T0, &frame(&Message::RequestPeers));
    assert_eq!(
        drain(&mut s),
        vec![SessionAction::Deliver(Message::RequestPeers)]
    );
    // The bucket refills at its sustained rate.
    let refill_ms = 1000 / u64::from(limit.per_second);
    s.on_frame(T0 + refill_ms - 1, &frame(&ping(100)));
    assert_eq!(
        drain(&mut s),
        vec![SessionAction::Misbehaved(Misbehavior::RateLimited)]
    );
    s.on_frame(T0 + refill_ms, &frame(&ping(101)));
    assert_eq!(drain(&mut s), vec![SessionAction::Send(pong(101))]);
}

#[test]
fn request_flood_is_limited_at_its_burst() {
    let mut s = session();
    let limit = default_limit(MessageKind::RequestPeers);
    let f = frame(&Message::RequestPeers);
    for _ in 0..limit.burst + 4 {
        s.on_frame(T0, &f);
    }
    let actions = drain(&mut s);
    let delivered = actions
        .iter()
        .filter(|a| matches!(a, SessionAction::Deliver(Message::RequestPeers)))
        .count();
    assert_eq!(delivered, limit.burst as usize);
    assert_eq!(actions.len(), limit.burst as usize + 4);
}

#[test]
fn malformed_payload_closes_the_session() {
    let mut s = session();
    // A Ping frame whose varint nonce is cut short: a valid frame, not a valid message.
    let bytes = [0, 0, 0, 2, MessageKind::Ping.tag(), 0xff];
    let [bad] = frames(&bytes).try_into().unwrap();
    let error = bad.decode().unwrap_err();
    s.on_frame(T0 + 1, &bad);
    let end = SessionEnd::BadMessage(error.clone());
    assert_eq!(
        drain(&mut s),
        vec![
            SessionAction::Misbehaved(Misbehavior::MalformedMessage),
            SessionAction::Close(end.clone()),
        ]
    );
    assert_eq!(end.farewell(), Some(DisconnectReason::ProtocolViolation));
    assert_eq!(end.to_string(), format!("bad message: {error}"));
    assert!(s.is_closed());
}

#[test]
fn trailing_bytes_are_malformed() {
    let mut s = session();
    let mut bytes = Vec::new();
    encode_frame_into(&ping(1), &mut bytes);
    bytes.push(0);
    let len = (bytes.len() - 4) as u32;
    bytes[..4].copy_from_slice(&len.to_be_bytes());
    s.on_frame(T0, &frames(&bytes)[0]);
    assert!(matches!(
        drain(&mut s).as_slice(),
        [
            SessionAction::Misbehaved(Misbehavior::MalformedMessage),
            SessionAction::Close(SessionEnd::BadMessage(_))
        ]
    ));
}

#[test]
fn bad_frame_closes_the_session() {
    let mut s = session();
    let mut out = Vec::new();
    let error = FrameDecoder::new()
        .push(&[0, 0, 0, 1, 0xee], &mut out)
        .unwrap_err();
    assert_eq!(error, FrameError::UnknownType(0xee));
    s.on_bad_frame(error.clone());
    let end = SessionEnd::BadFrame(error);
    assert_eq!(
        drain(&mut s),
        vec![
            SessionAction::Misbehaved(Misbehavior::MalformedMessage),
            SessionAction::Close(end.clone()),
        ]
    );
    assert_eq!(end.to_string(), "bad frame: unknown message type 238");
    assert_eq!(
        end.farewell(),
        Some(DisconnectReason::ProtocolViolation),
        "our direction still works: the peer is told why"
    );
}

fn one_hello() -> Message {
    use crate::wire::{Hello, PROTOCOL_VERSION};
    Message::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        network_id: crate::Hash([1; 32]),
        node_id: crate::Hash([2; 32]),
        best_height: 0,
        best_hash: crate::Hash([3; 32]),
        cumulative_work: [0; 32],
        listen_port: 9444,
        user_agent: BoundedString::truncating("test"),
        capabilities: 0,
        time_ms: T0,
    })
}

#[test]
fn hello_after_the_handshake_is_unexpected() {
    let mut s = session();
    let hello = frame(&one_hello());
    s.on_frame(T0 + 1, &hello);
    assert_eq!(
        drain(&mut s),
        vec![SessionAction::Misbehaved(Misbehavior::UnexpectedMessage)]
    );
    assert!(!s.is_closed(), "scored, not dropped");
    // One Hello per session: the next is over its limit.
    s.on_frame(T0 + 60_000, &hello);
    assert_eq!(
        drain(&mut s),
        vec![SessionAction::Misbehaved(Misbehavior::RateLimited)]
    );
}

#[test]
fn disconnect_from_the_peer_closes_with_its_reason() {
    let mut s = session();
    let detail = BoundedString::truncating("slow down");
    s.on_frame(
        T0 + 3,
        &frame(&Message::Disconnect(Disconnect {
            reason: DisconnectReason::TooManyPeers,
            detail: detail.clone(),
        })),
    );
    let end = SessionEnd::PeerDisconnected {
        reason: DisconnectReason::TooManyPeers,
        detail,
    };
    assert_eq!(drain(&mut s), vec![SessionAction::Close(end.clone())]);
    assert_eq!(end.farewell(), None, "nothing is sent back");
    assert_eq!(end.to_string(), "peer disconnected: TooManyPeers slow down");
    assert!(s.is_closed());
}

#[test]
fn other_messages_are_delivered_in_order() {
    let mut s = session();
    let messages = [
        Message::RequestPeers,
        Message::TxPoolRequest(crate::wire::TxPoolRequest { max: 10 }),
        Message::GetBlock(crate::wire::GetBlock {
            hash: crate::Hash([9; 32]),
        }),
    ];
    let mut bytes = Vec::new();
    for m in &messages {
        encode_frame_into(m, &mut bytes);
    }
    for f in frames(&bytes) {
        s.on_frame(T0, &f);
    }
    let expected: Vec<_> = messages.into_iter().map(SessionAction::Deliver).collect();
    assert_eq!(drain(&mut s), expected);
}

#[test]
fn node_sends_and_disconnects_through_the_queue() {
    let mut s = session();
    s.on_frame(T0, &frame(&ping(5)));
    s.send(Message::RequestPeers);
    s.disconnect(DisconnectReason::Shutdown);
    assert_eq!(
        drain(&mut s),
        vec![
            SessionAction::Send(pong(5)),
            SessionAction::Send(Message::RequestPeers),
            SessionAction::Close(SessionEnd::Disconnected {
                reason: DisconnectReason::Shutdown
            }),
        ]
    );
}

#[test]
fn write_stall_is_a_timeout_without_farewell() {
    let mut s = session();
    s.on_write_stalled();
    let actions = drain(&mut s);
    assert_eq!(
        actions,
        vec![
            SessionAction::Misbehaved(Misbehavior::Timeout),
            SessionAction::Close(SessionEnd::WriteStalled),
        ]
    );
    assert_eq!(SessionEnd::WriteStalled.farewell(), None);
}

#[test]
fn inputs_after_close_are_ignored() {
    let mut s = session();
    let nonce = first_ping(&mut s);
    s.disconnect(DisconnectReason::Banned);
    assert!(matches!(
        drain(&mut s).as_slice(),
        [SessionAction::Close(SessionEnd::Disconnected {
            reason: DisconnectReason::Banned
        })]
    ));
    s.on_frame(T0 + 30_010, &frame(&pong(nonce)));
    s.on_frame(T0 + 30_010, &frame(&ping(1)));
    s.on_frame(T0 + 30_010, &frame(&Message::RequestPeers));
    s.on_bad_frame(FrameError::Empty);
    s.on_timeout(T0 + 1_000_000);
    s.send(Message::RequestPeers);
    s.disconnect(DisconnectReason::Shutdown);
    s.on_write_stalled();
    assert_eq!(s.poll(), None);
    assert_eq!(s.next_timeout_ms(), u64::MAX);
    assert!(s.is_closed());
}

#[test]
fn actions_queued_before_close_are_still_polled() {
    let mut s = session();
    s.on_frame(T0, &frame(&ping(1)));
    s.on_frame(T0, &frame(&Message::RequestPeers));
    s.on_bad_frame(FrameError::Empty);
    assert_eq!(
        drain(&mut s),
        vec![
            SessionAction::Send(pong(1)),
            SessionAction::Deliver(Message::RequestPeers),
            SessionAction::Misbehaved(Misbehavior::MalformedMessage),
            SessionAction::Close(SessionEnd::BadFrame(FrameError::Empty)),
        ]
    );
}
