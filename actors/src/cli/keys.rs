//! `spacetime keys`: create and inspect key files.

use std::io::Write;

use spacetime::Keypair;
use spacetime::keyfile::{KeyFileError, read_key_file, write_key_file};

use super::{CliError, KeysCommand};

pub(super) fn run(cmd: KeysCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match cmd {
        KeysCommand::New { out: path, force } => {
            // A long-term key: from the OS RNG, never from a seeded generator.
            let key = Keypair::try_generate().map_err(|error| KeyFileError::NoRandomness {
                path: path.clone(),
                error,
            })?;
            write_key_file(&path, &key, force)?;
            writeln!(out, "wrote {}", path.display())?;
            writeln!(out, "public key: {}", key.public())?;
        }
        KeysCommand::Show { file } => {
            let key = read_key_file(&file)?;
            writeln!(out, "public key: {}", key.public())?;
        }
    }
    Ok(())
}
