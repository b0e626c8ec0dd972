//! The address book: where peers can be found, split into addresses heard of ("new") and
//! addresses connected to successfully ("tried"), with limits per network group so that one
//! operator with many addresses in one range cannot fill it (an eclipse attack).
//!
//! Sans-IO: the PeerManager actor feeds it gossip and connection outcomes with the time, asks
//! it whom to dial, and persists [`AddrBook::snapshot`] in the data directory.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::encoding::{BoundedVec, Canonical};

/// Most addresses in the "new" table.
pub const MAX_NEW: usize = 4096;
/// Most addresses in the "tried" table.
pub const MAX_TRIED: usize = 1024;
/// Most "new" addresses from one network group.
pub const MAX_NEW_PER_GROUP: usize = 64;
/// Most "tried" addresses from one network group.
pub const MAX_TRIED_PER_GROUP: usize = 16;
/// Delay before the first retry of a failed address.
pub const BASE_BACKOFF_MS: u64 = 1_000;
/// Longest delay between retries.
pub const MAX_BACKOFF_MS: u64 = 10 * 60 * 1000;
/// Failed attempts after which a never-reached "new" address is forgotten.
pub const MAX_NEW_ATTEMPTS: u32 = 10;

/// A source of randomness (the node passes a seeded or OS-backed generator).
pub trait Random {
    /// A uniformly random 64-bit value.
    fn next_u64(&mut self) -> u64;
}

/// The network group of an address: IPv4 /16, IPv6 /32, and each loopback or private address
/// on its own (local test networks live in one range and must not be limited as one group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NetGroup {
    /// Routable IPv4, by /16.
    V4([u8; 2]),
    /// Routable IPv6, by /32.
    V6([u8; 4]),
    /// A loopback, private or link-local address: a group of its own.
    Local(SocketAddr),
}

impl NetGroup {
    /// The group of `addr`.
    pub fn of(addr: &SocketAddr) -> Self {
        match addr.ip() {
            IpAddr::V4(ip) if ip.is_loopback() || ip.is_private() || ip.is_link_local() => {
                Self::Local(*addr)
            }
            IpAddr::V4(ip) => {
                let o = ip.octets();
                Self::V4([o[0], o[1]])
            }
            IpAddr::V6(ip) if ip.is_loopback() || (ip.segments()[0] & 0xfe00) == 0xfc00 => {
                Self::Local(*addr)
            }
            IpAddr::V6(ip) => {
                let o = ip.octets();
                Self::V6([o[0], o[1], o[2], o[3]])
            }
        }
    }
}

/// Whether an address can be a peer at all.
pub fn is_dialable(addr: &SocketAddr) -> bool {
    let ip = addr.ip();
    addr.port() != 0
        && !ip.is_unspecified()
        && !ip.is_multicast()
        && !matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}

/// What the book knows about one address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrInfo {
    /// The address.
    pub addr: SocketAddr,
    /// Capability bits last announced.
    pub capabilities: u64,
    /// Last time anyone vouched for it (gossip or a connection), ms.
    pub last_seen_ms: u64,
    /// Last successful connection, ms (0: never).
    pub last_success_ms: u64,
    /// Last dial attempt, ms (0: never).
    pub last_attempt_ms: u64,
    /// Failed attempts since the last success.
    pub failures: u32,
    /// True in the "tried" table.
    pub tried: bool,
}

impl AddrInfo {
    /// When it may be dialled again: exponential backoff after failures.
    pub fn retry_at_ms(&self, jitter: u64) -> u64 {
        if self.failures == 0 {
            return self.last_attempt_ms;
        }
        let backoff = BASE_BACKOFF_MS
            .saturating_mul(1u64 << self.failures.min(20))
            .min(MAX_BACKOFF_MS);
        // Up to +25 % jitter, so peers that failed together do not retry together.
        self.last_attempt_ms
            .saturating_add(backoff + jitter % (backoff / 4 + 1))
    }
}

/// The persisted form of the book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrBookSnapshot {
    /// Every known address.
    pub addrs: BoundedVec<AddrInfo, { MAX_NEW + MAX_TRIED }>,
}

impl Canonical for AddrBookSnapshot {
    const NAME: &'static str = "address book";
    const MAX_ENCODED_LEN: usize = 3 + (MAX_NEW + MAX_TRIED) * 80;
}

/// The address book.
#[derive(Debug, Clone, Default)]
pub struct AddrBook {
    addrs: BTreeMap<SocketAddr, AddrInfo>,
    /// The "new" addresses of each group, so evicting within a group scans at most
    /// [`MAX_NEW_PER_GROUP`] entries, whatever a peer gossips.
    new_per_group: BTreeMap<NetGroup, BTreeSet<SocketAddr>>,
    /// The "tried" addresses of each group.
    tried_per_group: BTreeMap<NetGroup, BTreeSet<SocketAddr>>,
    new_count: usize,
    tried_count: usize,
}

impl AddrBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a book from a snapshot, dropping entries that break today's limits.
    pub fn from_snapshot(snapshot: AddrBookSnapshot) -> Self {
        let mut book = Self::new();
        for info in snapshot.addrs.into_inner() {
            if !is_dialable(&info.addr) || book.addrs.contains_key(&info.addr) {
                continue;
            }
            let group = NetGroup::of(&info.addr);
            if info.tried {
                if book.tried_count < MAX_TRIED
                    && book.group_count(true, group) < MAX_TRIED_PER_GROUP
                {
                    book.insert(info);
                }
            } else if book.new_count < MAX_NEW && book.group_count(false, group) < MAX_NEW_PER_GROUP
            {
                book.insert(info);
            }
        }
        book
    }

    /// The persisted form.
    pub fn snapshot(&self) -> AddrBookSnapshot {
        let all: Vec<AddrInfo> = self.addrs.values().cloned().collect();
        AddrBookSnapshot {
            addrs: BoundedVec::try_from_vec(all).unwrap_or_default(),
        }
    }

    /// Number of addresses (new, tried).
    pub fn len(&self) -> (usize, usize) {
        (self.new_count, self.tried_count)
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// What the book knows of `addr`.
    pub fn get(&self, addr: &SocketAddr) -> Option<&AddrInfo> {
        self.addrs.get(addr)
    }

    fn groups(&self, tried: bool) -> &BTreeMap<NetGroup, BTreeSet<SocketAddr>> {
        if tried {
            &self.tried_per_group
        } else {
            &self.new_per_group
        }
    }

    fn group_count(&self, tried: bool, group: NetGroup) -> usize {
        self.groups(tried).get(&group).map_or(0, BTreeSet::len)
    }

    fn insert(&mut self, info: AddrInfo) {
        let group = NetGroup::of(&info.addr);
        if info.tried {
            self.tried_per_group
                .entry(group)
                .or_default()
                .insert(info.addr);
            self.tried_count += 1;
        } else {
            self.new_per_group
                .entry(group)
                .or_default()
                .insert(info.addr);
            self.new_count += 1;
        }
        self.addrs.insert(info.addr, info);
    }

    fn remove(&mut self, addr: &SocketAddr) -> Option<AddrInfo> {
        let info = self.addrs.remove(addr)?;
        let group = NetGroup::of(addr);
        let (map, count) = if info.tried {
            (&mut self.tried_per_group, &mut self.tried_count)
        } else {
            (&mut self.new_per_group, &mut self.new_count)
        };
        if let Some(members) = map.get_mut(&group) {
            members.remove(addr);
            if members.is_empty() {
                map.remove(&group);
            }
        }
        *count -= 1;
        Some(info)
    }

    /// The least valuable entry of a table within `group`: most failures, then the oldest
    /// sighting. Scans only that group.
    fn worst(&self, tried: bool, group: NetGroup) -> Option<SocketAddr> {
        self.groups(tried)
            .get(&group)?
            .iter()
            .filter_map(|a| self.addrs.get(a))
            .max_by_key(|i| (i.failures, u64::MAX - i.last_seen_ms))
            .map(|i| i.addr)
    }

    /// Where to make room in a full table for an address of `group`: the worst entry of the
    /// next group in key order (wrapping), found in O(log n) rather than by scanning the table.
    fn evict_for(&self, tried: bool, group: NetGroup) -> Option<SocketAddr> {
        let map = self.groups(tried);
        let next = map
            .range((std::ops::Bound::Excluded(group), std::ops::Bound::Unbounded))
            .next()
            .or_else(|| map.iter().next())?;
        self.worst(tried, *next.0)
    }

    /// Learns an address from gossip or configuration. Returns false when it was refused
    /// (undialable, or its group is full of better entries).
    pub fn add(&mut self, addr: SocketAddr, capabilities: u64, seen_ms: u64, now_ms: u64) -> bool {
        if !is_dialable(&addr) {
            return false;
        }
        // Gossip cannot vouch for the future.
        let seen_ms = seen_ms.min(now_ms);
        if let Some(info) = self.addrs.get_mut(&addr) {
            info.last_seen_ms = info.last_seen_ms.max(seen_ms);
            info.capabilities = capabilities;
            return true;
        }
        let group = NetGroup::of(&addr);
        if self.group_count(false, group) >= MAX_NEW_PER_GROUP {
            match self.worst(false, group) {
                Some(w) if self.addrs.get(&w).is_some_and(|i| i.last_seen_ms < seen_ms) => {
                    self.remove(&w);
                }
                _ => return false,
            }
        }
        if self.new_count >= MAX_NEW
            && let Some(w) = self.evict_for(false, group)
        {
            self.remove(&w);
        }
        self.insert(AddrInfo {
            addr,
            capabilities,
            last_seen_ms: seen_ms,
            last_success_ms: 0,
            last_attempt_ms: 0,
            failures: 0,
            tried: false,
        });
        true
    }

    /// Forgets an address.
    pub fn forget(&mut self, addr: &SocketAddr) {
        self.remove(addr);
    }

    /// Records a dial attempt.
    pub fn attempt(&mut self, addr: &SocketAddr, now_ms: u64) {
        if let Some(info) = self.addrs.get_mut(addr) {
            info.last_attempt_ms = now_ms;
        }
    }

    /// Records a failed connection; a "new" address that keeps failing is forgotten.
    pub fn failed(&mut self, addr: &SocketAddr, now_ms: u64) {
        let forget = match self.addrs.get_mut(addr) {
            Some(info) => {
                info.last_attempt_ms = now_ms;
                info.failures = info.failures.saturating_add(1);
                !info.tried && info.failures >= MAX_NEW_ATTEMPTS
            }
            None => false,
        };
        if forget {
            self.remove(addr);
        }
    }

    /// Records a successful connection (handshake and Hello done): the address moves to
    /// "tried", evicting the worst tried entry of its group back to "new" if the group is full.
    pub fn connected(&mut self, addr: &SocketAddr, capabilities: u64, now_ms: u64) {
        if !is_dialable(addr) {
            return;
        }
        let mut info = self.remove(addr).unwrap_or(AddrInfo {
            addr: *addr,
            capabilities,
            last_seen_ms: now_ms,
            last_success_ms: 0,
            last_attempt_ms: 0,
            failures: 0,
            tried: false,
        });
        let group = NetGroup::of(addr);
        let evict = if self.group_count(true, group) >= MAX_TRIED_PER_GROUP {
            self.worst(true, group)
        } else if self.tried_count >= MAX_TRIED {
            self.evict_for(true, group)
        } else {
            None
        };
        if let Some(w) = evict
            && let Some(mut old) = self.remove(&w)
        {
            old.tried = false;
            if self.group_count(false, NetGroup::of(&w)) < MAX_NEW_PER_GROUP
                && self.new_count < MAX_NEW
            {
                self.insert(old);
            }
        }
        info.tried = true;
        info.failures = 0;
        info.capabilities = capabilities;
        info.last_seen_ms = now_ms;
        info.last_success_ms = now_ms;
        info.last_attempt_ms = now_ms;
        self.insert(info);
    }

    /// Picks an address to dial: due for a retry, not in `exclude`; tried and new addresses
    /// alternate at random so fresh gossip is explored but known-good peers dominate.
    pub fn select(
        &self,
        now_ms: u64,
        rng: &mut dyn Random,
        exclude: &dyn Fn(&SocketAddr) -> bool,
    ) -> Option<SocketAddr> {
        let prefer_tried = rng.next_u64().is_multiple_of(2);
        let eligible =
            |i: &&AddrInfo| i.retry_at_ms(jitter_of(&i.addr)) <= now_ms && !exclude(&i.addr);
        let pick = |tried: bool, rng: &mut dyn Random| {
            let candidates: Vec<&AddrInfo> = self
                .addrs
                .values()
                .filter(|i| i.tried == tried)
                .filter(eligible)
                .collect();
            if candidates.is_empty() {
                None
            } else {
                let i = (rng.next_u64() % candidates.len() as u64) as usize;
                Some(candidates[i].addr)
            }
        };
        pick(prefer_tried, rng).or_else(|| pick(!prefer_tried, rng))
    }

    /// Up to `max` addresses to gossip, most recently seen first, none older than `max_age_ms`.
    pub fn gossip(&self, now_ms: u64, max_age_ms: u64, max: usize) -> Vec<&AddrInfo> {
        let mut fresh: Vec<&AddrInfo> = self
            .addrs
            .values()
            .filter(|i| now_ms.saturating_sub(i.last_seen_ms) <= max_age_ms)
            .collect();
        fresh.sort_by_key(|i| u64::MAX - i.last_seen_ms);
        fresh.truncate(max);
        fresh
    }
}

/// A per-address jitter value, stable between calls so an address's retry time does not move.
fn jitter_of(addr: &SocketAddr) -> u64 {
    // The IP's bytes and the port, hashed without formatting the address (this runs for every
    // candidate on every dial tick).
    let mut hasher = crate::hash::Hasher::new(crate::hash::tags::ADDR_JITTER);
    match addr.ip() {
        std::net::IpAddr::V4(ip) => hasher.update(&ip.octets()),
        std::net::IpAddr::V6(ip) => hasher.update(&ip.octets()),
    };
    hasher.update(&addr.port().to_le_bytes());
    let h = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&h.0[..8]);
    u64::from_le_bytes(first)
}

/// Banned addresses with expiry times; persisted so bans survive restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanList {
    /// IP -> ban end, ms since the Unix epoch.
    #[serde(deserialize_with = "bounded_ip_map")]
    bans: BTreeMap<IpAddr, u64>,
}

/// Most bans kept; the oldest expiring first are dropped beyond it.
pub const MAX_BANS: usize = 10_000;

/// Reads a map keyed by address of at most [`MAX_BANS`] entries (the ban list and the ban
/// history), so a file holds no more than the node would keep; a longer one is refused before
/// it is built. A map encodes as its length and then its pairs, as a sequence of pairs does.
fn bounded_ip_map<'de, D, V>(d: D) -> Result<BTreeMap<IpAddr, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    let pairs = BoundedVec::<(IpAddr, V), MAX_BANS>::deserialize(d)?;
    Ok(pairs.into_inner().into_iter().collect())
}

impl Canonical for BanList {
    const NAME: &'static str = "ban list";
    const MAX_ENCODED_LEN: usize = 3 + MAX_BANS * (1 + 16 + 10);
}

impl BanList {
    /// Bans `ip` until `until_ms` (a longer existing ban stays).
    pub fn ban(&mut self, ip: IpAddr, until_ms: u64) {
        let entry = self.bans.entry(ip).or_insert(0);
        *entry = (*entry).max(until_ms);
        if self.bans.len() > MAX_BANS
            && let Some((&soonest, _)) = self.bans.iter().min_by_key(|(_, until)| **until)
        {
            self.bans.remove(&soonest);
        }
    }

    /// True while `ip` is banned.
    pub fn is_banned(&self, ip: &IpAddr, now_ms: u64) -> bool {
        self.bans.get(ip).is_some_and(|&until| until > now_ms)
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

/// How long a ban lasts for an address's first, second and later offences: a first offence
/// (an honest node with a bug, an operator's mistake) costs minutes, a repeat a day.
pub const BAN_STEPS_MS: [u64; 3] = [10 * 60 * 1000, 2 * 60 * 60 * 1000, 24 * 60 * 60 * 1000];
/// An address whose last ban began this long ago starts over at the first step.
pub const STRIKE_MEMORY_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// An address's ban history: how many bans in a row, the last when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Strikes {
    /// Bans so far (at most the number of steps).
    pub count: u8,
    /// When the last one began, ms since the Unix epoch.
    pub last_ms: u64,
}

/// The ban history of addresses, persisted beside the ban list so a ban's length follows the
/// offender across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanHistory {
    #[serde(deserialize_with = "bounded_ip_map")]
    strikes: BTreeMap<IpAddr, Strikes>,
}

impl Canonical for BanHistory {
    const NAME: &'static str = "ban history";
    const MAX_ENCODED_LEN: usize = 3 + MAX_BANS * (1 + 16 + 1 + 10);
}

impl BanHistory {
    /// Records a ban of `ip` beginning at `now_ms`; returns how long it lasts.
    pub fn record(&mut self, ip: IpAddr, now_ms: u64) -> u64 {
        let entry = self.strikes.entry(ip).or_insert(Strikes {
            count: 0,
            last_ms: now_ms,
        });
        if now_ms.saturating_sub(entry.last_ms) >= STRIKE_MEMORY_MS {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1).min(BAN_STEPS_MS.len() as u8);
        entry.last_ms = now_ms;
        let step = BAN_STEPS_MS[usize::from(entry.count - 1)];
        if self.strikes.len() > MAX_BANS
            && let Some((&oldest, _)) = self.strikes.iter().min_by_key(|(_, s)| s.last_ms)
        {
            self.strikes.remove(&oldest);
        }
        step
    }

    /// Forgets addresses whose last ban is older than [`STRIKE_MEMORY_MS`].
    pub fn prune(&mut self, now_ms: u64) {
        self.strikes
            .retain(|_, s| now_ms.saturating_sub(s.last_ms) < STRIKE_MEMORY_MS);
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

#[cfg(test)]
mod tests;
