//! `spacetime plot`: create, list, check and inspect plot files.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{ArgGroup, Subcommand};
use spacetime::keyfile::{KeyFileError, read_key_file};
use spacetime::plot::PlotShape;
use spacetime::{Hash, PublicKey};

use super::{CliError, NetworkArgs};
use crate::plots::file::read_header_at;
use crate::plots::{
    PlotFileError, PlotManager, PlotRequest, PlotterError, Progress, check_plot, create_plot,
};

/// `spacetime plot ...`
#[derive(Debug, Subcommand)]
pub enum PlotCommand {
    /// Create a plot: all cores, bounded memory, resumable (run the same command again).
    #[command(group(ArgGroup::new("owner").required(true).args(["key", "miner"])))]
    Create {
        /// Plot size, e.g. `500MiB`, `10GiB`, `2TiB` (rounded down to whole groups).
        #[arg(long, value_name = "SIZE")]
        size: String,
        /// Directory to write the plot into.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The miner key file the plot belongs to (`spacetime keys new --out FILE`).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// The miner public key (hex) instead of a key file: plotting needs no secret.
        #[arg(long, value_name = "HEX")]
        miner: Option<String>,
        /// Plot seed (64 hex digits) for a reproducible plot; random by default.
        #[arg(long, value_name = "HEX")]
        seed: Option<String>,
        /// Worker threads (default: every core; at most 1024).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
        threads: Option<u64>,
        /// Memory for the two segment buffers, e.g. `1GiB` (more memory, longer reads).
        #[arg(long, value_name = "SIZE", default_value = "4GiB")]
        memory: String,
        /// Delete an unfinished plot of the same key and size instead of resuming it.
        #[arg(long)]
        restart: bool,
        /// No progress line.
        #[arg(long)]
        quiet: bool,
        /// The network whose plot parameters to use.
        #[command(flatten)]
        network: NetworkArgs,
    },
    /// List the plots under one or more directories (searched recursively).
    List {
        /// Directories to search.
        #[arg(long, value_name = "DIR", required = true, num_args = 1..)]
        dir: Vec<PathBuf>,
        /// The network whose plot parameters plots must have.
        #[command(flatten)]
        network: NetworkArgs,
    },
    /// Verify a plot: header, every segment checksum, and a sample of leaves against the rules.
    Check {
        /// The plot file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Leaves to recompute from the rules.
        #[arg(long, value_name = "N", default_value_t = 1000)]
        samples: u64,
        /// Skip the segment checksums (no full read of the file).
        #[arg(long)]
        quick: bool,
    },
    /// Print a plot file's header.
    Inspect {
        /// The plot file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// Why a size like `10GiB` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// No digits.
    #[error("invalid size `{0}`: expected a number with an optional unit, e.g. 10GiB")]
    Malformed(String),
    /// An unknown unit.
    #[error("invalid size `{0}`: unknown unit (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)")]
    Unit(String),
    /// Too large for 64 bits.
    #[error("invalid size `{0}`: too large")]
    Overflow(String),
}

/// Parses `123`, `500MiB`, `10GiB`, `2TiB`, `1GB` (decimal units) into bytes.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err(SizeError::Malformed(text.to_owned()));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| SizeError::Overflow(text.to_owned()))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(SizeError::Unit(text.to_owned())),
    };
    n.checked_mul(mult)
        .ok_or_else(|| SizeError::Overflow(text.to_owned()))
}

/// Bytes as a short human figure (binary units).
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

/// Why a plot command failed.
#[derive(Debug, thiserror::Error)]
pub enum PlotCliError {
    /// A bad size argument.
    #[error(transparent)]
    Size(#[from] SizeError),
    /// Neither `--key` nor `--miner` was given.
    #[error("give the miner key with --key FILE or --miner PUBLIC_KEY")]
    NoMiner,
    /// A bad hex argument.
    #[error("invalid {what} `{text}`: expected 64 hex digits")]
    Hex {
        /// Which argument.
        what: &'static str,
        /// Its text.
        text: String,
    },
    /// The key file.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// Plotting failed.
    #[error(transparent)]
    Plotter(#[from] PlotterError),
    /// A plot file is unusable.
    #[error(transparent)]
    File(#[from] PlotFileError),
    /// `plot check` found damage.
    #[error("{}: check failed: {segments} damaged segment(s), {leaves} wrong leaf/leaves", .path.display())]
    CheckFailed {
        /// The plot.
        path: PathBuf,
        /// Damaged segments.
        segments: usize,
        /// Wrong sampled leaves.
        leaves: usize,
    },
}

fn parse_hex(what: &'static str, text: &str) -> Result<[u8; 32], PlotCliError> {
    spacetime::bytes::decode_hex::<32>(text.trim()).map_err(|_| PlotCliError::Hex {
        what,
        text: text.to_owned(),
    })
}

/// A one-line progress display on stderr: percentage, rate and ETA.
struct ProgressLine {
    last: Option<Instant>,
    every: Duration,
    terminal: bool,
    quiet: bool,
}

impl ProgressLine {
    fn new(quiet: bool) -> Self {
        let terminal = std::io::stderr().is_terminal();
        Self {
            last: None,
            every: if terminal {
                Duration::from_millis(250)
            } else {
                Duration::from_secs(10)
            },
            terminal,
            quiet,
        }
    }

    fn update(&mut self, p: Progress) {
        if self.quiet {
            return;
        }
        let now = Instant::now();
        if self.last.is_some_and(|t| now - t < self.every) && p.done < p.total {
            return;
        }
        self.last = Some(now);
        let secs = p.elapsed.as_secs_f64().max(1e-9);
        let rate = p.done as f64 / secs;
        let eta = if rate > 0.0 {
            (p.total.saturating_sub(p.done)) as f64 / rate
        } else {
            0.0
        };
        let pct = if p.total == 0 {
            100.0
        } else {
            p.done as f64 * 100.0 / p.total as f64
        };
        let eta = eta as u64;
        let line = format!(
            "plotting {pct:5.1}%  {} of {}  {:.1} MB/s  ETA {}h{:02}m{:02}s",
            human(p.done),
            human(p.total),
            rate / 1e6,
            eta / 3600,
            eta / 60 % 60,
            eta % 60
        );
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }

    fn finish(&self) {
        if !self.quiet && self.terminal && self.last.is_some() {
            eprintln!();
        }
    }
}

pub(super) fn run(cmd: PlotCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match cmd {
        PlotCommand::Create {
            size,
            dir,
            key,
            miner,
            seed,
            threads,
            memory,
            restart,
            quiet,
            network,
        } => {
            let genesis = network.load()?;
            let size = parse_size(&size).map_err(PlotCliError::from)?;
            let memory = parse_size(&memory).map_err(PlotCliError::from)?;
            let miner = match (key, miner) {
                (Some(path), _) => read_key_file(&path).map_err(PlotCliError::from)?.public(),
                (None, Some(hex)) => PublicKey(parse_hex("miner public key", &hex)?),
                (None, None) => return Err(PlotCliError::NoMiner.into()),
            };
            let seed = seed.map(|s| parse_hex("seed", &s).map(Hash)).transpose()?;
            // Bounded to 1..=1024 by the argument parser.
            let threads = threads.map_or_else(
                || std::thread::available_parallelism().map_or(1, |n| n.get()),
                |n| n as usize,
            );
            let req = PlotRequest {
                dir,
                size,
                params: genesis.plot.clone(),
                miner,
                seed,
                threads,
                memory,
                restart,
            };
            let mut line = ProgressLine::new(quiet);
            let result = create_plot(&req, &mut |p| line.update(p));
            line.finish();
            let outcome = result.map_err(PlotCliError::from)?;
            let l = outcome.header.layout;
            writeln!(out, "wrote {}", outcome.path.display())?;
            writeln!(out, "plot id: {}", outcome.header.plot_id())?;
            writeln!(out, "miner: {}", outcome.header.miner)?;
            writeln!(
                out,
                "size: {} ({} bytes), {} groups",
                human(l.file_len()),
                l.file_len(),
                l.groups
            )?;
            if outcome.resumed_segments > 0 {
                writeln!(out, "resumed: {} segments kept", outcome.resumed_segments)?;
            }
            let secs = outcome.elapsed.as_secs_f64().max(1e-9);
            writeln!(
                out,
                "time: {:.1} s, {:.1} MB/s on {threads} threads",
                secs,
                outcome.computed as f64 / secs / 1e6
            )?;
        }
        PlotCommand::List { dir, network } => {
            let genesis = network.load()?;
            let mut m = PlotManager::new(dir, PlotShape::from(&genesis.plot), false);
            let changes = m.refresh();
            for p in m.plots() {
                let h = p.plot().header();
                writeln!(
                    out,
                    "{}  {}  id {}  miner {}",
                    p.plot().path().display(),
                    human(p.plot().size()),
                    h.plot_id(),
                    h.miner
                )?;
            }
            for (path, why) in &changes.failed {
                writeln!(out, "skipped {}: {why}", path.display())?;
            }
            writeln!(
                out,
                "{} plot(s), {} ({} bytes); {} skipped",
                m.len(),
                human(m.total_bytes()),
                m.total_bytes(),
                changes.failed.len()
            )?;
        }
        PlotCommand::Check {
            file,
            samples,
            quick,
        } => {
            let nonce = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let r = check_plot(&file, samples, nonce, quick).map_err(PlotCliError::from)?;
            writeln!(
                out,
                "{}: header ok, plot id {}",
                file.display(),
                r.header.plot_id()
            )?;
            if quick {
                writeln!(out, "segments: skipped (--quick)")?;
            } else {
                writeln!(
                    out,
                    "segments: {} checked, {} damaged",
                    r.segments_checked,
                    r.bad_segments.len()
                )?;
            }
            writeln!(
                out,
                "leaves: {} recomputed, {} wrong",
                r.leaves_checked,
                r.bad_leaves.len()
            )?;
            if !r.is_ok() {
                return Err(PlotCliError::CheckFailed {
                    path: file,
                    segments: r.bad_segments.len(),
                    leaves: r.bad_leaves.len(),
                }
                .into());
            }
            writeln!(out, "ok")?;
        }
        PlotCommand::Inspect { file } => inspect(&file, out)?,
    }
    Ok(())
}

fn inspect(file: &Path, out: &mut dyn Write) -> Result<(), CliError> {
    let (h, len) = read_header_at(file).map_err(PlotCliError::from)?;
    let l = h.layout;
    let networks: Vec<&str> = ["dev", "testnet"]
        .into_iter()
        .filter(|n| {
            spacetime::GenesisConfig::builtin(n).is_ok_and(|g| PlotShape::from(&g.plot) == l.shape)
        })
        .collect();
    writeln!(out, "file: {}", file.display())?;
    writeln!(
        out,
        "format version: {}",
        spacetime::plot::PLOT_FORMAT_VERSION
    )?;
    writeln!(
        out,
        "state: {}",
        if h.complete { "complete" } else { "incomplete" }
    )?;
    writeln!(out, "plot id: {}", h.plot_id())?;
    writeln!(out, "miner: {}", h.miner)?;
    writeln!(out, "seed: {}", h.seed)?;
    writeln!(
        out,
        "parameters: G = {} leaves, W = {}, B = {} buckets (networks: {})",
        l.shape.group_leaves(),
        l.shape.chain_window,
        l.shape.buckets,
        if networks.is_empty() {
            "none built in".to_owned()
        } else {
            networks.join(", ")
        }
    )?;
    writeln!(
        out,
        "groups: {} ({} per bucket), {} per segment, {} segments",
        l.groups,
        l.groups_per_bucket(),
        l.chunk_groups,
        l.segment_count()
    )?;
    writeln!(
        out,
        "region per challenge: {} bytes in {} run(s)",
        l.groups_per_bucket() * 32,
        l.chunks_per_bucket()
    )?;
    writeln!(out, "data offset: {}", l.data_offset())?;
    writeln!(
        out,
        "size: {} bytes on disk, {} expected{}",
        len,
        l.file_len(),
        if len == l.file_len() {
            ""
        } else {
            " (WRONG LENGTH)"
        }
    )?;
    let written = h.segments.iter().filter(|s| **s != Hash::ZERO).count();
    writeln!(out, "segments written: {written} of {}", h.segments.len())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units_and_fail_typed() {
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size("500MiB"), Ok(500 << 20));
        assert_eq!(parse_size("1tib"), Ok(1 << 40));
        assert_eq!(parse_size("2 GB"), Ok(2_000_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(matches!(parse_size("GiB"), Err(SizeError::Malformed(_))));
        assert!(matches!(parse_size(""), Err(SizeError::Malformed(_))));
        assert!(matches!(parse_size("-1GiB"), Err(SizeError::Malformed(_))));
        assert!(matches!(parse_size("10XB"), Err(SizeError::Unit(_))));
        assert!(matches!(parse_size("1.5GiB"), Err(SizeError::Unit(_))));
        assert!(matches!(
            parse_size("99999999999TiB"),
            Err(SizeError::Overflow(_))
        ));
        assert!(matches!(
            parse_size("999999999999999999999"),
            Err(SizeError::Overflow(_))
        ));
        assert!(!parse_size("10XB").unwrap_err().to_string().contains('\n'));
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(1 << 30), "1.00 GiB");
        assert_eq!(human(3 << 19), "1.50 MiB");
    }
}
