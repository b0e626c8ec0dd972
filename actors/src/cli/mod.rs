//! Command-line interface: argument definitions and dispatch to the subcommands.

mod chain;
mod emission;
mod genesis;
mod keys;
pub mod node;
mod plot;

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use spacetime::genesis::{GenesisConfig, GenesisError};
use spacetime::keyfile::KeyFileError;

/// Spacetime: a Proof-of-Space-Time blockchain node.
#[derive(Debug, Parser)]
#[command(name = "spacetime", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and inspect sr25519 key files.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Show a network's genesis configuration and block.
    #[command(subcommand)]
    Genesis(GenesisCommand),
    /// Print a network's block reward schedule; optionally draw it as SVG.
    Emission(emission::EmissionArgs),
    /// Run a node: connect to peers, serve metrics, print status lines.
    Node(node::NodeArgs),
    /// Create, list, check and inspect plot files.
    #[command(subcommand)]
    Plot(plot::PlotCommand),
    /// Inspect the chain database: tip, supply audit, accounts; import and export blocks.
    #[command(subcommand)]
    Chain(chain::ChainCommand),
}

/// `spacetime keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a new key pair from the OS RNG and write it to a key file (mode 0600).
    New {
        /// Where to write the key file.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Replace an existing file at FILE.
        #[arg(long)]
        force: bool,
    },
    /// Print the public key (the account address) stored in a key file.
    Show {
        /// The key file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// `spacetime genesis ...`
#[derive(Debug, Subcommand)]
pub enum GenesisCommand {
    /// Print the network id, the genesis header and the full configuration.
    Show(NetworkArgs),
    /// Print only the network id (the genesis block hash).
    Hash(NetworkArgs),
}

/// Which network: a built-in one or a genesis TOML file.
#[derive(Debug, Clone, Args)]
pub struct NetworkArgs {
    /// A built-in network: dev or testnet.
    #[arg(
        long,
        value_name = "NAME",
        conflicts_with = "config",
        default_value = "dev"
    )]
    pub network: String,
    /// A genesis configuration file (TOML) instead of a built-in network.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Why a command failed; printed as one line by the binary.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A key file problem.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    /// A genesis configuration problem.
    #[error("{0}")]
    Genesis(#[from] GenesisError),
    /// A file given on the command line could not be read.
    #[error("cannot read {}: {error}", .path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A plot command failed.
    #[error(transparent)]
    Plot(#[from] plot::PlotCliError),
    /// Writing the output failed (for example a closed pipe).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// The node failed.
    #[error(transparent)]
    Node(#[from] crate::node::NodeError),
    /// The node configuration file is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The chain database failed.
    #[error(transparent)]
    Chain(#[from] spacetime::chain::ChainError),
    /// A block file could not be read.
    #[error(transparent)]
    BlockFile(#[from] crate::chain::blockfile::BlockFileError),
    /// A command that only reads found no chain database where it looked.
    #[error(
        "no chain database at {}: check --data-dir and the network (a node creates it on first start; `chain import` creates it too)",
        .path.display()
    )]
    NoChain {
        /// The database file looked for.
        path: PathBuf,
    },
    /// `chain check` found problems.
    #[error(
        "chain database {path} has {problems} problem(s): stop the node, move the file aside and sync again (docs/chain.md, \"Recovery\"); keys, plots and the address book are kept"
    )]
    ChainUnsound {
        /// The file.
        path: String,
        /// How many problems.
        problems: u64,
    },
    /// No HOME directory to put the default data directory in.
    #[error("no HOME directory: pass --data-dir")]
    NoHome,
    /// A file named on the command line could not be written.
    #[error("cannot write {}: {error}", .path.display())]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
}

impl Cli {
    /// The log format the command asks for (only `node` has a choice).
    pub fn log_format(&self) -> crate::config::LogFormat {
        match &self.command {
            Command::Node(args) => args.log_format(),
            _ => crate::config::LogFormat::Plain,
        }
    }
}

/// Runs a parsed command line, writing its normal output to `out`.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    match cli.command {
        Command::Keys(cmd) => keys::run(cmd, out),
        Command::Genesis(cmd) => genesis::run(cmd, out),
        Command::Emission(args) => emission::run(args, out),
        Command::Node(args) => node::run(args, out),
        Command::Plot(cmd) => plot::run(cmd, out),
        Command::Chain(cmd) => chain::run(cmd, out),
    }
}

impl NetworkArgs {
    /// Loads the chosen genesis configuration.
    pub fn load(&self) -> Result<GenesisConfig, CliError> {
        match &self.config {
            Some(path) => {
                let text = read_text_file(path, spacetime::genesis::MAX_GENESIS_TOML_BYTES)?;
                GenesisConfig::from_toml_str(&text)
                    .map_err(|e| CliError::Genesis(with_file_context(e, path)))
            }
            None => Ok(GenesisConfig::builtin(&self.network)?),
        }
    }

    /// Loads the chosen network's genesis (validated once).
    pub fn load_genesis(&self) -> Result<spacetime::Genesis, CliError> {
        match &self.config {
            Some(path) => {
                let text = read_text_file(path, spacetime::genesis::MAX_GENESIS_TOML_BYTES)?;
                spacetime::Genesis::from_toml_str(&text)
                    .map_err(|e| CliError::Genesis(with_file_context(e, path)))
            }
            None => Ok(spacetime::Genesis::builtin(&self.network)?),
        }
    }
}

fn with_file_context(e: GenesisError, path: &std::path::Path) -> GenesisError {
    match e {
        GenesisError::Parse(msg) => GenesisError::Parse(format!("{}: {msg}", path.display())),
        other => other,
    }
}

/// Reads a UTF-8 text file of at most `limit` bytes.
fn read_text_file(path: &std::path::Path, limit: usize) -> Result<String, CliError> {
    crate::textfile::read_text_limited(path, limit).map_err(|error| CliError::ReadFile {
        path: path.to_owned(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn parse_errors_are_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.toml");
        std::fs::write(&path, "[network]\nname = 5\n").unwrap();
        let args = NetworkArgs {
            network: "dev".into(),
            config: Some(path),
        };
        let msg = args.load().unwrap_err().to_string();
        assert!(!msg.contains('\n'), "{msg}");
        assert!(msg.contains("g.toml"), "{msg}");
    }
}
