//! The miner's per-epoch state machine: when to scan, when a scan result still counts, when to
//! build. A plain struct (`handle(now, input) -> actions`) that the MinerLoop actor drives and
//! the simulator can run in virtual time.
//!
//! Policy: each epoch that starts after the tip's epoch is scanned once on the current tip. A
//! scan runs to its end (its own deadline bounds it) unless the tip changes, which cancels it:
//! its result would answer the wrong challenge. When a scan ends without a win and a newer
//! epoch has started meanwhile, the newest epoch is scanned next (epochs in between are
//! skipped: a miner whose scans fit in an epoch never has a backlog, and one that falls behind
//! should answer the freshest challenge). A winning scan on the current tip is built and
//! imported; no new scan starts until the block is done.

use crate::block::ProofOfSpace;
use crate::chain::rules::epoch_of;
use crate::genesis::NetworkParams;
use crate::hash::Hash;
use crate::{Epoch, Height, TimestampMs};

/// What the miner knows of the tip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinerTip {
    /// Tip hash.
    pub hash: Hash,
    /// Tip height.
    pub height: Height,
    /// Tip epoch.
    pub epoch: Epoch,
}

/// An input to the miner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MinerInput {
    /// Time passed (the actor ticks several times per epoch).
    Tick,
    /// The chain has a new tip.
    NewTip(MinerTip),
    /// A scan ended: the best proof and score, when it met the target.
    ScanDone {
        /// The tip it was for.
        tip: Hash,
        /// The epoch it was for.
        epoch: Epoch,
        /// The winning proof, if any.
        win: Option<(ProofOfSpace, Hash)>,
    },
    /// The scan could not run (no plots, context refused, cancelled).
    ScanFailed {
        /// The tip it was for.
        tip: Hash,
        /// The epoch it was for.
        epoch: Epoch,
    },
    /// The block of a win was built and imported, or failed.
    BlockDone,
}

/// What the actor should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MinerAction {
    /// Scan for `epoch` on `tip` (the actor fetches the challenge and target first).
    Scan {
        /// The tip to build on.
        tip: Hash,
        /// The epoch.
        epoch: Epoch,
    },
    /// Cancel the running scan (the tip moved).
    CancelScan,
    /// Build, sign and import a block with this proof.
    Build {
        /// The parent.
        tip: Hash,
        /// The epoch.
        epoch: Epoch,
        /// The proof.
        proof: ProofOfSpace,
        /// Its score.
        score: Hash,
    },
}

/// The state machine.
#[derive(Debug, Clone)]
pub struct MinerState {
    network: NetworkParams,
    tip: Option<MinerTip>,
    scanning: Option<(Hash, Epoch)>,
    building: bool,
    /// The last (tip, epoch) scanned to the end.
    done: Option<(Hash, Epoch)>,
}

impl MinerState {
    /// A miner for the network's epochs, waiting for its first tip.
    pub fn new(network: NetworkParams) -> Self {
        Self {
            network,
            tip: None,
            scanning: None,
            building: false,
            done: None,
        }
    }

    /// The tip the miner builds on.
    pub fn tip(&self) -> Option<MinerTip> {
        self.tip
    }

    /// True while a scan runs.
    pub fn is_scanning(&self) -> bool {
        self.scanning.is_some()
    }

    /// Handles one input at local time `now_ms`.
    pub fn handle(&mut self, now_ms: TimestampMs, input: MinerInput) -> Vec<MinerAction> {
        let mut actions = Vec::new();
        match input {
            MinerInput::Tick => {}
            MinerInput::NewTip(tip) => {
                if self.tip.map(|t| t.hash) != Some(tip.hash) {
                    self.tip = Some(tip);
                    if self.scanning.take().is_some() {
                        actions.push(MinerAction::CancelScan);
                    }
                }
            }
            MinerInput::ScanDone { tip, epoch, win } => {
                if self.scanning == Some((tip, epoch)) {
                    self.scanning = None;
                    self.done = Some((tip, epoch));
                    if let Some((proof, score)) = win
                        && self.tip.map(|t| t.hash) == Some(tip)
                    {
                        self.building = true;
                        actions.push(MinerAction::Build {
                            tip,
                            epoch,
                            proof,
                            score,
                        });
                        return actions;
                    }
                }
            }
            MinerInput::ScanFailed { tip, epoch } => {
                if self.scanning == Some((tip, epoch)) {
                    self.scanning = None;
                    self.done = Some((tip, epoch));
                }
            }
            MinerInput::BlockDone => self.building = false,
        }
        if let Some(scan) = self.next_scan(now_ms) {
            actions.push(scan);
        }
        actions
    }

    fn next_scan(&mut self, now_ms: TimestampMs) -> Option<MinerAction> {
        if self.building || self.scanning.is_some() {
            return None;
        }
        let tip = self.tip?;
        let epoch = epoch_of(&self.network, now_ms)?;
        if epoch <= tip.epoch || self.done == Some((tip.hash, epoch)) {
            return None;
        }
        self.scanning = Some((tip.hash, epoch));
        Some(MinerAction::Scan {
            tip: tip.hash,
            epoch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GenesisConfig;

    fn setup() -> (MinerState, NetworkParams) {
        let n = GenesisConfig::builtin("dev").unwrap().network;
        (MinerState::new(n.clone()), n)
    }

    fn at(n: &NetworkParams, epoch: Epoch) -> TimestampMs {
        n.genesis_time_ms + epoch * n.epoch_ms + 10
    }

    fn tip(b: u8, epoch: Epoch) -> MinerTip {
        MinerTip {
            hash: Hash([b; 32]),
            height: u64::from(b),
            epoch,
        }
    }

    #[test]
    fn scans_each_new_epoch_once_and_builds_on_a_win() {
        let (mut m, n) = setup();
        assert!(
            m.handle(at(&n, 5), MinerInput::Tick).is_empty(),
            "no tip yet"
        );
        let a = m.handle(at(&n, 5), MinerInput::NewTip(tip(1, 5)));
        assert!(a.is_empty(), "epoch 5 is the tip's own");
        let a = m.handle(at(&n, 6), MinerInput::Tick);
        assert_eq!(
            a,
            vec![MinerAction::Scan {
                tip: Hash([1; 32]),
                epoch: 6
            }]
        );
        assert!(
            m.handle(at(&n, 6), MinerInput::Tick).is_empty(),
            "one scan at a time"
        );
        let a = m.handle(
            at(&n, 6),
            MinerInput::ScanDone {
                tip: Hash([1; 32]),
                epoch: 6,
                win: None,
            },
        );
        assert!(a.is_empty(), "epoch 6 done, 7 not started");
        let a = m.handle(at(&n, 7), MinerInput::Tick);
        assert_eq!(
            a,
            vec![MinerAction::Scan {
                tip: Hash([1; 32]),
                epoch: 7
            }]
        );
        let proof = ProofOfSpace::default();
        let a = m.handle(
            at(&n, 7),
            MinerInput::ScanDone {
                tip: Hash([1; 32]),
                epoch: 7,
                win: Some((proof, Hash([0; 32]))),
            },
        );
        assert!(matches!(a[..], [MinerAction::Build { epoch: 7, .. }]));
        assert!(m.handle(at(&n, 8), MinerInput::Tick).is_empty(), "building");
        // The block became the tip at epoch 7 (the chain's event usually comes first); epoch 8
        // is next.
        let a = m.handle(at(&n, 8), MinerInput::NewTip(tip(2, 7)));
        assert!(a.is_empty(), "still building");
        let a = m.handle(at(&n, 8), MinerInput::BlockDone);
        assert_eq!(
            a,
            vec![MinerAction::Scan {
                tip: Hash([2; 32]),
                epoch: 8
            }]
        );
    }

    #[test]
    fn a_new_tip_cancels_the_scan_and_stale_results_are_ignored() {
        let (mut m, n) = setup();
        // A new tip starts a scan at once when its epoch is over.
        let a = m.handle(at(&n, 3), MinerInput::NewTip(tip(1, 2)));
        assert_eq!(
            a,
            vec![MinerAction::Scan {
                tip: Hash([1; 32]),
                epoch: 3
            }]
        );
        // A peer's block for epoch 3 arrives mid-scan.
        let a = m.handle(at(&n, 3), MinerInput::NewTip(tip(2, 3)));
        assert_eq!(a, vec![MinerAction::CancelScan]);
        // The cancelled scan's win is not built.
        let a = m.handle(
            at(&n, 3),
            MinerInput::ScanDone {
                tip: Hash([1; 32]),
                epoch: 3,
                win: Some((ProofOfSpace::default(), Hash::ZERO)),
            },
        );
        assert!(a.is_empty());
        let a = m.handle(at(&n, 4), MinerInput::Tick);
        assert_eq!(
            a,
            vec![MinerAction::Scan {
                tip: Hash([2; 32]),
                epoch: 4
            }]
        );
    }

    #[test]
    fn a_slow_scan_moves_on_to_the_newest_epoch() {
        let (mut m, n) = setup();
        m.handle(at(&n, 1), MinerInput::NewTip(tip(1, 0)));
        // The scan of epoch 1 ends during epoch 4: 4 is next, 2 and 3 are skipped.
        let a = m.handle(
            at(&n, 4),
            MinerInput::ScanFailed {
                tip: Hash([1; 32]),
                epoch: 1,
            },
        );
        assert_eq!(
            a,
            vec![MinerAction::Scan {
                tip: Hash([1; 32]),
                epoch: 4
            }]
        );
    }
}
