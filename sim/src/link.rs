//! Message links between simulated nodes: latency, jitter, drops,
//! duplicates, corruption and network partitions.

use crate::clock::SimTime;
use crate::rng::SimRng;
use std::collections::BTreeMap;
use std::fmt;

/// Identifies a simulated node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeIndex(pub u32);

impl fmt::Display for NodeIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node{}", self.0)
    }
}

/// An integer probability `(numer, denom)`, meaning `numer / denom`.
pub type Probability = (u32, u32);

/// Probability zero.
pub const NEVER: Probability = (0, 1);

/// Probability one.
pub const ALWAYS: Probability = (1, 1);

/// Why a link model or partition was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// A probability has a zero denominator or exceeds one.
    #[error("invalid probability {numer}/{denom}")]
    InvalidProbability {
        /// Numerator.
        numer: u32,
        /// Denominator.
        denom: u32,
    },
    /// `latency_ms + jitter_ms + 1` overflows.
    #[error("latency {latency_ms}ms + jitter {jitter_ms}ms overflows")]
    DelayOverflow {
        /// Base latency.
        latency_ms: u64,
        /// Maximum extra delay.
        jitter_ms: u64,
    },
    /// A node appears in more than one partition group.
    #[error("{0} is listed in more than one partition group")]
    NodeInTwoGroups(NodeIndex),
}

/// Behaviour of one directed link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkModel {
    /// Minimum delivery delay in milliseconds.
    pub latency_ms: u64,
    /// Maximum extra delay, drawn uniformly from `0..=jitter_ms` per copy.
    pub jitter_ms: u64,
    /// Probability a message is lost.
    pub drop: Probability,
    /// Probability a delivered message arrives twice.
    pub duplicate: Probability,
    /// Probability each delivered copy has one random bit flipped.
    pub corrupt: Probability,
}

impl LinkModel {
    /// A fault-free link with a fixed delay.
    pub const fn ideal(latency_ms: u64) -> Self {
        Self {
            latency_ms,
            jitter_ms: 0,
            drop: NEVER,
            duplicate: NEVER,
            corrupt: NEVER,
        }
    }

    /// Checks every probability is in `[0, 1]` and delays cannot overflow.
    pub fn validate(&self) -> Result<(), LinkError> {
        for (numer, denom) in [self.drop, self.duplicate, self.corrupt] {
            if denom == 0 || numer > denom {
                return Err(LinkError::InvalidProbability { numer, denom });
            }
        }
        // The `+ 1` keeps the jitter draw's range `0..jitter_ms + 1` representable.
        match self
            .latency_ms
            .checked_add(self.jitter_ms)
            .and_then(|d| d.checked_add(1))
        {
            Some(_) => Ok(()),
            None => Err(LinkError::DelayOverflow {
                latency_ms: self.latency_ms,
                jitter_ms: self.jitter_ms,
            }),
        }
    }
}

/// One copy of a message to deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Sender.
    pub from: NodeIndex,
    /// Recipient.
    pub to: NodeIndex,
    /// Virtual time of arrival.
    pub at: SimTime,
    /// Payload as received, possibly corrupted.
    pub bytes: Vec<u8>,
    /// Whether a bit of the payload was flipped in transit.
    pub corrupted: bool,
}

/// The simulated network: link models per directed pair, plus partitions.
#[derive(Clone, Debug)]
pub struct Network {
    default_link: LinkModel,
    links: BTreeMap<(NodeIndex, NodeIndex), LinkModel>,
    /// Group of each listed node while partitioned; `None` when whole.
    groups: Option<BTreeMap<NodeIndex, usize>>,
}

impl Network {
    /// A whole network where every link follows `default_link`.
    pub fn new(default_link: LinkModel) -> Result<Self, LinkError> {
        default_link.validate()?;
        Ok(Self {
            default_link,
            links: BTreeMap::new(),
            groups: None,
        })
    }

    /// Overrides the model of the directed link `from -> to`.
    pub fn set_link(
        &mut self,
        from: NodeIndex,
        to: NodeIndex,
        model: LinkModel,
    ) -> Result<(), LinkError> {
        model.validate()?;
        self.links.insert((from, to), model);
        Ok(())
    }

    /// The model of the directed link `from -> to`.
    pub fn link(&self, from: NodeIndex, to: NodeIndex) -> &LinkModel {
        self.links.get(&(from, to)).unwrap_or(&self.default_link)
    }

    /// Splits the network: only nodes in the same group can reach each other,
    /// and a node listed in no group is isolated. Replaces any earlier partition.
    pub fn partition(&mut self, groups: &[&[NodeIndex]]) -> Result<(), LinkError> {
        let mut map = BTreeMap::new();
        for (g, members) in groups.iter().enumerate() {
            for &node in *members {
                if map.insert(node, g).is_some_and(|prev| prev != g) {
                    return Err(LinkError::NodeInTwoGroups(node));
                }
            }
        }
        self.groups = Some(map);
        Ok(())
    }

    /// Removes any partition.
    pub fn heal(&mut self) {
        self.groups = None;
    }

    /// Whether a partition is in force.
    pub fn is_partitioned(&self) -> bool {
        self.groups.is_some()
    }

    /// Whether `from` can currently deliver to `to` (a node always reaches itself).
    pub fn can_reach(&self, from: NodeIndex, to: NodeIndex) -> bool {
        match &self.groups {
            None => true,
            Some(_) if from == to => true,
            Some(groups) => matches!(
                (groups.get(&from), groups.get(&to)),
                (Some(a), Some(b)) if a == b
            ),
        }
    }

    /// Sends `bytes` from `from` to `to` at `now` and returns the copies to
    /// deliver: none (partitioned or dropped), one, or two (duplicated).
    /// Depends only on its arguments; draws from `rng` in a fixed order.
    pub fn transmit(
        &self,
        from: NodeIndex,
        to: NodeIndex,
        bytes: &[u8],
        now: SimTime,
        rng: &mut SimRng,
    ) -> Vec<Delivery> {
        if !self.can_reach(from, to) {
            return Vec::new();
        }
        let link = self.link(from, to);
        if rng.chance(link.drop.0, link.drop.1) {
            return Vec::new();
        }
        let copies = if rng.chance(link.duplicate.0, link.duplicate.1) {
            2
        } else {
            1
        };
        (0..copies)
            .map(|_| {
                let delay = link.latency_ms + rng.below(link.jitter_ms + 1);
                let mut bytes = bytes.to_vec();
                let corrupted = rng.chance(link.corrupt.0, link.corrupt.1) && !bytes.is_empty();
                if corrupted {
                    let bit = rng.below(bytes.len() as u64 * 8);
                    bytes[(bit / 8) as usize] ^= 1 << (bit % 8);
                }
                Delivery {
                    from,
                    to,
                    at: now.saturating_add(delay),
                    bytes,
                    corrupted,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: NodeIndex = NodeIndex(0);
    const B: NodeIndex = NodeIndex(1);
    const C: NodeIndex = NodeIndex(2);

    fn net(model: LinkModel) -> Network {
        Network::new(model).unwrap()
    }

    fn delivered(net: &Network, from: NodeIndex, to: NodeIndex, rng: &mut SimRng) -> usize {
        net.transmit(from, to, b"ping", SimTime(0), rng).len()
    }

    #[test]
    fn drop_probability_zero_and_one_are_exact() {
        let mut rng = SimRng::new(1);
        let never = net(LinkModel {
            drop: (0, 7),
            ..LinkModel::ideal(5)
        });
        let always = net(LinkModel {
            drop: (7, 7),
            ..LinkModel::ideal(5)
        });
        for _ in 0..10_000 {
            assert_eq!(delivered(&never, A, B, &mut rng), 1);
            assert_eq!(delivered(&always, A, B, &mut rng), 0);
        }
    }

    #[test]
    fn drop_probability_is_honoured_on_average() {
        let mut rng = SimRng::new(2);
        let n = net(LinkModel {
            drop: (1, 4),
            ..LinkModel::ideal(0)
        });
        let got: usize = (0..10_000).map(|_| delivered(&n, A, B, &mut rng)).sum();
        assert!((7300..=7700).contains(&got), "{got}");
    }

    #[test]
    fn latency_jitter_and_duplicates() {
        let mut rng = SimRng::new(3);
        let model = LinkModel {
            jitter_ms: 10,
            duplicate: ALWAYS,
            ..LinkModel::ideal(100)
        };
        let n = net(model);
        let mut seen = [false; 11];
        for _ in 0..2000 {
            let d = n.transmit(A, B, b"x", SimTime(1000), &mut rng);
            assert_eq!(d.len(), 2);
            for copy in d {
                assert_eq!(
                    (copy.from, copy.to, copy.bytes, copy.corrupted),
                    (A, B, b"x".to_vec(), false)
                );
                seen[(copy.at.0 - 1100) as usize] = true;
            }
        }
        assert!(seen.iter().all(|&s| s), "every delay in 100..=110 occurs");
    }

    #[test]
    fn corruption_flips_exactly_one_bit() {
        let mut rng = SimRng::new(4);
        let n = net(LinkModel {
            corrupt: ALWAYS,
            ..LinkModel::ideal(1)
        });
        let mut bits_hit = [false; 24];
        for i in 0..5000u32 {
            let msg = (i.wrapping_mul(0x9e37_79b9)).to_le_bytes()[..3].to_vec();
            let [d] =
                <[Delivery; 1]>::try_from(n.transmit(A, B, &msg, SimTime(0), &mut rng)).unwrap();
            assert!(d.corrupted);
            let diff: Vec<u32> = msg
                .iter()
                .zip(&d.bytes)
                .map(|(a, b)| (a ^ b).count_ones())
                .collect();
            assert_eq!(diff.iter().sum::<u32>(), 1, "{msg:?} -> {:?}", d.bytes);
            let byte = diff.iter().position(|&c| c == 1).unwrap();
            bits_hit[byte * 8 + (msg[byte] ^ d.bytes[byte]).trailing_zeros() as usize] = true;
        }
        assert!(
            bits_hit.iter().all(|&h| h),
            "every bit position can be flipped"
        );
        // An empty message has no bit to flip; a clean link never corrupts.
        assert!(!n.transmit(A, B, &[], SimTime(0), &mut rng)[0].corrupted);
        let clean = net(LinkModel::ideal(1));
        for _ in 0..1000 {
            let d = &clean.transmit(A, B, b"abc", SimTime(0), &mut rng)[0];
            assert_eq!((d.bytes.as_slice(), d.corrupted), (&b"abc"[..], false));
        }
    }

    #[test]
    fn partitions_block_delivery_and_heal_restores_it() {
        let mut rng = SimRng::new(5);
        let mut n = net(LinkModel::ideal(10));
        let d = NodeIndex(3);
        n.partition(&[&[A, B], &[C]]).unwrap();
        assert!(n.is_partitioned());
        assert_eq!(delivered(&n, A, B, &mut rng), 1);
        assert_eq!(delivered(&n, B, A, &mut rng), 1);
        for (x, y) in [(A, C), (C, A), (B, C), (d, A), (A, d), (d, NodeIndex(4))] {
            assert_eq!(delivered(&n, x, y, &mut rng), 0, "{x} -> {y}");
        }
        assert_eq!(delivered(&n, d, d, &mut rng), 1, "a node reaches itself");
        n.heal();
        assert!(!n.is_partitioned());
        for (x, y) in [(A, C), (C, A), (B, C), (d, A)] {
            assert_eq!(delivered(&n, x, y, &mut rng), 1, "{x} -> {y}");
        }
    }

    #[test]
    fn partition_rejects_node_in_two_groups() {
        let mut n = net(LinkModel::ideal(0));
        assert_eq!(
            n.partition(&[&[A, B], &[B]]),
            Err(LinkError::NodeInTwoGroups(B))
        );
        assert!(!n.is_partitioned(), "a rejected partition changes nothing");
        n.partition(&[&[A, A]]).unwrap();
    }

    #[test]
    fn per_link_overrides_and_validation() {
        let mut n = net(LinkModel::ideal(10));
        n.set_link(
            A,
            B,
            LinkModel {
                drop: ALWAYS,
                ..LinkModel::ideal(10)
            },
        )
        .unwrap();
        let mut rng = SimRng::new(6);
        assert_eq!(delivered(&n, A, B, &mut rng), 0);
        assert_eq!(delivered(&n, B, A, &mut rng), 1, "links are directed");
        let bad = [
            (
                LinkModel {
                    drop: (1, 0),
                    ..LinkModel::ideal(0)
                },
                LinkError::InvalidProbability { numer: 1, denom: 0 },
            ),
            (
                LinkModel {
                    corrupt: (3, 2),
                    ..LinkModel::ideal(0)
                },
                LinkError::InvalidProbability { numer: 3, denom: 2 },
            ),
            (
                LinkModel {
                    jitter_ms: 1,
                    ..LinkModel::ideal(u64::MAX)
                },
                LinkError::DelayOverflow {
                    latency_ms: u64::MAX,
                    jitter_ms: 1,
                },
            ),
            (
                LinkModel {
                    jitter_ms: u64::MAX,
                    ..LinkModel::ideal(0)
                },
                LinkError::DelayOverflow {
                    latency_ms: 0,
                    jitter_ms: u64::MAX,
                },
            ),
        ];
        for (model, err) in bad {
            assert_eq!(n.set_link(A, C, model), Err(err));
            assert_eq!(Network::new(model).unwrap_err(), err);
        }
        assert_eq!(n.link(A, C), &LinkModel::ideal(10));
    }

    #[test]
    fn transmit_is_deterministic_for_a_seed() {
        let model = LinkModel {
            jitter_ms: 50,
            drop: (1, 3),
            duplicate: (1, 3),
            corrupt: (1, 3),
            latency_ms: 5,
        };
        let n = net(model);
        let run = |seed| {
            let mut rng = SimRng::new(seed);
            (0..200)
                .map(|i| n.transmit(A, B, &[i as u8; 8], SimTime(i), &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(11), run(11));
        assert_ne!(run(11), run(12));
    }
}
