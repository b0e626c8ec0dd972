//! The peer store files (address book, ban list, ban history, node ban list): canonical decoding, and a book
//! rebuilt from a snapshot keeps only what today's limits allow and is stable when saved again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spacetime::p2p::addr_book::{MAX_NEW, MAX_TRIED};
use spacetime::p2p::bans::MAX_BANS;
use spacetime::p2p::{AddrBook, AddrBookSnapshot, BanHistory, BanList, NodeBans};
use spacetime_fuzz::decode_canonical;

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => {
            let Some(snapshot) = decode_canonical::<AddrBookSnapshot>(bytes) else {
                return;
            };
            let book = AddrBook::from_snapshot(snapshot.clone());
            let (new, tried) = book.len();
            assert!(new <= MAX_NEW && tried <= MAX_TRIED);
            assert!(new + tried <= snapshot.addrs.len());
            let saved = book.snapshot();
            assert_eq!(saved.addrs.len(), new + tried);
            let again = AddrBook::from_snapshot(saved.clone());
            assert_eq!(
                again.snapshot(),
                saved,
                "a rebuilt book changes when saved and loaded"
            );
            let _ = book.gossip(u64::MAX, u64::MAX, 1000);
        }
        1 => {
            let Some(mut bans) = decode_canonical::<BanList>(bytes) else {
                return;
            };
            let before = bans.len();
            assert!(before <= MAX_BANS, "a ban list longer than the node keeps");
            bans.prune(1_700_000_000_000);
            assert!(bans.len() <= before);
            bans.prune(u64::MAX);
            assert!(bans.is_empty(), "a ban outlived the end of time");
        }
        3 => {
            let Some(nodes) = decode_canonical::<NodeBans>(bytes) else {
                return;
            };
            assert!(nodes.len() <= MAX_BANS && nodes.bans().len() <= MAX_BANS);
        }
        _ => {
            let Some(mut history) = decode_canonical::<BanHistory>(bytes) else {
                return;
            };
            let before = history.len();
            assert!(
                before <= MAX_BANS,
                "a ban history longer than the node keeps"
            );
            history.prune(1_700_000_000_000);
            assert!(history.len() <= before);
            let ip = std::net::IpAddr::from([203, 0, 113, 9]);
            let first = history.record(ip, 1_700_000_000_000);
            assert!(first > 0);
        }
    }
});
