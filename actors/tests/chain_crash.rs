//! Crash safety and the chain CLI: a real `spacetime chain import` process is killed (SIGKILL)
//! while it imports a 1,200-block chain; the database reopens with a consistent tip, nothing
//! half-applied and no block it reported as imported lost.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{assert_one_line_error, path_str, spacetime, stdout};
use spacetime::chain::{Chain, SoloMiner};
use spacetime::{Amount, Block, Genesis, Keypair, PublicKey, UnsignedTransfer};
use spacetime_actors::chain::blockfile::BlockFileWriter;
use spacetime_actors::node::CHAIN_DB_FILE;

const BLOCKS: u64 = 1_200;
const NOW: u64 = u64::MAX / 2;

/// Mines a dev chain of `n` blocks with transfers (the miner pays friends once its first
/// coinbase credits mature) and returns its blocks.
fn mine_chain(dir: &Path, n: u64) -> Vec<Block> {
    let genesis = Genesis::builtin("dev").unwrap();
    let maturity = genesis.config.consensus.coinbase_maturity;
    let chain_id = genesis.chain_id;
    let mut chain = Chain::open(&dir.join("miner.redb"), genesis).unwrap();
    let miner = SoloMiner::new(&chain.genesis().config.plot, Keypair::generate(), 1, 64);
    let mut blocks = Vec::new();
    let mut nonce = 0;
    for h in 1..=n {
        let mut transfers = Vec::new();
        if h > maturity + 1 && h % 3 == 0 {
            for i in 0..4u8 {
                transfers.push(
                    UnsignedTransfer {
                        from: miner.address(),
                        to: PublicKey([i + 1; 32]),
                        amount: Amount(1_000 + u64::from(i)),
                        fee: Amount(7),
                        nonce,
                        chain_id,
                    }
                    .sign(miner.key())
                    .unwrap(),
                );
                nonce += 1;
            }
        }
        let block = miner.mine_next(&chain, transfers).unwrap();
        chain.import(block.clone(), NOW).unwrap();
        blocks.push(block);
    }
    blocks
}

fn write_block_file(path: &Path, blocks: &[Block]) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = BlockFileWriter::new(std::io::BufWriter::new(f)).unwrap();
    for b in blocks {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
}

/// Starts an import and SIGKILLs it once it reported a height of `kill_after` or more (reports
/// come per committed batch, so the kill lands inside the next one); returns the
/// highest height it reported.
fn import_and_kill(data_dir: &Path, file: &Path, kill_after: u64) -> u64 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spacetime"))
        .args(["chain", "import", "--dev", "--data-dir"])
        .arg(data_dir)
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut reported = 0;
    for line in out.lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("imported height ") {
            reported = rest.split(' ').next().unwrap().parse().unwrap();
            // Lines come per committed batch (512 blocks at most): kill once the reported
            // height passes the mark, somewhere inside the next batch.
            if reported >= kill_after {
                child.kill().unwrap();
                break;
            }
        }
    }
    child.wait().unwrap();
    reported
}

/// The database is consistent with `blocks`: the tip is one of them, every main-chain block
/// up to it is the expected one, the state root matches the tip header (checked by `open`), and
/// the supply audit covers every height.
fn check_consistent(data_dir: &Path, blocks: &[Block]) -> u64 {
    let chain = Chain::open(
        &data_dir.join(CHAIN_DB_FILE),
        Genesis::builtin("dev").unwrap(),
    )
    .expect("the database reopens after the kill");
    let tip = chain.tip();
    assert!(tip.height <= blocks.len() as u64);
    if tip.height > 0 {
        assert_eq!(tip.hash, blocks[tip.height as usize - 1].hash());
    }
    for h in 1..=tip.height {
        let b = chain.block_at(h).unwrap().expect("main block present");
        assert_eq!(b, blocks[h as usize - 1]);
        for (pos, tx) in b.transfers.iter().enumerate() {
            assert_eq!(
                chain.tx_location(&tx.id()).unwrap(),
                Some((b.hash(), pos as u32 + 1))
            );
        }
    }
    assert!(chain.block_at(tip.height + 1).unwrap().is_none());
    let audit = chain.supply_audit(0, u64::MAX).unwrap();
    assert_eq!(audit.len() as u64, tip.height + 1);
    assert!(audit.iter().all(|r| r.shortfall() == 0));
    tip.height
}

#[test]
fn killed_import_reopens_consistent_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = mine_chain(dir.path(), BLOCKS);
    let file = dir.path().join("blocks.bin");
    write_block_file(&file, &blocks);
    let data = dir.path().join("node");

    let mut last = 0;
    for kill_after in [150, 600, 900] {
        let reported = import_and_kill(&data, &file, kill_after);
        assert!(
            reported > last,
            "import made progress ({reported} after {last})"
        );
        let height = check_consistent(&data, &blocks);
        assert!(
            height >= reported,
            "block {reported} was reported imported but the tip is {height}"
        );
        last = height;
    }
    // Resume to the end: the blocks already stored count as known.
    let o = spacetime(&[
        "chain",
        "import",
        "--dev",
        "--data-dir",
        path_str(&data),
        path_str(&file),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(
        stdout(&o).contains(&format!("tip height {BLOCKS}")),
        "{}",
        stdout(&o)
    );
    assert_eq!(check_consistent(&data, &blocks), BLOCKS);

    // The supply audit and the tip through the CLI.
    let o = spacetime(&[
        "chain",
        "supply",
        "--dev",
        "--data-dir",
        path_str(&data),
        "--step",
        "500",
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let text = stdout(&o);
    assert!(text.contains(&format!("at height {BLOCKS}:")), "{text}");
    assert!(
        text.contains("difference 0 (0 of 1201 heights differ)"),
        "{text}"
    );
    let o = spacetime(&["chain", "tip", "--dev", "--data-dir", path_str(&data)]);
    assert!(stdout(&o).contains(&blocks[BLOCKS as usize - 1].hash().to_string()));
    let o = spacetime(&["chain", "check", "--dev", "--data-dir", path_str(&data)]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(stdout(&o).contains("result     sound"), "{}", stdout(&o));
    damaged_pages_never_panic(&data, dir.path());
    let friend = PublicKey([1; 32]).to_string();
    let o = spacetime(&[
        "chain",
        "account",
        "--dev",
        "--data-dir",
        path_str(&data),
        &friend,
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(stdout(&o).contains("mature"), "{}", stdout(&o));

    // Export and import into a fresh directory give the same tip.
    let export = dir.path().join("export.bin");
    let o = spacetime(&[
        "chain",
        "export",
        "--dev",
        "--data-dir",
        path_str(&data),
        path_str(&export),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert_eq!(
        std::fs::read(&export).unwrap(),
        std::fs::read(&file).unwrap()
    );
}

#[test]
fn chain_commands_refuse_bad_input_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"not a block file at all").unwrap();
    let data = dir.path().join("node");
    let o = spacetime(&[
        "chain",
        "import",
        "--dev",
        "--data-dir",
        path_str(&data),
        path_str(&junk),
    ]);
    assert_one_line_error(&o, "not a block file");
    // A database of another network.
    let o = spacetime(&[
        "chain",
        "tip",
        "--network",
        "testnet",
        "--data-dir",
        path_str(&data),
    ]);
    assert_one_line_error(&o, "belongs to network");
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join(CHAIN_DB_FILE), vec![0x55; 10_000]).unwrap();
    let o = spacetime(&["chain", "tip", "--dev", "--data-dir", path_str(&bad)]);
    assert_one_line_error(&o, "damaged");
}

/// Random bytes over one page at a time of a copy of the database: `chain tip`, `chain check`
/// and `chain export` end with a one-line error or an answer, never a panic (exit 101).
fn damaged_pages_never_panic(data: &Path, scratch: &Path) {
    let bytes = std::fs::read(data.join(CHAIN_DB_FILE)).unwrap();
    let copy = scratch.join("damaged");
    std::fs::create_dir_all(&copy).unwrap();
    let export = scratch.join("damaged-export.bin");
    let pages = bytes.len().div_ceil(4096);
    let mut refused = 0;
    for page in (0..pages).step_by((pages / 12).max(1)) {
        let mut damaged = bytes.clone();
        let end = ((page + 1) * 4096).min(damaged.len());
        let mut x = page as u32 ^ 0x9e37_79b9;
        for b in &mut damaged[page * 4096..end] {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        std::fs::write(copy.join(CHAIN_DB_FILE), &damaged).unwrap();
        for cmd in ["tip", "check", "export"] {
            let mut args = vec!["chain", cmd, "--dev", "--data-dir", path_str(&copy)];
            if cmd == "export" {
                args.push(path_str(&export));
            }
            let o = spacetime(&args);
            let err = common::stderr(&o);
            assert_ne!(
                o.status.code(),
                Some(101),
                "page {page}: chain {cmd} panicked: {err}"
            );
            assert!(!err.contains("panicked"), "page {page}: chain {cmd}: {err}");
            if !o.status.success() {
                assert_one_line_error(&o, "chain database");
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "no damaged page was noticed");
}
