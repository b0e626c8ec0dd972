//! Bans keyed on what a fault proves: a node id for faults inside an authenticated session
//! (only the holder of that Noise static key could have sent the bytes), an address for faults
//! before the node id is known. Lengths grow with repeat offences, and an address from which
//! several node ids were banned is banned itself (a node id costs nothing to make).
//!
//! Sans-IO: the peer manager calls these with the time; the PeerManager actor persists
//! [`Bans::addresses`] (`bans.dat`), [`Bans::history`] (`ban-history.dat`) and
//! [`Bans::nodes`] (`node-bans.dat`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::Hash;
use crate::encoding::{BoundedVec, Canonical};

/// Most bans kept of each kind; the soonest to expire are dropped beyond it.
pub const MAX_BANS: usize = 10_000;

/// How long a ban lasts for a first, second and later offence: a first offence (an honest node
/// with a bug, an operator's mistake) costs minutes, a repeat a day.
pub const BAN_STEPS_MS: [u64; 3] = [10 * 60 * 1000, 2 * 60 * 60 * 1000, 24 * 60 * 60 * 1000];
/// An offender whose last ban began this long ago starts over at the first step.
pub const STRIKE_MEMORY_MS: u64 = 7 * 24 * 60 * 60 * 1000;
/// Distinct node ids banned from one address within [`STRIKE_MEMORY_MS`] after which the
/// address is banned too (one that makes a new key after every ban).
pub const CHURN_NODE_BANS: usize = 3;

/// Reads a map of at most [`MAX_BANS`] entries, so a ban file holds no more than the node
/// would keep; a longer one is refused before it is built. A map encodes as its length and
/// then its pairs, as a sequence of pairs does (the bytes on disk are the same).
fn bounded_map<'de, D, K, V>(d: D) -> Result<BTreeMap<K, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    let pairs = BoundedVec::<(K, V), MAX_BANS>::deserialize(d)?;
    Ok(pairs.into_inner().into_iter().collect())
}

/// Bans of one kind of key with their end times; persisted so bans survive restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "K: Deserialize<'de> + Ord"))]
pub struct Expiring<K: Ord> {
    /// Key -> ban end, ms since the Unix epoch.
    #[serde(deserialize_with = "bounded_map")]
    bans: BTreeMap<K, u64>,
}

/// Banned addresses with their end times (`bans.dat`).
pub type BanList = Expiring<IpAddr>;

impl<K: Ord> Default for Expiring<K> {
    fn default() -> Self {
        Self {
            bans: BTreeMap::new(),
        }
    }
}

impl Canonical for BanList {
    const NAME: &'static str = "ban list";
    const MAX_ENCODED_LEN: usize = 3 + MAX_BANS * (1 + 16 + 10);
}

impl<K: Ord + Copy> Expiring<K> {
    /// Bans `key` until `until_ms` (a longer existing ban stays).
    pub fn ban(&mut self, key: K, until_ms: u64) {
        let entry = self.bans.entry(key).or_insert(0);
        *entry = (*entry).max(until_ms);
        if self.bans.len() > MAX_BANS
            && let Some((&soonest, _)) = self.bans.iter().min_by_key(|(_, until)| **until)
        {
            self.bans.remove(&soonest);
        }
    }

    /// True while `key` is banned.
    pub fn is_banned(&self, key: &K, now_ms: u64) -> bool {
        self.bans.get(key).is_some_and(|&until| until > now_ms)
    }

    /// When the ban of `key` ends, if it has one (expired or not).
    pub fn until(&self, key: &K) -> Option<u64> {
        self.bans.get(key).copied()
    }

    /// Forgets expired bans.
    pub fn prune(&mut self, now_ms: u64) {
        self.bans.retain(|_, until| *until > now_ms);
    }

    /// Number of bans held (expired ones included until pruned).
    pub fn len(&self) -> usize {
        self.bans.len()
    }

    /// True when no bans are held.
    pub fn is_empty(&self) -> bool {
        self.bans.is_empty()
    }
}

/// An offender's ban history: how many bans in a row, the last when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Strikes {
    /// Bans so far (at most the number of steps).
    pub count: u8,
    /// When the last one began, ms since the Unix epoch.
    pub last_ms: u64,
}

impl Strikes {
    /// Records a ban beginning at `now_ms` and returns how long it lasts.
    fn strike(&mut self, now_ms: u64) -> u64 {
        if now_ms.saturating_sub(self.last_ms) >= STRIKE_MEMORY_MS {
            self.count = 0;
        }
        self.count = self.count.saturating_add(1).min(BAN_STEPS_MS.len() as u8);
        self.last_ms = now_ms;
        BAN_STEPS_MS[usize::from(self.count.max(1) - 1)]
    }

    fn fresh(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.last_ms) < STRIKE_MEMORY_MS
    }
}

/// The ban history of addresses, persisted beside the ban list so a ban's length follows the
/// offender across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanHistory {
    #[serde(deserialize_with = "bounded_map")]
    strikes: BTreeMap<IpAddr, Strikes>,
}

impl Canonical for BanHistory {
    const NAME: &'static str = "ban history";
    const MAX_ENCODED_LEN: usize = 3 + MAX_BANS * (1 + 16 + 1 + 10);
}

impl BanHistory {
    /// Records a ban of `ip` beginning at `now_ms`; returns how long it lasts.
    pub fn record(&mut self, ip: IpAddr, now_ms: u64) -> u64 {
        let lasts = self
            .strikes
            .entry(ip)
            .or_insert(Strikes {
                count: 0,
                last_ms: now_ms,
            })
            .strike(now_ms);
        if self.strikes.len() > MAX_BANS
            && let Some((&oldest, _)) = self.strikes.iter().min_by_key(|(_, s)| s.last_ms)
        {
            self.strikes.remove(&oldest);
        }
        lasts
    }

    /// Forgets addresses whose last ban is older than [`STRIKE_MEMORY_MS`].
    pub fn prune(&mut self, now_ms: u64) {
        self.strikes.retain(|_, s| s.fresh(now_ms));
    }

    /// The history of `ip`.
    pub fn of(&self, ip: &IpAddr) -> Option<Strikes> {
        self.strikes.get(ip).copied()
    }

    /// Addresses remembered.
    pub fn len(&self) -> usize {
        self.strikes.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.strikes.is_empty()
    }
}

/// The format of `node-bans.dat`; a file of a later format fails to decode and is set aside.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeBansFormat {
    /// The first format: bans, then strikes.
    #[default]
    V1,
}

/// A node id's ban history, with the address it was last banned from (to spot churners).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStrikes {
    /// Its bans in a row.
    pub strikes: Strikes,
    /// The address of the session that earned the last one.
    pub from: IpAddr,
}

/// Banned node ids and their history, persisted in one versioned file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeBans {
    format: NodeBansFormat,
    bans: Expiring<Hash>,
    #[serde(deserialize_with = "bounded_map")]
    strikes: BTreeMap<Hash, NodeStrikes>,
}

impl Canonical for NodeBans {
    const NAME: &'static str = "node ban list";
    const MAX_ENCODED_LEN: usize = 1 + 3 + MAX_BANS * (33 + 10) + 3 + MAX_BANS * (33 + 11 + 17);
}

impl NodeBans {
    /// The bans.
    pub fn bans(&self) -> &Expiring<Hash> {
        &self.bans
    }

    /// The history of `node`.
    pub fn of(&self, node: &Hash) -> Option<NodeStrikes> {
        self.strikes.get(node).copied()
    }

    /// Node ids remembered with a history.
    pub fn len(&self) -> usize {
        self.strikes.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.strikes.is_empty() && self.bans.is_empty()
    }

    /// Records a ban of `node`, earned from `from`, beginning at `now_ms`; returns its length.
    fn ban(&mut self, node: Hash, from: IpAddr, now_ms: u64) -> u64 {
        let entry = self.strikes.entry(node).or_insert(NodeStrikes {
            strikes: Strikes {
                count: 0,
                last_ms: now_ms,
            },
            from,
        });
        let lasts = entry.strikes.strike(now_ms);
        entry.from = from;
        if self.strikes.len() > MAX_BANS
            && let Some((&oldest, _)) = self.strikes.iter().min_by_key(|(_, s)| s.strikes.last_ms)
        {
            self.strikes.remove(&oldest);
        }
        self.bans.ban(node, now_ms.saturating_add(lasts));
        lasts
    }

    /// Distinct node ids banned from `ip` within the strike memory.
    fn banned_from(&self, ip: &IpAddr, now_ms: u64) -> usize {
        self.strikes
            .values()
            .filter(|s| s.from == *ip && s.strikes.fresh(now_ms))
            .count()
    }

    fn prune(&mut self, now_ms: u64) {
        self.bans.prune(now_ms);
        self.strikes.retain(|_, s| s.strikes.fresh(now_ms));
    }
}

/// What a ban covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanKind {
    /// An IP address: every connection from it is refused before its handshake.
    Address,
    /// A node id: its sessions are refused once its Noise static key is proven.
    Node,
}

impl BanKind {
    /// The metric label.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Address => "address",
            Self::Node => "node",
        }
    }
}

/// A ban just issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ban {
    /// What it covers.
    pub kind: BanKind,
    /// How long it lasts, ms.
    pub lasts_ms: u64,
}

/// Every ban a node holds: by address, by node id, and their histories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bans {
    addresses: BanList,
    history: BanHistory,
    nodes: NodeBans,
}

impl Bans {
    /// Bans restored from disk (or empty).
    pub fn new(addresses: BanList, history: BanHistory, nodes: NodeBans) -> Self {
        Self {
            addresses,
            history,
            nodes,
        }
    }

    /// The address bans (to persist them).
    pub fn addresses(&self) -> &BanList {
        &self.addresses
    }

    /// The address ban history (to persist it).
    pub fn history(&self) -> &BanHistory {
        &self.history
    }

    /// The node-id bans and their history (to persist them).
    pub fn nodes(&self) -> &NodeBans {
        &self.nodes
    }

    /// True while `ip` is banned.
    pub fn is_address_banned(&self, ip: &IpAddr, now_ms: u64) -> bool {
        self.addresses.is_banned(ip, now_ms)
    }

    /// True while `node` is banned.
    pub fn is_node_banned(&self, node: &Hash, now_ms: u64) -> bool {
        self.nodes.bans.is_banned(node, now_ms)
    }

    /// Bans `ip` for a fault proven only of the address; the length follows its history.
    pub fn ban_address(&mut self, ip: IpAddr, now_ms: u64) -> Ban {
        let lasts_ms = self.history.record(ip, now_ms);
        self.addresses.ban(ip, now_ms.saturating_add(lasts_ms));
        Ban {
            kind: BanKind::Address,
            lasts_ms,
        }
    }

    /// Bans `node` for a fault of its session from `from`; when [`CHURN_NODE_BANS`] distinct
    /// node ids were banned from that address within the strike memory, the address too.
    pub fn ban_node(&mut self, node: Hash, from: IpAddr, now_ms: u64) -> Vec<Ban> {
        let lasts_ms = self.nodes.ban(node, from, now_ms);
        let mut bans = vec![Ban {
            kind: BanKind::Node,
            lasts_ms,
        }];
        if self.nodes.banned_from(&from, now_ms) >= CHURN_NODE_BANS {
            bans.push(self.ban_address(from, now_ms));
        }
        bans
    }

    /// Forgets expired bans and histories past the strike memory.
    pub fn prune(&mut self, now_ms: u64) {
        self.addresses.prune(now_ms);
        self.history.prune(now_ms);
        self.nodes.prune(now_ms);
    }
}

#[cfg(test)]
mod tests;
