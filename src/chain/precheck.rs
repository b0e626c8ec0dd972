//! The cheap checks a relayed block passes before it is forwarded (BIP152's high-bandwidth
//! shortcut): every header rule against a known parent, before the body is applied.
//!
//! Forging a header that passes them means winning an epoch with a real proof of space, so
//! forwarding before the full check costs an attacker real space; the body is checked by the
//! import that follows, and the peer that sent a bad one pays for it.

use crate::TimestampMs;
use crate::block::BlockHeader;
use crate::hash::Hash;
use crate::target::Work;

use super::Chain;
use super::error::InvalidBlock;
use super::index::{IndexEntry, better};
use super::store::BlockStatus;
use super::validate::{check_header, check_header_structure};

/// What the cheap checks say of a block header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precheck {
    /// Every header rule passes. `work` is the cumulative work of the chain ending at it;
    /// `better` says whether that chain beats the main chain (fork choice) and the chain could
    /// switch to it (it forks at most `max_reorg_depth` below the tip): only such a block is
    /// worth relaying, as Bitcoin Core relays only new tips.
    Valid {
        /// Cumulative work up to and including the block.
        work: Work,
        /// It would become the tip.
        better: bool,
    },
    /// The block is stored with its body already: nothing new.
    Known,
    /// Its parent is unknown: the header cannot be checked (sync fetches the ancestors).
    ParentUnknown,
}

impl Chain {
    /// Runs the header rules on `header` (hash `hash`) against its stored parent at local time
    /// `now_ms`, without storing anything.
    pub fn precheck(
        &self,
        header: &BlockHeader,
        hash: &Hash,
        now_ms: TimestampMs,
    ) -> Result<Precheck, InvalidBlock> {
        if let Some(entry) = self.index.get(hash) {
            return match entry.status {
                BlockStatus::Invalid => Err(InvalidBlock::KnownInvalid { hash: *hash }),
                // Verified when it was stored; only its body is missing.
                BlockStatus::HeaderOnly => Ok(Precheck::Valid {
                    work: entry.work,
                    better: self.beats_tip(hash, entry) && self.followable(hash),
                }),
                BlockStatus::Stored | BlockStatus::Valid => Ok(Precheck::Known),
            };
        }
        check_header_structure(header, hash, &self.genesis.config)?;
        let Some(parent) = self.index.get(&header.parent) else {
            // The one header rule that needs no parent: a peer cannot repeat a badly signed
            // orphan without blame.
            header
                .verify_signature()
                .map_err(|_| InvalidBlock::HeaderSignature)?;
            return Ok(Precheck::ParentUnknown);
        };
        if parent.status == BlockStatus::Invalid {
            return Err(InvalidBlock::InvalidAncestor {
                ancestor: header.parent,
            });
        }
        let median = self.index.median_time_past(&header.parent).unwrap_or(0);
        check_header(header, parent, median, now_ms, &self.genesis.config)?;
        let entry = parent.child(&header.unsigned, header.parent);
        // A block of a branch forking deeper than `max_reorg_depth` never becomes the tip,
        // however heavy: not worth relaying.
        Ok(Precheck::Valid {
            work: entry.work,
            better: self.beats_tip(hash, &entry) && self.followable(&header.parent),
        })
    }

    fn beats_tip(&self, hash: &Hash, entry: &IndexEntry) -> bool {
        let tip = self.tip_hash();
        self.index
            .get(&tip)
            .is_none_or(|t| better((hash, entry), (&tip, t)))
    }
}
