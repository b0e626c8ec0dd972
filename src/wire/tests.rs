use super::*;
use crate::block::{HEADER_VERSION, ProofOfSpace, UnsignedHeader};
use crate::encoding::{BoundedBytes, BoundedString, BoundedVec, encode};
use crate::limits::{MAX_COINBASE_EXTRA_BYTES, MAX_COINBASE_OUTPUTS, MAX_TRANSFERS_PER_BLOCK};
use crate::tx::{ChainId, CoinbaseOutput, UnsignedTransfer};
use crate::{Amount, Block, BlockHeader, Coinbase, Hash, PublicKey, Signature, Target, Transfer};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn header(n: u64) -> BlockHeader {
    BlockHeader {
        unsigned: UnsignedHeader {
            version: HEADER_VERSION,
            height: n,
            parent: Hash([1; 32]),
            timestamp_ms: n,
            epoch: n,
            target: Target::MAX,
            challenge: Hash([2; 32]),
            proof: ProofOfSpace {
                plot_seed: Hash([3; 32]),
                group: n,
            },
            score: Hash([4; 32]),
            miner: PublicKey([5; 32]),
            tx_root: Hash([6; 32]),
            state_root: Hash([7; 32]),
        },
        signature: Signature([8; 64]),
    }
}

fn transfer(n: u64) -> Transfer {
    Transfer {
        unsigned: UnsignedTransfer {
            from: PublicKey([1; 32]),
            to: PublicKey([2; 32]),
            amount: Amount(n),
            fee: Amount(n),
            nonce: n,
            chain_id: ChainId(n),
        },
        signature: Signature([3; 64]),
    }
}

fn block(n: u64, transfers: usize) -> Block {
    Block {
        header: header(n),
        coinbase: Coinbase {
            height: n,
            outputs: BoundedVec::try_from_vec(vec![CoinbaseOutput {
                to: PublicKey([9; 32]),
                amount: Amount(n),
            }])
            .unwrap(),
            miner: PublicKey([5; 32]),
            extra_data: BoundedBytes::new(),
        },
        transfers: BoundedVec::try_from_vec((0..transfers as u64).map(transfer).collect()).unwrap(),
    }
}

fn hello(n: u64) -> Hello {
    Hello {
        protocol_version: PROTOCOL_VERSION,
        network_id: Hash([1; 32]),
        node_id: Hash([2; 32]),
        best_height: n,
        best_hash: Hash([3; 32]),
        cumulative_work: [4; 32],
        listen_port: 9444,
        user_agent: BoundedString::try_from_str("spacetime/0.1.0").unwrap(),
        capabilities: capabilities::FULL_NODE | capabilities::TX_RELAY,
        time_ms: n,
    }
}

/// One message of every kind, with field values chosen from `n`.
fn one_of_each(n: u64) -> Vec<Message> {
    vec![
        Message::Hello(hello(n)),
        Message::PeerList(PeerList {
            peers: BoundedVec::try_from_vec(vec![
                PeerAddr {
                    ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    port: 1,
                    capabilities: n,
                    last_seen_ms: n,
                },
                PeerAddr {
                    ip: IpAddr::V6(Ipv6Addr::LOCALHOST),
                    port: 65535,
                    capabilities: 0,
                    last_seen_ms: 0,
                },
            ])
            .unwrap(),
        }),
        Message::RequestPeers,
        Message::GetHeaders(GetHeaders {
            locator: BoundedVec::try_from_vec(vec![Hash([n as u8; 32]); 3]).unwrap(),
            stop: Hash::ZERO,
            max: 2000,
        }),
        Message::Headers(Headers {
            headers: BoundedVec::try_from_vec(vec![header(n), header(n + 1)]).unwrap(),
        }),
        Message::GetBlock(GetBlock {
            hash: Hash([n as u8; 32]),
        }),
        Message::Block(Box::new(block(n, 2))),
        Message::Ping(Ping { nonce: n }),
        Message::Pong(Ping { nonce: n }),
        Message::NewChallenge(NewChallenge {
            parent: Hash([1; 32]),
            height: n,
            epoch: n,
            challenge: Hash([2; 32]),
            target: Target::MAX,
        }),
        Message::ProofSubmission(ProofSubmission {
            challenge: Hash([1; 32]),
            proof: ProofOfSpace {
                plot_seed: Hash([2; 32]),
                group: n,
            },
            miner: PublicKey([3; 32]),
            score: Hash([4; 32]),
            signature: Signature([5; 64]),
        }),
        Message::BlockProposal(Box::new(block(n, 0))),
        Message::BlockAccepted(BlockAccepted {
            hash: Hash([1; 32]),
            height: n,
        }),
        Message::Tx(Box::new(transfer(n))),
        Message::TxPoolRequest(TxPoolRequest { max: n as u32 }),
        Message::Disconnect(Disconnect {
            reason: DisconnectReason::RateLimited,
            detail: BoundedString::try_from_str("slow down").unwrap(),
        }),
        Message::GetBlocks(GetBlocks {
            hashes: BoundedVec::try_from_vec(vec![Hash([n as u8; 32]), Hash([1; 32])]).unwrap(),
        }),
        Message::NotFound(NotFound {
            hashes: BoundedVec::try_from_vec(vec![Hash([2; 32])]).unwrap(),
        }),
        Message::BlockAnnounce(BlockAnnounce {
            hash: Hash([3; 32]),
            height: n,
            work: [4; 32],
        }),
        Message::TxInv(TxIds {
            ids: BoundedVec::try_from_vec(vec![Hash([5; 32]), Hash([n as u8; 32])]).unwrap(),
        }),
        Message::GetTxs(TxIds {
            ids: BoundedVec::try_from_vec(vec![Hash([6; 32])]).unwrap(),
        }),
        Message::Txs(Txs {
            transfers: BoundedVec::try_from_vec(vec![transfer(n), transfer(n + 1)]).unwrap(),
        }),
        Message::SendBlocks(SendBlocks { push: true }),
        Message::CompactBlock(Box::new(CompactBlock::of(&block(n, 3)))),
    ]
}

#[test]
fn every_kind_round_trips_and_tags_match() {
    let messages = one_of_each(300);
    assert_eq!(messages.len(), MessageKind::ALL.len());
    for (message, kind) in messages.iter().zip(MessageKind::ALL) {
        assert_eq!(message.kind(), kind);
        let bytes = encode(message);
        assert_eq!(bytes[0], kind.tag(), "{}", kind.name());
        assert!(bytes.len() <= kind.max_len(), "{}", kind.name());
        assert_eq!(&crate::decode::<Message>(&bytes).unwrap(), message);
        assert_eq!(MessageKind::from_tag(kind.tag()), Some(kind));
    }
    assert_eq!(MessageKind::ALL.len(), 24);
    assert_eq!(MessageKind::from_tag(24), None);
    assert_eq!(MessageKind::from_tag(255), None);
}

#[test]
fn largest_messages_fit_their_limits_exactly() {
    let max_hello = Hello {
        protocol_version: u32::MAX,
        best_height: u64::MAX,
        listen_port: u16::MAX,
        user_agent: BoundedString::try_from_str(&"x".repeat(MAX_USER_AGENT_BYTES)).unwrap(),
        capabilities: u64::MAX,
        time_ms: u64::MAX,
        ..hello(0)
    };
    let addr = PeerAddr {
        ip: IpAddr::V6(Ipv6Addr::LOCALHOST),
        port: u16::MAX,
        capabilities: u64::MAX,
        last_seen_ms: u64::MAX,
    };
    let max_header = BlockHeader {
        unsigned: UnsignedHeader {
            version: u32::MAX,
            height: u64::MAX,
            timestamp_ms: u64::MAX,
            epoch: u64::MAX,
            proof: ProofOfSpace {
                plot_seed: Hash::ZERO,
                group: u64::MAX,
            },
            ..header(0).unsigned
        },
        ..header(0)
    };
    let cases = [
        Message::Hello(max_hello),
        Message::PeerList(PeerList {
            peers: BoundedVec::try_from_vec(vec![addr; MAX_PEERS_PER_MESSAGE]).unwrap(),
        }),
        Message::GetHeaders(GetHeaders {
            locator: BoundedVec::try_from_vec(vec![Hash::ZERO; MAX_LOCATOR_HASHES]).unwrap(),
            stop: Hash::ZERO,
            max: u16::MAX,
        }),
        Message::Headers(Headers {
            headers: BoundedVec::try_from_vec(vec![max_header.clone(); MAX_HEADERS_PER_MESSAGE])
                .unwrap(),
        }),
        Message::Ping(Ping { nonce: u64::MAX }),
        Message::BlockAccepted(BlockAccepted {
            hash: Hash::ZERO,
            height: u64::MAX,
        }),
        Message::TxPoolRequest(TxPoolRequest { max: u32::MAX }),
        Message::Disconnect(Disconnect {
            reason: DisconnectReason::Shutdown,
            detail: BoundedString::try_from_str(&"y".repeat(MAX_DISCONNECT_DETAIL_BYTES)).unwrap(),
        }),
        Message::NewChallenge(NewChallenge {
            parent: Hash::ZERO,
            height: u64::MAX,
            epoch: u64::MAX,
            challenge: Hash::ZERO,
            target: Target::MAX,
        }),
        Message::ProofSubmission(ProofSubmission {
            challenge: Hash::ZERO,
            proof: ProofOfSpace {
                plot_seed: Hash::ZERO,
                group: u64::MAX,
            },
            miner: PublicKey::ZERO,
            score: Hash::ZERO,
            signature: Signature::ZERO,
        }),
        Message::GetBlocks(GetBlocks {
            hashes: BoundedVec::try_from_vec(vec![Hash::ZERO; MAX_BLOCKS_PER_REQUEST]).unwrap(),
        }),
        Message::NotFound(NotFound {
            hashes: BoundedVec::try_from_vec(vec![Hash::ZERO; MAX_BLOCKS_PER_REQUEST]).unwrap(),
        }),
        Message::BlockAnnounce(BlockAnnounce {
            hash: Hash::ZERO,
            height: u64::MAX,
            work: [0xff; 32],
        }),
        Message::TxInv(TxIds {
            ids: BoundedVec::try_from_vec(vec![Hash::ZERO; MAX_TX_IDS_PER_MESSAGE]).unwrap(),
        }),
        Message::GetTxs(TxIds {
            ids: BoundedVec::try_from_vec(vec![Hash::ZERO; MAX_TX_IDS_PER_MESSAGE]).unwrap(),
        }),
        Message::SendBlocks(SendBlocks { push: false }),
    ];
    for m in cases {
        assert_eq!(encode(&m).len(), m.kind().max_len(), "{}", m.kind().name());
    }
    // The largest block and coinbase stay under the block message limit.
    let mut big = block(u64::MAX, crate::limits::MAX_TRANSFERS_PER_BLOCK);
    big.coinbase.outputs = BoundedVec::try_from_vec(vec![
        CoinbaseOutput {
            to: PublicKey::ZERO,
            amount: Amount::MAX
        };
        MAX_COINBASE_OUTPUTS
    ])
    .unwrap();
    big.coinbase.extra_data = BoundedBytes::try_from_slice(&[0; MAX_COINBASE_EXTRA_BYTES]).unwrap();
    assert!(encode(&Message::Block(Box::new(big.clone()))).len() <= MessageKind::Block.max_len());
    // The largest header and coinbase with the most transfer ids fill a `CompactBlock`.
    let compact = CompactBlock {
        header: max_header.clone(),
        coinbase: big.coinbase.clone(),
        transfer_ids: BoundedVec::try_from_vec(vec![Hash::ZERO; MAX_TRANSFERS_PER_BLOCK]).unwrap(),
    };
    assert_eq!(
        encode(&Message::CompactBlock(Box::new(compact))).len(),
        MessageKind::CompactBlock.max_len()
    );
    // The largest transfers fill a `Txs` batch within its limit.
    let largest = transfer(u64::MAX);
    let txs = Message::Txs(Txs {
        transfers: BoundedVec::try_from_vec(vec![largest; MAX_TXS_PER_MESSAGE]).unwrap(),
    });
    assert_eq!(encode(&txs).len(), MessageKind::Txs.max_len());
}

#[test]
fn block_requests_are_bounded() {
    assert_eq!(MessageKind::GetBlocks.max_len(), 4099);
    assert_eq!(MessageKind::NotFound.max_len(), 4099);
    assert_eq!(MessageKind::GetBlocks.name(), "get_blocks");
    assert_eq!(MessageKind::NotFound.name(), "not_found");
    assert!(
        BoundedVec::<Hash, MAX_BLOCKS_PER_REQUEST>::try_from_vec(vec![
            Hash::ZERO;
            MAX_BLOCKS_PER_REQUEST + 1
        ])
        .is_err()
    );
    let empty = Message::GetBlocks(GetBlocks {
        hashes: BoundedVec::new(),
    });
    assert_eq!(encode(&empty), vec![MessageKind::GetBlocks.tag(), 0]);
    assert_eq!(
        crate::decode::<Message>(&[17, 0]).unwrap().kind(),
        MessageKind::NotFound
    );
    for tag in [MessageKind::GetBlocks.tag(), MessageKind::NotFound.tag()] {
        // 129 hashes: a count over the bound is refused, whatever follows.
        let mut over = vec![tag, 0x81, 0x01];
        over.extend_from_slice(&[0; 129 * 32]);
        assert!(crate::decode::<Message>(&over).is_err(), "{tag}");
        // A frame announcing more than the limit is refused from its header.
        let len = (MessageKind::GetBlocks.max_len() as u32 + 1).to_be_bytes();
        let mut d = FrameDecoder::new();
        let mut out = Vec::new();
        assert!(matches!(
            d.push_messages(&[len[0], len[1], len[2], len[3], tag], &mut out),
            Err(FrameError::TooLarge { max: 4099, .. })
        ));
        // A count larger than the hashes present, and a trailing byte.
        let mut short = vec![tag, 2];
        short.extend_from_slice(&[7; 63]);
        assert!(crate::decode::<Message>(&short).is_err(), "{tag} truncated");
        let mut long = vec![tag, 1];
        long.extend_from_slice(&[7; 33]);
        assert!(crate::decode::<Message>(&long).is_err(), "{tag} trailing");
        // A non-minimal count (0x80 0x00 for zero) is not canonical.
        assert!(
            crate::decode::<Message>(&[tag, 0x80, 0x00]).is_err(),
            "{tag} overlong"
        );
    }
}

#[test]
fn frames_decode_whatever_the_chunking() {
    let messages = one_of_each(7);
    let mut stream = Vec::new();
    for m in &messages {
        encode_frame_into(m, &mut stream);
    }
    for chunk in [1usize, 2, 3, 5, 64, 1000, stream.len()] {
        let mut decoder = FrameDecoder::new();
        let mut out = Vec::new();
        for piece in stream.chunks(chunk) {
            decoder.push_messages(piece, &mut out).unwrap();
        }
        assert_eq!(out, messages, "chunk size {chunk}");
        assert!(decoder.is_idle());
    }
}

#[test]
fn frame_header_is_checked_before_the_payload() {
    let mut out = Vec::new();
    // Announces a 3 MB block: refused from the five header bytes alone.
    let mut d = FrameDecoder::new();
    let err = d
        .push_messages(&[0, 0x30, 0, 0, MessageKind::Block.tag()], &mut out)
        .unwrap_err();
    assert!(
        matches!(err, FrameError::TooLarge { kind: "block", .. }),
        "{err}"
    );
    // A ping can never be 100 bytes.
    let mut d = FrameDecoder::new();
    assert!(matches!(
        d.push_messages(&[0, 0, 0, 100, MessageKind::Ping.tag()], &mut out),
        Err(FrameError::TooLarge { .. })
    ));
    let mut d = FrameDecoder::new();
    assert_eq!(
        d.push_messages(&[0, 0, 0, 5, 200], &mut out),
        Err(FrameError::UnknownType(200))
    );
    let mut d = FrameDecoder::new();
    assert_eq!(
        d.push_messages(&[0, 0, 0, 0, 7], &mut out),
        Err(FrameError::Empty)
    );
    // A ping frame whose payload has a trailing byte.
    let mut frame = encode_frame(&Message::Ping(Ping { nonce: 1 }));
    frame[3] += 1;
    frame.push(0);
    let mut d = FrameDecoder::new();
    assert!(matches!(
        d.push_messages(&frame, &mut out),
        Err(FrameError::Decode(_))
    ));
    assert!(out.is_empty());
}

#[test]
fn frames_carry_their_kind_before_decoding() {
    let mut stream = Vec::new();
    encode_frame_into(&Message::Ping(Ping { nonce: 9 }), &mut stream);
    encode_frame_into(&Message::RequestPeers, &mut stream);
    let mut d = FrameDecoder::new();
    let mut frames = Vec::new();
    d.push(&stream, &mut frames).unwrap();
    let kinds: Vec<MessageKind> = frames.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, vec![MessageKind::Ping, MessageKind::RequestPeers]);
    assert_eq!(
        frames[0].decode().unwrap(),
        Message::Ping(Ping { nonce: 9 })
    );
    // A frame whose payload does not decode fails only when decoded.
    let bad = Frame {
        kind: MessageKind::Ping,
        payload: vec![MessageKind::Ping.tag(), 0x80],
    };
    assert!(matches!(bad.decode(), Err(FrameError::Decode(_))));
}

#[test]
fn single_byte_payload_completes() {
    let frame = encode_frame(&Message::RequestPeers);
    assert_eq!(frame, vec![0, 0, 0, 1, MessageKind::RequestPeers.tag()]);
    let mut d = FrameDecoder::new();
    let mut out = Vec::new();
    d.push_messages(&frame, &mut out).unwrap();
    d.push_messages(&frame, &mut out).unwrap();
    assert_eq!(out, vec![Message::RequestPeers, Message::RequestPeers]);
}

#[test]
fn hello_checks() {
    let local = LocalHello {
        network_id: Hash([1; 32]),
        node_id: Hash([9; 32]),
    };
    let h = hello(0);
    let proven = h.node_id;
    assert_eq!(check_hello(&local, &h, &proven), Ok(()));
    let wrong_net = Hello {
        network_id: Hash([7; 32]),
        ..h.clone()
    };
    assert_eq!(
        check_hello(&local, &wrong_net, &proven),
        Err(DisconnectReason::WrongNetwork)
    );
    assert_eq!(PROTOCOL_VERSION, 4);
    assert_eq!(MIN_PROTOCOL_VERSION, 4);
    // Version 1 never served blocks or headers, version 2 knows no relay messages, version 3
    // no compact blocks: refused.
    for version in [0, 1, 2, 3] {
        let old = Hello {
            protocol_version: version,
            ..h.clone()
        };
        assert_eq!(
            check_hello(&local, &old, &proven),
            Err(DisconnectReason::IncompatibleVersion),
            "version {version}"
        );
    }
    let newer = Hello {
        protocol_version: PROTOCOL_VERSION + 1,
        ..h.clone()
    };
    assert_eq!(check_hello(&local, &newer, &proven), Ok(()));
    assert_eq!(
        negotiated_version(PROTOCOL_VERSION, PROTOCOL_VERSION + 1),
        4
    );
    assert_eq!(
        check_hello(&local, &h, &Hash([3; 32])),
        Err(DisconnectReason::ProtocolViolation)
    );
    let me = Hello {
        node_id: local.node_id,
        ..h
    };
    assert_eq!(
        check_hello(&local, &me, &local.node_id),
        Err(DisconnectReason::SelfConnection)
    );
    assert_eq!(negotiated_version(3, 1), 1);
    assert_ne!(node_id(b"a"), node_id(b"b"));
}

proptest! {
    #[test]
    fn random_streams_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8)) {
        let mut d = FrameDecoder::new();
        let mut out = Vec::new();
        for c in chunks {
            if d.push_messages(&c, &mut out).is_err() {
                break;
            }
        }
    }

    #[test]
    fn messages_round_trip_through_frames(n: u64, split in 1usize..200) {
        let messages = one_of_each(n);
        let mut stream = Vec::new();
        for m in &messages {
            encode_frame_into(m, &mut stream);
        }
        let mut d = FrameDecoder::new();
        let mut out = Vec::new();
        for piece in stream.chunks(split) {
            d.push_messages(piece, &mut out).unwrap();
        }
        prop_assert_eq!(out, messages);
    }

    #[test]
    fn mutated_frames_are_errors_or_canonical(n: u64, pos: prop::sample::Index, byte: u8) {
        for m in one_of_each(n) {
            let mut frame = encode_frame(&m);
            let i = pos.index(frame.len());
            frame[i] = byte;
            let mut d = FrameDecoder::new();
            let mut out = Vec::new();
            if d.push_messages(&frame, &mut out).is_ok() {
                for got in &out {
                    let mut again = Vec::new();
                    encode_frame_into(got, &mut again);
                    prop_assert_eq!(&again[..], &frame[..again.len()]);
                }
            }
        }
    }
}

#[test]
fn a_compact_block_rebuilds_its_block_from_known_transfers() {
    let full = block(7, 4);
    let compact = CompactBlock::of(&full);
    assert_eq!(compact.transfer_ids.len(), 4);
    let known: std::collections::BTreeMap<Hash, Transfer> =
        full.transfers.iter().map(|t| (t.id(), t.clone())).collect();
    assert_eq!(
        compact.rebuild(|id| known.get(id).cloned()),
        Ok(full.clone())
    );
    // Without two of them it names exactly those, in block order.
    let lacking = [full.transfers[1].id(), full.transfers[3].id()];
    let partial = |id: &Hash| {
        (!lacking.contains(id))
            .then(|| known.get(id).cloned())
            .flatten()
    };
    assert_eq!(compact.rebuild(partial), Err(lacking.to_vec()));
    assert_eq!(
        crate::decode::<Message>(&encode(&Message::CompactBlock(Box::new(compact.clone())))),
        Ok(Message::CompactBlock(Box::new(compact)))
    );
}
