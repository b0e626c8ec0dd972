//! A node run in-process mines its own chain; a transfer submitted to its mempool is mined and
//! changes balances; the chain survives a restart.

use std::time::{Duration, Instant};

use spacetime::chain::Chain;
use spacetime::genesis::Allocation;
use spacetime::mempool::MempoolConfig;
use spacetime::{Amount, Genesis, GenesisConfig, Keypair, PublicKey, UnsignedTransfer};
use spacetime_actors::chain::{GetAccount, GetTip};
use spacetime_actors::mempool::{GetMempoolStats, SubmitError, SubmitTransfer};
use spacetime_actors::miner::CoinbasePolicy;
use spacetime_actors::node::{
    CHAIN_DB_FILE, MiningOptions, NodeOptions, prepare_mining, start_core,
};
use spacetime_actors::plots::PlotsConfig;
use spacetime_actors::seams::Seams;

async fn wait_for(limit: Duration, mut ok: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ok().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[actix_rt::test]
async fn node_mines_includes_transfers_and_restarts() {
    let alice = Keypair::generate();
    let bob = PublicKey([0xb0; 32]);
    let mut config = GenesisConfig::builtin("dev").unwrap();
    config.network.name = "mining-test".into();
    config.premine = vec![Allocation {
        address: alice.public(),
        amount: Amount(1_000_000),
    }];
    let genesis = Genesis::new(config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = NodeOptions {
        genesis: genesis.clone(),
        data_dir: dir.path().to_path_buf(),
        listen: None,
        peers: Vec::new(),
        outbound: 8,
        metrics_addr: None,
        status_interval: Duration::from_secs(1),
        mining: Some(MiningOptions {
            key_file: "miner.key".into(),
            dev_plot_bytes: Some(2 * 1024 * 1024),
            coinbase: CoinbasePolicy::default(),
        }),
        plots: PlotsConfig::default(),
        mempool: MempoolConfig::default(),
        timeouts: Default::default(),
        sync: Default::default(),
        bandwidth: Default::default(),
        relay: Default::default(),
        trusted: Vec::new(),
        trust_loopback: false,
    };
    let chain = Chain::open(&dir.path().join(CHAIN_DB_FILE), genesis.clone()).unwrap();
    let mut plots = options.plots.clone();
    let mut sink = std::io::sink();
    let seams = Seams::production().unwrap();
    let key = prepare_mining(
        options.mining.as_ref().unwrap(),
        &options,
        &seams,
        &mut plots,
        &mut sink,
    )
    .unwrap();
    let miner = key.0.public();
    let core = start_core(&options, chain, Some(key), &plots, &seams, &mut sink)
        .await
        .unwrap();

    let chain = core.chain.addr.clone();
    assert!(
        wait_for(Duration::from_secs(30), async || {
            chain.send(GetTip).await.unwrap().height >= 2
        })
        .await,
        "the node mines"
    );

    let transfer = |nonce, amount| {
        UnsignedTransfer {
            from: alice.public(),
            to: bob,
            amount: Amount(amount),
            fee: Amount(10),
            nonce,
            chain_id: genesis.chain_id,
        }
        .sign(&alice)
        .unwrap()
    };
    core.mempool
        .send(SubmitTransfer(transfer(0, 12_345)))
        .await
        .unwrap()
        .unwrap();
    // Refusals come back typed: a reused nonce, and more than the balance.
    assert!(matches!(
        core.mempool
            .send(SubmitTransfer(transfer(0, 1)))
            .await
            .unwrap(),
        Err(SubmitError::Refused(_))
    ));
    assert!(matches!(
        core.mempool
            .send(SubmitTransfer(transfer(1, 5_000_000)))
            .await
            .unwrap(),
        Err(SubmitError::Refused(_))
    ));
    assert!(
        wait_for(Duration::from_secs(30), async || {
            chain.send(GetAccount(bob)).await.unwrap().unwrap().mature == Amount(12_345)
        })
        .await,
        "the transfer is mined"
    );
    let a = chain
        .send(GetAccount(alice.public()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.mature, Amount(1_000_000 - 12_345 - 10));
    assert_eq!(a.nonce, 1);
    let m = chain.send(GetAccount(miner)).await.unwrap().unwrap();
    assert!(m.immature.0 + m.mature.0 > 0, "the miner is paid");
    assert!(
        wait_for(Duration::from_secs(10), async || {
            core.mempool.send(GetMempoolStats).await.unwrap().transfers == 0
        })
        .await,
        "the mined transfer left the pool"
    );

    // Stop and reopen: the chain is still there.
    let height = chain.send(GetTip).await.unwrap().height;
    drop(core.mining);
    core.chain.stop().await;
    let reopened = Chain::open(&dir.path().join(CHAIN_DB_FILE), genesis).unwrap();
    assert!(reopened.height() >= height);
    assert_eq!(reopened.account(&bob).unwrap().mature, Amount(12_345));
}
