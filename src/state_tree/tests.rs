//! State tree tests: a naive full-depth reference, rollback, redb, and hostile proofs.

use std::collections::BTreeMap;

use proptest::prelude::*;
use redb::{Database, ReadableDatabase};

use super::*;
use crate::amount::Amount;
use crate::encoding::{BoundedBytes, BoundedVec, Canonical, DecodeError, decode, encode};
use crate::hash::{hash, hash_parts};

type Tree = StateTree<MemoryStore>;

fn account(balance: u64) -> Account {
    Account::new(Amount(balance), balance % 7)
}

fn key(i: u64) -> Hash {
    hash(b"test-key", &i.to_le_bytes())
}

/// `base` with bit `i` flipped.
fn flip(base: &Hash, i: usize) -> Hash {
    let mut k = *base;
    k.0[i / 8] ^= 0x80 >> (i % 8);
    k
}

/// The root of the full 256-level tree by its definition, level by level, with no
/// compression: written from the module documentation, independently of the code under test.
fn reference_root(state: &BTreeMap<Hash, Account>) -> Hash {
    fn subtree(items: &[(Hash, &Account)], depth: usize) -> Hash {
        match items {
            [] => Hash::ZERO,
            [(k, a)] => {
                let v = hash(tags::SMT_VALUE, &encode(*a));
                hash_parts(tags::SMT_LEAF, &[&k.0, &v.0])
            }
            _ => {
                let bit_of = |k: &Hash| (k.0[depth / 8] >> (7 - depth % 8)) & 1;
                let (left, right): (Vec<_>, Vec<_>) =
                    items.iter().partition(|(k, _)| bit_of(k) == 0);
                let l = subtree(&left, depth + 1);
                let r = subtree(&right, depth + 1);
                hash_parts(tags::SMT_NODE, &[&l.0, &r.0])
            }
        }
    }
    let items: Vec<(Hash, &Account)> = state
        .iter()
        .filter(|(_, a)| !a.is_empty())
        .map(|(k, a)| (*k, a))
        .collect();
    subtree(&items, 0)
}

fn keyed(changes: &[(Hash, u64)]) -> Vec<(Hash, Account)> {
    changes.iter().map(|(k, b)| (*k, account(*b))).collect()
}

#[test]
fn empty_and_single_account_roots() {
    let mut tree = Tree::default();
    assert_eq!(tree.root().unwrap(), EMPTY);
    let proof = tree.prove_key(&key(1)).unwrap();
    assert_eq!(verify(&EMPTY, &key(1), &proof), Ok(None));
    let a = account(5);
    let root = tree.apply_keyed(0, vec![(key(1), a.clone())]).unwrap();
    assert_eq!(root, leaf_hash(&key(1), &value_hash(&a)));
    let proof = tree.prove_key(&key(1)).unwrap();
    assert_eq!(proof.path_len(), Ok(0));
    assert_eq!(verify(&root, &key(1), &proof), Ok(Some(a)));
    let proof = tree.prove_key(&key(2)).unwrap();
    assert!(matches!(proof.leaf, ProofLeaf::Other { .. }));
    assert_eq!(verify(&root, &key(2), &proof), Ok(None));
}

#[test]
fn insert_update_delete_match_reference() {
    let mut tree = Tree::default();
    let mut state = BTreeMap::new();
    let mut height = 0;
    let mut step = |tree: &mut Tree, changes: Vec<(Hash, Account)>| {
        for (k, a) in &changes {
            state.insert(*k, a.clone());
        }
        let root = tree.apply_keyed(height, changes).unwrap();
        height += 1;
        assert_eq!(root, reference_root(&state));
        root
    };
    step(
        &mut tree,
        keyed(&[(key(1), 10), (key(2), 20), (key(3), 30)]),
    );
    step(&mut tree, keyed(&[(key(2), 21)]));
    step(&mut tree, vec![(key(1), Account::default())]);
    step(&mut tree, vec![(key(9), Account::default())]);
    step(
        &mut tree,
        vec![(key(2), Account::default()), (key(3), Account::default())],
    );
    assert_eq!(tree.root().unwrap(), EMPTY);
    assert_eq!(tree.store().branch_count(), 0);
    step(&mut tree, keyed(&[(key(4), 1)]));
}

#[test]
fn stores_one_branch_per_extra_account() {
    let mut tree = Tree::default();
    let changes: Vec<_> = (0..1000).map(|i| (key(i), account(i + 1))).collect();
    tree.apply_keyed(0, changes).unwrap();
    assert_eq!(tree.store().leaf_count(), 1000);
    assert_eq!(tree.store().branch_count(), 999);
}

#[test]
fn last_change_of_a_key_wins_and_order_does_not_matter() {
    let mut a = Tree::default();
    a.apply_keyed(0, keyed(&[(key(1), 1), (key(2), 2), (key(1), 3)]))
        .unwrap();
    let mut b = Tree::default();
    b.apply_keyed(0, keyed(&[(key(2), 2), (key(1), 3)]))
        .unwrap();
    assert_eq!(a.root().unwrap(), b.root().unwrap());
    assert_eq!(a.get_key(&key(1)).unwrap(), Some(account(3)));
}

#[test]
fn compressed_edges_split_and_merge() {
    // Keys that share long prefixes: a chain of single-child levels above their branch.
    let base = key(7);
    let keys = [
        base,
        flip(&base, 255),
        flip(&base, 200),
        flip(&base, 3),
        flip(&base, 0),
    ];
    let mut tree = Tree::default();
    let mut state = BTreeMap::new();
    for (h, k) in keys.iter().enumerate() {
        state.insert(*k, account(h as u64 + 1));
        let root = tree
            .apply_keyed(h as u64, vec![(*k, account(h as u64 + 1))])
            .unwrap();
        assert_eq!(root, reference_root(&state), "insert {h}");
    }
    // Two keys that differ only in the last bit: a proof of the full 256 levels.
    let proof = tree.prove_key(&base).unwrap();
    assert_eq!(proof.path_len(), Ok(256));
    assert_eq!(
        verify(&tree.root().unwrap(), &base, &proof),
        Ok(Some(account(1)))
    );
    // Delete from the top down and from the bottom up.
    for (i, k) in [keys[4], keys[1], keys[2], keys[0]].iter().enumerate() {
        state.insert(*k, Account::default());
        let root = tree
            .apply_keyed(5 + i as u64, vec![(*k, Account::default())])
            .unwrap();
        assert_eq!(root, reference_root(&state), "delete {i}");
    }
    assert_eq!(tree.store().branch_count(), 0);
}

#[test]
fn heights_must_follow() {
    let mut tree = Tree::default();
    tree.apply_keyed(5, keyed(&[(key(1), 1)])).unwrap();
    assert!(matches!(
        tree.apply_keyed(7, keyed(&[(key(1), 2)])),
        Err(TreeError::HeightNotNext { current: 5, got: 7 })
    ));
    assert!(matches!(
        tree.apply_keyed(5, keyed(&[(key(1), 2)])),
        Err(TreeError::HeightNotNext { current: 5, got: 5 })
    ));
    tree.apply_keyed(6, keyed(&[(key(1), 2)])).unwrap();
}

/// Applies `blocks` from height 0 and returns the root after each.
fn apply_blocks<S: NodeStore>(
    tree: &mut StateTree<S>,
    blocks: &[Vec<(Hash, Account)>],
) -> Vec<Hash> {
    blocks
        .iter()
        .enumerate()
        .map(|(h, b)| tree.apply_keyed(h as u64, b.clone()).unwrap())
        .collect()
}

fn sample_blocks() -> Vec<Vec<(Hash, Account)>> {
    let mut blocks = vec![
        (0..200)
            .map(|i| (key(i), account(i + 1)))
            .collect::<Vec<_>>(),
    ];
    for h in 1..12u64 {
        let mut block = Vec::new();
        for i in 0..30 {
            let k = (h * 37 + i * 11) % 260;
            // A third of the changes delete, the rest insert or update.
            let a = if (h + i) % 3 == 0 {
                Account::default()
            } else {
                account(h * 1000 + i)
            };
            block.push((key(k), a));
        }
        blocks.push(block);
    }
    blocks
}

#[test]
fn rollback_restores_every_earlier_root_exactly() {
    let blocks = sample_blocks();
    let mut tree = Tree::default();
    let roots = apply_blocks(&mut tree, &blocks);
    let full = tree.store().clone();
    for target in (0..roots.len() as u64).rev() {
        let mut t = StateTree::new(full.clone());
        assert_eq!(t.rollback(target).unwrap(), roots[target as usize]);
        assert_eq!(t.root().unwrap(), roots[target as usize]);
        assert_eq!(t.height().unwrap(), Some(target));
        // The store is exactly the one built by applying blocks up to `target`.
        let mut fresh = Tree::default();
        apply_blocks(&mut fresh, &blocks[..=target as usize]);
        assert_eq!(t.store().branch_count(), fresh.store().branch_count());
        assert_eq!(t.store().leaf_count(), fresh.store().leaf_count());
        // And it keeps working: re-applying the same blocks gives the same roots.
        let again: Vec<Hash> = blocks[target as usize + 1..]
            .iter()
            .enumerate()
            .map(|(i, b)| t.apply_keyed(target + 1 + i as u64, b.clone()).unwrap())
            .collect();
        assert_eq!(&again[..], &roots[target as usize + 1..]);
    }
    assert!(matches!(
        tree.rollback(roots.len() as u64),
        Err(TreeError::RollbackOutOfRange { .. })
    ));
}

#[test]
fn prune_limits_rollback() {
    let blocks = sample_blocks();
    let mut tree = Tree::default();
    let roots = apply_blocks(&mut tree, &blocks);
    assert_eq!(tree.store().undo_count(), blocks.len() - 1);
    tree.prune(8).unwrap();
    assert_eq!(tree.store().undo_count(), blocks.len() - 1 - 8);
    assert!(matches!(
        tree.rollback(7),
        Err(TreeError::RollbackOutOfRange {
            target: 7,
            floor: 8,
            ..
        })
    ));
    // Pruning never moves backwards and never past the tip.
    tree.prune(3).unwrap();
    tree.prune(1_000).unwrap();
    assert_eq!(tree.meta().unwrap().map(|m| m.floor), Some(11));
    assert_eq!(tree.store().undo_count(), 0);
    let mut t = Tree::default();
    let _ = apply_blocks(&mut t, &blocks);
    t.prune(8).unwrap();
    assert_eq!(t.rollback(8).unwrap(), roots[8]);
    assert!(matches!(Tree::default().prune(3), Err(TreeError::NoState)));
}

#[test]
fn redb_store_matches_memory_and_rolls_back() {
    let blocks = sample_blocks();
    let mut mem = Tree::default();
    let roots = apply_blocks(&mut mem, &blocks);

    let file = tempfile::NamedTempFile::new().unwrap();
    let db = Database::create(file.path()).unwrap();
    {
        // Before any write, a reader sees an empty tree.
        let read = db.begin_read().unwrap();
        let tree = StateTree::new(RedbReader::open(&read).unwrap());
        assert_eq!(tree.root().unwrap(), EMPTY);
        assert_eq!(tree.height().unwrap(), None);
    }
    // One write transaction per block, as the chain commits them.
    for (h, block) in blocks.iter().enumerate() {
        let txn = db.begin_write().unwrap();
        {
            let mut tree = StateTree::new(RedbStore::open(&txn).unwrap());
            assert_eq!(tree.apply_keyed(h as u64, block.clone()).unwrap(), roots[h]);
        }
        txn.commit().unwrap();
    }
    let read = db.begin_read().unwrap();
    let tree = StateTree::new(RedbReader::open(&read).unwrap());
    assert_eq!(tree.root().unwrap(), *roots.last().unwrap());
    for i in 0..270 {
        let proof = tree.prove_key(&key(i)).unwrap();
        assert_eq!(proof, mem.prove_key(&key(i)).unwrap());
        assert_eq!(
            verify(roots.last().unwrap(), &key(i), &proof).unwrap(),
            mem.get_key(&key(i)).unwrap()
        );
    }
    drop(read);

    // Roll back three blocks in one transaction, prune, and check the roots.
    let txn = db.begin_write().unwrap();
    {
        let mut tree = StateTree::new(RedbStore::open(&txn).unwrap());
        assert_eq!(tree.rollback(8).unwrap(), roots[8]);
        tree.prune(5).unwrap();
        assert!(matches!(
            tree.rollback(4),
            Err(TreeError::RollbackOutOfRange { .. })
        ));
    }
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut tree = StateTree::new(RedbStore::open(&txn).unwrap());
        assert_eq!(tree.root().unwrap(), roots[8]);
        assert_eq!(tree.rollback(5).unwrap(), roots[5]);
        assert_eq!(tree.apply_keyed(6, blocks[6].clone()).unwrap(), roots[6]);
    }
    txn.commit().unwrap();
    let read = db.begin_read().unwrap();
    let undo = read.open_table(UNDO).unwrap();
    use redb::ReadableTableMetadata;
    assert_eq!(undo.len().unwrap(), 1, "only height 6 is undo-logged");
}

#[test]
fn corrupt_records_are_errors() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let db = Database::create(file.path()).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut tree = StateTree::new(RedbStore::open(&txn).unwrap());
        tree.apply_keyed(0, keyed(&[(key(1), 1), (key(2), 2)]))
            .unwrap();
    }
    {
        let mut meta = txn.open_table(META).unwrap();
        meta.insert(0, [0xffu8, 0xff, 0xff].as_slice()).unwrap();
    }
    {
        let tree = StateTree::new(RedbStore::open(&txn).unwrap());
        let err = tree.root().unwrap_err();
        assert!(
            matches!(err, TreeError::Store(StoreError::Corrupt(_))),
            "{err}"
        );
        assert!(err.to_string().contains("corrupt"), "{err}");
    }
    {
        // A root that names a branch the table does not hold.
        let mut meta = txn.open_table(META).unwrap();
        let bogus = Meta {
            root: Some(Child::Branch {
                depth: 3,
                prefix: Hash::ZERO,
                hash: Hash([1; 32]),
            }),
            height: 0,
            floor: 0,
        };
        meta.insert(0, encode(&bogus).as_slice()).unwrap();
    }
    let tree = StateTree::new(RedbStore::open(&txn).unwrap());
    assert!(matches!(
        tree.prove_key(&Hash::ZERO),
        Err(TreeError::Inconsistent(_))
    ));
}

fn built_tree(n: u64) -> (Tree, Hash) {
    let mut tree = Tree::default();
    let root = tree
        .apply_keyed(0, (0..n).map(|i| (key(i), account(i + 1))).collect())
        .unwrap();
    (tree, root)
}

#[test]
fn proofs_round_trip_and_bind_root_and_key() {
    let (tree, root) = built_tree(300);
    let (other_tree, other_root) = built_tree(301);
    let mut kinds = [0usize; 3];
    for i in 0..400 {
        let proof = tree.prove_key(&key(i)).unwrap();
        let bytes = encode(&proof);
        assert!(bytes.len() <= StateProof::MAX_ENCODED_LEN);
        assert_eq!(decode::<StateProof>(&bytes).as_ref(), Ok(&proof));
        let expected = (i < 300).then(|| account(i + 1));
        assert_eq!(verify_bytes(&root, &key(i), &bytes), Ok(expected));
        kinds[match proof.leaf {
            ProofLeaf::Empty => 0,
            ProofLeaf::Other { .. } => 1,
            ProofLeaf::Account(_) => 2,
        }] += 1;
        // Another root, another key.
        assert!(matches!(
            verify(&other_root, &key(i), &proof),
            Err(ProofError::RootMismatch { .. })
        ));
        let _ = other_tree.prove_key(&key(i)).unwrap();
        assert!(verify(&root, &key(i + 1000), &proof).is_err());
    }
    assert_eq!(kinds[2], 300);
    assert!(
        kinds[0] > 0 && kinds[1] > 0,
        "both kinds of absence: {kinds:?}"
    );
}

#[test]
fn documented_limits() {
    // docs/protocol.md and docs/light-client.md quote these.
    assert_eq!(StateProof::MAX_ENCODED_LEN, 28_250);
    assert_eq!(Account::MAX_ENCODED_LEN, 20_022);
    assert_eq!(Branch::MAX_ENCODED_LEN, 132);
}

#[test]
fn every_single_byte_change_is_rejected() {
    let (tree, root) = built_tree(100);
    for i in [3u64, 150] {
        let bytes = encode(&tree.prove_key(&key(i)).unwrap());
        for at in 0..bytes.len() {
            for delta in [1u8, 0x80] {
                let mut bad = bytes.clone();
                bad[at] = bad[at].wrapping_add(delta);
                assert!(
                    verify_bytes(&root, &key(i), &bad).is_err(),
                    "key {i}: changing byte {at} by {delta} still verifies"
                );
            }
        }
        for len in 0..bytes.len() {
            assert!(verify_bytes(&root, &key(i), &bytes[..len]).is_err());
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            verify_bytes(&root, &key(i), &long),
            Err(ProofError::Decode(_))
        ));
    }
    let huge = vec![0u8; StateProof::MAX_ENCODED_LEN + 1];
    assert!(matches!(
        verify_bytes(&root, &key(1), &huge),
        Err(ProofError::Decode(DecodeError::TooLong { .. }))
    ));
}

#[test]
fn malformed_proofs_have_clear_errors() {
    let (tree, root) = built_tree(50);
    let good = tree.prove_key(&key(1)).unwrap();
    let mut padded = good.clone();
    let mut bitmap = good.bitmap.to_vec();
    bitmap.push(0);
    padded.bitmap = BoundedBytes::try_from_slice(&bitmap).unwrap();
    assert_eq!(
        verify(&root, &key(1), &padded),
        Err(ProofError::BitmapPadding)
    );

    let mut short = good.clone();
    let mut siblings = good.siblings.to_vec();
    siblings.pop();
    short.siblings = BoundedVec::try_from_vec(siblings).unwrap();
    assert!(matches!(
        verify(&root, &key(1), &short),
        Err(ProofError::SiblingCount { .. })
    ));

    let mut zeroed = good.clone();
    let mut siblings = good.siblings.to_vec();
    siblings[0] = EMPTY;
    zeroed.siblings = BoundedVec::try_from_vec(siblings).unwrap();
    assert_eq!(
        verify(&root, &key(1), &zeroed),
        Err(ProofError::EmptySibling { depth: 0 })
    );

    let mut empty = good.clone();
    empty.leaf = ProofLeaf::Account(Account::default());
    assert_eq!(
        verify(&root, &key(1), &empty),
        Err(ProofError::EmptyAccount)
    );

    let mut itself = good.clone();
    itself.leaf = ProofLeaf::Other {
        key: key(1),
        value_hash: value_hash(&account(2)),
    };
    assert_eq!(verify(&root, &key(1), &itself), Err(ProofError::OtherIsKey));

    let mut off = good.clone();
    off.leaf = ProofLeaf::Other {
        key: flip(&key(1), 0),
        value_hash: value_hash(&account(2)),
    };
    assert!(matches!(
        verify(&root, &key(1), &off),
        Err(ProofError::OtherOffPath { shared: 0, .. })
    ));
    // A membership proof cannot be turned into an absence proof.
    let mut absent = good.clone();
    absent.leaf = ProofLeaf::Empty;
    assert!(matches!(
        verify(&root, &key(1), &absent),
        Err(ProofError::RootMismatch { .. })
    ));
    let msg = ProofError::SiblingCount {
        marked: 3,
        given: 2,
    }
    .to_string();
    assert_eq!(msg, "proof has 2 sibling hashes where its bitmap marks 3");
}

/// A pool of keys with random and deliberately clustered paths.
fn pool() -> Vec<Hash> {
    let base = key(99);
    let mut keys: Vec<Hash> = (0..10).map(key).collect();
    keys.extend(
        [1usize, 2, 9, 40, 130, 254, 255]
            .iter()
            .map(|&i| flip(&base, i)),
    );
    keys.push(base);
    keys.push(flip(&flip(&base, 255), 254));
    keys.push(flip(&flip(&base, 130), 131));
    keys
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_blocks_match_reference_and_roll_back(
        blocks in proptest::collection::vec(
            proptest::collection::vec((0usize..20, proptest::option::of(1u64..5)), 0..12),
            1..10,
        ),
        rollback_to in any::<prop::sample::Index>(),
    ) {
        let keys = pool();
        let mut tree = Tree::default();
        let mut state = BTreeMap::new();
        let mut roots = Vec::new();
        for (h, block) in blocks.iter().enumerate() {
            let changes: Vec<(Hash, Account)> = block
                .iter()
                .map(|(i, b)| (keys[*i], b.map_or_else(Account::default, account)))
                .collect();
            for (k, a) in &changes {
                state.insert(*k, a.clone());
            }
            let root = tree.apply_keyed(h as u64, changes).unwrap();
            prop_assert_eq!(root, reference_root(&state));
            roots.push(root);
            for k in &keys {
                let proof = tree.prove_key(k).unwrap();
                let expected = state.get(k).filter(|a| !a.is_empty()).cloned();
                prop_assert_eq!(verify(&root, k, &proof), Ok(expected));
            }
        }
        let target = rollback_to.index(roots.len());
        prop_assert_eq!(tree.rollback(target as u64).unwrap(), roots[target]);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = verify_bytes(&Hash([7; 32]), &key(1), &bytes);
        if let Ok(proof) = decode::<StateProof>(&bytes) {
            prop_assert_eq!(encode(&proof), bytes);
        }
    }

    #[test]
    fn mutated_proofs_never_panic(at: prop::sample::Index, byte: u8, i in 0u64..40) {
        let (tree, root) = built_tree(20);
        let mut bytes = encode(&tree.prove_key(&key(i)).unwrap());
        let at = at.index(bytes.len());
        let changed = bytes[at] != byte;
        bytes[at] = byte;
        let result = verify_bytes(&root, &key(i), &bytes);
        prop_assert!(!changed || result.is_err());
    }
}
