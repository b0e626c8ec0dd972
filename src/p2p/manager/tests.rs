use super::*;
use std::net::{Ipv4Addr, SocketAddrV4};

struct Rng(u64);

impl Random for Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
}

fn v4(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), port))
}

fn manager(config: PeerManagerConfig) -> PeerManager {
    PeerManager::new(config, AddrBook::new(), Bans::default())
}

fn dials(actions: &[Action]) -> Vec<SocketAddr> {
    actions
        .iter()
        .filter_map(|a| {
            if let Action::Dial(x) = a {
                Some(*x)
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn dials_seeds_then_backs_off_failures() {
    let seed = v4(127, 0, 0, 1, 9000);
    let mut m = manager(PeerManagerConfig {
        seeds: vec![seed],
        ..Default::default()
    });
    let mut rng = Rng(1);
    assert_eq!(dials(&m.on_tick(0, &mut rng)), vec![seed]);
    // In flight: not dialled twice.
    assert!(dials(&m.on_tick(100, &mut rng)).is_empty());
    m.on_dial_failed(seed, 200);
    // Backing off.
    assert!(dials(&m.on_tick(300, &mut rng)).is_empty());
    assert_eq!(dials(&m.on_tick(10_000, &mut rng)), vec![seed]);
    // A dial that never answers times out and is retried.
    assert!(dials(&m.on_tick(15_000, &mut rng)).is_empty());
    assert_eq!(dials(&m.on_tick(20_001, &mut rng)).len(), 1);
}

#[test]
fn fills_outbound_slots_from_diverse_groups() {
    let mut m = manager(PeerManagerConfig::default());
    // Twenty addresses in five /16 groups, four each.
    for g in 0..5u8 {
        for h in 0..4u8 {
            m.book.add(v4(60, g, h, 1, 9444), 0, 1, 1);
        }
    }
    let mut rng = Rng(3);
    let mut connected_groups = Vec::new();
    // Connect whatever is dialled, tick after tick.
    for t in 0..10u64 {
        for addr in dials(&m.on_tick(t * 100, &mut rng)) {
            let id = m.on_dialed(addr, t * 100);
            m.on_hello(id, Hash([addr.port() as u8 ^ t as u8; 32]), 0, 0, t * 100)
                .ok();
            connected_groups.push(NetGroup::of(&addr));
        }
    }
    let (_, outbound) = m.counts();
    // Only five groups exist, so at most five outbound connections (one per group).
    assert_eq!(outbound, 5);
    connected_groups.sort();
    connected_groups.dedup();
    assert_eq!(connected_groups.len(), 5);
}

#[test]
fn outbound_is_capped_at_32() {
    let m = manager(PeerManagerConfig {
        outbound: 100,
        ..Default::default()
    });
    assert_eq!(m.config.outbound, MAX_OUTBOUND_LIMIT);
}

#[test]
fn inbound_limits_per_ip_and_bans() {
    let mut m = manager(PeerManagerConfig {
        max_inbound_per_ip: 2,
        ..Default::default()
    });
    let a = v4(9, 9, 9, 9, 1);
    assert!(m.on_inbound(a, 0).is_ok());
    assert!(m.on_inbound(v4(9, 9, 9, 9, 2), 0).is_ok());
    assert_eq!(
        m.on_inbound(v4(9, 9, 9, 9, 3), 0).unwrap_err(),
        InboundRefusal::IpLimit
    );
    // Garbage from one of them: banned, disconnected, and refused on return.
    let (id, _) = m.on_inbound(v4(8, 8, 8, 8, 1), 0).unwrap();
    let sanction = m.on_misbehavior(id, Misbehavior::MalformedMessage, 10);
    assert_eq!(
        sanction.map(|s| s.action()),
        Some(Action::Disconnect(id, DisconnectReason::ProtocolViolation))
    );
    assert_eq!(
        m.on_inbound(v4(8, 8, 8, 8, 2), 20).unwrap_err(),
        InboundRefusal::Banned
    );
    assert!(m.bans().is_address_banned(&v4(8, 8, 8, 8, 0).ip(), 20));
    // Bans expire.
    assert!(
        m.on_inbound(v4(8, 8, 8, 8, 2), super::super::score::DEFAULT_BAN_MS + 11)
            .is_ok()
    );
}

#[test]
fn a_first_offence_bans_for_minutes_a_repeat_for_longer() {
    use crate::p2p::BAN_STEPS_MS;
    let mut m = manager(PeerManagerConfig::default());
    let addr = v4(8, 8, 8, 8, 1);
    let (id, _) = m.on_inbound(addr, 0).unwrap();
    m.on_misbehavior(id, Misbehavior::MalformedMessage, 0);
    assert!(m.bans().is_address_banned(&addr.ip(), BAN_STEPS_MS[0] - 1));
    assert!(!m.bans().is_address_banned(&addr.ip(), BAN_STEPS_MS[0]));
    // Back after its first ban, it offends again: banned for the second step.
    let back = BAN_STEPS_MS[0];
    let (id, _) = m.on_inbound(addr, back).unwrap();
    m.on_misbehavior(id, Misbehavior::MalformedMessage, back);
    assert!(
        m.bans()
            .is_address_banned(&addr.ip(), back + BAN_STEPS_MS[1] - 1)
    );
    assert!(
        !m.bans()
            .is_address_banned(&addr.ip(), back + BAN_STEPS_MS[1])
    );
    assert_eq!(m.bans().history().of(&addr.ip()).map(|s| s.count), Some(2));
}

#[test]
fn a_trusted_address_is_disconnected_never_banned() {
    let mut m = manager(PeerManagerConfig {
        trusted: vec![v4(10, 0, 0, 5, 0).ip()],
        trust_loopback: true,
        ..Default::default()
    });
    for addr in [v4(10, 0, 0, 5, 1), v4(127, 0, 0, 1, 2), v4(127, 0, 0, 9, 3)] {
        let (id, _) = m.on_inbound(addr, 0).unwrap();
        assert_eq!(
            m.on_misbehavior(id, Misbehavior::MalformedMessage, 10),
            Some(Sanction {
                peer: id,
                reason: DisconnectReason::ProtocolViolation,
                bans: Vec::new()
            }),
            "{addr}"
        );
        assert!(!m.bans().is_address_banned(&addr.ip(), 20), "{addr}");
        assert!(m.on_inbound(addr, 20).is_ok(), "{addr} comes back");
    }
    // Anyone else is banned as before.
    let (id, _) = m.on_inbound(v4(10, 0, 0, 6, 1), 0).unwrap();
    m.on_misbehavior(id, Misbehavior::MalformedMessage, 10);
    assert!(m.bans().is_address_banned(&v4(10, 0, 0, 6, 0).ip(), 20));
    // Loopback is trusted only when asked.
    let mut m = manager(PeerManagerConfig::default());
    let (id, _) = m.on_inbound(v4(127, 0, 0, 1, 2), 0).unwrap();
    m.on_misbehavior(id, Misbehavior::MalformedMessage, 10);
    assert!(m.bans().is_address_banned(&v4(127, 0, 0, 1, 0).ip(), 20));
}

/// An inbound connection from `addr` at `t` whose Hello was accepted and admitted.
fn established(m: &mut PeerManager, addr: SocketAddr, t: u64) -> (PeerId, Option<PeerId>) {
    let (id, actions) = m.on_inbound(addr, t).unwrap();
    assert!(actions.is_empty(), "{actions:?}");
    let node = crate::hash::hash(b"test-node", &addr.to_string().into_bytes());
    m.on_hello(id, node, 0, 0, t).unwrap();
    (id, m.admit_inbound(id).unwrap())
}

#[test]
fn full_inbound_slots_with_every_peer_protected_refuse() {
    let mut m = manager(PeerManagerConfig {
        max_inbound: 2,
        ..Default::default()
    });
    established(&mut m, v4(1, 1, 1, 1, 1), 0);
    established(&mut m, v4(2, 2, 2, 2, 1), 0);
    // Two sessions: both among the protected (longest connected, fastest, ...). The third
    // may handshake, but is refused a session.
    let (id, _) = m.on_inbound(v4(3, 3, 3, 3, 1), 0).unwrap();
    m.on_hello(id, Hash([3; 32]), 0, 0, 0).unwrap();
    assert_eq!(m.admit_inbound(id), Err(DisconnectReason::TooManyPeers));
    assert!(!m.peers.contains_key(&id));
    assert_eq!(m.counts().0, 2);
}

#[test]
fn handshakes_have_their_own_pool_and_never_take_session_slots() {
    let mut m = manager(PeerManagerConfig {
        max_inbound: 4,
        max_handshaking: 3,
        max_inbound_per_ip: 100,
        ..Default::default()
    });
    let sessions: Vec<PeerId> = (0..4u8)
        .map(|i| established(&mut m, v4(10 + i, 1, 1, 1, 1), u64::from(i)).0)
        .collect();
    // A slowloris from one range fills the handshake pool: no session is touched.
    let mut stalled = Vec::new();
    for i in 0..3u8 {
        let (id, actions) = m
            .on_inbound(v4(66, 6, i, 1, 1), 100 + u64::from(i))
            .unwrap();
        assert!(actions.is_empty());
        stalled.push(id);
    }
    assert_eq!(m.handshaking(), 3);
    // More of it evicts its own oldest handshake, never a session.
    let (_, actions) = m.on_inbound(v4(66, 6, 9, 1, 1), 200).unwrap();
    assert_eq!(
        actions,
        vec![Action::Disconnect(
            stalled[0],
            DisconnectReason::TooManyPeers
        )]
    );
    // An honest newcomer from elsewhere also gets in by evicting an attacker's handshake.
    let (honest, actions) = m.on_inbound(v4(200, 1, 1, 1, 1), 300).unwrap();
    let [Action::Disconnect(victim, DisconnectReason::TooManyPeers)] = actions[..] else {
        panic!("{actions:?}");
    };
    assert!(stalled.contains(&victim));
    for id in &sessions {
        assert!(m.peers.contains_key(id), "a session was dropped");
    }
    assert!(m.peers.contains_key(&honest));
    assert_eq!(m.handshaking(), 3);
}

#[test]
fn full_inbound_evicts_from_the_most_represented_group() {
    let mut m = manager(PeerManagerConfig {
        max_inbound: 20,
        max_inbound_per_ip: 20,
        ..Default::default()
    });
    // Eight honest peers from distinct groups, younger than the attacker's, half useful: a
    // rule that simply evicted the youngest would pick an honest one.
    let mut honest = Vec::new();
    for i in 0..8u8 {
        let (id, _) = established(&mut m, v4(100 + i, 1, 1, 1, 1), 10_000 + u64::from(i));
        if i < 4 {
            m.on_block_from(id, 1_000);
        }
        honest.push(id);
    }
    // An attacker fills the rest from one /16.
    let mut attacker = Vec::new();
    for i in 0..12u8 {
        let (id, _) = established(&mut m, v4(66, 6, i, 1, 1), 5_000 + u64::from(i));
        attacker.push(id);
    }
    assert_eq!(m.counts().0, 20);
    // A new honest peer completes its Hello: an attacker session makes room.
    let (_, victim) = established(&mut m, v4(200, 1, 1, 1, 1), 20_000);
    let victim = victim.expect("one eviction");
    assert!(attacker.contains(&victim), "evicted an honest peer");
    assert_eq!(m.counts().0, 20);
    for id in honest {
        assert!(m.peers.contains_key(&id));
    }
}

#[test]
fn duplicate_node_ids_are_refused() {
    let mut m = manager(PeerManagerConfig::default());
    let (a, _) = m.on_inbound(v4(1, 1, 1, 1, 1), 0).unwrap();
    let (b, _) = m.on_inbound(v4(2, 2, 2, 2, 1), 0).unwrap();
    let node = Hash([5; 32]);
    assert_eq!(m.on_hello(a, node, 0, 0, 0), Ok(()));
    assert_eq!(
        m.on_hello(b, node, 0, 0, 0),
        Err(DisconnectReason::DuplicateConnection)
    );
    assert_eq!(m.counts(), (1, 0));
}

#[test]
fn inbound_listen_addresses_enter_the_book_and_outbound_successes_are_tried() {
    let mut m = manager(PeerManagerConfig::default());
    let (a, _) = m.on_inbound(v4(3, 3, 3, 3, 50_000), 0).unwrap();
    m.on_hello(a, Hash([1; 32]), 1, 9444, 0).unwrap();
    let learned = m.book().get(&v4(3, 3, 3, 3, 9444)).unwrap();
    assert!(!learned.tried);
    let mut rng = Rng(9);
    let dialed = dials(&m.on_tick(1, &mut rng));
    assert_eq!(dialed, vec![v4(3, 3, 3, 3, 9444)]);
    let id = m.on_dialed(dialed[0], 2);
    m.on_hello(id, Hash([2; 32]), 1, 9444, 3).unwrap();
    assert!(m.book().get(&dialed[0]).unwrap().tried);
    m.on_latency(id, 100);
    m.on_latency(id, 20);
    assert_eq!(m.peers.get(&id).unwrap().latency_ms, Some(80));
    m.on_disconnected(id);
    assert_eq!(m.counts(), (1, 0));
}

#[test]
fn own_addresses_are_never_dialled_or_stored() {
    let me = v4(7, 7, 7, 7, 9444);
    let mut m = manager(PeerManagerConfig {
        seeds: vec![me],
        ..Default::default()
    });
    m.add_local_addr(me);
    m.on_peer_list(
        &[crate::wire::PeerAddr {
            ip: me.ip(),
            port: me.port(),
            capabilities: 0,
            last_seen_ms: 1,
        }],
        1,
    );
    assert!(m.book().get(&me).is_none());
    assert!(dials(&m.on_tick(2, &mut Rng(4))).is_empty());
    // Learned before it was known to be ours: forgotten when it is.
    let other = v4(8, 8, 8, 8, 9444);
    m.book.add(other, 0, 1, 1);
    m.add_local_addr(other);
    assert!(m.book().get(&other).is_none());
}

/// An inbound session from `addr` at `t` whose Hello named `node`.
fn session(m: &mut PeerManager, addr: SocketAddr, node: Hash, t: u64) -> PeerId {
    let (id, _) = m.on_inbound(addr, t).unwrap();
    m.on_hello(id, node, 0, 0, t).unwrap();
    id
}

#[test]
fn a_fault_inside_a_session_bans_the_node_id_not_the_address() {
    use crate::p2p::{BAN_STEPS_MS, BanKind};
    let mut m = manager(PeerManagerConfig::default());
    let ip = v4(127, 0, 0, 1, 0).ip();
    let (bad, good) = (Hash([1; 32]), Hash([2; 32]));
    let honest = session(&mut m, v4(127, 0, 0, 1, 1), good, 0);
    let id = session(&mut m, v4(127, 0, 0, 1, 2), bad, 0);
    let sanction = m
        .on_misbehavior(id, Misbehavior::MalformedMessage, 10)
        .unwrap();
    assert_eq!(
        sanction.action(),
        Action::Disconnect(id, DisconnectReason::ProtocolViolation)
    );
    assert_eq!(
        sanction.bans.iter().map(|b| b.kind).collect::<Vec<_>>(),
        vec![BanKind::Node]
    );
    assert_eq!(sanction.bans[0].lasts_ms, BAN_STEPS_MS[0]);
    assert!(m.bans().is_node_banned(&bad, 11));
    assert!(!m.bans().is_address_banned(&ip, 11));
    // The honest node on the same address keeps its session and may open more.
    assert!(m.peers.contains_key(&honest));
    let other = session(&mut m, v4(127, 0, 0, 1, 3), Hash([3; 32]), 20);
    assert!(m.peers.contains_key(&other));
    // The banned node id is refused at its Hello, from any address, inbound or outbound.
    for addr in [v4(127, 0, 0, 1, 4), v4(127, 0, 0, 2, 1)] {
        let (id, _) = m.on_inbound(addr, 30).unwrap();
        assert_eq!(
            m.on_hello(id, bad, 0, 0, 30),
            Err(DisconnectReason::Banned),
            "{addr}"
        );
        assert!(!m.peers.contains_key(&id));
    }
    let out = m.on_dialed(v4(8, 8, 8, 8, 9444), 30);
    assert_eq!(
        m.on_hello(out, bad, 0, 0, 30),
        Err(DisconnectReason::Banned)
    );
    // Its ban ends: it is let in again, and a repeat offence costs the second step.
    let back = 10 + BAN_STEPS_MS[0];
    let id = session(&mut m, v4(127, 0, 0, 2, 2), bad, back);
    let sanction = m
        .on_misbehavior(id, Misbehavior::InvalidBlock, back)
        .unwrap();
    assert_eq!(sanction.bans[0].lasts_ms, BAN_STEPS_MS[1]);
    assert_eq!(m.bans().nodes().of(&bad).map(|s| s.strikes.count), Some(2));
}

#[test]
fn the_listening_address_of_a_banned_node_id_is_not_dialled_again() {
    let mut m = manager(PeerManagerConfig::default());
    let mut rng = Rng(7);
    let bad = Hash([9; 32]);
    let dialled = v4(8, 8, 8, 8, 9444);
    m.book.add(dialled, 0, 0, 0);
    assert_eq!(dials(&m.on_tick(0, &mut rng)), vec![dialled]);
    let out = m.on_dialed(dialled, 10);
    m.on_hello(out, bad, 0, 0, 10).unwrap();
    assert!(
        m.on_misbehavior(out, Misbehavior::MalformedMessage, 20)
            .is_some()
    );
    // Told of it again by a peer: still skipped while the node id is banned.
    m.book.add(dialled, 0, 0, 30);
    assert!(dials(&m.on_tick(40_000, &mut rng)).is_empty());
    // An inbound banned node's advertised address is skipped too, and so is an address that
    // answered a dial with a banned node id.
    let other = Hash([8; 32]);
    let (id, _) = m.on_inbound(v4(9, 9, 9, 9, 5000), 50).unwrap();
    m.on_hello(id, other, 0, 7000, 50).unwrap();
    assert!(
        m.on_misbehavior(id, Misbehavior::MalformedMessage, 60)
            .is_some()
    );
    m.book.add(v4(9, 9, 9, 9, 7000), 0, 0, 70);
    let third = v4(7, 7, 7, 7, 9444);
    m.book.add(third, 0, 0, 70);
    assert_eq!(dials(&m.on_tick(80_000, &mut rng)), vec![third]);
    let out = m.on_dialed(third, 80_010);
    assert_eq!(
        m.on_hello(out, bad, 0, 0, 80_010),
        Err(DisconnectReason::Banned)
    );
    m.book.add(third, 0, 0, 80_020);
    assert!(dials(&m.on_tick(120_000, &mut rng)).is_empty());
    // Once the ban is over, they are dialled again.
    let later = 20 + crate::p2p::BAN_STEPS_MS[0] + 200_000;
    m.book.add(dialled, 0, 0, later);
    assert!(dials(&m.on_tick(later, &mut rng)).contains(&dialled));
}

#[test]
fn an_address_churning_node_ids_is_banned_after_the_third() {
    use crate::p2p::{BanKind, CHURN_NODE_BANS};
    let mut m = manager(PeerManagerConfig::default());
    let addr = v4(9, 9, 9, 9, 1);
    for n in 1..=CHURN_NODE_BANS as u8 {
        assert!(!m.bans().is_address_banned(&addr.ip(), u64::from(n)));
        let id = session(&mut m, addr, Hash([n; 32]), u64::from(n));
        let sanction = m
            .on_misbehavior(id, Misbehavior::MalformedMessage, u64::from(n))
            .unwrap();
        let kinds: Vec<BanKind> = sanction.bans.iter().map(|b| b.kind).collect();
        if usize::from(n) < CHURN_NODE_BANS {
            assert_eq!(kinds, vec![BanKind::Node]);
        } else {
            assert_eq!(kinds, vec![BanKind::Node, BanKind::Address]);
        }
    }
    assert_eq!(m.on_inbound(addr, 10).unwrap_err(), InboundRefusal::Banned);
}

#[test]
fn a_fault_before_the_hello_bans_the_address() {
    use crate::p2p::BanKind;
    let mut m = manager(PeerManagerConfig::default());
    let (id, _) = m.on_inbound(v4(8, 8, 8, 8, 1), 0).unwrap();
    let sanction = m
        .on_misbehavior(id, Misbehavior::MalformedMessage, 0)
        .unwrap();
    assert_eq!(sanction.bans[0].kind, BanKind::Address);
    assert_eq!(sanction.bans.len(), 1);
    assert!(m.bans().is_address_banned(&v4(8, 8, 8, 8, 0).ip(), 1));
}

#[test]
fn a_trusted_address_lets_a_banned_node_id_in_and_never_bans_it() {
    let mut m = manager(PeerManagerConfig {
        trusted: vec![v4(10, 0, 0, 5, 0).ip()],
        ..Default::default()
    });
    let bad = Hash([1; 32]);
    let id = session(&mut m, v4(8, 8, 8, 8, 1), bad, 0);
    m.on_misbehavior(id, Misbehavior::MalformedMessage, 0);
    assert!(m.bans().is_node_banned(&bad, 1));
    // From a trusted address it is the operator's node: let in, and never banned again.
    let id = session(&mut m, v4(10, 0, 0, 5, 1), bad, 1);
    let sanction = m
        .on_misbehavior(id, Misbehavior::MalformedMessage, 2)
        .unwrap();
    assert!(sanction.bans.is_empty());
    assert_eq!(m.bans().nodes().of(&bad).map(|s| s.strikes.count), Some(1));
}

#[test]
fn a_flood_of_bad_handshakes_bans_the_address_one_does_not() {
    use crate::p2p::{BAN_STEPS_MS, BanKind};
    let mut m = manager(PeerManagerConfig::default());
    let addr = v4(7, 7, 7, 7, 1);
    // A port scan: one garbage handshake, points that decay, no ban.
    let (id, _) = m.on_inbound(addr, 0).unwrap();
    assert_eq!(
        m.on_handshake_fault(id, Misbehavior::MalformedHandshake, 0),
        None
    );
    m.on_disconnected(id);
    assert_eq!(m.handshake_points(&addr.ip(), 0), 25);
    assert_eq!(m.handshake_points(&addr.ip(), 25 * 60_000), 0);
    m.on_tick(25 * 60_000, &mut Rng(1));
    assert!(m.handshake_scores.is_empty(), "forgotten once decayed");
    // A flood: the fourth garbage handshake in a row bans the address, for the first step.
    let mut ban = None;
    for i in 0..4 {
        let (id, _) = m.on_inbound(addr, 30 * 60_000 + i).unwrap();
        ban = m.on_handshake_fault(id, Misbehavior::MalformedHandshake, 30 * 60_000 + i);
        m.on_disconnected(id);
    }
    assert_eq!(
        ban,
        Some(crate::p2p::Ban {
            kind: BanKind::Address,
            lasts_ms: BAN_STEPS_MS[0]
        })
    );
    assert_eq!(
        m.on_inbound(addr, 30 * 60_000 + 5).unwrap_err(),
        InboundRefusal::Banned
    );
    // Stalled handshakes count too, less: ten of them.
    let other = v4(7, 7, 7, 8, 1);
    for i in 0..10 {
        let (id, _) = m.on_inbound(other, i).unwrap();
        let ban = m.on_handshake_fault(id, Misbehavior::HandshakeTimeout, i);
        assert_eq!(ban.is_some(), i == 9, "{i}");
        m.on_disconnected(id);
    }
}

#[test]
fn handshake_faults_spare_trusted_addresses_outbound_dials_and_sessions() {
    let mut m = manager(PeerManagerConfig {
        trusted: vec![v4(10, 0, 0, 5, 0).ip()],
        ..Default::default()
    });
    for _ in 0..10 {
        let (id, _) = m.on_inbound(v4(10, 0, 0, 5, 1), 0).unwrap();
        assert_eq!(
            m.on_handshake_fault(id, Misbehavior::MalformedHandshake, 0),
            None
        );
        m.on_disconnected(id);
        let out = m.on_dialed(v4(8, 8, 8, 8, 9444), 0);
        assert_eq!(
            m.on_handshake_fault(out, Misbehavior::MalformedHandshake, 0),
            None
        );
        m.on_disconnected(out);
    }
    assert!(m.handshake_scores.is_empty());
    // Once the Hello is accepted, faults are the node id's, through on_misbehavior.
    let id = session(&mut m, v4(9, 9, 9, 9, 1), Hash([9; 32]), 0);
    assert_eq!(
        m.on_handshake_fault(id, Misbehavior::MalformedHandshake, 0),
        None
    );
    // The table of scored addresses is bounded.
    for i in 0..(MAX_HANDSHAKE_SCORES as u32 + 5) {
        let addr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::from(i + 1)), 1);
        let (id, _) = m.on_inbound(addr, 0).unwrap();
        m.on_handshake_fault(id, Misbehavior::HandshakeTimeout, 0);
        m.on_disconnected(id);
    }
    assert_eq!(m.handshake_scores.len(), MAX_HANDSHAKE_SCORES);
}
