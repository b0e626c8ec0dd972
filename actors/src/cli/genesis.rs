//! `spacetime genesis`: show a network's genesis block and configuration.

use std::io::Write;

use super::{CliError, GenesisCommand};

pub(super) fn run(cmd: GenesisCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match cmd {
        GenesisCommand::Hash(args) => {
            let genesis = args.load_genesis()?;
            writeln!(out, "{}", genesis.network_id)?;
        }
        GenesisCommand::Show(args) => {
            let genesis = args.load_genesis()?;
            let h = &genesis.block.header;
            let c = &genesis.config;
            writeln!(out, "network:        {}", c.network.name)?;
            writeln!(out, "network id:     {}", genesis.network_id)?;
            writeln!(out, "chain id:       {}", genesis.chain_id)?;
            writeln!(out, "config hash:    {}", h.challenge)?;
            writeln!(
                out,
                "genesis time:   {} ms since the Unix epoch",
                h.timestamp_ms
            )?;
            writeln!(out, "epoch:          {} ms", c.network.epoch_ms)?;
            writeln!(
                out,
                "block time:     {} ms (target)",
                c.network.target_block_time_ms
            )?;
            writeln!(out, "initial target: {}", h.target)?;
            writeln!(out, "tx root:        {}", h.tx_root)?;
            writeln!(
                out,
                "premine:        {} in {} allocations",
                c.premine_total(),
                c.premine.len()
            )?;
            writeln!(out)?;
            write!(out, "{}", c.to_toml_string())?;
        }
    }
    Ok(())
}
