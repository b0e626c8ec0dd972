//! Block propagation read from a run's [`Trace`]: when each block joined each node's main
//! chain, each node's final main chain, which heights were raced, and the shortest-path bound a
//! block's arrival is compared with.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use spacetime::Hash;
use spacetime::chain::ChainEvent;

use crate::trace::{Observed, TraceEntry};

/// Stands for a height a node's chain jumped over until another node's chain fills it.
const GAP: Hash = Hash([0; 32]);

/// What the trace says of blocks and main chains.
#[derive(Debug, Clone, Default)]
pub struct Propagation {
    /// Per block: the first time (virtual ms) it joined each node's main chain, by node.
    pub arrivals: BTreeMap<Hash, BTreeMap<usize, u64>>,
    /// Per node: its main chain at the end of the trace, by height (genesis excluded: index
    /// `h - 1` is height `h`).
    pub chains: BTreeMap<usize, Vec<Hash>>,
    /// Heights at which more than one block was ever on some node's main chain.
    pub raced: BTreeSet<u64>,
    /// Height of each block seen on a main chain.
    pub heights: BTreeMap<Hash, u64>,
    /// `(block, node)` pairs where the block joined the node's main chain only with a
    /// descendant (a reorg to a branch that became heavier later): when the node had the block
    /// says nothing of how fast it travelled.
    pub with_descendant: BTreeSet<(Hash, usize)>,
}

impl Propagation {
    /// Reads `entries` (in order, as [`Trace::entries`](crate::Trace::entries) gives them).
    pub fn from_trace(entries: &[TraceEntry]) -> Self {
        let mut p = Self::default();
        let mut at_height: BTreeMap<u64, BTreeSet<Hash>> = BTreeMap::new();
        // Heights a node's chain jumped over (a batch of blocks connected with one event):
        // `(node, index) -> time of the jump`.
        let mut gaps: BTreeMap<(usize, usize), u64> = BTreeMap::new();
        for e in entries {
            let Observed::Chain(event) = &e.what else {
                continue;
            };
            let chain = p.chains.entry(e.node).or_default();
            let joined: Vec<(u64, Hash)> = match event {
                ChainEvent::NewTip { hash, height } => vec![(*height, *hash)],
                ChainEvent::Reorg {
                    fork_height,
                    connected,
                    ..
                } => connected
                    .iter()
                    .enumerate()
                    .map(|(i, h)| (fork_height + 1 + i as u64, *h))
                    .collect(),
            };
            if let ChainEvent::Reorg { fork_height, .. } = event {
                chain.truncate(usize::try_from(*fork_height).unwrap_or(usize::MAX));
            }
            let last = joined.len().saturating_sub(1);
            for (i, (height, hash)) in joined.into_iter().enumerate() {
                let Some(index) = usize::try_from(height).ok().and_then(|h| h.checked_sub(1))
                else {
                    continue;
                };
                chain.truncate(index);
                gaps.retain(|(node, i), _| *node != e.node || *i < index);
                while chain.len() < index {
                    gaps.insert((e.node, chain.len()), e.at_ms);
                    chain.push(GAP);
                }
                chain.push(hash);
                p.heights.insert(hash, height);
                at_height.entry(height).or_default().insert(hash);
                let first = p.arrivals.entry(hash).or_default();
                if let Entry::Vacant(slot) = first.entry(e.node) {
                    slot.insert(e.at_ms);
                    if i < last {
                        p.with_descendant.insert((hash, e.node));
                    }
                }
            }
        }
        p.fill_gaps(gaps);
        p.raced = at_height
            .into_iter()
            .filter(|(_, hashes)| hashes.len() > 1)
            .map(|(h, _)| h)
            .collect();
        p
    }

    /// Fills the heights a node's chain jumped over from another node's chain that agrees with
    /// it above the gap; such a block joined with a descendant.
    fn fill_gaps(&mut self, gaps: BTreeMap<(usize, usize), u64>) {
        for ((node, index), at_ms) in gaps.into_iter().rev() {
            let Some(chain) = self.chains.get(&node) else {
                continue;
            };
            let Some(above) = chain
                .get(index + 1..)
                .and_then(|c| c.iter().position(|h| *h != GAP))
            else {
                continue;
            };
            let anchor_index = index + 1 + above;
            let anchor = chain[anchor_index];
            let found = self.chains.iter().find_map(|(other, c)| {
                (*other != node && c.get(anchor_index) == Some(&anchor))
                    .then(|| c.get(index).copied())
                    .flatten()
                    .filter(|h| *h != GAP)
            });
            let Some(hash) = found else {
                continue;
            };
            if let Some(chain) = self.chains.get_mut(&node) {
                chain[index] = hash;
            }
            let first = self.arrivals.entry(hash).or_default();
            if let Entry::Vacant(slot) = first.entry(node) {
                slot.insert(at_ms);
                self.with_descendant.insert((hash, node));
            }
        }
    }

    /// The blocks on `node`'s final main chain, lowest first.
    pub fn chain(&self, node: usize) -> &[Hash] {
        self.chains.get(&node).map_or(&[], Vec::as_slice)
    }

    /// For each block of `blocks`: where it came from (the node that had it first, at the time
    /// it did) and its delay to each of `nodes` (ms), leaving out the nodes that took it only
    /// with a descendant. A block some node of `nodes` never had is left out and counted in the
    /// second value.
    pub fn delays(&self, blocks: &[Hash], nodes: &[usize]) -> (Vec<BlockDelays>, usize) {
        let mut out = Vec::new();
        let mut missing = 0;
        for hash in blocks {
            let Some(arrived) = self.arrivals.get(hash) else {
                missing += 1;
                continue;
            };
            let Some((&origin, &t0)) = arrived.iter().min_by_key(|(n, t)| (**t, **n)) else {
                continue;
            };
            let mut delays = Vec::with_capacity(nodes.len());
            let mut all = true;
            for n in nodes {
                match arrived.get(n) {
                    Some(_) if self.with_descendant.contains(&(*hash, *n)) => {}
                    Some(t) => delays.push((*n, t - t0)),
                    None => all = false,
                }
            }
            if !all {
                missing += 1;
                continue;
            }
            out.push(BlockDelays {
                hash: *hash,
                origin,
                delays,
            });
        }
        (out, missing)
    }
}

/// One block's arrival at each node, from the node that had it first.
#[derive(Debug, Clone)]
pub struct BlockDelays {
    /// The block.
    pub hash: Hash,
    /// The node that had it first (its miner).
    pub origin: usize,
    /// `(node, ms after the origin)` for every node asked about.
    pub delays: Vec<(usize, u64)>,
}

/// Hops from `from` to every node of a graph given as adjacency lists (`None`: unreachable).
pub fn hops(adjacency: &[Vec<usize>], from: usize) -> Vec<Option<u32>> {
    let mut dist = vec![None; adjacency.len()];
    let Some(d) = dist.get_mut(from) else {
        return dist;
    };
    *d = Some(0);
    let mut queue = VecDeque::from([from]);
    while let Some(u) = queue.pop_front() {
        let du = dist[u].unwrap_or(0);
        for &v in adjacency.get(u).map_or(&[][..], Vec::as_slice) {
            if v < dist.len() && dist[v].is_none() {
                dist[v] = Some(du + 1);
                queue.push_back(v);
            }
        }
    }
    dist
}

/// The `q` quantile (0 to 1) of `values` by nearest rank (0 when empty).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tip(at_ms: u64, node: usize, height: u64, n: u8) -> TraceEntry {
        TraceEntry {
            at_ms,
            node,
            what: Observed::Chain(ChainEvent::NewTip {
                hash: Hash([n; 32]),
                height,
            }),
        }
    }

    #[test]
    fn arrivals_chains_and_races_follow_tips_and_reorgs() {
        let entries = vec![
            tip(0, 0, 1, 1),
            tip(100, 1, 1, 1),
            tip(200, 0, 2, 2),
            tip(210, 1, 2, 3),
            TraceEntry {
                at_ms: 400,
                node: 1,
                what: Observed::Chain(ChainEvent::Reorg {
                    old_tip: Hash([3; 32]),
                    new_tip: Hash([4; 32]),
                    fork_height: 1,
                    disconnected: vec![Hash([3; 32])],
                    connected: vec![Hash([2; 32]), Hash([4; 32])],
                }),
            },
            tip(450, 0, 3, 4),
        ];
        let p = Propagation::from_trace(&entries);
        let one = [Hash([1; 32]), Hash([2; 32]), Hash([4; 32])];
        assert_eq!(p.chain(0), &one);
        assert_eq!(p.chain(1), &one);
        assert_eq!(p.raced, BTreeSet::from([2]));
        let (d, missing) = p.delays(&one, &[0, 1]);
        assert_eq!(missing, 0);
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].origin, 0);
        assert_eq!(d[0].delays, vec![(0, 0), (1, 100)]);
        // Node 1 took block 2 only with block 4: left out.
        assert_eq!(d[1].delays, vec![(0, 0)]);
        assert!(p.with_descendant.contains(&(Hash([2; 32]), 1)));
        // Node 1 had block 4 first (by the reorg), node 0 50 ms later.
        assert_eq!(d[2].origin, 1);
        assert_eq!(d[2].delays, vec![(0, 50), (1, 0)]);
        let (_, missing) = p.delays(&[Hash([9; 32])], &[0]);
        assert_eq!(missing, 1);
    }

    #[test]
    fn heights_jumped_over_are_filled_from_an_agreeing_chain() {
        let entries = vec![
            tip(0, 0, 1, 1),
            tip(100, 0, 2, 2),
            // Node 1 connects blocks 1 and 2 in one batch: one event, for block 2.
            tip(300, 1, 2, 2),
        ];
        let p = Propagation::from_trace(&entries);
        let two = [Hash([1; 32]), Hash([2; 32])];
        assert_eq!(p.chain(1), &two);
        assert_eq!(p.arrivals[&Hash([1; 32])].get(&1), Some(&300));
        assert!(p.with_descendant.contains(&(Hash([1; 32]), 1)));
        let (d, missing) = p.delays(&two, &[0, 1]);
        assert_eq!(missing, 0);
        assert_eq!(d[0].delays, vec![(0, 0)]);
        assert_eq!(d[1].delays, vec![(0, 0), (1, 200)]);
    }

    #[test]
    fn hops_and_quantiles() {
        let adjacency = vec![vec![1], vec![0, 2], vec![1], vec![]];
        assert_eq!(hops(&adjacency, 0), vec![Some(0), Some(1), Some(2), None]);
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.95), 95.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
