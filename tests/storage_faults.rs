//! The chain database under faults: damaged pages never panic through the chain's API, and a
//! write failure (disk full) loses nothing committed and heals by reopening.

use std::panic::{AssertUnwindSafe, catch_unwind};

use spacetime::chain::{
    Chain, ChainError, ChainStorage, ImportError, MemoryDisk, SoloMiner, StorageFault,
};
use spacetime::{Genesis, Keypair};

const NOW: u64 = u64::MAX / 2;
const PAGE: usize = 4096;

fn dev() -> Genesis {
    Genesis::builtin("dev").unwrap()
}

fn miner(genesis: &Genesis) -> SoloMiner {
    SoloMiner::new(&genesis.config.plot, Keypair::from_seed(&[3; 32]), 1, 64)
}

/// Reads everything a node reads; an error is fine, a panic is not.
fn use_chain(chain: &mut Chain, miner: &SoloMiner) -> Result<(), String> {
    for h in 0..=chain.height() {
        chain.block_at(h).map_err(|e| e.to_string())?;
    }
    chain.account(&miner.address()).map_err(|e| e.to_string())?;
    chain
        .supply_audit(0, chain.height())
        .map_err(|e| e.to_string())?;
    let reader = chain.reader();
    reader.tip().map_err(|e| e.to_string())?;
    reader
        .headers_after(&[], None, 2_000)
        .map_err(|e| e.to_string())?;
    let block = miner
        .mine_next(chain, Vec::new())
        .map_err(|e| e.to_string())?;
    chain.import(block, NOW).map_err(|e| e.to_string())?;
    Ok(())
}

#[test]
fn no_damaged_page_panics_through_the_chain_api() {
    let genesis = dev();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let miner = miner(&genesis);
    {
        let mut chain = Chain::open(&path, genesis.clone()).unwrap();
        for _ in 0..30 {
            let b = miner.mine_next(&chain, Vec::new()).unwrap();
            chain.import(b, NOW).unwrap();
        }
    }
    let bytes = std::fs::read(&path).unwrap();
    let damaged = dir.path().join("damaged.redb");
    let (mut refused, mut failed, mut fine) = (0, 0, 0);
    for page in 0..bytes.len().div_ceil(PAGE) {
        let mut copy = bytes.clone();
        let end = ((page + 1) * PAGE).min(copy.len());
        for (i, b) in copy[page * PAGE..end].iter_mut().enumerate() {
            // Deterministic garbage, different on every page.
            *b = (i as u8).wrapping_mul(151).wrapping_add(page as u8) ^ 0x5a;
        }
        std::fs::write(&damaged, &copy).unwrap();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            match Chain::open(&damaged, genesis.clone()) {
                Err(e) => {
                    assert_eq!(e.fault(), StorageFault::Damage, "page {page}: {e}");
                    refused += 1;
                }
                Ok(mut chain) => match use_chain(&mut chain, &miner) {
                    Ok(()) => fine += 1,
                    Err(_) => failed += 1,
                },
            }
        }));
        assert!(
            outcome.is_ok(),
            "page {page}: a panic escaped the chain API"
        );
    }
    assert!(refused > 0, "some damage must be found at open");
    assert!(
        refused + failed + fine == bytes.len().div_ceil(PAGE),
        "every page ends somewhere"
    );
}

#[test]
fn a_storage_engine_panic_is_a_typed_error_and_stops_the_handle() {
    // The header page of a redb file with a valid magic number but nonsense after it: the
    // opens that trust it fail with an error naming the file.
    let genesis = dev();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    drop(Chain::open(&path, genesis.clone()).unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    for b in &mut bytes[64..PAGE] {
        *b = 0xff;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = Chain::open(&path, genesis).unwrap_err();
    assert_eq!(err.fault(), StorageFault::Damage);
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_full_disk_fails_the_write_keeps_what_was_committed_and_heals_by_reopening() {
    let genesis = dev();
    let disk = MemoryDisk::new("node-0");
    let miner = miner(&genesis);
    let mut chain = Chain::open_on(ChainStorage::Memory(disk.clone()), genesis).unwrap();
    for _ in 0..5 {
        let b = miner.mine_next(&chain, Vec::new()).unwrap();
        chain.import(b, NOW).unwrap();
    }
    let committed = chain.tip();
    let reader = chain.reader();
    let sixth = miner.mine_next(&chain, Vec::new()).unwrap();

    disk.set_full(true);
    let Err(ImportError::Chain(e)) = chain.import(sixth.clone(), NOW) else {
        panic!("a write on a full disk must fail");
    };
    assert_eq!(e.fault(), StorageFault::Write, "{e}");
    assert_eq!(chain.tip(), committed, "the failed block is not the tip");

    // Still full: the reopen fails and leaves the chain closed; readers are told.
    let err = chain.reopen().unwrap_err();
    assert_eq!(err.fault(), StorageFault::Write, "{err}");
    assert!(chain.is_closed());
    assert_eq!(
        chain.tip(),
        committed,
        "the tip is still known while closed"
    );
    let err = reader.tip().unwrap_err();
    assert!(matches!(err, ChainError::Unavailable { .. }), "{err}");
    let err = chain.block_at(1).unwrap_err();
    assert!(matches!(err, ChainError::Unavailable { .. }), "{err}");

    // Space again: the reopen finds every committed block, and the failed one imports.
    disk.set_full(false);
    chain.reopen().unwrap();
    assert_eq!(chain.tip(), committed, "nothing committed was lost");
    assert_eq!(
        reader.tip().unwrap(),
        committed,
        "readers follow the reopen"
    );
    chain.import(sixth, NOW).unwrap();
    assert_eq!(chain.height(), 6);
    assert_eq!(reader.tip().unwrap().height, 6);
}

#[test]
fn chain_check_finds_records_that_contradict_each_other() {
    let genesis = dev();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let miner = miner(&genesis);
    let third = {
        let mut chain = Chain::open(&path, genesis.clone()).unwrap();
        for _ in 0..5 {
            let b = miner.mine_next(&chain, Vec::new()).unwrap();
            chain.import(b, NOW).unwrap();
        }
        let report = chain.check().unwrap();
        assert!(report.is_sound(), "{:?}", report.listed);
        assert_eq!(report.main_blocks, 6);
        assert_eq!(report.indexed_txs, 6, "one coinbase per block");
        chain.hash_at(3).unwrap()
    };
    // Pages that check, content that does not: a body that is no body, a lost index row.
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let bodies: redb::TableDefinition<[u8; 32], &[u8]> =
                redb::TableDefinition::new("chain_bodies");
            txn.open_table(bodies)
                .unwrap()
                .insert(third.0, [1u8, 2, 3].as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let chain = Chain::open(&path, genesis).unwrap();
    let report = chain.check().unwrap();
    assert!(!report.is_sound());
    assert_eq!(report.problems, 1, "{:?}", report.listed);
    assert!(
        report.listed[0].contains("does not decode"),
        "{:?}",
        report.listed
    );
    // The API still answers with a typed error for that block, not a panic.
    assert!(chain.block_at(3).is_err());
}

/// The upstream reproduction: a 72 KiB redb 4.6 file (one table `t: u64 -> &[u8]`, 200 rows of
/// 100 bytes, written by `Database::create` and one commit) with its 7th page zeroed. A plain
/// `ReadOnlyDatabase::open` and a table scan panic in redb (`entered unreachable code`,
/// `btree_cursor.rs:167`) instead of returning `Corrupted`. Through the guard it is an error.
#[test]
fn the_upstream_redb_panic_file_is_an_error_through_the_guard() {
    use redb::{ReadableDatabase, ReadableTable, TableDefinition};
    const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/redb-4.6-page6-zeroed.redb"
    );
    let guard = spacetime::chain::Guard::new(path);
    let r: Result<usize, ChainError> = guard.run(|| {
        let db = redb::ReadOnlyDatabase::open(path)?;
        let txn = db.begin_read()?;
        let table = txn.open_table(T)?;
        let mut n = 0;
        for row in table.iter()? {
            n += row?.1.value().len();
        }
        Ok(n)
    });
    let err = r.expect_err("the damaged file does not read back whole");
    assert_eq!(err.fault(), StorageFault::Damage, "{err}");
    assert!(err.to_string().contains(path), "{err}");
}
