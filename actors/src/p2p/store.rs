//! Persistence of the address book and the bans in the data directory.
//!
//! Files are written to a temporary name and renamed, so a crash leaves the old or the new
//! file, never half of one. A file that does not decode is moved aside (`.corrupt`) and the node
//! starts with an empty book or ban list rather than refusing to start.

use std::path::{Path, PathBuf};

use spacetime::encoding::{Canonical, decode, encode};
use spacetime::p2p::{AddrBook, Bans};

/// File name of the address book in the data directory.
pub const PEERS_FILE: &str = "peers.dat";
/// File name of the ban list in the data directory.
pub const BANS_FILE: &str = "bans.dat";
/// File name of the ban history (repeat offences) in the data directory.
pub const BAN_HISTORY_FILE: &str = "ban-history.dat";
/// File name of the node-id bans and their history in the data directory (absent before node
/// ids were banned: read as empty).
pub const NODE_BANS_FILE: &str = "node-bans.dat";

/// Why a peer store file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {error}", .path.display())]
pub struct StoreError {
    /// The file.
    pub path: PathBuf,
    /// The I/O error.
    pub error: std::io::Error,
}

/// What loading found.
#[derive(Debug, PartialEq, Eq)]
pub enum Loaded<T> {
    /// The file decoded.
    Found(T),
    /// No file yet.
    Missing,
    /// The file was damaged; it was moved to the returned path.
    Corrupt(PathBuf),
}

/// Loads a value stored with [`save`].
pub fn load<T: Canonical>(path: &Path) -> Loaded<T> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::Missing,
        Err(_) => return set_aside(path),
    };
    // Never read more than the largest valid encoding (plus one byte, so an oversized file
    // is seen as such and refused by `decode`).
    let mut bytes = Vec::new();
    if file
        .take(T::MAX_ENCODED_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .is_err()
    {
        return set_aside(path);
    }
    match decode::<T>(&bytes) {
        Ok(value) => Loaded::Found(value),
        Err(_) => set_aside(path),
    }
}

fn set_aside<T>(path: &Path) -> Loaded<T> {
    let mut aside = path.as_os_str().to_owned();
    aside.push(".corrupt");
    let aside = PathBuf::from(aside);
    // If even the rename fails, the next save overwrites the damaged file.
    let _ = std::fs::rename(path, &aside);
    Loaded::Corrupt(aside)
}

/// Writes `value` to `path` atomically.
pub fn save<T: Canonical>(path: &Path, value: &T) -> Result<(), StoreError> {
    save_bytes(path, &encode(value))
}

/// Writes `bytes` to `path` atomically and durably: a temporary file is written and synced,
/// renamed over `path`, and the directory synced, so a crash leaves the old file or the new
/// one, never an empty or partial one.
pub fn save_bytes(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let err = |error| StoreError {
        path: path.to_owned(),
        error,
    };
    let mut temp = path.as_os_str().to_owned();
    temp.push(".tmp");
    let temp = PathBuf::from(temp);
    let mut file = std::fs::File::create(&temp).map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)?;
    drop(file);
    std::fs::rename(&temp, path).map_err(err)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(err)?;
    }
    Ok(())
}

/// The address book and bans kept in `dir` (empty when `dir` is `None`, a file is missing, or
/// one is damaged).
pub fn load_state(dir: Option<&Path>) -> (AddrBook, Bans) {
    let Some(dir) = dir else {
        return (AddrBook::new(), Bans::default());
    };
    let book = load_or_empty(&dir.join(PEERS_FILE), "address book").map(AddrBook::from_snapshot);
    let bans = load_or_empty(&dir.join(BANS_FILE), "ban list");
    // Absent before repeat offences were remembered: every ban is then a first one.
    let history = load_or_empty(&dir.join(BAN_HISTORY_FILE), "ban history");
    // Absent before node ids were banned: none are.
    let nodes = load_or_empty(&dir.join(NODE_BANS_FILE), "node ban list");
    (
        book.unwrap_or_else(AddrBook::new),
        Bans::new(
            bans.unwrap_or_default(),
            history.unwrap_or_default(),
            nodes.unwrap_or_default(),
        ),
    )
}

/// A peer store file's contents, or `None` when it is missing or damaged (moved aside with a
/// warning: the node starts with an empty one rather than refusing to start).
fn load_or_empty<T: spacetime::encoding::Canonical>(path: &Path, what: &str) -> Option<T> {
    match load(path) {
        Loaded::Found(value) => Some(value),
        Loaded::Missing => None,
        Loaded::Corrupt(aside) => {
            tracing::warn!(
                "{what} was damaged; moved to {} and starting empty",
                aside.display()
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spacetime::encoding::Canonical;
    use spacetime::p2p::BanList;

    #[test]
    fn round_trip_missing_and_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(BANS_FILE);
        assert_eq!(load::<BanList>(&path), Loaded::Missing);
        let mut bans = BanList::default();
        bans.ban("1.2.3.4".parse().unwrap(), 99);
        save(&path, &bans).unwrap();
        assert_eq!(load::<BanList>(&path), Loaded::Found(bans));
        // An oversized file is refused after reading only the limit.
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(BanList::MAX_ENCODED_LEN as u64 * 4).unwrap();
        assert!(matches!(load::<BanList>(&path), Loaded::Corrupt(_)));
        std::fs::write(&path, b"\xff\xff garbage").unwrap();
        let Loaded::Corrupt(aside) = load::<BanList>(&path) else {
            panic!("corrupt file not noticed")
        };
        assert!(aside.exists() && !path.exists());
        assert_eq!(load::<BanList>(&path), Loaded::Missing);
    }

    #[test]
    fn a_data_dir_from_before_node_bans_loads_and_node_bans_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let ip: std::net::IpAddr = "1.2.3.4".parse().unwrap();
        // What an older node left: address bans and their history, no node-bans.dat.
        let mut old = BanList::default();
        old.ban(ip, 99);
        save(&dir.path().join(BANS_FILE), &old).unwrap();
        let mut history = spacetime::p2p::BanHistory::default();
        history.record(ip, 0);
        save(&dir.path().join(BAN_HISTORY_FILE), &history).unwrap();
        let (_, bans) = load_state(Some(dir.path()));
        assert!(bans.is_address_banned(&ip, 98));
        assert_eq!(bans.history(), &history);
        assert!(bans.nodes().is_empty());
        // Node bans saved and loaded beside them.
        let mut bans = bans;
        let node = spacetime::Hash([5; 32]);
        bans.ban_node(node, ip, 10);
        save(&dir.path().join(NODE_BANS_FILE), bans.nodes()).unwrap();
        let (_, again) = load_state(Some(dir.path()));
        assert!(again.is_node_banned(&node, 11));
        assert_eq!(again.nodes(), bans.nodes());
    }
}
