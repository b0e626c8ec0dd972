//! State tree benchmarks against two peers, `jmt` and `sparse-merkle-tree`, in one run.
//!
//! Workload (1,000,000 accounts by default; `STATE_BENCH_ACCOUNTS` overrides):
//! - build the tree from all accounts in one batch: criterion at a tenth of the size (group
//!   `state_tree_build_*`), plus one timed build at full size (printed to stderr);
//! - on the full-size trees: generate and verify a membership proof, and apply blocks of 1,000
//!   changed accounts (only the update is timed; our undo logs are pruned and jmt's stale nodes
//!   purged between blocks, untimed);
//! - proof sizes, membership and absence, mean and largest over 1,000 keys each (stderr).
//!
//! Every tree hashes with the same BLAKE2b-256 and keeps its nodes in its own in-memory store,
//! so the figures compare the data structures. Peers: `jmt` (Penumbra's Jellyfish Merkle Tree:
//! 16-ary nodes, binary proofs) with its `MockTreeStore`; `sparse-merkle-tree` (Nervos) with
//! its `trie` feature (compressed leaves; without it the store holds 256 branch nodes per key,
//! which does not fit in memory at 1,000,000 keys) and its `DefaultStore`. Peer proof sizes:
//! the postcard encoding of jmt's serde form (its siblings carry a type tag; it verifies
//! against a value given separately, counted apart), and Nervos' own compiled proof bytes.
//!
//! Run with `cargo bench --bench state_tree` (about five minutes).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use spacetime::account::Account;
use spacetime::amount::Amount;
use spacetime::encoding::encode;
use spacetime::hash::{Hash, Hasher, hash};
use spacetime::state_tree::{MemoryStore, StateTree, value_hash, verify};

/// Blocks of this many changed accounts.
const BLOCK: usize = 1_000;
/// Keys sampled for proof sizes.
const SAMPLES: u64 = 1_000;

fn accounts() -> u64 {
    std::env::var("STATE_BENCH_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn key(i: u64) -> Hash {
    hash(b"bench-key", &i.to_le_bytes())
}

fn account(i: u64, round: u64) -> Account {
    Account::new(Amount(1_000_000 + i * 7 + round), i % 50)
}

/// A deterministic pseudo-random index stream (splitmix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % bound
    }
}

// ---- jmt -----------------------------------------------------------------------------------

/// jmt over the same BLAKE2b-256 as ours.
struct JmtBlake(Hasher);
impl jmt::SimpleHasher for JmtBlake {
    fn new() -> Self {
        Self(Hasher::new(b"jmt"))
    }
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    fn finalize(self) -> [u8; 32] {
        self.0.finalize().0
    }
}
type Jmt<'a> = jmt::JellyfishMerkleTree<'a, jmt::mock::MockTreeStore, JmtBlake>;

fn jmt_apply(
    store: &jmt::mock::MockTreeStore,
    version: u64,
    changes: &[(Hash, Account)],
) -> [u8; 32] {
    let tree = Jmt::new(store);
    let set = changes
        .iter()
        .map(|(k, a)| (jmt::KeyHash(k.0), Some(encode(a))));
    let Ok((root, batch)) = tree.put_value_set(set, version) else {
        panic!("jmt update failed");
    };
    if store.write_tree_update_batch(batch).is_err() {
        panic!("jmt write failed");
    }
    root.0
}

// ---- sparse-merkle-tree (Nervos) ----------------------------------------------------------

/// Nervos' tree over the same BLAKE2b-256 as ours.
struct SmtBlake(Hasher);
impl Default for SmtBlake {
    fn default() -> Self {
        Self(Hasher::new(b"nervos-smt"))
    }
}
impl sparse_merkle_tree::traits::Hasher for SmtBlake {
    fn write_h256(&mut self, h: &sparse_merkle_tree::H256) {
        self.0.update(h.as_slice());
    }
    fn write_byte(&mut self, b: u8) {
        self.0.update(&[b]);
    }
    fn finish(self) -> sparse_merkle_tree::H256 {
        self.0.finalize().0.into()
    }
}
type H256 = sparse_merkle_tree::H256;
type Nervos = sparse_merkle_tree::SparseMerkleTree<
    SmtBlake,
    H256,
    sparse_merkle_tree::default_store::DefaultStore<H256>,
>;

fn nervos_leaves(changes: &[(Hash, Account)]) -> Vec<(H256, H256)> {
    changes
        .iter()
        .map(|(k, a)| (k.0.into(), value_hash(a).0.into()))
        .collect()
}

fn nervos_proof(tree: &Nervos, k: &Hash) -> Vec<u8> {
    let key: H256 = k.0.into();
    let Ok(proof) = tree.merkle_proof(vec![key]) else {
        panic!("nervos proof failed");
    };
    let Ok(compiled) = proof.compile(vec![key]) else {
        panic!("nervos compile failed");
    };
    compiled.0
}

// ---- the benchmark -------------------------------------------------------------------------

fn stats(sizes: &[usize]) -> String {
    let mean = sizes.iter().sum::<usize>() as f64 / sizes.len().max(1) as f64;
    let max = sizes.iter().max().copied().unwrap_or(0);
    format!("mean {mean:.0} B, max {max} B")
}

fn state_tree(c: &mut Criterion) {
    let n = accounts();
    let initial: Vec<(Hash, Account)> = (0..n).map(|i| (key(i), account(i, 0))).collect();

    // Build from all accounts in one batch: repeated at a tenth of the size (a peer takes tens of
    // seconds per build at full size), then once at full size, timed by hand, for the trees the
    // other benchmarks use.
    let small = (n / 10).max(1);
    let mut group = c.benchmark_group(format!("state_tree_build_{small}"));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(1));
    let initial_small = &initial[..small as usize];
    group.bench_function("ours", |b| {
        b.iter_batched(
            || initial_small.to_vec(),
            |changes| {
                let mut tree = StateTree::new(MemoryStore::new());
                black_box(tree.apply_keyed(0, changes).ok())
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("jmt", |b| {
        b.iter_batched(
            jmt::mock::MockTreeStore::default,
            |store| black_box(jmt_apply(&store, 0, initial_small)),
            BatchSize::PerIteration,
        )
    });
    let leaves = nervos_leaves(initial_small);
    group.bench_function("sparse-merkle-tree", |b| {
        b.iter_batched(
            || leaves.clone(),
            |leaves| {
                let mut tree = Nervos::default();
                black_box(tree.update_all(leaves).ok().copied())
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    drop(leaves);

    let start = Instant::now();
    let mut ours = StateTree::new(MemoryStore::new());
    let our_root = ours.apply_keyed(0, initial.clone()).ok();
    let ours_build = start.elapsed();
    let jmt_store = jmt::mock::MockTreeStore::default();
    let start = Instant::now();
    jmt_apply(&jmt_store, 0, &initial);
    let jmt_build = start.elapsed();
    let mut nervos = Nervos::default();
    let leaves = nervos_leaves(&initial);
    let start = Instant::now();
    if nervos.update_all(leaves).is_err() {
        panic!("nervos build failed");
    }
    let nervos_build = start.elapsed();
    drop(initial);
    assert!(our_root.is_some());
    eprintln!(
        "\none build of {n} accounts: ours {ours_build:.2?} | jmt {jmt_build:.2?} | \
         sparse-merkle-tree {nervos_build:.2?}"
    );

    let mut group = c.benchmark_group(format!("state_tree_{n}"));
    group.warm_up_time(Duration::from_millis(200));
    group.measurement_time(Duration::from_secs(2));

    // Proof sizes, members and absent keys.
    let mut rng = Rng(42);
    let members: Vec<u64> = (0..SAMPLES).map(|_| rng.next(n)).collect();
    let absent: Vec<u64> = (0..SAMPLES).map(|i| n + 1 + i).collect();
    let mut report = String::new();
    for (label, keys) in [("membership", &members), ("absence", &absent)] {
        let mut sizes = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        for &i in keys.iter() {
            let k = key(i);
            let Ok(proof) = ours.prove_key(&k) else {
                panic!("our proof failed");
            };
            sizes[0].push(encode(&proof).len());
            let Ok((value, proof)) = Jmt::new(&jmt_store).get_with_proof(jmt::KeyHash(k.0), 0)
            else {
                panic!("jmt proof failed");
            };
            let proof_len = encode(&proof).len();
            sizes[1].push(proof_len);
            sizes[2].push(proof_len + value.map_or(0, |v| v.len()));
            sizes[3].push(nervos_proof(&nervos, &k).len());
        }
        report += &format!(
            "  {label:<10} ours {} | jmt {} (with value: {}) | sparse-merkle-tree {}\n",
            stats(&sizes[0]),
            stats(&sizes[1]),
            stats(&sizes[2]),
            stats(&sizes[3]),
        );
    }
    eprintln!("\nproof sizes at {n} accounts, {SAMPLES} keys each:\n{report}");

    // Proof generation and verification of members.
    let mut next = 0usize;
    let mut pick = || {
        next = (next + 1) % members.len();
        key(members[next])
    };
    group.sample_size(50);
    group.bench_function("prove/ours", |b| b.iter(|| ours.prove_key(&pick()).ok()));
    group.bench_function("prove/jmt", |b| {
        b.iter(|| {
            Jmt::new(&jmt_store)
                .get_with_proof(jmt::KeyHash(pick().0), 0)
                .ok()
        })
    });
    group.bench_function("prove/sparse-merkle-tree", |b| {
        b.iter(|| nervos_proof(&nervos, &pick()))
    });

    let k = key(members[0]);
    let a = account(members[0], 0);
    let Ok(root) = ours.root() else {
        panic!("no root");
    };
    let Ok(proof) = ours.prove_key(&k) else {
        panic!("our proof failed");
    };
    assert_eq!(verify(&root, &k, &proof), Ok(Some(a.clone())));
    group.bench_function("verify/ours", |b| {
        b.iter(|| verify(black_box(&root), black_box(&k), black_box(&proof)))
    });
    let Ok((_, jmt_proof)) = Jmt::new(&jmt_store).get_with_proof(jmt::KeyHash(k.0), 0) else {
        panic!("jmt proof failed");
    };
    let Ok(jmt_root) = Jmt::new(&jmt_store).get_root_hash(0) else {
        panic!("jmt root failed");
    };
    let value = encode(&a);
    assert!(
        jmt_proof
            .verify_existence(jmt_root, jmt::KeyHash(k.0), &value)
            .is_ok()
    );
    group.bench_function("verify/jmt", |b| {
        b.iter(|| {
            jmt_proof
                .verify_existence(black_box(jmt_root), jmt::KeyHash(k.0), black_box(&value))
                .is_ok()
        })
    });
    let nervos_root = *nervos.root();
    let nervos_compiled = sparse_merkle_tree::CompiledMerkleProof(nervos_proof(&nervos, &k));
    let leaf = vec![(H256::from(k.0), H256::from(value_hash(&a).0))];
    assert_eq!(
        nervos_compiled
            .verify::<SmtBlake>(&nervos_root, leaf.clone())
            .ok(),
        Some(true)
    );
    group.bench_function("verify/sparse-merkle-tree", |b| {
        b.iter(|| {
            nervos_compiled
                .verify::<SmtBlake>(black_box(&nervos_root), leaf.clone())
                .ok()
        })
    });

    // Blocks of 1,000 changed accounts; only the update is timed (making the block, pruning our
    // undo logs and purging jmt's stale nodes are not).
    let mut rng = Rng(7);
    let mut round = 0u64;
    let mut block = move || {
        round += 1;
        let changes: Vec<(Hash, Account)> = (0..BLOCK)
            .map(|_| {
                let i = rng.next(n);
                (key(i), account(i, round))
            })
            .collect();
        changes
    };
    group.sample_size(30);
    let mut height = 0;
    group.bench_function("apply_1000/ours", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let changes = block();
                height += 1;
                let start = Instant::now();
                black_box(ours.apply_keyed(height, changes).ok());
                total += start.elapsed();
                let _ = ours.prune(height);
            }
            total
        })
    });
    let mut version = 0;
    group.bench_function("apply_1000/jmt", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let changes = block();
                version += 1;
                let start = Instant::now();
                black_box(jmt_apply(&jmt_store, version, &changes));
                total += start.elapsed();
                let _ = jmt_store.purge_stale_nodes(version);
            }
            total
        })
    });
    group.bench_function("apply_1000/sparse-merkle-tree", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let leaves = nervos_leaves(&block());
                let start = Instant::now();
                black_box(nervos.update_all(leaves).ok().copied());
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, state_tree);
criterion_main!(benches);
