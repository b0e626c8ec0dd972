//! `spacetime chain ...`: inspect and load the chain database of a data directory.

use std::io::Write;
use std::path::PathBuf;

use spacetime::chain::{Chain, ImportError, ImportStatus};
use spacetime::{Address, Genesis, Height};

use super::{CliError, NetworkArgs};
use crate::chain::blockfile::{BlockFileReader, BlockFileWriter};
use crate::clock::{Clock, NodeClock};
use crate::node::CHAIN_DB_FILE;

/// `spacetime chain ...`
#[derive(Debug, clap::Subcommand)]
pub enum ChainCommand {
    /// Print the tip: height, hash, cumulative work, timestamp.
    Tip(ChainArgs),
    /// Check the database: every page against its checksum, every record against the others;
    /// exits non-zero when anything is wrong (see docs/chain.md, "Recovery").
    Check(ChainArgs),
    /// Compare the supply issued on the chain with the emission schedule, height by height.
    Supply {
        /// Which chain.
        #[command(flatten)]
        chain: ChainArgs,
        /// First height shown.
        #[arg(long, default_value_t = 0)]
        from: Height,
        /// Last height shown (default: the tip).
        #[arg(long)]
        to: Option<Height>,
        /// Show every STEP-th height (differences are always shown).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        step: u64,
    },
    /// Show an account at the tip: mature and immature balance, nonce, state proof size.
    Account {
        /// Which chain.
        #[command(flatten)]
        chain: ChainArgs,
        /// The address (64 hex digits).
        address: Address,
    },
    /// Import blocks from a block file, committing each block as it is validated.
    Import {
        /// Which chain.
        #[command(flatten)]
        chain: ChainArgs,
        /// The block file.
        file: PathBuf,
    },
    /// Write main-chain blocks to a block file.
    Export {
        /// Which chain.
        #[command(flatten)]
        chain: ChainArgs,
        /// The block file to write.
        file: PathBuf,
        /// First height (default 1).
        #[arg(long, default_value_t = 1)]
        from: Height,
        /// Last height (default: the tip).
        #[arg(long)]
        to: Option<Height>,
    },
}

/// Which chain database: network and data directory.
#[derive(Debug, Clone, clap::Args)]
pub struct ChainArgs {
    /// The built-in dev network (same as --network dev).
    #[arg(long, conflicts_with_all = ["network", "config"])]
    pub dev: bool,
    /// Which network.
    #[command(flatten)]
    pub network: NetworkArgs,
    /// Data directory (default: ~/.spacetime/<network>).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl ChainArgs {
    /// Opens the chain of a data directory that already holds one: commands that only read
    /// never create a directory or a database (a mistyped path is an error, not height 0).
    fn open(&self) -> Result<Chain, CliError> {
        self.open_with(false)
    }

    /// Opens the chain, creating the directory and the database when `create` is set.
    fn open_with(&self, create: bool) -> Result<Chain, CliError> {
        let genesis = if self.dev {
            Genesis::builtin("dev")?
        } else {
            self.network.load_genesis()?
        };
        let dir = match &self.data_dir {
            Some(d) => d.clone(),
            None => super::node::default_data_dir(&genesis.config.network.name)?,
        };
        let path = dir.join(CHAIN_DB_FILE);
        if !create {
            if !path.is_file() {
                return Err(CliError::NoChain { path });
            }
        } else {
            std::fs::create_dir_all(&dir).map_err(|error| CliError::WriteFile {
                path: dir.clone(),
                error,
            })?;
        }
        Ok(Chain::open(&path, genesis)?)
    }
}

pub(super) fn run(cmd: ChainCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match cmd {
        ChainCommand::Tip(args) => {
            let chain = args.open()?;
            let tip = chain.tip();
            writeln!(out, "height     {}", tip.height)?;
            writeln!(out, "hash       {}", tip.hash)?;
            writeln!(out, "work       {}", tip.work.to_u256())?;
            writeln!(out, "timestamp  {} ms", tip.timestamp_ms)?;
        }
        ChainCommand::Check(args) => check(&args, out)?,
        ChainCommand::Supply {
            chain,
            from,
            to,
            step,
        } => supply(&chain.open()?, from, to, step, out)?,
        ChainCommand::Account { chain, address } => {
            let chain = chain.open()?;
            let a = chain.account(&address)?;
            writeln!(out, "address    {address}")?;
            writeln!(out, "height     {}", a.height)?;
            writeln!(out, "mature     {}", a.mature)?;
            writeln!(out, "immature   {}", a.immature)?;
            writeln!(out, "nonce      {}", a.nonce)?;
            writeln!(out, "state root {}", a.state_root)?;
            writeln!(
                out,
                "proof      {} bytes",
                spacetime::encoding::encoded_len(&a.proof)
            )?;
        }
        ChainCommand::Import { chain, file } => import(&mut chain.open_with(true)?, &file, out)?,
        ChainCommand::Export {
            chain,
            file,
            from,
            to,
        } => {
            let chain = chain.open()?;
            let to = to.unwrap_or(chain.height()).min(chain.height());
            let err = |error| CliError::WriteFile {
                path: file.clone(),
                error,
            };
            let f = std::fs::File::create(&file).map_err(err)?;
            let mut w = BlockFileWriter::new(std::io::BufWriter::new(f)).map_err(err)?;
            let mut n = 0u64;
            for h in from.max(1)..=to {
                if let Some(block) = chain.block_at(h)? {
                    w.write(&block).map_err(err)?;
                    n += 1;
                }
            }
            w.finish().map_err(err)?;
            writeln!(out, "exported {n} blocks to {}", file.display())?;
        }
    }
    Ok(())
}

/// `spacetime chain check`: the report, then an error naming the file when it is not sound.
fn check(args: &ChainArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let chain = args.open()?;
    let path = chain.storage().describe();
    let report = chain.check()?;
    writeln!(out, "database   {path}")?;
    let pages = if report.opened.repaired {
        "repaired: rolled back to the last commit whose pages check"
    } else {
        "ok"
    };
    writeln!(out, "pages      {pages}")?;
    writeln!(
        out,
        "records    {} blocks, {} bodies",
        report.records, report.bodies
    )?;
    writeln!(
        out,
        "main chain {} blocks (tip height {}), {} transactions indexed",
        report.main_blocks,
        chain.height(),
        report.indexed_txs
    )?;
    for problem in &report.listed {
        writeln!(out, "problem    {problem}")?;
    }
    if report.is_sound() {
        writeln!(out, "result     sound")?;
        return Ok(());
    }
    Err(CliError::ChainUnsound {
        path,
        problems: report.problems,
    })
}

fn supply(
    chain: &Chain,
    from: Height,
    to: Option<Height>,
    step: u64,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let to = to.unwrap_or(chain.height());
    let rows = chain.supply_audit(from, to)?;
    writeln!(
        out,
        "{:>10}  {:>24}  {:>24}  {:>20}",
        "height", "issued", "schedule", "difference"
    )?;
    let mut differing = 0u64;
    let mut over = 0u64;
    let last = rows.last().map(|r| r.height);
    for row in &rows {
        let diff = row.shortfall();
        if diff != 0 {
            differing += 1;
        }
        if diff < 0 {
            over += 1;
        }
        if diff != 0 || (row.height - from).is_multiple_of(step) || Some(row.height) == last {
            let note = if diff < 0 { "  ABOVE SCHEDULE" } else { "" };
            writeln!(
                out,
                "{:>10}  {:>24}  {:>24}  {:>20}{note}",
                row.height, row.issued, row.scheduled, diff
            )?;
        }
    }
    if let Some(row) = rows.last() {
        writeln!(
            out,
            "at height {}: issued {}, schedule {}, difference {} ({} of {} heights differ{})",
            row.height,
            row.issued,
            row.scheduled,
            row.shortfall(),
            differing,
            rows.len(),
            if over > 0 {
                format!(", {over} ABOVE the schedule")
            } else {
                String::new()
            }
        )?;
    }
    Ok(())
}

/// Blocks read from the file per batch.
const IMPORT_BATCH: usize = 512;

fn import(chain: &mut Chain, file: &PathBuf, out: &mut dyn Write) -> Result<(), CliError> {
    let f = std::fs::File::open(file).map_err(|error| CliError::ReadFile {
        path: file.clone(),
        error,
    })?;
    let mut reader = BlockFileReader::new(std::io::BufReader::new(f))?;
    let clock = NodeClock::system();
    // As sync does far behind the network: consecutive blocks share one write transaction,
    // signatures verify on a second thread while the state applies.
    chain.set_parallel_signatures(true);
    let (mut connected, mut known, mut invalid) = (0u64, 0u64, 0u64);
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    let mut more = true;
    while more {
        match reader.next_block()? {
            Some(block) => batch.push(block),
            None => more = false,
        }
        if batch.len() < IMPORT_BATCH && more {
            continue;
        }
        let done = chain.import_blocks(std::mem::take(&mut batch), clock.now_ms());
        let mut tip_changed = false;
        for (_, result) in done.results {
            match result {
                Ok(imported) => {
                    if imported.status == ImportStatus::Duplicate {
                        known += 1;
                    }
                    connected += imported.events.len() as u64;
                    tip_changed |= !imported.events.is_empty();
                }
                Err(ImportError::Invalid { hash, reason })
                | Err(ImportError::BodyMismatch { hash, reason }) => {
                    invalid += 1;
                    writeln!(out, "rejected {hash}: {reason}")?;
                }
                Err(ImportError::Chain(e)) => return Err(e.into()),
            }
        }
        if tip_changed {
            // Printed after the commit: every line names a block that is on disk.
            let tip = chain.tip();
            writeln!(out, "imported height {} {}", tip.height, tip.hash)?;
        }
        out.flush()?;
    }
    let tip = chain.tip();
    writeln!(
        out,
        "done: {connected} tip changes, {known} already known, {invalid} rejected; tip height {} {}",
        tip.height, tip.hash
    )?;
    Ok(())
}
