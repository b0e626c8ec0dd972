use std::time::Duration;

use spacetime::wire::{
    BlockAccepted, GetBlock, Headers, Hello, LocalHello, Message, PROTOCOL_VERSION, Ping,
    TxPoolRequest, capabilities,
};
use spacetime::{BoundedString, BoundedVec, Genesis, Hash};
use tokio::net::{TcpListener, TcpStream};

use super::*;

const T: Duration = Duration::from_secs(5);

fn os_rng() -> spacetime::NodeRng {
    spacetime::NodeRng::from_os().unwrap()
}

async fn pair() -> (Session, Session, StaticKey, StaticKey) {
    let (a, b) = (
        StaticKey::generate().unwrap(),
        StaticKey::generate().unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let b2 = b.clone();
    let accept = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        handshake(stream, &b2, Role::Responder, T, os_rng()).await
    });
    let stream = TcpStream::connect(addr).await.unwrap();
    let initiator = handshake(stream, &a, Role::Initiator, T, os_rng())
        .await
        .unwrap();
    let responder = accept.await.unwrap().unwrap();
    (initiator, responder, a, b)
}

fn hello(key: &StaticKey, network_id: Hash) -> Hello {
    Hello {
        protocol_version: PROTOCOL_VERSION,
        network_id,
        node_id: key.node_id(),
        best_height: 0,
        best_hash: network_id,
        cumulative_work: [0; 32],
        listen_port: 0,
        user_agent: BoundedString::truncating("spacetime-test"),
        capabilities: capabilities::FULL_NODE,
        time_ms: 0,
    }
}

#[tokio::test]
async fn handshake_proves_identities_and_carries_messages_both_ways() {
    let (mut a, mut b, ka, kb) = pair().await;
    assert_eq!(a.remote_node_id(), kb.node_id());
    assert_eq!(b.remote_node_id(), ka.node_id());
    let genesis = Genesis::builtin("dev").unwrap();
    let headers = BoundedVec::try_from_vec(vec![genesis.block.header.clone(); 2000]).unwrap();
    let messages = vec![
        Message::Ping(Ping { nonce: 7 }),
        Message::RequestPeers,
        Message::GetBlock(GetBlock {
            hash: genesis.network_id,
        }),
        Message::Block(Box::new(genesis.block.clone())),
        // Hundreds of kB: crosses several Noise transport messages.
        Message::Headers(Headers { headers }),
        Message::BlockAccepted(BlockAccepted {
            hash: genesis.network_id,
            height: 0,
        }),
        Message::TxPoolRequest(TxPoolRequest { max: 10 }),
    ];
    for m in &messages {
        a.send(m).await.unwrap();
        b.send(m).await.unwrap();
    }
    for m in &messages {
        assert_eq!(&b.recv().await.unwrap(), m);
        assert_eq!(&a.recv().await.unwrap(), m);
    }
    let t = a.traffic();
    assert_eq!(t.messages_out, messages.len() as u64);
    let headers_bytes = 2000 * spacetime::encode(&genesis.block.header).len() as u64;
    assert!(t.bytes_out > headers_bytes, "{t:?}");
    assert_eq!(t.bytes_in, t.bytes_out);
}

/// One message of every type the protocol has.
fn every_kind(genesis: &Genesis) -> Vec<Message> {
    use spacetime::block::ProofOfSpace;
    use spacetime::wire::{
        BlockAnnounce, Disconnect, DisconnectReason, GetBlocks, GetHeaders, NewChallenge, NotFound,
        PeerAddr, PeerList, ProofSubmission, SendBlocks, TxIds, Txs,
    };
    let tx = {
        let key = spacetime::Keypair::generate();
        spacetime::UnsignedTransfer {
            from: key.public(),
            to: spacetime::PublicKey([2; 32]),
            amount: spacetime::Amount(5),
            fee: spacetime::Amount(1),
            nonce: 0,
            chain_id: genesis.chain_id,
        }
        .sign(&key)
        .unwrap()
    };
    vec![
        Message::Hello(hello(&StaticKey::generate().unwrap(), genesis.network_id)),
        Message::PeerList(PeerList {
            peers: BoundedVec::try_from_vec(vec![PeerAddr {
                ip: "127.0.0.1".parse().unwrap(),
                port: 9444,
                capabilities: 1,
                last_seen_ms: 5,
            }])
            .unwrap(),
        }),
        Message::RequestPeers,
        Message::GetHeaders(GetHeaders {
            locator: BoundedVec::try_from_vec(vec![genesis.network_id]).unwrap(),
            stop: Hash::ZERO,
            max: 2000,
        }),
        Message::Headers(Headers {
            headers: BoundedVec::try_from_vec(vec![genesis.block.header.clone()]).unwrap(),
        }),
        Message::GetBlock(GetBlock {
            hash: genesis.network_id,
        }),
        Message::Block(Box::new(genesis.block.clone())),
        Message::Ping(Ping { nonce: 1 }),
        Message::Pong(Ping { nonce: 1 }),
        Message::NewChallenge(NewChallenge {
            parent: genesis.network_id,
            height: 1,
            epoch: 1,
            challenge: Hash([9; 32]),
            target: genesis.block.header.target,
        }),
        Message::ProofSubmission(ProofSubmission {
            challenge: Hash([9; 32]),
            proof: ProofOfSpace {
                plot_seed: Hash([1; 32]),
                group: 3,
            },
            miner: spacetime::PublicKey([4; 32]),
            score: Hash([5; 32]),
            signature: spacetime::Signature([6; 64]),
        }),
        Message::BlockProposal(Box::new(genesis.block.clone())),
        Message::BlockAccepted(BlockAccepted {
            hash: genesis.network_id,
            height: 0,
        }),
        Message::Tx(Box::new(tx.clone())),
        Message::TxPoolRequest(TxPoolRequest { max: 10 }),
        Message::Disconnect(Disconnect {
            reason: DisconnectReason::Shutdown,
            detail: BoundedString::truncating("bye"),
        }),
        Message::GetBlocks(GetBlocks {
            hashes: BoundedVec::try_from_vec(vec![genesis.network_id, Hash([7; 32])]).unwrap(),
        }),
        Message::NotFound(NotFound {
            hashes: BoundedVec::try_from_vec(vec![Hash([7; 32])]).unwrap(),
        }),
        Message::BlockAnnounce(BlockAnnounce {
            hash: genesis.network_id,
            height: 0,
            work: [1; 32],
        }),
        Message::TxInv(TxIds {
            ids: BoundedVec::try_from_vec(vec![tx.id()]).unwrap(),
        }),
        Message::GetTxs(TxIds {
            ids: BoundedVec::try_from_vec(vec![tx.id()]).unwrap(),
        }),
        Message::Txs(Txs {
            transfers: BoundedVec::try_from_vec(vec![tx]).unwrap(),
        }),
        Message::SendBlocks(SendBlocks { push: true }),
        Message::CompactBlock(Box::new(spacetime::wire::CompactBlock::of(&genesis.block))),
    ]
}

#[tokio::test]
async fn every_message_type_crosses_a_session() {
    let (mut a, mut b, _, _) = pair().await;
    let genesis = Genesis::builtin("dev").unwrap();
    let messages = every_kind(&genesis);
    let kinds: std::collections::BTreeSet<_> = messages.iter().map(Message::kind).collect();
    assert_eq!(kinds.len(), spacetime::wire::MessageKind::ALL.len());
    for m in &messages {
        a.queue(m).unwrap();
    }
    a.flush().await.unwrap();
    for m in &messages {
        assert_eq!(&b.recv().await.unwrap(), m);
    }
}

#[tokio::test]
async fn queued_messages_go_out_in_one_flush() {
    let (mut a, mut b, _, _) = pair().await;
    for nonce in 0..100 {
        a.queue(&Message::Ping(Ping { nonce })).unwrap();
    }
    assert!(a.queued_bytes() > 0);
    assert_eq!(a.traffic().bytes_out, 0);
    a.flush().await.unwrap();
    assert_eq!(a.queued_bytes(), 0);
    for nonce in 0..100 {
        assert_eq!(b.recv().await.unwrap(), Message::Ping(Ping { nonce }));
    }
    // Per message: 4-byte length, Noise length prefix and tag, then the payload.
    let per_message = a.traffic().bytes_out / 100;
    let payload = spacetime::encode(&Message::Ping(Ping { nonce: 50 })).len() as u64;
    assert!(
        per_message >= payload + 22 && per_message <= payload + 23,
        "{per_message}"
    );
}

#[tokio::test]
async fn recv_survives_cancellation_mid_message() {
    let (mut a, mut b, _, _) = pair().await;
    let genesis = Genesis::builtin("dev").unwrap();
    let big = Message::Headers(Headers {
        headers: BoundedVec::try_from_vec(vec![genesis.block.header.clone(); 2000]).unwrap(),
    });
    a.queue(&big).unwrap();
    a.queue(&Message::Ping(Ping { nonce: 1 })).unwrap();
    let wire = a.take_queued();
    // Half of the first Noise message arrives; the receive is cancelled by a timeout while
    // those bytes sit in its buffer.
    a.write_raw(&wire[..30_000]).await.unwrap();
    let first = tokio::time::timeout(Duration::from_millis(50), b.recv()).await;
    assert!(first.is_err(), "nothing complete yet");
    // The rest arrives: the next call continues where the cancelled one stopped.
    a.write_raw(&wire[30_000..]).await.unwrap();
    assert_eq!(b.recv().await.unwrap(), big);
    assert_eq!(b.recv().await.unwrap(), Message::Ping(Ping { nonce: 1 }));
}

#[tokio::test]
async fn hello_exchange_accepts_same_network_and_refuses_another() {
    let (mut a, mut b, ka, kb) = pair().await;
    let net = Hash([1; 32]);
    let (la, lb) = (
        LocalHello {
            network_id: net,
            node_id: ka.node_id(),
        },
        LocalHello {
            network_id: net,
            node_id: kb.node_id(),
        },
    );
    let (ha, hb) = (hello(&ka, net), hello(&kb, net));
    let (ra, rb) = tokio::join!(
        exchange_hello(&mut a, &ha, &la, T),
        exchange_hello(&mut b, &hb, &lb, T)
    );
    assert_eq!(ra.unwrap(), hb);
    assert_eq!(rb.unwrap(), ha);

    let (mut a, mut b, ka, kb) = pair().await;
    let la = LocalHello {
        network_id: net,
        node_id: ka.node_id(),
    };
    let lb = LocalHello {
        network_id: Hash([2; 32]),
        node_id: kb.node_id(),
    };
    let (ha, hb) = (hello(&ka, net), hello(&kb, Hash([2; 32])));
    let (ra, rb) = tokio::join!(
        exchange_hello(&mut a, &ha, &la, T),
        exchange_hello(&mut b, &hb, &lb, T)
    );
    assert!(
        matches!(
            ra,
            Err(HelloError::Refused(
                spacetime::wire::DisconnectReason::WrongNetwork
            ))
        ),
        "{ra:?}"
    );
    assert!(
        matches!(
            rb,
            Err(HelloError::Refused(
                spacetime::wire::DisconnectReason::WrongNetwork
            ))
        ),
        "{rb:?}"
    );
}

#[tokio::test]
async fn a_hello_claiming_another_identity_is_refused() {
    let (mut a, mut b, ka, kb) = pair().await;
    let net = Hash([1; 32]);
    let mut lying = hello(&ka, net);
    let honest = hello(&kb, net);
    lying.node_id = Hash([42; 32]);
    let lb = LocalHello {
        network_id: net,
        node_id: kb.node_id(),
    };
    let la = LocalHello {
        network_id: net,
        node_id: ka.node_id(),
    };
    let (ra, rb) = tokio::join!(
        exchange_hello(&mut a, &lying, &la, T),
        exchange_hello(&mut b, &honest, &lb, T)
    );
    assert!(
        matches!(
            rb,
            Err(HelloError::Refused(
                spacetime::wire::DisconnectReason::ProtocolViolation
            ))
        ),
        "{rb:?}"
    );
    assert!(ra.is_err() || matches!(a.recv().await, Ok(Message::Disconnect(_)) | Err(_)));
}

#[tokio::test]
async fn oversized_and_unknown_frames_end_the_session() {
    let (mut a, mut b, _, _) = pair().await;
    // A frame announcing a 3 MB block.
    a.send_raw_plaintext(&[0x00, 0x30, 0x00, 0x00, 6])
        .await
        .unwrap();
    assert!(matches!(
        b.recv().await,
        Err(TransportError::Frame(
            spacetime::wire::FrameError::TooLarge { .. }
        ))
    ));
    let (mut a, mut b, _, _) = pair().await;
    a.send_raw_plaintext(&[0, 0, 0, 1, 99]).await.unwrap();
    assert!(matches!(
        b.recv().await,
        Err(TransportError::Frame(
            spacetime::wire::FrameError::UnknownType(99)
        ))
    ));
}

#[tokio::test]
async fn garbage_and_silence_fail_the_handshake_cleanly() {
    let key = StaticKey::generate().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Garbage: a length prefix and random bytes instead of an ephemeral key.
    let garbage = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&[0, 5, 1, 2, 3, 4, 5, 0xff, 0xff])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    });
    let (stream, _) = listener.accept().await.unwrap();
    let result = handshake(
        stream,
        &key,
        Role::Responder,
        Duration::from_secs(2),
        os_rng(),
    )
    .await;
    assert!(
        matches!(
            result,
            Err(TransportError::Noise(_) | TransportError::Closed)
        ),
        "{result:?}"
    );
    garbage.await.unwrap();
    // Silence: a connection that never speaks times out.
    let _silent = TcpStream::connect(addr).await.unwrap();
    let (stream, _) = listener.accept().await.unwrap();
    let result = handshake(
        stream,
        &key,
        Role::Responder,
        Duration::from_millis(200),
        os_rng(),
    )
    .await;
    assert!(
        matches!(result, Err(TransportError::HandshakeTimeout)),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_plain_noise_client_completes_the_handshake_and_reads_the_hello() {
    // An independent client: snow driven directly over a blocking socket with nothing but the
    // specification's framing (2-byte big-endian lengths) and our prologue.
    let server_key = StaticKey::generate().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || -> Result<Message, String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
        let params: snow::params::NoiseParams = "Noise_XX_25519_ChaChaPoly_BLAKE2s"
            .parse()
            .map_err(|e| format!("{e}"))?;
        let builder = snow::Builder::new(params);
        let kp = builder.generate_keypair().map_err(|e| e.to_string())?;
        let mut hs = snow::Builder::new(
            "Noise_XX_25519_ChaChaPoly_BLAKE2s"
                .parse()
                .map_err(|e| format!("{e}"))?,
        )
        .local_private_key(&kp.private)
        .map_err(|e| e.to_string())?
        .prologue(b"spacetime/noise/1")
        .map_err(|e| e.to_string())?
        .build_initiator()
        .map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 65535];
        let mut msg = vec![0u8; 65535];
        let send = |s: &mut std::net::TcpStream, m: &[u8]| -> std::io::Result<()> {
            s.write_all(&(m.len() as u16).to_be_bytes())?;
            s.write_all(m)
        };
        let recv = |s: &mut std::net::TcpStream, m: &mut [u8]| -> std::io::Result<usize> {
            let mut l = [0u8; 2];
            s.read_exact(&mut l)?;
            let l = usize::from(u16::from_be_bytes(l));
            s.read_exact(&mut m[..l])?;
            Ok(l)
        };
        let n = hs.write_message(&[], &mut buf).map_err(|e| e.to_string())?;
        send(&mut s, &buf[..n]).map_err(|e| e.to_string())?;
        let n = recv(&mut s, &mut msg).map_err(|e| e.to_string())?;
        hs.read_message(&msg[..n], &mut buf)
            .map_err(|e| e.to_string())?;
        let n = hs.write_message(&[], &mut buf).map_err(|e| e.to_string())?;
        send(&mut s, &buf[..n]).map_err(|e| e.to_string())?;
        let mut transport = hs.into_transport_mode().map_err(|e| e.to_string())?;
        let n = recv(&mut s, &mut msg).map_err(|e| e.to_string())?;
        let n = transport
            .read_message(&msg[..n], &mut buf)
            .map_err(|e| e.to_string())?;
        // One frame: u32 big-endian length, then the payload, filling the message exactly.
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if 4 + len != n {
            return Err(format!("frame of {len} bytes in a message of {n}"));
        }
        spacetime::decode::<Message>(&buf[4..n]).map_err(|e| e.to_string())
    });
    let (stream, _) = listener.accept().await.unwrap();
    let mut session = handshake(stream, &server_key, Role::Responder, T, os_rng())
        .await
        .unwrap();
    let ours = hello(&server_key, Hash([3; 32]));
    session.send(&Message::Hello(ours.clone())).await.unwrap();
    let received = tokio::task::spawn_blocking(move || client.join())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(received, Ok(Message::Hello(ours)));
}

#[test]
fn static_keys_round_trip_and_identify() {
    let k = StaticKey::generate().unwrap();
    let again = StaticKey::from_private(k.private_bytes());
    assert_eq!(again.public(), k.public());
    assert_eq!(again.node_id(), k.node_id());
    assert_ne!(StaticKey::generate().unwrap().node_id(), k.node_id());
    assert!(!format!("{k:?}").contains(&spacetime::bytes::to_hex(&k.private_bytes())));
    let fixed = StaticKey::from_private([0x5a; 32]);
    let shown = format!("{fixed:?} {fixed:#?}");
    assert_eq!(
        format!("{fixed:?}"),
        format!("StaticKey(node id {})", fixed.node_id())
    );
    let secret = spacetime::bytes::to_hex(&[0x5a; 32]);
    assert!(
        !shown.contains(&secret) && !shown.contains("90, 90"),
        "{shown}"
    );
}

#[test]
fn node_keys_persist_and_match_snow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.key");
    let created = StaticKey::load_or_create(&path, &mut os_rng()).unwrap();
    let loaded = StaticKey::load_or_create(&path, &mut os_rng()).unwrap();
    assert_eq!(created.public(), loaded.public());
    // Our X25519 derivation agrees with snow's own key generation.
    let snow_pair = snow::Builder::new(NOISE_PARAMS.parse().unwrap())
        .generate_keypair()
        .unwrap();
    let private: [u8; 32] = snow_pair.private.as_slice().try_into().unwrap();
    assert_eq!(
        StaticKey::from_private(private).public().as_slice(),
        snow_pair.public.as_slice()
    );
    // A damaged key file is an error, not a silently new identity.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    assert!(StaticKey::load_or_create(&path, &mut os_rng()).is_err());
}

#[test]
fn a_real_nodes_key_comes_from_the_os_not_from_its_seed() {
    let dir = tempfile::tempdir().unwrap();
    let create = |root: &spacetime::NodeRng, name: &str| {
        let path = dir.path().join(name);
        StaticKey::load_or_create(&path, &mut root.derive("node-key")).unwrap()
    };
    // One production root, one label: the same stream twice, yet two identities.
    let root = os_rng();
    assert_ne!(
        create(&root, "a.key").node_id(),
        create(&root, "b.key").node_id()
    );
    // In the simulator the key is a function of the seed.
    let sim = spacetime::NodeRng::from_u64(5);
    assert_eq!(
        create(&sim, "c.key").node_id(),
        create(&sim, "d.key").node_id()
    );
}

#[tokio::test]
async fn a_real_nodes_ephemeral_keys_come_from_the_os() {
    let (a, b) = (
        StaticKey::from_private([1; 32]),
        StaticKey::from_private([2; 32]),
    );
    // Both handshakes draw from children of one production root with the same labels.
    let root = os_rng();
    let (i1, _) = pair_with(&a, &b, root.derive("a"), root.derive("b")).await;
    let (i2, _) = pair_with(&a, &b, root.derive("a"), root.derive("b")).await;
    assert_ne!(first_ciphertext(i1), first_ciphertext(i2));
}

/// The bytes of a session's first transport message (a fixed Ping): equal only when the
/// handshakes drew the same keys.
fn first_ciphertext(mut s: Session) -> Vec<u8> {
    s.queue(&Message::Ping(spacetime::wire::Ping { nonce: 9 }))
        .unwrap();
    s.take_queued()
}

/// Both ends of a handshake over an in-memory pipe with seeded generators.
async fn seeded_pair(a: &StaticKey, b: &StaticKey, seed: u64) -> (Session, Session) {
    let root = spacetime::NodeRng::from_u64(seed);
    pair_with(a, b, root.derive("a"), root.derive("b")).await
}

/// Both ends of a handshake over an in-memory pipe, with the given generators.
async fn pair_with(
    a: &StaticKey,
    b: &StaticKey,
    ra: spacetime::NodeRng,
    rb: spacetime::NodeRng,
) -> (Session, Session) {
    let (x, y) = tokio::io::duplex(64 * 1024);
    let (b2, t) = (b.clone(), T);
    let responder = tokio::spawn(async move { handshake(y, &b2, Role::Responder, t, rb).await });
    let initiator = handshake(x, a, Role::Initiator, T, ra).await.unwrap();
    (initiator, responder.await.unwrap().unwrap())
}

#[tokio::test]
async fn seeded_handshakes_over_memory_pipes_repeat_byte_for_byte() {
    let (a, b) = (
        StaticKey::from_private([1; 32]),
        StaticKey::from_private([2; 32]),
    );
    let (i1, r1) = seeded_pair(&a, &b, 7).await;
    let (i2, _) = seeded_pair(&a, &b, 7).await;
    let (i3, _) = seeded_pair(&a, &b, 8).await;
    assert_eq!(r1.remote_node_id(), a.node_id());
    let (c1, c2, c3) = (
        first_ciphertext(i1),
        first_ciphertext(i2),
        first_ciphertext(i3),
    );
    assert_eq!(c1, c2, "same seeds, same session keys");
    assert_ne!(c1, c3, "another seed, other ephemeral keys");
    // And the session works over the pipe.
    let (mut i4, mut r4) = seeded_pair(&a, &b, 9).await;
    i4.send(&Message::Ping(spacetime::wire::Ping { nonce: 5 }))
        .await
        .unwrap();
    assert_eq!(
        r4.recv().await.unwrap(),
        Message::Ping(spacetime::wire::Ping { nonce: 5 })
    );
}
