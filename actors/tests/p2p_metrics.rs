//! The network layer's metrics, recorded by two real nodes on loopback.

use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use spacetime::Hash;
use spacetime::p2p::PeerManagerConfig;
use spacetime_actors::net::StaticKey;
use spacetime_actors::p2p::{ChainTip, GetPeers, NetworkConfig, Timeouts, metrics as m, start};
use spacetime_actors::seams::Seams;

fn config(seeds: Vec<std::net::SocketAddr>) -> NetworkConfig {
    NetworkConfig {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        peers: PeerManagerConfig {
            outbound: 8,
            max_inbound: 64,
            max_inbound_per_ip: 64,
            seeds,
            ..PeerManagerConfig::default()
        },
        timeouts: Timeouts {
            handshake: Duration::from_secs(3),
            ping_interval: Duration::from_secs(1),
            idle: Duration::from_secs(5),
        },
        tick: Duration::from_millis(50),
        peer_exchange_interval: Duration::from_secs(1),
        ..NetworkConfig::default()
    }
}

/// A network layer of `net` with `config`, at the genesis tip.
async fn node(config: NetworkConfig, net: Hash) -> spacetime_actors::p2p::Network {
    let tip = ChainTip {
        height: 0,
        hash: net,
        work: [0; 32],
    };
    start(
        config,
        StaticKey::generate().unwrap(),
        net,
        tip,
        &Seams::production().unwrap(),
    )
    .await
    .unwrap()
}

#[test]
fn two_nodes_report_peers_traffic_and_latency() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        actix_rt::System::new().block_on(async {
            let net = Hash([3; 32]);
            let a = node(config(vec![]), net).await;
            let b = node(config(vec![a.listening.unwrap()]), net).await;
            // A client on another network fails its Hello.
            let _c = node(config(vec![a.listening.unwrap()]), Hash([4; 32])).await;
            for _ in 0..100 {
                let up = b
                    .manager
                    .send(GetPeers)
                    .await
                    .unwrap()
                    .iter()
                    .any(|p| p.node_id.is_some());
                if up {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Let two pings go round (one a second).
            tokio::time::sleep(Duration::from_millis(2_300)).await;
        });
    });
    let snapshot = snapshotter.snapshot().into_vec();
    let find = |name: &str, label: Option<(&str, &str)>| {
        snapshot
            .iter()
            .filter(|(k, _, _, _)| k.key().name() == name)
            .filter(|(k, _, _, _)| {
                label.is_none_or(|(lk, lv)| {
                    k.key().labels().any(|l| l.key() == lk && l.value() == lv)
                })
            })
            .map(|(_, _, _, v)| v)
            .collect::<Vec<_>>()
    };
    let gauge = |label| match find(m::PEERS, Some(("direction", label))).as_slice() {
        [DebugValue::Gauge(g)] => g.into_inner(),
        other => panic!("{label} peers: {other:?}"),
    };
    assert_eq!(gauge("inbound"), 1.0);
    assert_eq!(gauge("outbound"), 1.0);
    let counter = |name, label| match find(name, label).as_slice() {
        [DebugValue::Counter(c)] => *c,
        other => panic!("{name}: {other:?}"),
    };
    assert!(counter(m::MESSAGES_SENT, Some(("type", "ping"))) >= 2);
    assert!(counter(m::MESSAGES_RECEIVED, Some(("type", "pong"))) >= 2);
    assert!(counter(m::BYTES_SENT, None) > 100);
    assert!(counter(m::BYTES_RECEIVED, None) > 100);
    assert!(counter(m::HANDSHAKE_FAILURES, Some(("reason", "wrong_network"))) >= 1);
    assert!(
        matches!(find(m::LATENCY, None).as_slice(), [DebugValue::Histogram(h)] if !h.is_empty())
    );
}

#[test]
fn refused_inbound_connections_are_counted_by_reason() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        actix_rt::System::new().block_on(async {
            let net = Hash([3; 32]);
            let mut c = config(vec![]);
            c.peers.max_inbound_per_ip = 1;
            let a = node(c, net).await;
            let addr = a.listening.unwrap();
            // The first holds the address's one slot while its handshake waits; the next two
            // are refused.
            let mut held = Vec::new();
            for _ in 0..3 {
                held.push(tokio::net::TcpStream::connect(addr).await.unwrap());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(held);
        });
    });
    let snapshot = snapshotter.snapshot().into_vec();
    let refused: Vec<_> = snapshot
        .iter()
        .filter(|(k, _, _, _)| k.key().name() == m::INBOUND_REFUSED)
        .filter(|(k, _, _, _)| {
            k.key()
                .labels()
                .any(|l| l.key() == "reason" && l.value() == "ip_limit")
        })
        .map(|(_, _, _, v)| v)
        .collect();
    assert!(
        matches!(refused.as_slice(), [DebugValue::Counter(2)]),
        "{refused:?}"
    );
}
