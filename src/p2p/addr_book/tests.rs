use super::*;
use crate::{decode, encode};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};

struct Counter(u64);

impl Random for Counter {
    fn next_u64(&mut self) -> u64 {
        // splitmix64: good enough spread for tests, deterministic.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn v4(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), port))
}

#[test]
fn groups() {
    assert_eq!(
        NetGroup::of(&v4(1, 2, 3, 4, 1)),
        NetGroup::of(&v4(1, 2, 200, 9, 2))
    );
    assert_ne!(
        NetGroup::of(&v4(1, 2, 3, 4, 1)),
        NetGroup::of(&v4(1, 3, 3, 4, 1))
    );
    // Loopback and private addresses are each their own group.
    assert_ne!(
        NetGroup::of(&v4(127, 0, 0, 1, 1)),
        NetGroup::of(&v4(127, 0, 0, 1, 2))
    );
    assert_ne!(
        NetGroup::of(&v4(10, 0, 0, 1, 1)),
        NetGroup::of(&v4(10, 0, 0, 2, 1))
    );
    let a: SocketAddr = "[2001:db8:1::1]:5".parse().unwrap();
    let b: SocketAddr = "[2001:db8:ffff::2]:6".parse().unwrap();
    assert_eq!(NetGroup::of(&a), NetGroup::of(&b));
    assert!(matches!(
        NetGroup::of(&SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 1)),
        NetGroup::Local(_)
    ));
}

#[test]
fn dialable() {
    assert!(is_dialable(&v4(1, 2, 3, 4, 9444)));
    assert!(is_dialable(&v4(127, 0, 0, 1, 9444)));
    assert!(!is_dialable(&v4(1, 2, 3, 4, 0)));
    assert!(!is_dialable(&v4(0, 0, 0, 0, 9444)));
    assert!(!is_dialable(&v4(255, 255, 255, 255, 9444)));
    assert!(!is_dialable(&v4(224, 0, 0, 1, 9444)));
}

#[test]
fn add_refreshes_and_clamps_future_sightings() {
    let mut book = AddrBook::new();
    let a = v4(1, 2, 3, 4, 1);
    assert!(book.add(a, 1, 500, 1000));
    assert!(book.add(a, 3, 900, 1000));
    assert_eq!(book.len(), (1, 0));
    assert_eq!(book.get(&a).unwrap().last_seen_ms, 900);
    assert_eq!(book.get(&a).unwrap().capabilities, 3);
    // A claim from the future is clamped to now.
    assert!(book.add(a, 3, u64::MAX, 2000));
    assert_eq!(book.get(&a).unwrap().last_seen_ms, 2000);
    assert!(!book.add(v4(0, 0, 0, 0, 1), 0, 0, 0));
}

#[test]
fn one_range_cannot_flood_the_book() {
    let mut book = AddrBook::new();
    // An attacker with four /16 ranges gossips 10,000 addresses.
    for i in 0..10_000u32 {
        book.add(
            v4(66, (i % 4) as u8, (i >> 8) as u8, i as u8, 9444),
            0,
            u64::from(i),
            20_000,
        );
    }
    assert_eq!(book.len().0, 4 * MAX_NEW_PER_GROUP);
    // Honest addresses from other ranges still get in.
    for i in 0..100u8 {
        assert!(book.add(v4(80, i, 1, 1, 9444), 0, 1, 20_000));
    }
    assert_eq!(book.len().0, 4 * MAX_NEW_PER_GROUP + 100);
}

#[test]
fn the_new_table_is_bounded() {
    let mut book = AddrBook::new();
    for i in 0..(MAX_NEW as u32 + 500) {
        let [_, b, c, d] = i.to_be_bytes();
        // Spread over many /16 groups: (b, c) varies.
        book.add(
            v4(20 + (i % 50) as u8, c, b, d, 9444),
            0,
            u64::from(i),
            1_000_000,
        );
    }
    assert_eq!(book.len().0, MAX_NEW);
}

#[test]
fn successes_move_to_tried_and_the_group_stays_bounded() {
    let mut book = AddrBook::new();
    for d in 0..30u8 {
        let a = v4(5, 6, 7, d, 9444);
        book.add(a, 0, 0, 0);
        book.connected(&a, 1, u64::from(d));
    }
    assert_eq!(book.len().1, MAX_TRIED_PER_GROUP);
    // The evicted ones went back to "new".
    assert_eq!(book.len().0, 30 - MAX_TRIED_PER_GROUP);
    assert!(book.get(&v4(5, 6, 7, 29, 9444)).unwrap().tried);
}

#[test]
fn failures_back_off_and_hopeless_new_addresses_are_forgotten() {
    let mut book = AddrBook::new();
    let a = v4(9, 9, 9, 9, 1);
    book.add(a, 0, 0, 0);
    let mut rng = Counter(1);
    let none = |_: &SocketAddr| false;
    assert_eq!(book.select(0, &mut rng, &none), Some(a));
    book.attempt(&a, 1_000);
    book.failed(&a, 1_000);
    // 2 s backoff (plus up to 25 % jitter): not yet, then yes.
    assert_eq!(book.select(2_999, &mut rng, &none), None);
    assert_eq!(book.select(3_501, &mut rng, &none), Some(a));
    let info = book.get(&a).unwrap().clone();
    assert!(info.retry_at_ms(0) >= 3_000);
    for t in 1..MAX_NEW_ATTEMPTS {
        book.failed(&a, u64::from(t) * 1_000_000);
    }
    assert!(
        book.get(&a).is_none(),
        "forgotten after {MAX_NEW_ATTEMPTS} failures"
    );
    // Backoff is capped.
    let capped = AddrInfo {
        failures: 60,
        last_attempt_ms: 0,
        ..info.clone()
    };
    assert!(capped.retry_at_ms(u64::MAX) <= MAX_BACKOFF_MS + MAX_BACKOFF_MS / 4);
}

#[test]
fn select_respects_exclusions_and_is_deterministic() {
    let mut book = AddrBook::new();
    let addrs: Vec<SocketAddr> = (1..=20u8).map(|i| v4(30, i, 1, 1, 9444)).collect();
    for a in &addrs {
        book.add(*a, 0, 0, 0);
    }
    for a in &addrs[..5] {
        book.connected(a, 0, 0);
    }
    let connected = |a: &SocketAddr| addrs[..10].contains(a);
    let picks = |seed| {
        let mut rng = Counter(seed);
        (0..50)
            .map(|_| book.select(1, &mut rng, &connected).unwrap())
            .collect::<Vec<_>>()
    };
    let first = picks(7);
    assert_eq!(first, picks(7));
    assert!(first.iter().all(|a| !connected(a)));
    let everything = |_: &SocketAddr| true;
    assert_eq!(book.select(1, &mut Counter(1), &everything), None);
}

#[test]
fn snapshots_round_trip_and_reload_within_limits() {
    let mut book = AddrBook::new();
    for i in 0..40u8 {
        let a = v4(40, i, 0, 1, 9444);
        book.add(a, 0, u64::from(i), 100);
        if i % 2 == 0 {
            book.connected(&a, 0, 100);
        }
    }
    let snap = book.snapshot();
    let bytes = encode(&snap);
    let back: AddrBookSnapshot = decode(&bytes).unwrap();
    assert_eq!(back, snap);
    let reloaded = AddrBook::from_snapshot(back);
    assert_eq!(reloaded.len(), book.len());
    // A doctored snapshot with 100 tried entries of one group reloads within the limit.
    let doctored: Vec<AddrInfo> = (0..100u8)
        .map(|d| AddrInfo {
            addr: v4(7, 7, 7, d, 1),
            capabilities: 0,
            last_seen_ms: 0,
            last_success_ms: 0,
            last_attempt_ms: 0,
            failures: 0,
            tried: true,
        })
        .collect();
    let book = AddrBook::from_snapshot(AddrBookSnapshot {
        addrs: BoundedVec::try_from_vec(doctored).unwrap(),
    });
    assert_eq!(book.len(), (0, MAX_TRIED_PER_GROUP));
}

#[test]
fn gossip_prefers_fresh_addresses() {
    let mut book = AddrBook::new();
    for i in 0..10u8 {
        book.add(v4(50, i, 0, 1, 1), 0, u64::from(i) * 1000, 10_000);
    }
    let fresh = book.gossip(10_000, 5_000, 3);
    let seen: Vec<u64> = fresh.iter().map(|i| i.last_seen_ms).collect();
    assert_eq!(seen, vec![9000, 8000, 7000]);
    assert_eq!(book.gossip(10_000, 2_000, 100).len(), 2);
}

#[test]
fn a_full_table_makes_room_without_scanning_it() {
    let mut book = AddrBook::new();
    // Fill the new table over 64 groups.
    for i in 0..MAX_NEW as u32 {
        book.add(v4(90, (i % 64) as u8, (i / 64) as u8, 1, 9444), 0, 1, 10);
    }
    assert_eq!(book.len().0, MAX_NEW);
    // A newcomer of a full group makes room within its group.
    assert!(book.add(v4(90, 10, 200, 2, 9444), 0, 2, 10));
    assert_eq!(book.len().0, MAX_NEW);
    assert_eq!(
        book.group_count(false, NetGroup::V4([90, 10])),
        MAX_NEW_PER_GROUP
    );
    // A newcomer of a new group evicts from the next group in key order (wrapping to the
    // first), so no single group pays for every newcomer.
    assert!(book.add(v4(90, 100, 0, 1, 9444), 0, 2, 10));
    assert_eq!(book.len().0, MAX_NEW);
    assert_eq!(
        book.group_count(false, NetGroup::V4([90, 0])),
        MAX_NEW_PER_GROUP - 1
    );
    assert!(book.add(v4(90, 5, 250, 1, 9444), 0, 2, 10));
    assert!(book.get(&v4(90, 100, 0, 1, 9444)).is_some());
}
