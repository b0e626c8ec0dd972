//! ChainState when its disk fills up: one error, imports and mining stop, the database is
//! reopened with backoff, and everything resumes by itself once writes succeed, with nothing
//! committed lost. The disk is the simulator's memory disk with write faults switched on.

use std::sync::Arc;
use std::time::Duration;

use spacetime::chain::{Chain, ChainError, ChainStorage, ImportError, MemoryDisk, SoloMiner};
use spacetime::{Genesis, Keypair};
use spacetime_actors::chain::health::{GetStorageStatus, StorageStatus};
use spacetime_actors::chain::{ChainState, GetBlockAt, GetMiningContext, GetTip, ImportBlock};

mod common;
use common::FixedClock;

#[actix_rt::test]
async fn a_full_disk_stops_imports_and_mining_and_they_resume_when_space_returns() {
    let genesis = Genesis::builtin("dev").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut source = Chain::open(&dir.path().join("src.redb"), genesis.clone()).unwrap();
    let miner = SoloMiner::new(&genesis.config.plot, Keypair::generate(), 1, 64);
    let mut blocks = Vec::new();
    for _ in 0..8 {
        let b = miner.mine_next(&source, vec![]).unwrap();
        source.import(b.clone(), u64::MAX / 2).unwrap();
        blocks.push(b);
    }

    let disk = MemoryDisk::new("node");
    let chain = Chain::open_on(ChainStorage::Memory(disk.clone()), genesis).unwrap();
    let handle = ChainState::start_on_own_thread(
        chain,
        Arc::new(FixedClock),
        spacetime::NodeRng::from_u64(1),
    );
    let chain = &handle.addr;
    for b in &blocks[..4] {
        chain.send(ImportBlock(b.clone())).await.unwrap().unwrap();
    }
    let committed = chain.send(GetTip).await.unwrap();
    assert_eq!(committed.height, 4);

    disk.set_full(true);
    let err = chain
        .send(ImportBlock(blocks[4].clone()))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, ImportError::Chain(_)), "{err}");
    let status = chain.send(GetStorageStatus).await.unwrap();
    assert!(
        matches!(status, StorageStatus::Unwritable { .. }),
        "{status:?}"
    );
    // Stopped: imports fail fast, the miner gets no context, the tip is still answered.
    let err = chain
        .send(ImportBlock(blocks[4].clone()))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, ImportError::Chain(ChainError::Unavailable { .. })),
        "{err}"
    );
    assert!(
        chain
            .send(GetMiningContext {
                epoch: u64::MAX / 4
            })
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(chain.send(GetTip).await.unwrap(), committed);

    // Still full over a few reopen attempts: still stopped.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let status = chain.send(GetStorageStatus).await.unwrap();
    assert!(
        matches!(status, StorageStatus::Unwritable { .. }),
        "{status:?}"
    );

    // Space again: within the backoff (at most 4 s after the last try here) it heals.
    disk.set_full(false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while chain.send(GetStorageStatus).await.unwrap() != StorageStatus::Healthy {
        assert!(tokio::time::Instant::now() < deadline, "never healed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        chain.send(GetTip).await.unwrap(),
        committed,
        "nothing committed lost"
    );
    for b in &blocks[4..] {
        chain.send(ImportBlock(b.clone())).await.unwrap().unwrap();
    }
    assert_eq!(chain.send(GetTip).await.unwrap().height, 8);
    let b1 = chain.send(GetBlockAt(1)).await.unwrap().unwrap().unwrap();
    assert_eq!(b1, blocks[0]);
    handle.stop().await;
}
