//! Real nodes on 127.0.0.1: handshakes, discovery, bans, wrong networks, restarts.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use spacetime::p2p::PeerManagerConfig;
use spacetime::wire::{
    DisconnectReason, Hello, LocalHello, Message, PROTOCOL_VERSION, capabilities,
};
use spacetime::{BoundedString, Hash};
use spacetime_actors::net::{Role, StaticKey, exchange_hello, handshake};
use spacetime_actors::p2p::{
    ChainTip, GetPeers, IsBanned, IsNodeBanned, Network, NetworkConfig, Shutdown, Timeouts, start,
};
use spacetime_actors::seams::Seams;

const NET: Hash = Hash([7; 32]);

fn config(seeds: Vec<SocketAddr>, outbound: usize) -> NetworkConfig {
    NetworkConfig {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        peers: PeerManagerConfig {
            outbound,
            max_inbound: 64,
            max_inbound_per_ip: 64,
            seeds,
            ..PeerManagerConfig::default()
        },
        data_dir: None,
        timeouts: Timeouts {
            handshake: Duration::from_secs(3),
            ping_interval: Duration::from_secs(1),
            idle: Duration::from_secs(5),
        },
        tick: Duration::from_millis(100),
        peer_exchange_interval: Duration::from_secs(1),
        user_agent: "spacetime-test".into(),
        ..NetworkConfig::default()
    }
}

async fn node(config: NetworkConfig, network_id: Hash) -> Network {
    let key = StaticKey::generate().unwrap();
    node_with_key(config, network_id, key).await
}

async fn node_with_key(config: NetworkConfig, network_id: Hash, key: StaticKey) -> Network {
    let tip = ChainTip {
        height: 0,
        hash: network_id,
        work: [0; 32],
    };
    start(config, key, network_id, tip, &Seams::production().unwrap())
        .await
        .unwrap()
}

/// Waits until `check` holds for the peer lists, or fails after `limit`.
async fn wait_for(
    nodes: &[Network],
    limit: Duration,
    check: impl Fn(&[usize]) -> bool,
) -> Vec<usize> {
    let start = Instant::now();
    loop {
        let mut counts = Vec::new();
        for n in nodes {
            let peers = n.manager.send(GetPeers).await.unwrap();
            counts.push(peers.iter().filter(|p| p.node_id.is_some()).count());
        }
        if check(&counts) || start.elapsed() > limit {
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_rt::test]
async fn two_nodes_connect_and_exchange_hellos() {
    let a = node(config(vec![], 8), NET).await;
    let b = node(config(vec![a.listening.unwrap()], 8), NET).await;
    let counts = wait_for(&[a.clone(), b.clone()], Duration::from_secs(10), |c| {
        c.iter().all(|&n| n == 1)
    })
    .await;
    assert_eq!(counts, vec![1, 1]);
    let seen_by_b = b.manager.send(GetPeers).await.unwrap();
    assert_eq!(seen_by_b[0].node_id, Some(a.node_id));
    assert_eq!(seen_by_b[0].user_agent.as_deref(), Some("spacetime-test"));
    // Keepalive pings (one a second) measure latency.
    let mut seen_by_a = Vec::new();
    for _ in 0..50 {
        seen_by_a = a.manager.send(GetPeers).await.unwrap();
        if seen_by_a[0].latency_ms.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen_by_a[0].latency_ms.is_some(), "{seen_by_a:?}");
}

#[actix_rt::test]
async fn ten_nodes_discover_each_other_from_one_seed() {
    let seed = node(config(vec![], 8), NET).await;
    let mut nodes = vec![seed.clone()];
    for _ in 0..9 {
        nodes.push(node(config(vec![seed.listening.unwrap()], 8), NET).await);
    }
    let counts = wait_for(&nodes, Duration::from_secs(30), |c| {
        c.iter().all(|&n| n >= 8)
    })
    .await;
    if !counts.iter().all(|&n| n >= 8) {
        let mut detail = String::new();
        for n in &nodes {
            let peers = n.manager.send(GetPeers).await.unwrap();
            detail.push_str(&format!("\n{:?}: {peers:?}", n.listening));
        }
        panic!("peer counts: {counts:?}{detail}");
    }
}

#[actix_rt::test]
async fn wrong_network_is_refused() {
    let a = node(config(vec![], 8), NET).await;
    let b = node(config(vec![a.listening.unwrap()], 8), Hash([8; 32])).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let counts = wait_for(&[a, b], Duration::from_millis(10), |_| true).await;
    assert_eq!(counts, vec![0, 0]);
}

#[actix_rt::test]
async fn a_peer_sending_garbage_is_banned_and_others_keep_working() {
    let a = node(config(vec![], 8), NET).await;
    let honest = node(config(vec![a.listening.unwrap()], 8), NET).await;
    wait_for(&[a.clone(), honest.clone()], Duration::from_secs(10), |c| {
        c.iter().all(|&n| n == 1)
    })
    .await;

    // A rogue client completes the handshake and Hello, then sends an oversized frame: it is
    // told why, and its node id is banned (not the address it shares with the honest node).
    let (mut session, rogue_id) = rogue(&a).await;
    assert_eq!(
        send_garbage_until_cut(&mut session).await,
        Some(DisconnectReason::ProtocolViolation)
    );
    assert!(a.manager.send(IsNodeBanned(rogue_id)).await.unwrap());
    let localhost = "127.0.0.1".parse().unwrap();
    assert!(!a.manager.send(IsBanned(localhost)).await.unwrap());
    // The honest peer's session is untouched.
    let counts = wait_for(&[a, honest], Duration::from_millis(10), |_| true).await;
    assert_eq!(counts, vec![1, 1]);
}

#[actix_rt::test]
async fn a_trusted_address_sending_garbage_is_disconnected_but_not_banned() {
    let mut c = config(vec![], 8);
    c.peers.trust_loopback = true;
    let a = node(c, NET).await;
    let (mut session, rogue_id) = rogue(&a).await;
    assert_eq!(
        send_garbage_until_cut(&mut session).await,
        Some(DisconnectReason::ProtocolViolation)
    );
    let localhost = "127.0.0.1".parse().unwrap();
    assert!(!a.manager.send(IsBanned(localhost)).await.unwrap());
    assert!(!a.manager.send(IsNodeBanned(rogue_id)).await.unwrap());
    // Another node of the operator's on the same address still gets in.
    let honest = node(config(vec![a.listening.unwrap()], 8), NET).await;
    let counts = wait_for(&[a, honest], Duration::from_secs(10), |c| {
        c.iter().all(|&n| n == 1)
    })
    .await;
    assert_eq!(counts, vec![1, 1]);
}

#[actix_rt::test]
async fn a_slowloris_from_200_addresses_keeps_no_honest_peer_out() {
    let mut c = config(vec![], 8);
    c.peers.max_inbound = 117;
    c.peers.max_inbound_per_ip = 4;
    let a = node(c, NET).await;
    let target = a.listening.unwrap();
    let first = node(config(vec![target], 8), NET).await;
    wait_for(&[a.clone(), first.clone()], Duration::from_secs(10), |c| {
        c.iter().all(|&n| n == 1)
    })
    .await;
    // The established session, by the address (source port) it came from.
    let session_of_first = |peers: Vec<spacetime_actors::p2p::PeerSummary>| {
        peers
            .into_iter()
            .find(|p| p.node_id == Some(first.node_id))
            .map(|p| p.addr)
    };
    let before = session_of_first(a.manager.send(GetPeers).await.unwrap());
    assert!(before.is_some());
    // 127.0.0.2 ... 127.0.0.201 open connections that never send a byte, then keep opening
    // new ones (one every 5 ms, the reconnect flood) while an honest node tries to connect.
    let flooding = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let on = flooding.clone();
    let flood = tokio::spawn(async move {
        let mut held = std::collections::VecDeque::new();
        let mut opened = 0u32;
        while on.load(std::sync::atomic::Ordering::Relaxed) {
            let src = std::net::Ipv4Addr::new(127, 0, 0, 2 + (opened % 200) as u8);
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            if socket.bind(SocketAddr::new(src.into(), 0)).is_ok()
                && let Ok(stream) = socket.connect(target).await
            {
                held.push_back(stream);
                if held.len() > 250 {
                    held.pop_front();
                }
            }
            opened += 1;
            if opened > 200 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        opened
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let begun = Instant::now();
    let honest = node(config(vec![target], 8), NET).await;
    let counts = wait_for(
        std::slice::from_ref(&honest),
        Duration::from_secs(10),
        |c| c[0] == 1,
    )
    .await;
    let took = begun.elapsed();
    flooding.store(false, std::sync::atomic::Ordering::Relaxed);
    let opened = flood.await.unwrap();
    eprintln!("{opened} flood connections; the honest peer got a session in {took:?}");
    assert_eq!(counts, vec![1], "no session within 10 s");
    assert!(opened > 250, "the flood ran: {opened}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    // The session established before the flood was never dropped (a reconnection would
    // come from another source port).
    let after = session_of_first(a.manager.send(GetPeers).await.unwrap());
    assert_eq!(before, after);
    drop(honest);
}

/// Sends an oversized frame over `session` and waits until the node ends it; returns the
/// reason of the `Disconnect` it sent (`None`: the connection closed without one).
async fn send_garbage_until_cut(
    session: &mut spacetime_actors::net::Session,
) -> Option<DisconnectReason> {
    session
        .send_raw_plaintext(&[0x00, 0x30, 0x00, 0x00, 6])
        .await
        .unwrap();
    until_cut(session).await
}

/// Reads `session` until the node ends it; the reason of its `Disconnect`, if it sent one.
async fn until_cut(session: &mut spacetime_actors::net::Session) -> Option<DisconnectReason> {
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match session.recv().await {
                Ok(Message::Disconnect(d)) => return Some(d.reason),
                Err(_) => return None,
                Ok(_) => {}
            }
        }
    })
    .await;
    ended.expect("the rogue session was not ended")
}

/// A client that completes the handshake and Hello with `node`, outside the node's code path;
/// returns the session and the client's node id.
async fn rogue(node: &Network) -> (spacetime_actors::net::Session, Hash) {
    let key = StaticKey::generate().unwrap();
    let session = rogue_from(node, &key, "127.0.0.1".parse().unwrap()).await;
    (session, key.node_id())
}

/// A client with `key`, connecting from `source` (any loopback address reaches a node on
/// 127.0.0.1), that completes the handshake and Hello with `node`.
async fn rogue_from(
    node: &Network,
    key: &StaticKey,
    source: std::net::IpAddr,
) -> spacetime_actors::net::Session {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    let stream = socket.connect(node.listening.unwrap()).await.unwrap();
    let mut session = handshake(
        stream,
        key,
        Role::Initiator,
        Duration::from_secs(3),
        spacetime::NodeRng::from_os().unwrap(),
    )
    .await
    .unwrap();
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        network_id: NET,
        node_id: key.node_id(),
        best_height: 0,
        best_hash: NET,
        cumulative_work: [0; 32],
        listen_port: 0,
        user_agent: BoundedString::truncating("rogue"),
        capabilities: capabilities::FULL_NODE,
        time_ms: 0,
    };
    let local = LocalHello {
        network_id: NET,
        node_id: key.node_id(),
    };
    exchange_hello(&mut session, &hello, &local, Duration::from_secs(3))
        .await
        .unwrap();
    session
}

#[actix_rt::test]
async fn a_flooding_peer_is_disconnected_and_banned() {
    let a = node(config(vec![], 8), NET).await;
    let (mut session, rogue_id) = rogue(&a).await;
    // Pings are allowed in a burst of 5 and then one per second; send 200 at once.
    for nonce in 0..200 {
        session
            .queue(&Message::Ping(spacetime::wire::Ping { nonce }))
            .unwrap();
    }
    session.flush().await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match session.recv().await {
                Ok(Message::Disconnect(d)) => return Some(d.reason),
                Err(_) => return None,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert_eq!(ended, Ok(Some(DisconnectReason::RateLimited)));
    // Abuse inside a session bans the node id, not the address.
    assert!(a.manager.send(IsNodeBanned(rogue_id)).await.unwrap());
    assert!(
        !a.manager
            .send(IsBanned("127.0.0.1".parse().unwrap()))
            .await
            .unwrap()
    );
}

#[actix_rt::test]
async fn peers_reconnect_after_a_restart() {
    let key = StaticKey::generate().unwrap();
    let a = node_with_key(config(vec![], 8), NET, key.clone()).await;
    let addr = a.listening.unwrap();
    let b = node(config(vec![addr], 8), NET).await;
    wait_for(&[a.clone(), b.clone()], Duration::from_secs(10), |c| {
        c.iter().all(|&n| n == 1)
    })
    .await;

    a.manager.send(Shutdown).await.unwrap();
    let counts = wait_for(std::slice::from_ref(&b), Duration::from_secs(10), |c| {
        c[0] == 0
    })
    .await;
    assert_eq!(counts, vec![0], "b still sees a stopped peer");

    // Same identity, same port.
    let mut again = config(vec![], 8);
    again.listen = Some(addr);
    let a = node_with_key(again, NET, key).await;
    let counts = wait_for(&[a.clone(), b.clone()], Duration::from_secs(20), |c| {
        c.iter().all(|&n| n == 1)
    })
    .await;
    assert_eq!(counts, vec![1, 1]);
    assert_eq!(
        b.manager.send(GetPeers).await.unwrap()[0].node_id,
        Some(a.node_id)
    );
}

#[actix_rt::test]
async fn bans_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut with_data = config(vec![], 8);
    with_data.data_dir = Some(dir.path().to_owned());
    let a = node(with_data.clone(), NET).await;
    let (mut session, rogue_id) = rogue(&a).await;
    session
        .send_raw_plaintext(&[0x00, 0x30, 0x00, 0x00, 6])
        .await
        .unwrap();
    let start = Instant::now();
    while !a.manager.send(IsNodeBanned(rogue_id)).await.unwrap() {
        assert!(start.elapsed() < Duration::from_secs(5), "not banned");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.manager.send(Shutdown).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = node(with_data, NET).await;
    assert!(
        again.manager.send(IsNodeBanned(rogue_id)).await.unwrap(),
        "the ban was lost on restart"
    );
    // The offence is remembered with it, so a repeat after the ban is banned for longer.
    assert!(dir.path().join("node-bans.dat").is_file());
}

#[actix_rt::test]
async fn a_banned_node_id_is_refused_from_any_address_and_its_neighbours_still_connect() {
    // trust_loopback is off (the default outside --dev), so bans apply on 127.0.0.1.
    let mut c = config(vec![], 8);
    c.peers.trust_loopback = false;
    let a = node(c, NET).await;
    let first = node(config(vec![a.listening.unwrap()], 8), NET).await;
    wait_for(&[a.clone(), first.clone()], Duration::from_secs(10), |c| {
        c.iter().all(|&n| n == 1)
    })
    .await;
    // A third node on 127.0.0.1 misbehaves inside its session: it is told why and banned.
    let key = StaticKey::generate().unwrap();
    let localhost: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let mut session = rogue_from(&a, &key, localhost).await;
    assert_eq!(
        send_garbage_until_cut(&mut session).await,
        Some(DisconnectReason::ProtocolViolation)
    );
    assert!(a.manager.send(IsNodeBanned(key.node_id())).await.unwrap());
    assert!(!a.manager.send(IsBanned(localhost)).await.unwrap());
    // Another honest node from the same address still gets in, and the first keeps its session.
    let second = node(config(vec![a.listening.unwrap()], 8), NET).await;
    let counts = wait_for(
        &[a.clone(), first.clone(), second.clone()],
        Duration::from_secs(10),
        |c| c[0] == 2 && c[2] >= 1,
    )
    .await;
    assert_eq!(counts[0], 2, "{counts:?}");
    let ids: Vec<Option<Hash>> = a
        .manager
        .send(GetPeers)
        .await
        .unwrap()
        .iter()
        .map(|p| p.node_id)
        .collect();
    assert!(ids.contains(&Some(first.node_id)) && ids.contains(&Some(second.node_id)));
    // The banned node id comes back from another loopback address: its Hello is refused with
    // `Banned`, and it never becomes a peer.
    let mut again = rogue_from(&a, &key, "127.0.0.2".parse().unwrap()).await;
    assert_eq!(until_cut(&mut again).await, Some(DisconnectReason::Banned));
    let peers = a.manager.send(GetPeers).await.unwrap();
    assert!(
        peers.iter().all(|p| p.node_id != Some(key.node_id())),
        "{peers:?}"
    );
    assert!(
        !a.manager
            .send(IsBanned("127.0.0.2".parse().unwrap()))
            .await
            .unwrap()
    );
}

#[actix_rt::test]
async fn a_flood_of_garbage_handshakes_bans_the_address_one_probe_does_not() {
    let mut c = config(vec![], 8);
    c.peers.trust_loopback = false;
    let a = node(c, NET).await;
    let target = a.listening.unwrap();
    let flooder: std::net::IpAddr = "127.0.0.3".parse().unwrap();
    // Bytes that frame as a Noise message but are no handshake: 25 points each on the address.
    let probe = || async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(flooder, 0)).unwrap();
        let Ok(mut stream) = socket.connect(target).await else {
            return;
        };
        let _ = stream.write_all(&[0, 4, 1, 2, 3, 4]).await;
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut rest)).await;
    };
    probe().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !a.manager.send(IsBanned(flooder)).await.unwrap(),
        "one probe"
    );
    for _ in 0..3 {
        probe().await;
    }
    let start = Instant::now();
    while !a.manager.send(IsBanned(flooder)).await.unwrap() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the flood was not banned"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Only that address: an honest node on 127.0.0.1 still connects.
    let honest = node(config(vec![target], 8), NET).await;
    let counts = wait_for(&[a, honest], Duration::from_secs(10), |c| {
        c.iter().all(|&n| n == 1)
    })
    .await;
    assert_eq!(counts, vec![1, 1]);
}
