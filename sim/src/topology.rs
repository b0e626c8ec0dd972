//! Named topologies: undirected edge lists over node indices `0..n`.
//!
//! Every edge is `(a, b)` with `a < b`; lists are sorted, without self loops or duplicates.
//! Random topologies draw only from the [`SimRng`] passed in, so a seed fixes the graph.

use std::collections::{BTreeMap, BTreeSet};

use crate::rng::SimRng;

/// Fresh pairings [`random_regular`] tries before giving up.
pub const MAX_ATTEMPTS: u32 = 1_000;

/// Re-pairing rounds within one attempt before it restarts.
const MAX_ROUNDS: u32 = 10_000;

/// Why a topology cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    /// A simple graph on `n` nodes has degree at most `n - 1`.
    #[error("no {k}-regular graph on {n} nodes: the degree must be below the node count")]
    DegreeTooLarge {
        /// Nodes.
        n: usize,
        /// Degree asked for.
        k: usize,
    },
    /// Degrees sum to twice the edge count, so `n * k` must be even.
    #[error("no {k}-regular graph on {n} nodes: n * k is odd")]
    OddDegreeSum {
        /// Nodes.
        n: usize,
        /// Degree asked for.
        k: usize,
    },
    /// Random pairing kept failing (should not happen for reasonable parameters).
    #[error("no {k}-regular graph on {n} nodes found in {attempts} attempts")]
    GaveUp {
        /// Nodes.
        n: usize,
        /// Degree asked for.
        k: usize,
        /// Attempts made.
        attempts: u32,
    },
}

/// A named topology, built for a node count by [`Topology::edges`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    /// A path `0 - 1 - ... - n-1`.
    Line,
    /// A path closed into a cycle.
    Ring,
    /// Every pair connected.
    FullMesh,
    /// A random graph where every node has exactly this degree (see [`random_regular`]).
    RandomRegular(usize),
}

impl Topology {
    /// The edges of this topology on `n` nodes; only random ones draw from `rng`.
    pub fn edges(&self, n: usize, rng: &mut SimRng) -> Result<Vec<(usize, usize)>, TopologyError> {
        match *self {
            Topology::Line => Ok(line(n)),
            Topology::Ring => Ok(ring(n)),
            Topology::FullMesh => Ok(full_mesh(n)),
            Topology::RandomRegular(k) => random_regular(n, k, rng),
        }
    }
}

/// A path: `n - 1` edges `(i, i + 1)` (none for `n < 2`).
pub fn line(n: usize) -> Vec<(usize, usize)> {
    (1..n).map(|i| (i - 1, i)).collect()
}

/// A cycle: `n` edges for `n >= 3`; for fewer nodes, the line (a cycle would repeat an edge).
pub fn ring(n: usize) -> Vec<(usize, usize)> {
    let mut edges = line(n);
    if n >= 3 {
        edges.insert(0, (0, n - 1));
        edges.sort_unstable();
    }
    edges
}

/// The complete graph: `n * (n - 1) / 2` edges.
pub fn full_mesh(n: usize) -> Vec<(usize, usize)> {
    (0..n)
        .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
        .collect()
}

/// A random `k`-regular simple graph on `n` nodes: every node has exactly `k` neighbours.
///
/// Steger-Wormald style pairing: every node gets `k` points; all unpaired points are shuffled
/// and paired in turn, a pair kept when it joins two distinct, not yet adjacent nodes; the
/// rejected points are shuffled and paired again, and the attempt restarts from scratch when
/// no acceptable pair is left among them. Needs `k < n` and `n * k` even (`k = 0` is always
/// the empty graph).
pub fn random_regular(
    n: usize,
    k: usize,
    rng: &mut SimRng,
) -> Result<Vec<(usize, usize)>, TopologyError> {
    if k == 0 {
        return Ok(Vec::new());
    }
    if k >= n {
        return Err(TopologyError::DegreeTooLarge { n, k });
    }
    // k < n, so n * k < n * n fits whenever the points fit in memory; treat overflow as odd.
    if n.checked_mul(k).is_none_or(|points| points % 2 == 1) {
        return Err(TopologyError::OddDegreeSum { n, k });
    }
    for _ in 0..MAX_ATTEMPTS {
        if let Some(edges) = try_pairing(n, k, rng) {
            return Ok(edges);
        }
    }
    Err(TopologyError::GaveUp {
        n,
        k,
        attempts: MAX_ATTEMPTS,
    })
}

/// One pairing attempt; `None` when it reaches a dead end.
fn try_pairing(n: usize, k: usize, rng: &mut SimRng) -> Option<Vec<(usize, usize)>> {
    let mut edges = BTreeSet::new();
    let mut points: Vec<usize> = (0..n).flat_map(|v| std::iter::repeat_n(v, k)).collect();
    for _ in 0..MAX_ROUNDS {
        if points.is_empty() {
            return Some(edges.into_iter().collect());
        }
        shuffle(&mut points, rng);
        let mut left: BTreeMap<usize, usize> = BTreeMap::new();
        for pair in points.chunks_exact(2) {
            let (a, b) = (pair[0].min(pair[1]), pair[0].max(pair[1]));
            if a == b || !edges.insert((a, b)) {
                *left.entry(a).or_default() += 1;
                *left.entry(b).or_default() += 1;
            }
        }
        if !left.is_empty() && !any_pair_left(&edges, &left) {
            return None;
        }
        points = left
            .iter()
            .flat_map(|(&v, &count)| std::iter::repeat_n(v, count))
            .collect();
    }
    None
}

/// Whether two distinct nodes with points left are not adjacent yet.
fn any_pair_left(edges: &BTreeSet<(usize, usize)>, left: &BTreeMap<usize, usize>) -> bool {
    let nodes: Vec<usize> = left.keys().copied().collect();
    nodes
        .iter()
        .enumerate()
        .any(|(i, &a)| nodes[i + 1..].iter().any(|&b| !edges.contains(&(a, b))))
}

/// Fisher-Yates shuffle driven by `rng`.
fn shuffle<T>(items: &mut [T], rng: &mut SimRng) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Degrees of `edges` on `n` nodes, checking each edge is well formed and unique.
    fn degrees(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
        let unique: BTreeSet<_> = edges.iter().collect();
        assert_eq!(unique.len(), edges.len(), "duplicate edge");
        let mut degree = vec![0; n];
        for &(a, b) in edges {
            assert!(a < b && b < n, "bad edge ({a}, {b})");
            degree[a] += 1;
            degree[b] += 1;
        }
        degree
    }

    /// Whether every node is reachable from node 0.
    fn connected(n: usize, edges: &[(usize, usize)]) -> bool {
        let mut adjacent = vec![Vec::new(); n];
        for &(a, b) in edges {
            adjacent[a].push(b);
            adjacent[b].push(a);
        }
        let mut seen = vec![false; n];
        let mut stack = vec![0];
        seen[0] = true;
        while let Some(v) = stack.pop() {
            for &w in &adjacent[v] {
                if !seen[w] {
                    seen[w] = true;
                    stack.push(w);
                }
            }
        }
        seen.iter().all(|&s| s)
    }

    #[test]
    fn line_ring_and_mesh_have_the_expected_shape() {
        let e = line(10);
        assert_eq!(e.len(), 9);
        let d = degrees(10, &e);
        assert_eq!((d[0], d[9]), (1, 1));
        assert!(d[1..9].iter().all(|&x| x == 2));
        assert!(connected(10, &e));

        let e = ring(10);
        assert_eq!(e.len(), 10);
        assert!(degrees(10, &e).iter().all(|&x| x == 2));
        assert!(e.contains(&(0, 9)));
        assert_eq!(ring(2), vec![(0, 1)]);
        assert!(ring(1).is_empty() && line(0).is_empty());

        let e = full_mesh(10);
        assert_eq!(e.len(), 45);
        assert!(degrees(10, &e).iter().all(|&x| x == 9));
    }

    #[test]
    fn random_regular_100_8_is_regular_simple_and_connected() {
        let mut rng = SimRng::new(1);
        let e = random_regular(100, 8, &mut rng).unwrap();
        assert_eq!(e.len(), 400);
        assert!(degrees(100, &e).iter().all(|&x| x == 8));
        assert!(connected(100, &e));
    }

    #[test]
    fn random_regular_works_across_sizes_and_seeds() {
        for seed in 0..20 {
            let mut rng = SimRng::new(seed);
            for (n, k) in [(4, 3), (5, 4), (6, 3), (10, 1), (11, 2), (30, 6), (50, 49)] {
                let e = random_regular(n, k, &mut rng).unwrap();
                assert_eq!(e.len(), n * k / 2, "n={n} k={k}");
                assert!(degrees(n, &e).iter().all(|&x| x == k), "n={n} k={k}");
            }
        }
    }

    #[test]
    fn same_seed_same_graph_other_seed_other_graph() {
        let graph = |seed| random_regular(100, 8, &mut SimRng::new(seed)).unwrap();
        assert_eq!(graph(5), graph(5));
        assert_ne!(graph(5), graph(6));
        let via_enum = Topology::RandomRegular(8)
            .edges(100, &mut SimRng::new(5))
            .unwrap();
        assert_eq!(via_enum, graph(5));
    }

    #[test]
    fn impossible_parameters_are_typed_errors() {
        let mut rng = SimRng::new(0);
        assert_eq!(
            random_regular(5, 3, &mut rng),
            Err(TopologyError::OddDegreeSum { n: 5, k: 3 })
        );
        assert_eq!(
            random_regular(4, 4, &mut rng),
            Err(TopologyError::DegreeTooLarge { n: 4, k: 4 })
        );
        assert_eq!(
            Topology::RandomRegular(1).edges(1, &mut rng),
            Err(TopologyError::DegreeTooLarge { n: 1, k: 1 })
        );
        assert_eq!(random_regular(7, 0, &mut rng), Ok(Vec::new()));
    }

    #[test]
    fn named_topologies_match_their_functions() {
        let mut rng = SimRng::new(0);
        assert_eq!(Topology::Line.edges(7, &mut rng), Ok(line(7)));
        assert_eq!(Topology::Ring.edges(7, &mut rng), Ok(ring(7)));
        assert_eq!(Topology::FullMesh.edges(7, &mut rng), Ok(full_mesh(7)));
        // Deterministic topologies draw nothing.
        assert_eq!(rng, SimRng::new(0));
    }
}
