//! The ChainState actor on its own thread: imports, queries and events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Actor, Context, Handler};
use spacetime::chain::{Chain, ChainEvent, ImportError, ImportStatus, InvalidBlock, SoloMiner};
use spacetime::state_tree::verify_address;
use spacetime::{Genesis, Keypair, encode};
use spacetime_actors::chain::{
    ChainNotification, ChainState, GetAccount, GetBlock, GetBlockAt, GetHeaders, GetSupply, GetTip,
    ImportBlock, ImportBlockBytes, ImportBytesError, Subscribe,
};

mod common;
use common::FixedClock;

/// Collects the events it receives.
struct Listener(Arc<Mutex<Vec<ChainEvent>>>);
impl Actor for Listener {
    type Context = Context<Self>;
}
impl Handler<ChainNotification> for Listener {
    type Result = ();
    fn handle(&mut self, msg: ChainNotification, _: &mut Context<Self>) {
        self.0.lock().unwrap().push(msg.0);
    }
}

#[actix_rt::test]
async fn chain_state_imports_answers_and_publishes() {
    let genesis = Genesis::builtin("dev").unwrap();
    // Blocks mined on a separate chain, imported through the actor.
    let src_dir = tempfile::tempdir().unwrap();
    let mut source = Chain::open(&src_dir.path().join("src.redb"), genesis.clone()).unwrap();
    let miner = SoloMiner::new(&genesis.config.plot, Keypair::generate(), 1, 64);
    let mut blocks = Vec::new();
    for _ in 0..20 {
        let b = miner.mine_next(&source, vec![]).unwrap();
        source.import(b.clone(), u64::MAX / 2).unwrap();
        blocks.push(b);
    }

    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::open(&dir.path().join("chain.redb"), genesis.clone()).unwrap();
    let handle = ChainState::start_on_own_thread(
        chain,
        Arc::new(FixedClock),
        spacetime::NodeRng::from_u64(1),
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = Listener(seen.clone()).start();
    handle
        .addr
        .send(Subscribe(listener.recipient()))
        .await
        .unwrap();

    for b in &blocks[..10] {
        let r = handle
            .addr
            .send(ImportBlock(b.clone()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.status, ImportStatus::Extended);
    }
    // Bytes from a peer are decoded on the chain's thread.
    for b in &blocks[10..] {
        let r = handle
            .addr
            .send(ImportBlockBytes(encode(b)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.status, ImportStatus::Extended);
    }
    assert!(matches!(
        handle
            .addr
            .send(ImportBlockBytes(vec![1, 2, 3]))
            .await
            .unwrap(),
        Err(ImportBytesError::Decode(_))
    ));
    let mut tampered = blocks[19].clone();
    tampered.header.signature.0[0] ^= 1;
    match handle.addr.send(ImportBlock(tampered)).await.unwrap() {
        Err(ImportError::Invalid {
            reason: InvalidBlock::HeaderSignature,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }

    let tip = handle.addr.send(GetTip).await.unwrap();
    assert_eq!(tip.height, 20);
    assert_eq!(tip.hash, blocks[19].hash());
    let headers = handle
        .addr
        .send(GetHeaders {
            locator: vec![blocks[4].hash(), genesis.network_id],
            stop: None,
            max: 2_000,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(headers.len(), 15);
    assert_eq!(headers[0], blocks[5].header);
    let b = handle
        .addr
        .send(GetBlock(blocks[7].hash()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.as_ref(), Some(&blocks[7]));
    let b = handle.addr.send(GetBlockAt(3)).await.unwrap().unwrap();
    assert_eq!(b.as_ref(), Some(&blocks[2]));
    let account = handle
        .addr
        .send(GetAccount(miner.address()))
        .await
        .unwrap()
        .unwrap();
    let reward = genesis.emission.block_reward(1);
    assert_eq!(
        account.mature.0 + account.immature.0,
        reward.0 * 20,
        "{account:?}"
    );
    assert!(account.mature.0 > 0, "early credits have matured");
    assert_eq!(
        verify_address(&account.state_root, &miner.address(), &account.proof).unwrap(),
        account.stored
    );
    let supply = handle
        .addr
        .send(GetSupply { from: 0, to: 100 })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(supply.len(), 21);

    // Every tip change reached the subscriber.
    for _ in 0..100 {
        if seen.lock().unwrap().len() == 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let events = seen.lock().unwrap().clone();
    assert_eq!(events.len(), 20);
    assert_eq!(
        events.last(),
        Some(&ChainEvent::NewTip {
            hash: blocks[19].hash(),
            height: 20
        })
    );

    // Stopping closes the database: it can be opened again at once.
    handle.stop().await;
    let reopened = Chain::open(&dir.path().join("chain.redb"), genesis).unwrap();
    assert_eq!(reopened.height(), 20);
}
