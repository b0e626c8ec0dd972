//! Header rules that need only a block's ancestors: epochs, timestamps, beacon and challenge
//! (consensus-critical).

use crate::genesis::NetworkParams;
use crate::hash::{Hash, Hasher, tags};
use crate::{Epoch, TimestampMs};

/// How many ancestors the median-time rule looks at.
pub const MEDIAN_TIME_SPAN: usize = 11;

/// The epoch a timestamp falls in: `(timestamp - genesis) / epoch_ms`, `None` before genesis.
pub fn epoch_of(network: &NetworkParams, timestamp_ms: TimestampMs) -> Option<Epoch> {
    let since = timestamp_ms.checked_sub(network.genesis_time_ms)?;
    since.checked_div(network.epoch_ms)
}

/// The first millisecond of `epoch`, `None` when it does not fit in 64 bits.
pub fn epoch_start(network: &NetworkParams, epoch: Epoch) -> Option<TimestampMs> {
    epoch
        .checked_mul(network.epoch_ms)?
        .checked_add(network.genesis_time_ms)
}

/// `beacon(b) = H("beacon", beacon(parent(b)) || score(b))`: randomness that depends on proofs
/// only, so a winner cannot steer later challenges by reshuffling transactions or re-signing.
pub fn beacon(parent_beacon: &Hash, score: &Hash) -> Hash {
    let mut h = Hasher::new(tags::BEACON);
    h.update(&parent_beacon.0).update(&score.0);
    h.finalize()
}

/// The genesis beacon: the same formula with the genesis header's challenge (the configuration
/// hash) standing in for the parent's beacon and its all-zero score.
pub fn genesis_beacon(genesis: &crate::block::BlockHeader) -> Hash {
    beacon(&genesis.challenge, &genesis.score)
}

/// `challenge(parent, epoch) = H("challenge", beacon(parent) || epoch as u64 little-endian)`.
pub fn challenge(parent_beacon: &Hash, epoch: Epoch) -> Hash {
    let mut h = Hasher::new(tags::CHALLENGE);
    h.update(&parent_beacon.0).update(&epoch.to_le_bytes());
    h.finalize()
}

/// The median of up to [`MEDIAN_TIME_SPAN`] timestamps (the upper median for an even count,
/// which only happens near genesis). `None` for an empty slice.
pub fn median_timestamp(timestamps: &[TimestampMs]) -> Option<TimestampMs> {
    let mut buf = [0u64; MEDIAN_TIME_SPAN];
    let n = timestamps.len().min(MEDIAN_TIME_SPAN);
    if n == 0 {
        return None;
    }
    buf[..n].copy_from_slice(&timestamps[..n]);
    buf[..n].sort_unstable();
    Some(buf[n / 2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GenesisConfig;

    #[test]
    fn epochs_follow_the_genesis_clock() {
        let config = GenesisConfig::builtin("dev").unwrap();
        let n = &config.network;
        assert_eq!(epoch_of(n, n.genesis_time_ms), Some(0));
        assert_eq!(epoch_of(n, n.genesis_time_ms - 1), None);
        assert_eq!(epoch_of(n, n.genesis_time_ms + n.epoch_ms - 1), Some(0));
        assert_eq!(epoch_of(n, n.genesis_time_ms + n.epoch_ms), Some(1));
        assert_eq!(epoch_start(n, 7), Some(n.genesis_time_ms + 7 * n.epoch_ms));
        assert_eq!(epoch_start(n, u64::MAX), None);
        for e in [0, 1, 5, 1_000_000] {
            assert_eq!(epoch_of(n, epoch_start(n, e).unwrap()), Some(e));
        }
    }

    #[test]
    fn challenge_depends_on_beacon_and_epoch_only() {
        let b = beacon(&Hash([1; 32]), &Hash([2; 32]));
        assert_ne!(b, beacon(&Hash([1; 32]), &Hash([3; 32])));
        assert_ne!(b, beacon(&Hash([0; 32]), &Hash([2; 32])));
        assert_ne!(challenge(&b, 1), challenge(&b, 2));
        assert_eq!(challenge(&b, 1), challenge(&b, 1));
        // The epoch is hashed as 8 little-endian bytes after the beacon.
        let mut data = b.0.to_vec();
        data.extend_from_slice(&9u64.to_le_bytes());
        assert_eq!(challenge(&b, 9), crate::hash::hash(tags::CHALLENGE, &data));
    }

    #[test]
    fn median_of_eleven() {
        assert_eq!(median_timestamp(&[]), None);
        assert_eq!(median_timestamp(&[5]), Some(5));
        assert_eq!(median_timestamp(&[3, 1]), Some(3));
        let ts = [9, 1, 8, 2, 7, 3, 6, 4, 5, 10, 11];
        assert_eq!(median_timestamp(&ts), Some(6));
        // Only the first eleven count.
        let mut long = ts.to_vec();
        long.push(0);
        assert_eq!(median_timestamp(&long), Some(6));
    }
}
