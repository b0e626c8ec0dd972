//! Header-only entries, batched imports and the read handle, on real redb files.

use super::tests::{NOW, dev, node};
use super::*;
use crate::Keypair;

fn verified(chain: &Chain, blocks: &[Block]) -> VerifiedHeaders {
    let headers = blocks.iter().map(|b| b.header.clone()).collect();
    VerifiedHeaders::verify(&chain.genesis().config, headers).unwrap()
}

fn empty_chain() -> (tempfile::TempDir, Chain) {
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::open(&dir.path().join("chain.redb"), dev()).unwrap();
    (dir, chain)
}

#[test]
fn headers_are_stored_first_then_bodies_connect_in_order() {
    let mut source = node();
    let blocks = source.mine(40);
    let (dir, mut chain) = empty_chain();
    let mut pending = PendingHeaders::default();
    let out = chain
        .import_headers(&mut pending, verified(&chain, &blocks), NOW)
        .unwrap();
    let last = blocks.last().unwrap();
    assert_eq!(
        out,
        HeadersOutcome::Stored {
            last: HeaderRef {
                hash: last.hash(),
                height: 40,
                work: source.chain.tip().work
            },
            count: 40
        }
    );
    assert_eq!(chain.tip().height, 0, "no body yet");
    assert_eq!(chain.best_header().height, 40);
    assert_eq!(chain.header_only_count(), 40);
    let missing = chain.missing_bodies(1024);
    assert_eq!(missing.len(), 40);
    assert_eq!(missing[0], (blocks[0].hash(), 1));
    assert_eq!(chain.missing_bodies(5).len(), 5);
    // The locator follows the best headers.
    assert_eq!(chain.header_locator()[0], last.hash());
    // Known headers again: nothing new.
    let again = chain
        .import_headers(&mut pending, verified(&chain, &blocks[..10]), NOW)
        .unwrap();
    assert!(matches!(again, HeadersOutcome::Stored { count: 0, .. }));
    // Header-only entries survive a restart.
    let path = chain.path().to_path_buf();
    drop(chain);
    let mut chain = Chain::open(&path, dev()).unwrap();
    assert_eq!(chain.best_header().height, 40);
    // Bodies: a batch of 30, then one alone.
    let out = chain.import_blocks(blocks[..30].to_vec(), NOW);
    assert_eq!(out.batches, 1);
    assert!(out.results.iter().all(|(_, r)| r.is_ok()));
    assert_eq!(chain.tip().height, 30);
    chain.import(blocks[30].clone(), NOW).unwrap();
    let out = chain.import_blocks(blocks[31..].to_vec(), NOW);
    assert_eq!(out.results.len(), 9);
    assert_eq!(chain.tip().hash, last.hash());
    assert_eq!(chain.header_only_count(), 0);
    assert!(chain.missing_bodies(10).is_empty());
    // Synced, the header locator is the main chain's.
    assert_eq!(chain.header_locator(), chain.locator());
    drop(dir);
}

#[test]
fn one_bad_header_refuses_the_whole_batch() {
    let mut source = node();
    let blocks = source.mine(12);
    let (_dir, mut chain) = empty_chain();
    let mut headers: Vec<BlockHeader> = blocks.iter().map(|b| b.header.clone()).collect();
    // A wrong target passes the context-free checks only if re-signed; the chain check catches it.
    let key = Keypair::generate();
    let mut bad = headers[7].unsigned.clone();
    bad.miner = key.public();
    headers[7] = bad.sign(&key).unwrap();
    let err = VerifiedHeaders::verify(&chain.genesis().config, headers.clone()).unwrap_err();
    assert!(matches!(err, HeadersError::Invalid { .. }), "{err:?}");
    // A context rule (timestamp order) broken by a re-signed header with a valid proof.
    let mut pending = PendingHeaders::default();
    let mut skip = blocks.clone();
    skip.remove(5);
    let err = chain
        .import_headers(&mut pending, verified(&chain, &skip), NOW)
        .unwrap_err();
    assert!(
        matches!(err, HeadersError::NotConnecting { index: 5, .. }),
        "{err:?}"
    );
    assert_eq!(chain.best_header().height, 0, "nothing stored");
    assert_eq!(chain.header_only_count(), 0);
    // Headers whose first parent is unknown.
    let err = chain
        .import_headers(&mut pending, verified(&chain, &blocks[3..]), NOW)
        .unwrap_err();
    assert!(matches!(err, HeadersError::NotConnecting { index: 0, .. }));
}

#[test]
fn headers_from_the_future_are_refused() {
    let mut source = node();
    let blocks = source.mine(3);
    let (_dir, mut chain) = empty_chain();
    let mut pending = PendingHeaders::default();
    let err = chain
        .import_headers(&mut pending, verified(&chain, &blocks), 0)
        .unwrap_err();
    assert!(
        matches!(
            err,
            HeadersError::Invalid {
                reason: InvalidBlock::TimestampTooFarAhead { .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn low_work_headers_wait_in_memory_and_are_bounded() {
    // Our chain: 30 blocks. A fork from height 5 needs more than 25 blocks to beat it.
    let mut ours = node();
    let main = ours.mine(30);
    let mut other = node();
    for b in &main[..5] {
        other.chain.import(b.clone(), NOW).unwrap();
    }
    let fork = other.mine(40);
    let mut pending = PendingHeaders::with_limit(100);
    let out = ours
        .chain
        .import_headers(&mut pending, verified(&ours.chain, &fork[..10]), NOW)
        .unwrap();
    assert!(
        matches!(out, HeadersOutcome::Pending { count: 10, .. }),
        "{out:?}"
    );
    assert_eq!(pending.len(), 10);
    assert_eq!(
        ours.chain.header_only_count(),
        0,
        "low-work headers are not stored"
    );
    // The continuation connects to the pending chain; once its work beats ours it is stored.
    let out = ours
        .chain
        .import_headers(&mut pending, verified(&ours.chain, &fork[10..]), NOW)
        .unwrap();
    assert!(
        matches!(out, HeadersOutcome::Stored { count: 40, .. }),
        "{out:?}"
    );
    assert!(pending.is_empty());
    assert_eq!(ours.chain.best_header().hash, fork[39].hash());
    // Bodies of the heavier branch reorganise the chain through the single path.
    let missing = ours.chain.missing_bodies(100);
    assert_eq!(missing.len(), 40);
    assert_eq!(missing[0].1, 6);
    let out = ours.chain.import_blocks(fork.clone(), NOW);
    assert!(
        out.results.iter().all(|(_, r)| r.is_ok()),
        "{:?}",
        out.results
    );
    assert_eq!(ours.chain.tip().hash, fork[39].hash());

    // A bound of 8 pending headers: a longer low-work chain is refused and dropped.
    let mut third = node();
    for b in &main[..5] {
        third.chain.import(b.clone(), NOW).unwrap();
    }
    let weak = third.mine(12);
    let mut small = PendingHeaders::with_limit(8);
    let mut fresh = node();
    for b in &main {
        fresh.chain.import(b.clone(), NOW).unwrap();
    }
    let err = fresh
        .chain
        .import_headers(&mut small, verified(&fresh.chain, &weak), NOW)
        .unwrap_err();
    assert!(
        matches!(err, HeadersError::TooManyPending { limit: 8 }),
        "{err:?}"
    );
    assert!(small.is_empty());
}

#[test]
fn header_storage_ahead_of_bodies_is_bounded() {
    let mut source = node();
    let blocks = source.mine(20);
    let (_dir, mut chain) = empty_chain();
    chain.set_max_headers_ahead(15);
    let mut pending = PendingHeaders::default();
    let err = chain
        .import_headers(&mut pending, verified(&chain, &blocks), NOW)
        .unwrap_err();
    assert!(matches!(err, HeadersError::Full { limit: 15 }));
    chain
        .import_headers(&mut pending, verified(&chain, &blocks[..15]), NOW)
        .unwrap();
    chain.import_blocks(blocks[..10].to_vec(), NOW);
    chain
        .import_headers(&mut pending, verified(&chain, &blocks[15..]), NOW)
        .unwrap();
    assert_eq!(chain.best_header().height, 20);
}

#[test]
fn a_body_that_does_not_match_its_header_is_refused_and_the_header_kept() {
    let mut source = node();
    let blocks = source.mine(3);
    let (_dir, mut chain) = empty_chain();
    let mut pending = PendingHeaders::default();
    chain
        .import_headers(&mut pending, verified(&chain, &blocks), NOW)
        .unwrap();
    let mut wrong = blocks[0].clone();
    wrong.coinbase.extra_data = crate::BoundedBytes::try_from_slice(b"lie").unwrap();
    match chain.import(wrong.clone(), NOW) {
        Err(ImportError::BodyMismatch { hash, .. }) => assert_eq!(hash, blocks[0].hash()),
        other => panic!("expected a mismatch, got {other:?}"),
    }
    // In a batch too: nothing of the run commits, the mismatch is reported.
    let out = chain.import_blocks(vec![wrong, blocks[1].clone(), blocks[2].clone()], NOW);
    assert!(matches!(
        out.results[0].1,
        Err(ImportError::BodyMismatch { .. })
    ));
    assert_eq!(chain.tip().height, 0);
    assert_eq!(chain.missing_bodies(10).len(), 3, "the header stays good");
    let out = chain.import_blocks(blocks.clone(), NOW);
    assert!(out.results.iter().all(|(_, r)| r.is_ok()));
    assert_eq!(chain.tip().height, 3);
}

#[test]
fn a_run_with_an_invalid_block_keeps_the_blocks_before_it() {
    let mut source = node();
    let mut blocks = source.mine(6);
    let (_dir, mut chain) = empty_chain();
    // Block 4 gets a wrong state root: a state rule, found only when it is applied.
    let key = source.miner.key().clone();
    blocks[3].header.unsigned.state_root = crate::Hash([7; 32]);
    blocks[3].header = blocks[3].header.unsigned.clone().sign(&key).unwrap();
    let out = chain.import_blocks(blocks.clone(), NOW);
    assert_eq!(out.batches, 0, "the run was retried block by block");
    assert_eq!(chain.tip().height, 3);
    assert!(matches!(out.results[3].1, Err(ImportError::Invalid { .. })));
}

#[test]
fn the_reader_serves_committed_blocks_beside_the_writer() {
    let mut source = node();
    let blocks = source.mine(25);
    let reader = source.chain.reader();
    assert_eq!(reader.tip().unwrap(), source.chain.tip());
    let headers = reader.headers_after(&[blocks[9].hash()], None, 5).unwrap();
    assert_eq!(headers.len(), 5);
    assert_eq!(headers[0], blocks[10].header);
    assert_eq!(
        reader.headers_after(&[Hash([9; 32])], None, 3).unwrap()[0],
        blocks[0].header
    );
    let stop = blocks[12].hash();
    assert_eq!(
        reader
            .headers_after(&[blocks[9].hash()], Some(&stop), 100)
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        source
            .chain
            .headers_after(&[blocks[20].hash()], None, 2000)
            .unwrap(),
        reader
            .headers_after(&[blocks[20].hash()], None, 2000)
            .unwrap()
    );
    let got = reader.blocks(&[blocks[3].hash(), Hash([1; 32])]).unwrap();
    assert_eq!(got[0].as_ref(), Some(&blocks[3]));
    assert!(got[1].is_none());
    // Reads from another thread while this one writes.
    let handle = std::thread::spawn(move || {
        (0..50).all(|_| reader.tip().map(|t| t.height >= 25).unwrap_or(false))
    });
    source.mine(5);
    assert!(handle.join().unwrap());
}

#[test]
fn a_version_one_database_is_upgraded_in_place() {
    let (dir, chain) = empty_chain();
    let path = chain.path().to_path_buf();
    drop(chain);
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(store::META)
            .unwrap()
            .insert(store::META_SCHEMA, 1u32.to_le_bytes().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let chain = Chain::open(&path, dev()).unwrap();
    drop(chain);
    let db = redb::Database::open(&path).unwrap();
    let txn = db.begin_read().unwrap();
    let v = txn
        .open_table(store::META)
        .unwrap()
        .get(store::META_SCHEMA)
        .unwrap()
        .unwrap()
        .value()
        .to_vec();
    assert_eq!(v, SCHEMA_VERSION.to_le_bytes());
    drop(dir);
}

#[test]
fn batches_verify_signatures_beside_the_state_and_refuse_a_bad_one() {
    let mut source = node();
    let maturity = source.chain.genesis().config.consensus.coinbase_maturity as usize;
    let mut blocks = source.mine(maturity + 1);
    let to = Keypair::generate().public();
    for i in 0..4u64 {
        let transfers = (0..70).map(|n| source.pay(to, 1, 1, i * 70 + n)).collect();
        blocks.push(source.mine_with(transfers));
    }
    let (_dir, mut chain) = empty_chain();
    chain.set_parallel_signatures(true);
    // A forged signature in the second block with transfers.
    let mut forged = blocks.clone();
    let k = maturity + 2;
    let other = source.pay(to, 1, 1, 70);
    forged[k].transfers = {
        let mut v: Vec<_> = forged[k].transfers.iter().cloned().collect();
        v[3].signature = other.signature;
        crate::BoundedVec::try_from_vec(v).unwrap()
    };
    forged[k].header.unsigned.tx_root = forged[k].compute_tx_root();
    forged[k].header = forged[k]
        .header
        .unsigned
        .clone()
        .sign(source.miner.key())
        .unwrap();
    let out = chain.import_blocks(forged, NOW);
    assert!(
        matches!(
            out.results[k].1,
            Err(ImportError::Invalid {
                reason: InvalidBlock::TransferSignature { .. },
                ..
            })
        ),
        "{:?}",
        out.results[k].1
    );
    assert_eq!(chain.tip().height, k as u64);
    let (_dir2, mut clean) = empty_chain();
    clean.set_parallel_signatures(true);
    let out = clean.import_blocks(blocks.clone(), NOW);
    assert!(out.results.iter().all(|(_, r)| r.is_ok()));
    assert_eq!(out.batches, 1, "the whole chain committed as one run");
    assert_eq!(clean.tip(), source.chain.tip());
}

#[test]
fn precheck_passes_good_headers_and_names_the_rest() {
    let mut source = node();
    let blocks = source.mine(3);
    let (_dir, mut chain) = empty_chain();
    let first = &blocks[0];
    let Precheck::Valid { work, better } =
        chain.precheck(&first.header, &first.hash(), NOW).unwrap()
    else {
        panic!("a good child of genesis passes");
    };
    assert!(better, "it beats genesis");
    assert_eq!(work, source.chain.index().get(&first.hash()).unwrap().work);
    // Nothing was stored by the check.
    assert!(chain.index().get(&first.hash()).is_none());
    // A block two ahead has no parent here yet.
    let third = &blocks[2];
    assert_eq!(
        chain.precheck(&third.header, &third.hash(), NOW),
        Ok(Precheck::ParentUnknown)
    );
    // A bad signature fails the cheap checks.
    let mut forged = first.clone();
    forged.header.signature = crate::Signature([7; 64]);
    assert_eq!(
        chain.precheck(&forged.header, &forged.hash(), NOW),
        Err(InvalidBlock::HeaderSignature)
    );
    // So does a badly signed orphan, though its other rules wait for its parent.
    let mut orphan = third.clone();
    orphan.header.signature = crate::Signature([7; 64]);
    assert_eq!(
        chain.precheck(&orphan.header, &orphan.hash(), NOW),
        Err(InvalidBlock::HeaderSignature)
    );
    // Once stored with its body, the block is known.
    chain.import(first.clone(), NOW).unwrap();
    assert_eq!(
        chain.precheck(&first.header, &first.hash(), NOW),
        Ok(Precheck::Known)
    );
    // A header-only block passes on the strength of its stored header.
    let mut pending = PendingHeaders::default();
    chain
        .import_headers(&mut pending, verified(&chain, &blocks[1..2]), NOW)
        .unwrap();
    let second = &blocks[1];
    assert!(matches!(
        chain.precheck(&second.header, &second.hash(), NOW),
        Ok(Precheck::Valid { better: true, .. })
    ));
    // Another miner's block at height 1 passes but would not become the tip (the chain here
    // is at height 2): not worth relaying.
    chain.import(second.clone(), NOW).unwrap();
    let mut other = node();
    let rival = other.mine(1).remove(0);
    assert_ne!(rival.hash(), first.hash());
    assert!(matches!(
        chain.precheck(&rival.header, &rival.hash(), NOW),
        Ok(Precheck::Valid { better: false, .. })
    ));
}
