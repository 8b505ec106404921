//! Throughput of the tree math: hashing, appending, roots from leaves (one and two threads),
//! building and verifying proofs. Leaves are 100 bytes, the size the re-verification target
//! (5 million leaves a second on both cores of the reference machine) is stated for.

use std::collections::HashMap;
use std::hint::black_box;

use cairn_spec::merkle::{
    consistency_proof, inclusion_proof, root_from_leaf_hashes, root_from_leaves,
    root_from_leaves_parallel, verify_consistency, verify_inclusion, CompactRange,
};
use cairn_spec::tiles::{Tile, TileAppender, TileHashReader};
use cairn_spec::Hash;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const LEAF_BYTES: usize = 100;
const ROOT_LEAVES: usize = 1 << 20;
const PROOF_TREE: u64 = 1 << 20;

fn leaves(count: usize) -> Vec<[u8; LEAF_BYTES]> {
    (0..count)
        .map(|index| {
            let mut leaf = [0x5a; LEAF_BYTES];
            leaf[..8].copy_from_slice(&(index as u64).to_be_bytes());
            leaf
        })
        .collect()
}

fn report_sha_backend() {
    #[cfg(target_arch = "x86_64")]
    eprintln!(
        "SHA-NI available to sha2's cpufeatures check: {}",
        std::is_x86_feature_detected!("sha")
            && std::is_x86_feature_detected!("sse4.1")
            && std::is_x86_feature_detected!("ssse3")
    );
}

fn hashing(c: &mut Criterion) {
    report_sha_backend();
    let mut group = c.benchmark_group("hash");
    group.throughput(Throughput::Elements(1));
    let leaf = [0x5au8; LEAF_BYTES];
    group.bench_function("leaf_100B", |b| b.iter(|| Hash::of_leaf(black_box(&leaf))));
    let left = Hash::of_leaf(b"left");
    let right = Hash::of_leaf(b"right");
    group.bench_function("node", |b| {
        b.iter(|| Hash::of_node(black_box(&left), black_box(&right)))
    });
    // The same hashes, 256 at a time, several compressed side by side (hash::lanes).
    group.throughput(Throughput::Elements(256));
    let tile_leaves = leaves(256);
    let mut out = vec![Hash::default(); 256];
    group.bench_function("leaf_100B_256_side_by_side", |b| {
        b.iter(|| Hash::of_leaves(black_box(&tile_leaves), &mut out))
    });
    let level: Vec<Hash> = tile_leaves.iter().map(|leaf| Hash::of_leaf(leaf)).collect();
    let mut parents = vec![Hash::default(); 128];
    let mut twice = level.clone();
    twice.extend_from_slice(&level);
    group.bench_function("node_256_side_by_side", |b| {
        b.iter(|| {
            Hash::of_nodes(black_box(&twice[..256]), &mut parents[..128]);
            Hash::of_nodes(black_box(&twice[256..]), &mut parents[..128]);
        })
    });
    group.finish();
}

fn appending(c: &mut Criterion) {
    let hashes: Vec<Hash> = leaves(1 << 16).iter().map(|l| Hash::of_leaf(l)).collect();
    let mut group = c.benchmark_group("compact_range");
    group.throughput(Throughput::Elements(hashes.len() as u64));
    group.bench_function("append_one_by_one", |b| {
        b.iter_batched_ref(
            CompactRange::new,
            |range| {
                for hash in &hashes {
                    range.append(*hash).expect("small tree");
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("extend_reporting_nodes", |b| {
        b.iter_batched_ref(
            || (CompactRange::new(), Vec::with_capacity(2 * hashes.len())),
            |(range, stored)| {
                range
                    .extend_with(&hashes, |_, hash| stored.push(*hash))
                    .expect("small tree")
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn roots(c: &mut Criterion) {
    let leaves = leaves(ROOT_LEAVES);
    let hashes: Vec<Hash> = leaves.iter().map(|l| Hash::of_leaf(l)).collect();
    let mut group = c.benchmark_group("root");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROOT_LEAVES as u64));
    group.bench_function("from_leaf_hashes_1_thread", |b| {
        b.iter(|| root_from_leaf_hashes(black_box(&hashes)))
    });
    group.bench_function("from_100B_leaves_1_thread", |b| {
        b.iter(|| root_from_leaves(black_box(&leaves)))
    });
    group.bench_function("from_100B_leaves_2_threads", |b| {
        b.iter(|| root_from_leaves_parallel(black_box(&leaves), 2))
    });
    group.finish();
}

fn proofs(c: &mut Criterion) {
    let mut range = CompactRange::new();
    let mut stored = Vec::new();
    let hashes: Vec<Hash> = leaves(PROOF_TREE as usize)
        .iter()
        .map(|l| Hash::of_leaf(l))
        .collect();
    range
        .extend_with(&hashes, |_, hash| stored.push(*hash))
        .expect("small tree");
    let root = range.root();
    let tree_size = PROOF_TREE - 12_345;
    let root_at_size = cairn_spec::merkle::tree_root(tree_size, &stored).expect("stored");
    let leaf_index = 765_432;
    let old_size = 333_333;
    let old_root = cairn_spec::merkle::tree_root(old_size, &stored).expect("stored");

    let mut group = c.benchmark_group("proof");
    group.throughput(Throughput::Elements(1));
    group.bench_function("inclusion_build", |b| {
        b.iter(|| inclusion_proof(black_box(leaf_index), tree_size, &stored).expect("in tree"))
    });
    let inclusion = inclusion_proof(leaf_index, tree_size, &stored).expect("in tree");
    group.bench_function("inclusion_verify", |b| {
        b.iter(|| {
            verify_inclusion(
                black_box(leaf_index),
                tree_size,
                &hashes[leaf_index as usize],
                &inclusion,
                &root_at_size,
            )
            .expect("valid")
        })
    });
    group.bench_function("consistency_build", |b| {
        b.iter(|| consistency_proof(black_box(old_size), PROOF_TREE, &stored).expect("ordered"))
    });
    let consistency = consistency_proof(old_size, PROOF_TREE, &stored).expect("ordered");
    group.bench_function("consistency_verify", |b| {
        b.iter(|| {
            verify_consistency(
                black_box(old_size),
                PROOF_TREE,
                &old_root,
                &root,
                &consistency,
            )
            .expect("valid")
        })
    });
    group.finish();
}

fn proofs_through_tiles(c: &mut Criterion) {
    let hashes: Vec<Hash> = leaves(PROOF_TREE as usize)
        .iter()
        .map(|l| Hash::of_leaf(l))
        .collect();
    let mut appender = TileAppender::new();
    let tiles: HashMap<Tile, Vec<u8>> = appender
        .append(&hashes)
        .expect("small tree")
        .into_iter()
        .map(|update| (update.tile, update.data))
        .collect();
    let reader = TileHashReader::new(PROOF_TREE, appender.root(), &tiles).expect("small tree");
    let mut group = c.benchmark_group("tiles");
    group.throughput(Throughput::Elements(1));
    group.bench_function("inclusion_build_checking_tiles", |b| {
        b.iter(|| inclusion_proof(black_box(765_432), PROOF_TREE, &reader).expect("in tree"))
    });
    group.bench_function("consistency_build_checking_tiles", |b| {
        b.iter(|| consistency_proof(black_box(333_333), PROOF_TREE, &reader).expect("ordered"))
    });
    group.throughput(Throughput::Elements(PROOF_TREE));
    group.sample_size(10);
    group.bench_function("appender_1M_leaves", |b| {
        b.iter(|| {
            TileAppender::new()
                .append(black_box(&hashes))
                .expect("small")
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    hashing,
    appending,
    roots,
    proofs,
    proofs_through_tiles
);
criterion_main!(benches);
