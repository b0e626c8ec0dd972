//! `spacetime chain check`: every stored record read back and checked against the others.
//!
//! Opening a chain already runs redb's integrity check (every committed page against its
//! checksum) and the cheap consistency checks of the tip. [`Chain::check`] goes through all of
//! it: every block record and body decodes and is filed under its own hash, every body matches
//! its header's transaction root, the main chain links parent to child with one record per
//! height, every main-chain transaction is indexed where it is, the supply has a row per height,
//! and the state tree's root is the tip header's.

use redb::{ReadableDatabase, ReadableTable};

use super::error::ChainError;
use super::store::{self, BlockBody, BlockRecord, BlockStatus};
use super::{Chain, OpenReport};
use crate::decode;
use crate::hash::Hash;
use crate::state_tree::{RedbReader, StateTree};

/// Most problems a report lists (the count goes on).
pub const MAX_LISTED_PROBLEMS: usize = 20;

/// What [`Chain::check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// What the open found (the integrity check of every page).
    pub opened: OpenReport,
    /// Block records read (all branches).
    pub records: u64,
    /// Bodies read.
    pub bodies: u64,
    /// Main-chain blocks checked, genesis included.
    pub main_blocks: u64,
    /// Transactions of the main chain found in the index.
    pub indexed_txs: u64,
    /// Problems found: none on a sound database.
    pub problems: u64,
    /// The first [`MAX_LISTED_PROBLEMS`] problems.
    pub listed: Vec<String>,
}

impl CheckReport {
    /// True when nothing is wrong.
    pub fn is_sound(&self) -> bool {
        self.problems == 0
    }

    fn problem(&mut self, what: String) {
        self.problems += 1;
        if self.listed.len() < MAX_LISTED_PROBLEMS {
            self.listed.push(what);
        }
    }
}

impl Chain {
    /// Reads every record and checks it against the others (see the module documentation).
    /// A record that cannot be read at all is a problem in the report; the error is only for
    /// a database that cannot be read as a whole.
    pub fn check(&self) -> Result<CheckReport, ChainError> {
        let guard = self.guard.clone();
        guard.run(|| self.check_all())
    }

    fn check_all(&self) -> Result<CheckReport, ChainError> {
        let mut report = CheckReport {
            opened: self.opened,
            ..CheckReport::default()
        };
        let txn = self.db()?.begin_read()?;
        let blocks = txn.open_table(store::BLOCKS)?;
        let bodies = txn.open_table(store::BODIES)?;
        for row in blocks.iter()? {
            let (k, v) = row?;
            report.records += 1;
            let key = Hash(k.value());
            match decode::<BlockRecord>(v.value()) {
                Ok(r) if r.header.hash() != key => report.problem(format!(
                    "record filed under {key} is block {}",
                    r.header.hash()
                )),
                Ok(_) => {}
                Err(e) => report.problem(format!("record {key} does not decode: {e}")),
            }
        }
        for row in bodies.iter()? {
            let (k, v) = row?;
            report.bodies += 1;
            let key = Hash(k.value());
            let body = match decode::<BlockBody>(v.value()) {
                Ok(b) => b,
                Err(e) => {
                    report.problem(format!("body {key} does not decode: {e}"));
                    continue;
                }
            };
            let Some(record) = blocks.get(key.0)? else {
                report.problem(format!("body {key} has no block record"));
                continue;
            };
            let Ok(record) = decode::<BlockRecord>(record.value()) else {
                continue; // listed above
            };
            let block = body.join(record.header);
            if block.check_tx_root().is_err() {
                report.problem(format!("body {key} does not match its header's tx root"));
            }
        }
        let main = txn.open_table(store::MAIN_CHAIN)?;
        let index = txn.open_table(store::TX_INDEX)?;
        let supply = txn.open_table(store::SUPPLY)?;
        let mut parent: Option<Hash> = None;
        for (height, row) in main.iter()?.enumerate() {
            let (h, hash) = row?;
            let (h, hash) = (h.value(), Hash(hash.value()));
            report.main_blocks += 1;
            if h != height as u64 {
                report.problem(format!("main chain has height {h} where {height} belongs"));
            }
            if supply.get(h)?.is_none() {
                report.problem(format!("no supply row at height {h}"));
            }
            let record = match blocks.get(hash.0)? {
                Some(v) => match decode::<BlockRecord>(v.value()) {
                    Ok(r) => r,
                    Err(_) => continue, // listed above
                },
                None => {
                    report.problem(format!("main-chain block {hash} at {h} has no record"));
                    continue;
                }
            };
            if record.header.height != h {
                report.problem(format!(
                    "block {hash} at {h} says height {}",
                    record.header.height
                ));
            }
            if record.status != BlockStatus::Valid {
                report.problem(format!(
                    "main-chain block {hash} has status {:?}",
                    record.status
                ));
            }
            if let Some(p) = parent
                && record.header.parent != p
            {
                report.problem(format!("block {hash} at {h} does not follow {p}"));
            }
            parent = Some(hash);
            let Some(body) = bodies.get(hash.0)? else {
                report.problem(format!("main-chain block {hash} at {h} has no body"));
                continue;
            };
            let Ok(body) = decode::<BlockBody>(body.value()) else {
                continue; // listed above
            };
            let block = body.join(record.header);
            for (position, id) in block.tx_ids().enumerate() {
                match index.get(id.0)? {
                    Some(v) if store::parse_tx_location(&v.value()) == (hash, position as u32) => {
                        report.indexed_txs += 1;
                    }
                    Some(_) => report.problem(format!("transaction {id} is indexed elsewhere")),
                    None => report.problem(format!("transaction {id} of {hash} is not indexed")),
                }
            }
        }
        let tree = StateTree::new(RedbReader::open(&txn)?);
        let root = tree.root()?;
        match parent.map(|tip| blocks.get(tip.0)).transpose()? {
            Some(Some(v)) => {
                if let Ok(tip) = decode::<BlockRecord>(v.value())
                    && tip.header.height > 0
                    && tip.header.state_root != root
                {
                    report.problem(format!(
                        "state root {root} differs from the tip header's {}",
                        tip.header.state_root
                    ));
                }
            }
            _ => report.problem("the main chain is empty".into()),
        }
        Ok(report)
    }
}
