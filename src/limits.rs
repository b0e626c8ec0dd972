//! Size limits of consensus objects, in one place.
//!
//! Every variable-length field is bounded here and checked before allocation when decoding.
//! Changing a value is a consensus change.

/// Largest encoded block (header, coinbase and transfers), in bytes.
pub const MAX_BLOCK_BYTES: usize = 2 * 1024 * 1024;

/// Most transfer transactions in one block.
///
/// A transfer encodes to at most [`MAX_TRANSFER_BYTES`]; 12,000 of them plus the largest header
/// and coinbase still fit in [`MAX_BLOCK_BYTES`], so the count bound never hides a size problem.
pub const MAX_TRANSFERS_PER_BLOCK: usize = 12_000;

/// Largest encoded transfer: two keys, four varints of at most 10 bytes, one signature.
pub const MAX_TRANSFER_BYTES: usize = 32 + 32 + 4 * 10 + 64;

/// Most outputs of one coinbase (split rewards: miner, pool, funds).
pub const MAX_COINBASE_OUTPUTS: usize = 256;

/// Largest coinbase extra data, in bytes.
pub const MAX_COINBASE_EXTRA_BYTES: usize = 100;

/// Largest encoded coinbase: height, outputs (key + varint amount each), miner key, extra data.
pub const MAX_COINBASE_BYTES: usize =
    10 + 2 + MAX_COINBASE_OUTPUTS * (32 + 10) + 32 + 1 + MAX_COINBASE_EXTRA_BYTES;

/// Largest encoded block header.
pub const MAX_HEADER_BYTES: usize =
    5 + 10 + 32 + 10 + 10 + 32 + 32 + (32 + 10) + 32 + 32 + 32 + 32 + 64;

/// Largest length of a network name in the genesis configuration.
pub const MAX_NETWORK_NAME_BYTES: usize = 64;

/// Most premine allocations in a genesis configuration.
pub const MAX_PREMINE_ALLOCATIONS: usize = 10_000;

/// Most emission schedule versions in a genesis configuration (each exponential-decay version
/// compiles a table of about 260 KB, so the count must be bounded, not only the file size).
pub const MAX_SCHEDULE_VERSIONS: usize = 64;

/// Most checkpoints in a genesis configuration.
pub const MAX_CHECKPOINTS: usize = 10_000;

/// Most immature coinbase credits one account holds (one per crediting height).
///
/// Credits at the same height merge, and a credit matures `coinbase_maturity` blocks after its
/// height, so an account that is matured before each new credit holds at most
/// `coinbase_maturity` of them: this bound allows maturity windows of up to 1,000 blocks (the
/// default is 100). It bounds the encoded account, and so the state proof, to about 20 KB.
pub const MAX_IMMATURE_CREDITS: usize = 1_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_block_fits() {
        let worst = MAX_HEADER_BYTES
            + MAX_COINBASE_BYTES
            + 3
            + MAX_TRANSFERS_PER_BLOCK * MAX_TRANSFER_BYTES;
        assert!(worst <= MAX_BLOCK_BYTES, "{worst} > {MAX_BLOCK_BYTES}");
    }
}
