//! Sync scenario support: pre-mined chains, preloading them into nodes, and rogue peers that
//! speak the real protocol and lie. Real nodes meet rogues; a protocol client checks what each
//! lie serves over the network; each lie's transform breaks the rule it is meant to break.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use spacetime::chain::validate::{check_body_structure, check_header};
use spacetime::chain::{IndexEntry, InvalidBlock};
use spacetime::target::Work;
use spacetime::wire::{
    DisconnectReason, GetBlocks, GetHeaders, Hello, LocalHello, Message, MessageKind,
    PROTOCOL_VERSION, Ping,
};
use spacetime::{Block, BoundedString, BoundedVec, Genesis, Hash, NodeRng};
use spacetime_actors::net::{Role, Session, StaticKey, Transport, exchange_hello, handshake};
use spacetime_sim::blocks::memory_chain;
use spacetime_sim::rogue::{NON_CONNECTING_SKIP, OVERCLAIM_HEIGHT, bad_body, invalid_header};
use spacetime_sim::{
    Lie, NodeSpec, RogueChain, RogueSpec, SessionEndReason, Sim, SimError, after_tip_ms,
    chain_work, extend_chain, mine_chain,
};

const SECOND: Duration = Duration::from_secs(1);
/// Import time far ahead, for checks that are not about the clock.
const NOW: u64 = u64::MAX / 2;

fn dev() -> Genesis {
    Genesis::builtin("dev").expect("dev genesis")
}

#[test]
fn mined_chains_are_deterministic_and_forks_extend_a_prefix() {
    let g = dev();
    let a = mine_chain(&g, 30, 1).expect("mined");
    assert_eq!(a.len(), 30);
    assert_eq!(a[0].header.parent, g.network_id);
    for (i, w) in a.windows(2).enumerate() {
        assert_eq!(w[1].header.parent, w[0].hash(), "block {}", i + 2);
        assert_eq!(w[1].header.height, i as u64 + 2);
    }
    assert_eq!(mine_chain(&g, 30, 1).expect("mined"), a);
    let b = mine_chain(&g, 30, 2).expect("mined");
    assert_ne!(b[0].hash(), a[0].hash());
    let fork = extend_chain(&g, &a[..10], 5, 2).expect("fork");
    assert_eq!(fork.len(), 5);
    assert_eq!(fork[0].header.height, 11);
    assert_eq!(fork[0].header.parent, a[9].hash());
    assert_ne!(fork[0].hash(), a[10].hash());
    assert!(chain_work(&a) > chain_work(&a[..10]));
    // A base that is not a chain from genesis is refused.
    assert!(extend_chain(&g, &a[1..], 1, 1).is_err());
}

#[test]
fn a_preloaded_node_starts_at_the_tip_of_200_blocks() {
    let g = dev();
    let blocks = mine_chain(&g, 200, 1).expect("mined");
    let mut sim = Sim::starting_at(3, g.clone(), after_tip_ms(&g, &blocks)).expect("sim");
    let i = sim.add_node(NodeSpec::full());
    sim.preload(i, &blocks).expect("preload");
    sim.start_node(i).expect("start");
    let tip = sim.tip(i).expect("tip");
    assert_eq!(tip.height, 200);
    assert_eq!(tip.hash, blocks[199].hash());
    assert_eq!(tip.work, chain_work(&blocks));
    // Preloading a running node, or blocks of the simulated future, is refused.
    assert!(matches!(
        sim.preload(i, &blocks),
        Err(SimError::AlreadyRunning(_))
    ));
    let mut early = Sim::new(3).expect("sim");
    let j = early.add_node(NodeSpec::full());
    assert!(matches!(
        early.preload(j, &blocks),
        Err(SimError::Preload { .. })
    ));
}

#[test]
fn a_node_handshakes_with_an_honest_and_a_withholding_rogue_and_they_receive_its_requests() {
    let g = dev();
    let chain = mine_chain(&g, 20, 1).expect("mined");
    let mut sim = Sim::starting_at(5, g.clone(), after_tip_ms(&g, &chain)).expect("sim");
    let victim = sim.add_node(NodeSpec::full());
    let honest = sim.add_rogue(RogueSpec::new(Lie::Honest, chain.clone()));
    let withhold = sim.add_rogue(RogueSpec::new(Lie::Withhold, chain));
    sim.connect_edges(&[(victim, honest), (victim, withhold)])
        .expect("edges");
    // Rogues are not nodes: starting all starts only the victim.
    sim.start_all().expect("start");
    assert!(matches!(sim.start_node(honest), Err(SimError::Rogue(_))));
    assert!(matches!(sim.tip(honest), Err(SimError::NotRunning(_))));
    assert!(matches!(sim.rogue(victim), Err(SimError::NotRogue(_))));
    assert!(sim.run_until(20 * SECOND, SECOND / 10, |s| {
        s.connected_peers(victim).is_ok_and(|p| p.len() == 2)
    }));
    let ips: Vec<IpAddr> = sim
        .connected_peers(victim)
        .expect("peers")
        .iter()
        .map(|p| p.addr.ip())
        .collect();
    assert!(ips.contains(&sim.ip(honest)) && ips.contains(&sim.ip(withhold)));
    // Long enough for the victim's first ping (every 30 s), answered by both.
    sim.run_for(40 * SECOND);
    for p in sim.connected_peers(victim).expect("peers") {
        assert!(p.latency_ms.is_some(), "no pong from {}", p.addr);
    }
    for r in [honest, withhold] {
        let view = sim.rogue(r).expect("view");
        assert_eq!(
            (view.accepted, view.sessions, view.open),
            (1, 1, 1),
            "{view:?}"
        );
        assert!(view.requests(MessageKind::RequestPeers) >= 1, "{view:?}");
        assert!(view.requests(MessageKind::Ping) >= 1, "{view:?}");
        assert!(view.listen_error.is_none());
    }
    // The victim's goodbye reaches both.
    sim.stop_node(victim).expect("stop");
    sim.run_for(SECOND);
    for r in [honest, withhold] {
        let view = sim.rogue(r).expect("view");
        assert_eq!(view.open, 0);
        assert_eq!(
            view.disconnects(),
            vec![DisconnectReason::Shutdown],
            "{view:?}"
        );
    }
}

#[test]
fn a_run_with_rogues_replays_from_its_seed() {
    let g = dev();
    let chain = mine_chain(&g, 10, 1).expect("mined");
    let run = |seed: u64| {
        let mut sim = Sim::starting_at(seed, g.clone(), after_tip_ms(&g, &chain)).expect("sim");
        sim.add_nodes(2, &NodeSpec::full());
        let r = sim.add_rogue(RogueSpec::new(Lie::Slow { delay: SECOND }, chain.clone()));
        sim.connect_edges(&[(0, 1), (0, r), (1, r)]).expect("edges");
        sim.start_all().expect("start");
        sim.run_for(100 * SECOND);
        (sim.trace().digest(), sim.rogue(r).expect("view"))
    };
    let (digest, view) = run(21);
    assert_eq!(view.sessions, 2, "{view:?}");
    assert_eq!(run(21), (digest, view));
    assert_ne!(run(22).0, digest);
}

/// A protocol client on its own host, talking to a rogue over the simulated network.
struct Client {
    session: Session,
    theirs: Hello,
}

fn client_ip(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(99, n, 0, 1))
}

async fn connect(
    transport: spacetime_sim::SimTransport,
    to: SocketAddr,
    g: &Genesis,
    now_ms: u64,
) -> Client {
    let stream = transport.dial(to).await.expect("dial");
    let mut rng = NodeRng::from_u64(7).derive(&transport.ip().to_string());
    let key = StaticKey::from_private(rng.bytes32());
    let timeout = 10 * SECOND;
    let mut session = handshake(stream, &key, Role::Initiator, timeout, rng.split())
        .await
        .expect("handshake");
    let ours = Hello {
        protocol_version: PROTOCOL_VERSION,
        network_id: g.network_id,
        node_id: key.node_id(),
        best_height: 0,
        best_hash: g.network_id,
        cumulative_work: [0; 32],
        listen_port: 0,
        user_agent: BoundedString::truncating("test-client"),
        capabilities: 0,
        time_ms: now_ms,
    };
    let local = LocalHello {
        network_id: g.network_id,
        node_id: key.node_id(),
    };
    let theirs = exchange_hello(&mut session, &ours, &local, timeout)
        .await
        .expect("hello");
    Client { session, theirs }
}

impl Client {
    async fn next(&mut self, within: Duration) -> Option<Message> {
        tokio::time::timeout(within, self.session.recv())
            .await
            .ok()
            .map(|m| m.expect("message"))
    }

    async fn headers_after(&mut self, locator: Hash) -> Vec<spacetime::BlockHeader> {
        let request = GetHeaders {
            locator: BoundedVec::try_from_vec(vec![locator]).expect("locator"),
            stop: Hash::ZERO,
            max: 2000,
        };
        self.session
            .send(&Message::GetHeaders(request))
            .await
            .expect("send");
        match self.next(SECOND).await {
            Some(Message::Headers(h)) => h.headers.into_inner(),
            other => panic!("expected headers, got {other:?}"),
        }
    }

    async fn get_blocks(&mut self, hashes: Vec<Hash>) {
        let request = GetBlocks {
            hashes: BoundedVec::try_from_vec(hashes).expect("hashes"),
        };
        self.session
            .send(&Message::GetBlocks(request))
            .await
            .expect("send");
    }
}

#[test]
fn each_lie_is_served_over_the_real_protocol() {
    let g = dev();
    let chain = mine_chain(&g, 12, 1).expect("mined");
    let mut sim = Sim::starting_at(9, g.clone(), after_tip_ms(&g, &chain)).expect("sim");
    let slow = Duration::from_secs(7);
    let lies = [
        Lie::Honest,
        Lie::InvalidHeader { at: 3 },
        Lie::NonConnecting,
        Lie::BadBodies,
        Lie::Withhold,
        Lie::Slow { delay: slow },
        Lie::OverclaimWork,
    ];
    let rogues: Vec<usize> = lies
        .iter()
        .map(|&lie| sim.add_rogue(RogueSpec::new(lie, chain.clone())))
        .collect();
    let unknown = Hash([7; 32]);
    for (n, (&lie, &r)) in lies.iter().zip(&rogues).enumerate() {
        let transport = sim.net().transport(client_ip(n as u8));
        let (to, now, g2, chain2) = (sim.addr(r), sim.now_unix_ms(), g.clone(), chain.clone());
        let (theirs, headers, answers, waited) = sim.block_on(async move {
            let mut c = connect(transport, to, &g2, now).await;
            let headers = c.headers_after(g2.network_id).await;
            c.get_blocks(vec![chain2[0].hash(), unknown, chain2[1].hash()])
                .await;
            let mut answers = Vec::new();
            let t0 = tokio::time::Instant::now();
            while let Some(m) = c.next(10 * SECOND).await {
                answers.push(m);
                if answers.len() == 3 {
                    break;
                }
            }
            let waited = t0.elapsed();
            // Pings are answered whatever the lie.
            c.session
                .send(&Message::Ping(Ping { nonce: 5 }))
                .await
                .expect("ping");
            assert_eq!(
                c.next(SECOND).await,
                Some(Message::Pong(Ping { nonce: 5 })),
                "{lie:?}"
            );
            (c.theirs, headers, answers, waited)
        });
        // Hello: the claims.
        if lie == Lie::OverclaimWork {
            assert_eq!(theirs.best_height, 12 + OVERCLAIM_HEIGHT);
            assert!(Work(theirs.cumulative_work) > chain_work(&chain));
        } else {
            assert_eq!(theirs.best_height, 12, "{lie:?}");
            assert_eq!(Work(theirs.cumulative_work), chain_work(&chain), "{lie:?}");
        }
        // Headers.
        match lie {
            Lie::NonConnecting => {
                assert_eq!(headers.len(), 12 - NON_CONNECTING_SKIP);
                assert_eq!(headers[0], chain[NON_CONNECTING_SKIP].header);
            }
            Lie::InvalidHeader { at } => {
                assert_eq!(headers.len(), 12);
                let i = at as usize - 1;
                assert_ne!(headers[i], chain[i].header);
                assert_eq!(headers[i].unsigned, chain[i].header.unsigned);
            }
            _ => {
                let honest: Vec<_> = chain.iter().map(|b| b.header.clone()).collect();
                assert_eq!(headers, honest, "{lie:?}");
            }
        }
        // Blocks: two, then NotFound of the unknown one.
        match lie {
            Lie::Withhold => assert!(answers.is_empty(), "{answers:?}"),
            _ => {
                assert_eq!(answers.len(), 3, "{lie:?}: {answers:?}");
                let Message::Block(first) = &answers[0] else {
                    panic!("{answers:?}")
                };
                if lie == Lie::BadBodies {
                    assert_eq!(first.header, chain[0].header);
                    assert_ne!(**first, chain[0]);
                } else {
                    assert_eq!(**first, chain[0]);
                }
                assert!(matches!(&answers[1], Message::Block(b) if b.header == chain[1].header));
                assert!(matches!(&answers[2], Message::NotFound(nf) if nf.hashes[..] == [unknown]));
                if let Lie::Slow { delay } = lie {
                    assert!(waited >= delay, "{waited:?}");
                } else {
                    assert!(waited < SECOND, "{lie:?}: {waited:?}");
                }
            }
        }
        let view = sim.rogue(r).expect("view");
        assert_eq!(view.requests(MessageKind::GetHeaders), 1);
        assert_eq!(view.requests(MessageKind::GetBlocks), 1);
        match lie {
            Lie::Withhold => assert_eq!((view.withheld, view.blocks_served), (3, 0)),
            _ => assert_eq!((view.blocks_served, view.not_found), (2, 1), "{lie:?}"),
        }
    }
    // The clients are gone: every session ended, closed without a goodbye.
    sim.run_for(SECOND);
    for &r in &rogues {
        let view = sim.rogue(r).expect("view");
        assert_eq!(view.open, 0);
        assert!(matches!(
            view.ended.as_slice(),
            [e] if e.reason == SessionEndReason::Closed
        ));
    }
}

/// The index entry and median time of `parent` in a chain of `blocks`, for header checks.
fn parent_of(g: &Genesis, blocks: &[Block], parent: &Hash) -> (IndexEntry, u64) {
    let mut chain = memory_chain(g).expect("chain");
    for b in blocks {
        chain.import(b.clone(), NOW).expect("import");
    }
    let entry = chain.index().get(parent).expect("parent").clone();
    let median = chain.index().median_time_past(parent).expect("median");
    (entry, median)
}

#[test]
fn each_lie_breaks_the_rule_it_targets() {
    let g = dev();
    let chain = mine_chain(&g, 12, 1).expect("mined");
    // InvalidHeader: the altered header fails the header rules at the signature.
    let (parent, median) = parent_of(&g, &chain[..4], &chain[3].hash());
    assert_eq!(
        check_header(&chain[4].header, &parent, median, NOW, &g.config),
        Ok(())
    );
    let bad = invalid_header(&chain[4].header);
    assert_eq!(
        check_header(&bad, &parent, median, NOW, &g.config),
        Err(InvalidBlock::HeaderSignature)
    );
    let served = RogueChain::new(
        &g,
        &RogueSpec::new(Lie::InvalidHeader { at: 5 }, chain.clone()),
    );
    assert_eq!(served.block(&bad.hash()).map(|b| b.header), Some(bad));
    assert!(served.block(&chain[4].hash()).is_none());
    // BadBodies: the block's body no longer matches its header.
    let body = bad_body(&chain[2]);
    assert!(check_body_structure(&chain[2], g.chain_id).is_ok());
    assert!(matches!(
        check_body_structure(&body, g.chain_id),
        Err(InvalidBlock::TxRoot { .. })
    ));
    let served = RogueChain::new(&g, &RogueSpec::new(Lie::BadBodies, chain.clone()));
    assert_eq!(served.block(&chain[2].hash()), Some(body));
    // NonConnecting: the first header's parent is one the asker does not have.
    let served = RogueChain::new(&g, &RogueSpec::new(Lie::NonConnecting, chain.clone()));
    let request = GetHeaders {
        locator: BoundedVec::try_from_vec(vec![chain[3].hash(), g.network_id]).expect("locator"),
        stop: Hash::ZERO,
        max: 100,
    };
    let headers = served.headers(&request);
    assert_eq!(headers.len(), 12 - 4 - NON_CONNECTING_SKIP);
    assert_eq!(headers[0], chain[4 + NON_CONNECTING_SKIP].header);
    assert_ne!(headers[0].parent, chain[3].hash());
    // Honest: headers after the locator point, up to stop, capped by max.
    let served = RogueChain::new(&g, &RogueSpec::new(Lie::Honest, chain.clone()));
    let mut request = request;
    request.stop = chain[7].hash();
    let headers = served.headers(&request);
    assert_eq!(headers.len(), 4);
    assert_eq!(headers[0], chain[4].header);
    request.max = 2;
    assert_eq!(served.headers(&request).len(), 2);
    // An unknown locator starts at genesis.
    request.locator = BoundedVec::try_from_vec(vec![Hash([1; 32])]).expect("locator");
    request.stop = Hash::ZERO;
    request.max = 2000;
    assert_eq!(served.headers(&request).len(), 12);
    // OverclaimWork: the claims, and overrides for any lie.
    let served = RogueChain::new(&g, &RogueSpec::new(Lie::OverclaimWork, chain.clone()));
    assert_eq!(served.claimed_height(), 12 + OVERCLAIM_HEIGHT);
    assert!(served.claimed_work() > chain_work(&chain));
    let mut spec = RogueSpec::new(Lie::LowWorkChain, chain.clone());
    spec.claimed_height = Some(3);
    spec.claimed_work = Some(Work::ZERO);
    let served = RogueChain::new(&g, &spec);
    assert_eq!(
        (served.claimed_height(), served.claimed_work()),
        (3, Work::ZERO)
    );
    assert_eq!(served.height(), 12);
    assert_eq!(served.tip_hash(), chain[11].hash());
}
