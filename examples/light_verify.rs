//! Light-client balance check: a block header, an address and a state proof in, a verified
//! balance out. See `docs/light-client.md`.
//!
//! ```text
//! cargo run --example light_verify -- <header> <address> <proof>
//! cargo run --example light_verify -- --demo <dir>
//! ```
//!
//! `<header>` and `<proof>` are files holding the canonical encoding of a `BlockHeader` and of a
//! `StateProof`, as raw bytes or as hex text. `<address>` is 64 hex digits. `--demo` builds a
//! small state, signs a header committing to it, writes `header.hex` and two proofs (one
//! present, one absent account) into `<dir>`, and verifies them the same way.
//!
//! The header must come from a chain the client has already checked (proof of space, work,
//! signatures back to a trusted checkpoint); this example checks only the header's own
//! signature. The proof then needs nothing but the header's `state_root`.

use std::path::Path;
use std::process::ExitCode;

use spacetime::account::Account;
use spacetime::amount::Amount;
use spacetime::block::{BlockHeader, ProofOfSpace, UnsignedHeader};
use spacetime::bytes::to_hex;
use spacetime::crypto::{Address, Keypair};
use spacetime::encoding::{decode, encode};
use spacetime::hash::Hash;
use spacetime::state_tree::{MemoryStore, StateProof, StateTree, key_of, verify};
use spacetime::target::Target;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [flag, dir] if flag == "--demo" => demo(Path::new(dir)),
        [header, address, proof] => check(Path::new(header), address, Path::new(proof)),
        _ => Err(
            "usage: light_verify <header-file> <address-hex> <proof-file>\n       \
                  light_verify --demo <dir>"
                .to_string(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Reads a file of raw bytes or hex text.
fn read_bytes(path: &Path) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&raw);
    let text = text.trim();
    let digits = text.strip_prefix("0x").unwrap_or(text);
    if !digits.is_empty()
        && digits.len().is_multiple_of(2)
        && digits.bytes().all(|b| b.is_ascii_hexdigit())
    {
        (0..digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&digits[i..i + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{}: bad hex: {e}", path.display()))
    } else {
        Ok(raw)
    }
}

/// Verifies `proof_path` for `address` against the header in `header_path` and prints it.
fn check(header_path: &Path, address: &str, proof_path: &Path) -> Result<(), String> {
    let header: BlockHeader =
        decode(&read_bytes(header_path)?).map_err(|e| format!("{}: {e}", header_path.display()))?;
    header
        .verify_signature()
        .map_err(|e| format!("{}: {e}", header_path.display()))?;
    let address: Address = address
        .parse()
        .map_err(|e| format!("address {address:?}: {e}"))?;
    let proof: StateProof =
        decode(&read_bytes(proof_path)?).map_err(|e| format!("{}: {e}", proof_path.display()))?;

    println!(
        "header {} at height {}, state root {}",
        header.hash(),
        header.height,
        header.state_root
    );
    let account = verify(&header.state_root, &key_of(&address), &proof)
        .map_err(|e| format!("proof rejected: {e}"))?;
    match account {
        Some(account) => {
            let immature = account
                .immature_total()
                .map_err(|e| format!("immature credits: {e}"))?;
            println!(
                "address {address}: balance {} (spendable), {} immature in {} coinbase credit(s), \
                 nonce {}",
                account.balance,
                immature,
                account.immature.len(),
                account.nonce
            );
        }
        None => println!("address {address}: no account (absence proven)"),
    }
    Ok(())
}

/// Builds a small state and a header over it, writes the files, and checks them.
fn demo(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let alice = Keypair::from_seed(&[1; 32]).public();
    let bob = Keypair::from_seed(&[2; 32]).public();
    let nobody = Keypair::from_seed(&[3; 32]).public();
    let miner = Keypair::from_seed(&[9; 32]);

    let mut alice_account = Account::new(Amount(1_500), 4);
    alice_account
        .add_immature(7, Amount(50))
        .map_err(|e| e.to_string())?;
    let mut tree = StateTree::new(MemoryStore::new());
    tree.apply(
        0,
        [(alice, alice_account), (bob, Account::new(Amount(20), 0))],
    )
    .map_err(|e| e.to_string())?;
    let state_root = tree.root().map_err(|e| e.to_string())?;

    let header = UnsignedHeader {
        version: spacetime::block::HEADER_VERSION,
        height: 8,
        parent: Hash([0x11; 32]),
        timestamp_ms: 1_700_000_000_000,
        epoch: 8,
        target: Target::MAX,
        challenge: Hash([0x22; 32]),
        proof: ProofOfSpace::default(),
        score: Hash::ZERO,
        miner: miner.public(),
        tx_root: Hash([0x33; 32]),
        state_root,
    }
    .sign(&miner)
    .map_err(|e| e.to_string())?;

    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, to_hex(bytes) + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok::<_, String>(path)
    };
    let header_path = write("header.hex", &encode(&header))?;
    for (name, address) in [("alice", alice), ("nobody", nobody)] {
        let proof = tree.prove(&address).map_err(|e| e.to_string())?;
        let bytes = encode(&proof);
        let proof_path = write(&format!("proof-{name}.hex"), &bytes)?;
        println!(
            "$ light_verify {} {address} {}   ({} proof bytes)",
            header_path.display(),
            proof_path.display(),
            bytes.len()
        );
        check(&header_path, &address.to_string(), &proof_path)?;
    }
    Ok(())
}
