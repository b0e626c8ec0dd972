use super::*;
use crate::{decode, encode};
use std::net::Ipv4Addr;

fn node(n: u8) -> Hash {
    Hash([n; 32])
}

#[test]
fn bans_expire_extend_and_persist() {
    let mut bans = BanList::default();
    let ip: IpAddr = "1.2.3.4".parse().unwrap();
    bans.ban(ip, 1_000);
    assert!(bans.is_banned(&ip, 999));
    assert!(!bans.is_banned(&ip, 1_000));
    bans.ban(ip, 500);
    assert!(
        bans.is_banned(&ip, 999),
        "a shorter ban does not shorten a longer one"
    );
    bans.ban("::1".parse().unwrap(), 5_000);
    let bytes = encode(&bans);
    assert_eq!(decode::<BanList>(&bytes).unwrap(), bans);
    bans.prune(2_000);
    assert_eq!(bans.len(), 1);
    for i in 0..(MAX_BANS as u32 + 10) {
        bans.ban(IpAddr::V4(Ipv4Addr::from(i)), u64::from(i) + 10_000);
    }
    assert_eq!(bans.len(), MAX_BANS);
}

#[test]
fn doctored_ban_files_are_refused() {
    let mut bans = BanList::default();
    bans.ban("1.2.3.4".parse().unwrap(), 9);
    bans.ban("1.2.3.5".parse().unwrap(), 9);
    let mut bytes = encode(&bans);
    // Swap the two entries' last address bytes: keys out of order are not canonical.
    let (i, j) = (
        bytes.iter().position(|&b| b == 4).unwrap(),
        bytes.iter().position(|&b| b == 5).unwrap(),
    );
    bytes.swap(i, j);
    assert!(decode::<BanList>(&bytes).is_err());
}

#[test]
fn bans_grow_with_repeat_offences_and_are_forgotten_after_a_week() {
    let mut h = BanHistory::default();
    let ip: IpAddr = "1.2.3.4".parse().unwrap();
    assert_eq!(h.record(ip, 0), BAN_STEPS_MS[0]);
    assert_eq!(h.record(ip, 1_000), BAN_STEPS_MS[1]);
    assert_eq!(h.record(ip, 2_000), BAN_STEPS_MS[2]);
    assert_eq!(h.record(ip, 3_000), BAN_STEPS_MS[2], "capped at a day");
    assert_eq!(h.of(&ip).map(|s| s.count), Some(3));
    // Another address starts at the first step.
    assert_eq!(h.record("5.6.7.8".parse().unwrap(), 3_000), BAN_STEPS_MS[0]);
    // A week after the last ban, a new one is a first offence again.
    assert_eq!(h.record(ip, 3_000 + STRIKE_MEMORY_MS), BAN_STEPS_MS[0]);
    let bytes = encode(&h);
    assert_eq!(decode::<BanHistory>(&bytes).unwrap(), h);
    h.prune(3_000 + 2 * STRIKE_MEMORY_MS);
    assert!(h.is_empty());
    for i in 0..(MAX_BANS as u32 + 10) {
        h.record(IpAddr::V4(Ipv4Addr::from(i)), u64::from(i));
    }
    assert_eq!(h.len(), MAX_BANS);
}

#[test]
fn a_node_ban_covers_the_node_id_not_its_address() {
    let mut bans = Bans::default();
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let issued = bans.ban_node(node(1), ip, 0);
    assert_eq!(
        issued,
        vec![Ban {
            kind: BanKind::Node,
            lasts_ms: BAN_STEPS_MS[0]
        }]
    );
    assert!(bans.is_node_banned(&node(1), BAN_STEPS_MS[0] - 1));
    assert!(!bans.is_node_banned(&node(1), BAN_STEPS_MS[0]));
    assert!(!bans.is_node_banned(&node(2), 1));
    assert!(!bans.is_address_banned(&ip, 1), "the address is not banned");
    // A repeat offence of the same id is longer; it is still one id from the address.
    let again = bans.ban_node(node(1), ip, BAN_STEPS_MS[0]);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].lasts_ms, BAN_STEPS_MS[1]);
    assert_eq!(bans.nodes().of(&node(1)).map(|s| s.strikes.count), Some(2));
    assert!(!bans.is_address_banned(&ip, BAN_STEPS_MS[0] + 1));
}

#[test]
fn an_address_that_churns_node_ids_is_banned_too() {
    let mut bans = Bans::default();
    let ip: IpAddr = "9.9.9.9".parse().unwrap();
    let other: IpAddr = "9.9.9.10".parse().unwrap();
    // Another address's bans do not count towards this one's.
    bans.ban_node(node(100), other, 0);
    bans.ban_node(node(101), other, 0);
    for n in 1..CHURN_NODE_BANS as u8 {
        assert_eq!(bans.ban_node(node(n), ip, u64::from(n)).len(), 1);
    }
    assert!(!bans.is_address_banned(&ip, 10));
    let issued = bans.ban_node(node(CHURN_NODE_BANS as u8), ip, 10);
    assert_eq!(
        issued[1],
        Ban {
            kind: BanKind::Address,
            lasts_ms: BAN_STEPS_MS[0]
        },
        "{issued:?}"
    );
    assert!(bans.is_address_banned(&ip, 11));
    assert!(!bans.is_address_banned(&other, 11));
    // The address's own ban escalates with its history: the next churned id costs 2 h.
    let next = bans.ban_node(node(50), ip, BAN_STEPS_MS[0] + 20);
    assert_eq!(next[1].lasts_ms, BAN_STEPS_MS[1]);
    // A week later the earlier ids are forgotten: one ban is not churn.
    let later = BAN_STEPS_MS[0] + 20 + STRIKE_MEMORY_MS;
    bans.prune(later);
    assert_eq!(bans.ban_node(node(60), ip, later).len(), 1);
}

#[test]
fn node_bans_persist_in_a_versioned_canonical_file() {
    let mut bans = Bans::default();
    bans.ban_node(node(1), "1.2.3.4".parse().unwrap(), 5);
    bans.ban_node(node(2), "::1".parse().unwrap(), 6);
    let bytes = encode(bans.nodes());
    assert_eq!(bytes[0], 0, "the format comes first");
    let back: NodeBans = decode(&bytes).unwrap();
    assert_eq!(&back, bans.nodes());
    let restored = Bans::new(BanList::default(), BanHistory::default(), back);
    assert!(restored.is_node_banned(&node(1), 6));
    // A later format (or garbage) is refused, not misread.
    let mut later = bytes.clone();
    later[0] = 1;
    assert!(decode::<NodeBans>(&later).is_err());
    // Old address files are read as before: the node bans are in a file of their own.
    let mut old = BanList::default();
    old.ban("1.2.3.4".parse().unwrap(), 9);
    assert_eq!(encode(&old), [1, 0, 1, 2, 3, 4, 9], "bans.dat is unchanged");
}

#[test]
fn node_bans_are_bounded() {
    let mut bans = Bans::default();
    let ip: IpAddr = "1.2.3.4".parse().unwrap();
    for i in 0..(MAX_BANS as u32 + 10) {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&i.to_le_bytes());
        bans.ban_node(Hash(id), IpAddr::V4(Ipv4Addr::from(i)), u64::from(i));
    }
    assert_eq!(bans.nodes().len(), MAX_BANS);
    assert_eq!(bans.nodes().bans().len(), MAX_BANS);
    assert!(encode(bans.nodes()).len() <= NodeBans::MAX_ENCODED_LEN);
    assert!(!bans.is_address_banned(&ip, 0));
}
