//! Network scenarios shared by tests and benchmarks: a random regular network of real nodes
//! with a few miners, run for a while, then measured (block propagation against the
//! shortest-path bound, block bodies and compact blocks received per block).

use std::time::Duration;

use spacetime::relay::RelayConfig;
use spacetime_actors::chain::metrics as chain_metrics;
use spacetime_actors::lifecycle::Stop;
use spacetime_actors::p2p::metrics as p2p_metrics;
use spacetime_actors::spawn::CostModel;

use crate::propagation::{Propagation, hops, quantile};
use crate::{LinkParams, NodeSpec, Sim, SimError, SimRng, Topology};

/// A relay scenario: `nodes` nodes on a random `degree`-regular graph of links of
/// `latency` +- `jitter / 2`, the first `miners` of them mining, for `duration`.
#[derive(Debug, Clone)]
pub struct RelayScenario {
    /// The seed.
    pub seed: u64,
    /// Nodes.
    pub nodes: usize,
    /// Miners among them (the first ones).
    pub miners: usize,
    /// The graph's degree.
    pub degree: usize,
    /// Least one-way link latency.
    pub latency: Duration,
    /// Extra latency per segment, uniform in `0..=jitter`.
    pub jitter: Duration,
    /// Mining time.
    pub duration: Duration,
    /// Every node's relay configuration.
    pub relay: RelayConfig,
    /// Blocks mined before this much time has passed (while sessions still open) are not
    /// measured.
    pub warmup: Duration,
    /// Transfers per second submitted while mining, each batch of a tenth of a second at the
    /// next node in turn, from senders premined in the scenario's own genesis (0: none).
    pub load_tps: u32,
}

/// Where a loaded scenario's transfers go (each moves [`LOAD_AMOUNT`]).
const LOAD_RECIPIENT: spacetime::PublicKey = spacetime::PublicKey([0x70; 32]);
/// What each transfer of the load moves.
const LOAD_AMOUNT: u64 = 1_000;
/// Premined senders of a loaded scenario.
const LOAD_SENDERS: usize = 400;
/// Transfers one sender has in flight at most (below the mempool's per-sender cap).
const LOAD_PER_SENDER: u64 = 32;

impl RelayScenario {
    /// The network: 50 ms +- 10 ms links, a random 8-regular graph, three miners.
    pub fn new(seed: u64, nodes: usize, duration: Duration) -> Self {
        Self {
            seed,
            nodes,
            miners: 3,
            degree: 8,
            latency: Duration::from_millis(40),
            jitter: Duration::from_millis(20),
            duration,
            relay: RelayConfig::default(),
            warmup: Duration::from_secs(3),
            load_tps: 0,
        }
    }

    /// The genesis and the signed transfers of the load, in submission order.
    fn load(&self) -> Result<(spacetime::Genesis, Vec<spacetime::Transfer>), SimError> {
        use spacetime::{Amount, GenesisConfig, Keypair, NodeRng, UnsignedTransfer};
        let keys: Vec<Keypair> = (0..LOAD_SENDERS)
            .map(|i| Keypair::generate_with(&mut NodeRng::from_u64(0x10ad_0000 + i as u64)))
            .collect();
        let mut config = GenesisConfig::builtin("dev")?;
        config.network.name = "relay-load".into();
        config.premine = keys
            .iter()
            .map(|k| spacetime::genesis::Allocation {
                address: k.public(),
                amount: Amount(1_000_000_000),
            })
            .collect();
        let genesis = spacetime::Genesis::new(config)?;
        let secs = self.duration.as_secs().max(1);
        let total = (u64::from(self.load_tps) * secs).min(LOAD_SENDERS as u64 * LOAD_PER_SENDER);
        let transfers = (0..total)
            .filter_map(|n| {
                let key = &keys[(n % LOAD_SENDERS as u64) as usize];
                UnsignedTransfer {
                    from: key.public(),
                    to: LOAD_RECIPIENT,
                    amount: Amount(LOAD_AMOUNT),
                    fee: Amount(10),
                    nonce: n / LOAD_SENDERS as u64,
                    chain_id: genesis.chain_id,
                }
                .sign(key)
                .ok()
            })
            .collect();
        Ok((genesis, transfers))
    }

    /// Builds and starts the network, lets it mine for `duration`, stops mining and lets the
    /// last blocks settle; returns the simulation and what it measured.
    pub fn run(&self) -> Result<(Sim, RelayFigures), SimError> {
        let (mut sim, load) = if self.load_tps > 0 {
            let (genesis, transfers) = self.load()?;
            (Sim::with_genesis(self.seed, genesis)?, transfers)
        } else {
            (Sim::new(self.seed)?, Vec::new())
        };
        sim.net()
            .set_default_params(LinkParams::with_latency(self.latency).jitter(self.jitter));
        // The graph is the one measured against: each node keeps as many outbound
        // connections as it has seeds, so discovery adds no links to it.
        let mut rng = SimRng::new(self.seed).fork(0x7070);
        let edges = Topology::RandomRegular(self.degree).edges(self.nodes, &mut rng)?;
        for i in 0..self.nodes {
            sim.add_node(NodeSpec {
                mining: i < self.miners,
                outbound: edges.iter().filter(|(a, _)| *a == i).count().max(1),
                relay: self.relay.clone(),
                ..NodeSpec::full()
            });
        }
        sim.connect_edges(&edges)?;
        sim.start_all()?;
        if load.is_empty() {
            sim.run_for(self.duration);
        } else {
            let step = Duration::from_millis(100);
            let per_step = (self.load_tps as usize / 10).max(1);
            let mut batches = load.chunks(per_step);
            let mut elapsed = Duration::ZERO;
            let mut at = 0;
            while elapsed < self.duration {
                if let (Some(batch), Some(pool)) = (
                    batches.next(),
                    sim.node(at % self.nodes).map(|n| n.mempool.clone()),
                ) {
                    // Refusals (a full pool) are the load's, not the relay's, to count.
                    let _ = sim.block_on(
                        pool.send(spacetime_actors::mempool::SubmitTransfers(batch.to_vec())),
                    );
                }
                at += 1;
                sim.run_for(step);
                elapsed += step;
            }
        }
        for i in 0..self.miners {
            if let Some((miner, _)) = sim.node(i).and_then(|n| n.mining.clone()) {
                let _ = sim.block_on(miner.send(Stop));
            }
        }
        sim.run_for(Duration::from_secs(10));
        let figures = self.measure(&mut sim)?;
        Ok((sim, figures))
    }

    /// Reads the figures of a finished run.
    pub fn measure(&self, sim: &mut Sim) -> Result<RelayFigures, SimError> {
        let graph = sim.connection_graph()?;
        let nodes: Vec<usize> = (0..sim.len()).collect();
        let p = Propagation::from_trace(&sim.trace().entries());
        let tips: Vec<_> = nodes
            .iter()
            .map(|&i| sim.tip(i).map(|t| t.hash))
            .collect::<Result<_, _>>()?;
        let one_tip = tips.windows(2).all(|w| w[0] == w[1]);
        let chain = p.chain(0).to_vec();
        let (delays, missing) = p.delays(&chain, &nodes);
        let costs = CostModel::DEV;
        let mean_latency_ms = self.latency.as_secs_f64() * 1e3 + self.jitter.as_secs_f64() * 5e2;
        let hop_ms = mean_latency_ms + costs.header_check.as_secs_f64() * 1e3;
        let import_ms = costs.block_import.as_secs_f64() * 1e3;
        let mut ratios = Vec::new();
        let mut millis = Vec::new();
        let mut bounds = Vec::new();
        let warmup_ms = u64::try_from(self.warmup.as_millis()).unwrap_or(u64::MAX);
        for block in &delays {
            let mined_ms = p
                .arrivals
                .get(&block.hash)
                .and_then(|a| a.get(&block.origin))
                .copied()
                .unwrap_or(0);
            if mined_ms < warmup_ms {
                continue;
            }
            let dist = hops(&graph, block.origin);
            for &(node, ms) in &block.delays {
                if node == block.origin {
                    continue;
                }
                let Some(h) = dist.get(node).copied().flatten() else {
                    continue;
                };
                let bound = f64::from(h) * hop_ms + import_ms;
                ratios.push(ms as f64 / bound);
                millis.push(ms as f64);
                bounds.push(bound);
            }
        }
        // Bodies: every block message a node received (pushes, fetches, sync), per distinct
        // block it took from elsewhere (main chain or side branch), and per block that joined
        // its main chain from elsewhere.
        let mut per_node = Vec::new();
        let mut per_main = Vec::new();
        let mut compact_node = Vec::new();
        let mut bytes_node = Vec::new();
        let (mut rebuilt, mut missed) = (0u64, 0u64);
        for &i in &nodes {
            let m = sim.metrics(i)?;
            let count = |kind: &str| {
                m.labelled
                    .get(&format!(
                        "{}{{type={kind}}}",
                        p2p_metrics::MESSAGES_RECEIVED
                    ))
                    .copied()
                    .unwrap_or(0)
            };
            let bodies = count("block_proposal") + count("block");
            let compact = count("compact_block");
            let bytes = |kind: &str| {
                m.labelled
                    .get(&format!(
                        "{}{{type={kind}}}",
                        p2p_metrics::MESSAGE_BYTES_RECEIVED
                    ))
                    .copied()
                    .unwrap_or(0)
            };
            let block_bytes = bytes("block_proposal") + bytes("block") + bytes("compact_block");
            let compact_result = |r: &str| {
                m.labelled
                    .get(&format!(
                        "{}{{result={r}}}",
                        spacetime_actors::relay::metrics::COMPACT
                    ))
                    .copied()
                    .unwrap_or(0)
            };
            rebuilt += compact_result("rebuilt");
            missed += compact_result("missed");
            let imported = |status: &str| {
                m.labelled
                    .get(&format!(
                        "{}{{status={status}}}",
                        chain_metrics::BLOCKS_IMPORTED
                    ))
                    .copied()
                    .unwrap_or(0)
            };
            let distinct =
                (imported("extended") + imported("reorganized") + imported("side_branch"))
                    .saturating_sub(m.counter(spacetime_actors::miner::BLOCKS_WON));
            if distinct > 0 {
                per_node.push(bodies as f64 / distinct as f64);
                compact_node.push(compact as f64 / distinct as f64);
                bytes_node.push(block_bytes as f64 / distinct as f64);
            }
            let joined = p
                .arrivals
                .values()
                .filter(|by_node| {
                    by_node.contains_key(&i)
                        && by_node.iter().min_by_key(|(n, t)| (**t, **n)).map(|e| *e.0) != Some(i)
                })
                .count();
            if joined > 0 {
                per_main.push(bodies as f64 / joined as f64);
            }
        }
        let degree = graph.iter().map(Vec::len).sum::<usize>() as f64 / graph.len().max(1) as f64;
        let transfers_mined = match sim.node(0).map(|n| n.chain.addr.clone()) {
            Some(chain) => match sim
                .block_on(chain.send(spacetime_actors::chain::GetAccount(LOAD_RECIPIENT)))
            {
                Ok(Ok(a)) => (a.mature.0 + a.immature.0) / LOAD_AMOUNT,
                _ => 0,
            },
            None => 0,
        };
        Ok(RelayFigures {
            height: chain.len() as u64,
            one_tip,
            missing,
            raced: p.raced.len(),
            with_descendant: p.with_descendant.len(),
            measured: ratios.len(),
            ratio: Quantiles::of(&ratios),
            millis: Quantiles::of(&millis),
            bound_ms: Quantiles::of(&bounds),
            bodies_per_block: per_node.iter().sum::<f64>() / per_node.len().max(1) as f64,
            bodies_per_block_max: per_node.iter().copied().fold(0.0, f64::max),
            bodies_per_main_block: per_main.iter().sum::<f64>() / per_main.len().max(1) as f64,
            block_bytes_per_block: bytes_node.iter().sum::<f64>() / bytes_node.len().max(1) as f64,
            transfers_mined,
            compact_missed: missed as f64 / (rebuilt + missed).max(1) as f64,
            compact_per_block: compact_node.iter().sum::<f64>() / compact_node.len().max(1) as f64,
            mean_degree: degree,
        })
    }
}

/// p50, p95 and p99 of a sample.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Quantiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Quantiles {
    /// The quantiles of `values`.
    pub fn of(values: &[f64]) -> Self {
        Self {
            p50: quantile(values, 0.50),
            p95: quantile(values, 0.95),
            p99: quantile(values, 0.99),
        }
    }
}

/// What a relay scenario measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RelayFigures {
    /// Length of node 0's final main chain.
    pub height: u64,
    /// Every node ended on the same tip.
    pub one_tip: bool,
    /// Blocks of node 0's chain some node never had on its main chain.
    pub missing: usize,
    /// Heights more than one block competed for.
    pub raced: usize,
    /// `(block, node)` pairs left out of the delays: the node took the block only with a
    /// descendant.
    pub with_descendant: usize,
    /// (block, node) delays measured.
    pub measured: usize,
    /// Delay from the miner's commit to each node's, over the node's shortest-path bound.
    pub ratio: Quantiles,
    /// The same delays in ms.
    pub millis: Quantiles,
    /// The bounds, ms.
    pub bound_ms: Quantiles,
    /// Block bodies received per distinct block a node took from elsewhere (on any branch),
    /// mean over nodes: the redundancy of block relay.
    pub bodies_per_block: f64,
    /// The same, the largest of any node.
    pub bodies_per_block_max: f64,
    /// Block bodies received per block that joined the node's main chain from elsewhere
    /// (competing blocks of one height count against the one that stayed).
    pub bodies_per_main_block: f64,
    /// Compact blocks received per distinct block a node took from elsewhere, mean over nodes
    /// (header, coinbase and transfer ids; not counted as bodies).
    pub compact_per_block: f64,
    /// Bytes of block messages (whole and compact) received per distinct block a node took
    /// from elsewhere, mean over nodes.
    pub block_bytes_per_block: f64,
    /// Transfers of the load on node 0's main chain.
    pub transfers_mined: u64,
    /// Share of new compact blocks that lacked a transfer (the whole block was fetched).
    pub compact_missed: f64,
    /// Mean number of connections per node at the end.
    pub mean_degree: f64,
}
