//! The session state machine fed arbitrary frames, before and after the Hello: the driver below
//! does what the node's peer task does (frame decoder, Hello check, then `PeerSession`), with
//! the clock, timer, node commands and write stalls chosen by the input. Checks the session's
//! promises: one or two actions per frame, nothing after `Close`, nothing internal delivered,
//! a timer that moves forward, and answers only to what was asked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spacetime::p2p::{Misbehavior, PeerSession, SessionAction, SessionConfig, SessionEnd};
use spacetime::wire::{
    DisconnectReason, Frame, FrameDecoder, LocalHello, Message, MessageKind, check_hello,
};
use spacetime_fuzz::{Input, SESSION_LOCAL_NODE_ID, SESSION_NETWORK_ID, SESSION_REMOTE_NODE_ID};

const T0: u64 = 1_700_000_000_000;

const REASONS: [DisconnectReason; 10] = [
    DisconnectReason::WrongNetwork,
    DisconnectReason::IncompatibleVersion,
    DisconnectReason::SelfConnection,
    DisconnectReason::DuplicateConnection,
    DisconnectReason::Banned,
    DisconnectReason::TooManyPeers,
    DisconnectReason::ProtocolViolation,
    DisconnectReason::RateLimited,
    DisconnectReason::Timeout,
    DisconnectReason::Shutdown,
];

/// Where the connection is.
enum Phase {
    /// Waiting for the peer's Hello.
    Hello,
    /// The session is open.
    Open(Box<Driver>),
    /// The connection is over; nothing more is read.
    Over,
}

/// An open session and what the checks remember about it.
struct Driver {
    session: PeerSession,
    opened_ms: u64,
    /// Pings the peer sent that we have not answered yet.
    pings_unanswered: u64,
    /// Set once `Close` was polled.
    closed: bool,
}

impl Driver {
    /// Every queued action, checked; returns them.
    fn drain(&mut self, now_ms: u64) -> Vec<SessionAction> {
        let actions: Vec<_> = core::iter::from_fn(|| self.session.poll()).collect();
        for (i, action) in actions.iter().enumerate() {
            assert!(!self.closed, "action after Close: {action:?}");
            match action {
                SessionAction::Deliver(m) => assert!(
                    !matches!(
                        m.kind(),
                        MessageKind::Ping
                            | MessageKind::Pong
                            | MessageKind::Hello
                            | MessageKind::Disconnect
                    ),
                    "the session delivered its own message {:?}",
                    m.kind()
                ),
                SessionAction::Send(Message::Pong(_)) => {
                    assert!(self.pings_unanswered > 0, "pong without a ping");
                    self.pings_unanswered -= 1;
                }
                SessionAction::Latency { rtt_ms } => {
                    assert!(
                        *rtt_ms <= now_ms - self.opened_ms,
                        "latency longer than the session"
                    );
                }
                SessionAction::Close(end) => {
                    assert_eq!(i, actions.len() - 1, "Close is not the last action");
                    if matches!(end, SessionEnd::BadFrame(_) | SessionEnd::BadMessage(_)) {
                        assert!(matches!(
                            actions.get(i.wrapping_sub(1)),
                            Some(SessionAction::Misbehaved(Misbehavior::MalformedMessage))
                        ));
                    }
                    let _ = end.to_string();
                    let _ = end.farewell();
                    self.closed = true;
                }
                SessionAction::Send(_) | SessionAction::Misbehaved(_) => {}
            }
        }
        assert_eq!(self.session.is_closed(), self.closed);
        assert_eq!(self.session.next_timeout_ms() == u64::MAX, self.closed);
        actions
    }

    fn on_frame(&mut self, now_ms: u64, frame: &Frame) {
        let was_closed = self.closed;
        if frame.kind == MessageKind::Ping && !was_closed {
            self.pings_unanswered += 1;
        }
        self.session.on_frame(now_ms, frame);
        let actions = self.drain(now_ms);
        if was_closed {
            assert!(actions.is_empty());
            return;
        }
        match actions.as_slice() {
            [SessionAction::Send(Message::Pong(_))] => {}
            [SessionAction::Misbehaved(_)]
            | [SessionAction::Deliver(_)]
            | [SessionAction::Latency { .. }] => {}
            [SessionAction::Close(SessionEnd::PeerDisconnected { .. })] => {}
            [
                SessionAction::Misbehaved(Misbehavior::MalformedMessage),
                SessionAction::Close(SessionEnd::BadMessage(_)),
            ] => {}
            other => panic!(
                "unexpected actions for one {:?} frame: {other:?}",
                frame.kind
            ),
        }
        if frame.kind == MessageKind::Ping && !matches!(actions[0], SessionAction::Send(_)) {
            // Dropped by the rate limit or undecodable: it is not owed a pong.
            self.pings_unanswered -= 1;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let (Some(ping), Some(idle)) = (input.byte(), input.byte()) else {
        return;
    };
    let config = SessionConfig {
        ping_interval_ms: u64::from(ping) * 100,
        idle_ms: u64::from(idle) * 1000,
    };
    let local = LocalHello {
        network_id: SESSION_NETWORK_ID,
        node_id: SESSION_LOCAL_NODE_ID,
    };
    let mut decoder = FrameDecoder::new();
    let mut phase = Phase::Hello;
    let mut now = T0;
    while let Some(op) = input.byte() {
        match op % 8 {
            0..=3 => {
                let len = usize::from(input.byte().unwrap_or(0));
                let bytes = input.take(len).unwrap_or_else(|| input.rest());
                let mut frames = Vec::new();
                let stream = decoder.push(bytes, &mut frames);
                for frame in &frames {
                    phase = match phase {
                        Phase::Hello => match frame.decode() {
                            Ok(Message::Hello(hello)) => {
                                match check_hello(&local, &hello, &SESSION_REMOTE_NODE_ID) {
                                    Ok(()) => Phase::Open(Box::new(Driver {
                                        session: PeerSession::new(now, config, 7),
                                        opened_ms: now,
                                        pings_unanswered: 0,
                                        closed: false,
                                    })),
                                    Err(_) => Phase::Over,
                                }
                            }
                            // Anything else first, or a Hello that does not decode: refused.
                            _ => Phase::Over,
                        },
                        Phase::Open(mut driver) => {
                            driver.on_frame(now, frame);
                            Phase::Open(driver)
                        }
                        Phase::Over => Phase::Over,
                    };
                }
                if let Err(e) = stream {
                    phase = match phase {
                        Phase::Open(mut driver) => {
                            let was_closed = driver.closed;
                            driver.session.on_bad_frame(e);
                            let actions = driver.drain(now);
                            assert!(
                                was_closed
                                    || matches!(
                                        actions.last(),
                                        Some(SessionAction::Close(SessionEnd::BadFrame(_)))
                                    )
                            );
                            Phase::Open(driver)
                        }
                        _ => Phase::Over,
                    };
                    // After a stream error the decoder is unusable; the driver stops reading.
                    decoder = FrameDecoder::new();
                    if let Phase::Open(driver) = &phase {
                        assert!(driver.closed);
                    }
                }
            }
            4 => {
                now += u64::from(input.u16().unwrap_or(0)) * 16;
                if let Phase::Open(driver) = &mut phase {
                    driver.session.on_timeout(now);
                    driver.drain(now);
                }
            }
            5 => {
                if let Phase::Open(driver) = &mut phase {
                    let due = driver.session.next_timeout_ms();
                    if due != u64::MAX {
                        now = now.max(due);
                        driver.session.on_timeout(now);
                        driver.drain(now);
                        if !driver.closed {
                            assert!(
                                driver.session.next_timeout_ms() > now,
                                "the timer did not move on"
                            );
                        }
                    }
                }
            }
            6 => {
                if let Phase::Open(driver) = &mut phase {
                    let was_closed = driver.closed;
                    driver.session.send(Message::RequestPeers);
                    let actions = driver.drain(now);
                    if !was_closed {
                        assert_eq!(actions, [SessionAction::Send(Message::RequestPeers)]);
                    }
                }
            }
            _ => {
                let what = input.byte().unwrap_or(0);
                if let Phase::Open(driver) = &mut phase {
                    let was_closed = driver.closed;
                    if what & 1 == 0 {
                        let reason = REASONS[usize::from(what / 2) % REASONS.len()];
                        driver.session.disconnect(reason);
                        let actions = driver.drain(now);
                        if !was_closed {
                            assert_eq!(
                                actions,
                                [SessionAction::Close(SessionEnd::Disconnected { reason })]
                            );
                        }
                    } else {
                        driver.session.on_write_stalled();
                        let actions = driver.drain(now);
                        if !was_closed {
                            assert_eq!(
                                actions,
                                [
                                    SessionAction::Misbehaved(Misbehavior::Timeout),
                                    SessionAction::Close(SessionEnd::WriteStalled)
                                ]
                            );
                        }
                    }
                }
            }
        }
    }
});
