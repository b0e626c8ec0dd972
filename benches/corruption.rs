//! Page-corruption sweep: what the node does with a chain database in which one 4 KiB page
//! holds random bytes, for every page of a 1,000-block database.
//!
//! For each page the database is copied, the page overwritten with seeded random bytes, and the
//! copy used as the node would: [`Chain::open`] (redb's integrity check and the chain's own
//! checks), then every block read back, the miner's account and the supply audit queried, and
//! one more block imported. Each page ends in one of:
//! - `refused at open`: a typed error at open (the node does not start; `chain check` names it);
//! - `error in use`: opened, then a query or the import returned a typed error;
//! - `repaired`: the integrity check rolled the file back to its last good commit (reported
//!   by [`spacetime::chain::OpenReport`]) and everything read back agrees with that commit;
//! - `unaffected`: everything read back is exactly what the undamaged database holds (the page
//!   was free or held data no longer referenced);
//! - `wrong answer`: a read returned something else without an error (goal 0);
//! - `panic`: a panic escaped the storage boundary (goal 0).
//!
//! It also times redb's integrity check on the undamaged file, the cost every open pays.
//!
//! Run with `cargo bench --bench corruption` (`-- --smoke` for a 100-block database and every
//! 8th page, as CI does; `-- --keep DIR` to keep each file of the first page per outcome).

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::Instant;

use rand_core::{RngCore, SeedableRng};
use spacetime::chain::{Chain, ChainError, SoloMiner};
use spacetime::{Block, Genesis, Height, Keypair};

const PAGE: usize = 4096;
const NOW: u64 = u64::MAX / 2;

/// What one damaged copy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    RefusedAtOpen,
    ErrorInUse,
    Repaired,
    Unaffected,
    WrongAnswer,
    Panic,
}

/// What the undamaged database answers.
#[derive(Debug, PartialEq)]
struct Answers {
    height: Height,
    blocks: Vec<Block>,
    account: (u64, u64, u64),
    supply: Vec<u64>,
}

fn answers(chain: &Chain, miner: &spacetime::Address) -> Result<Answers, ChainError> {
    let height = chain.height();
    let mut blocks = Vec::with_capacity(height as usize);
    for h in 1..=height {
        let block = chain
            .block_at(h)?
            .ok_or_else(|| ChainError::Inconsistent(format!("no block at {h}")))?;
        blocks.push(block);
    }
    let a = chain.account(miner)?;
    let supply = chain
        .supply_audit(0, height)?
        .iter()
        .map(|r| r.issued.0)
        .collect();
    Ok(Answers {
        height,
        blocks,
        account: (a.mature.0, a.immature.0, a.nonce),
        supply,
    })
}

fn probe(
    path: &Path,
    genesis: &Genesis,
    miner: &spacetime::Address,
    pristine: &Answers,
    next: &Block,
) -> (Outcome, String) {
    let mut chain = match Chain::open(path, genesis.clone()) {
        Ok(c) => c,
        Err(e) => return (Outcome::RefusedAtOpen, e.to_string()),
    };
    let repaired = chain.opened().repaired;
    let got = match answers(&chain, miner) {
        Ok(a) => a,
        Err(e) => return (Outcome::ErrorInUse, e.to_string()),
    };
    if repaired {
        // Rolled back to an earlier commit: what it holds must be a prefix of the truth.
        let prefix = got.height <= pristine.height
            && got.blocks[..] == pristine.blocks[..got.height as usize]
            && got.supply[..] == pristine.supply[..=got.height as usize];
        if !prefix {
            return (
                Outcome::WrongAnswer,
                "repaired to a chain that is not a prefix".into(),
            );
        }
        return (
            Outcome::Repaired,
            format!("rolled back to height {}", got.height),
        );
    }
    if got != *pristine {
        return (
            Outcome::WrongAnswer,
            "reads differ from the undamaged database".into(),
        );
    }
    match chain.import(next.clone(), NOW) {
        Ok(_) => (Outcome::Unaffected, String::new()),
        Err(e) => (Outcome::ErrorInUse, e.to_string()),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let keep = args
        .iter()
        .position(|a| a == "--keep")
        .and_then(|i| args.get(i + 1))
        .map(std::path::PathBuf::from);
    let (n_blocks, stride) = if smoke { (100, 8) } else { (1_000, 1) };

    let genesis = Genesis::builtin("dev").expect("dev genesis");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("chain.redb");
    let miner = SoloMiner::new(&genesis.config.plot, Keypair::from_seed(&[7; 32]), 1, 64);
    let address = miner.address();
    let started = Instant::now();
    let next = {
        let mut chain = Chain::open(&path, genesis.clone()).expect("open");
        for _ in 0..n_blocks {
            let b = miner.mine_next(&chain, Vec::new()).expect("mine");
            chain.import(b, NOW).expect("import");
        }
        miner.mine_next(&chain, Vec::new()).expect("mine")
    };
    let pristine = {
        let chain = Chain::open(&path, genesis.clone()).expect("reopen");
        answers(&chain, &address).expect("undamaged answers")
    };
    let bytes = std::fs::read(&path).expect("read db");
    let pages = bytes.len().div_ceil(PAGE);
    println!(
        "database: {n_blocks} blocks, {} bytes, {pages} pages of {PAGE} bytes (built in {:.1} s)",
        bytes.len(),
        started.elapsed().as_secs_f64()
    );

    // The cost of the integrity check every open pays, beside a plain read of the file.
    let (open_ms, read_ms) = {
        let t = Instant::now();
        let chain = Chain::open(&path, genesis.clone()).expect("open");
        let open_ms = t.elapsed().as_secs_f64() * 1e3;
        drop(chain);
        let t = Instant::now();
        let n = std::fs::read(&path).expect("read").len();
        assert_eq!(n, bytes.len());
        (open_ms, t.elapsed().as_secs_f64() * 1e3)
    };
    println!(
        "open with integrity check: {open_ms:.1} ms; reading the file: {read_ms:.2} ms ({:.0}x)",
        open_ms / read_ms.max(1e-6)
    );

    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(32);
    let mut counts: BTreeMap<Outcome, usize> = BTreeMap::new();
    let mut examples: BTreeMap<Outcome, (usize, String)> = BTreeMap::new();
    let mut engine_panics = 0usize;
    let damaged = dir.path().join("damaged.redb");
    let sweep = Instant::now();
    for page in (0..pages).step_by(stride) {
        let mut copy = bytes.clone();
        let start = page * PAGE;
        let end = (start + PAGE).min(copy.len());
        rng.fill_bytes(&mut copy[start..end]);
        std::fs::write(&damaged, &copy).expect("write copy");
        let (outcome, detail) = catch_unwind(AssertUnwindSafe(|| {
            probe(&damaged, &genesis, &address, &pristine, &next)
        }))
        .unwrap_or_else(|_| (Outcome::Panic, "a panic escaped".into()));
        if detail.contains("storage engine failed") {
            engine_panics += 1;
            if engine_panics <= 3 {
                let short: String = detail.chars().take(300).collect();
                println!("page {page}: storage engine panic contained: {short}");
            }
            if let Some(keep) = &keep {
                std::fs::create_dir_all(keep).expect("keep dir");
                std::fs::write(keep.join(format!("engine-panic-page-{page}.redb")), &copy)
                    .expect("keep file");
            }
        }
        *counts.entry(outcome).or_default() += 1;
        if let std::collections::btree_map::Entry::Vacant(slot) = examples.entry(outcome) {
            if let Some(keep) = &keep {
                std::fs::create_dir_all(keep).expect("keep dir");
                let name = format!("{outcome:?}-page-{page}.redb");
                std::fs::write(keep.join(name), &copy).expect("keep file");
            }
            slot.insert((page, detail));
        }
    }
    let tried: usize = counts.values().sum();
    println!(
        "swept {tried} pages in {:.1} s",
        sweep.elapsed().as_secs_f64()
    );
    for (outcome, n) in &counts {
        let (page, detail) = &examples[outcome];
        let detail: String = detail.chars().take(220).collect();
        println!("{outcome:?}: {n}  (first: page {page}: {detail})");
    }
    println!("storage-engine panics contained at the boundary: {engine_panics}");
    let panics = counts.get(&Outcome::Panic).copied().unwrap_or(0);
    let wrong = counts.get(&Outcome::WrongAnswer).copied().unwrap_or(0);
    println!("panics: {panics} (goal 0); wrong answers: {wrong} (goal 0)");
    if panics + wrong > 0 {
        std::process::exit(1);
    }
}
