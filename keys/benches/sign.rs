//! What a signature costs: a key file against a key in a PKCS#11 token (SoftHSM2), one at a
//! time: a checkpoint note's Ed25519 signature, as the log's publisher makes them, and a
//! timestamp's ECDSA P-256 signature (over a CMS signed-attributes block's size of bytes), as
//! `cairn-witness tsa serve` makes them; and the batch a publish needs during a key rotation's
//! overlap, when each checkpoint carries the signatures of two log keys.
//!
//! `cargo bench -p cairn-keys --bench sign` (needs `softhsm2-util` and
//! /usr/lib/softhsm/libsofthsm2.so: apt-get install softhsm2).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use cairn_keys::{NoteSigner, Pin, Pkcs11EcdsaKey, Pkcs11Key, Pkcs11Settings, TokenChoice};
use cairn_spec::note::{KeyName, Note, PlainEd25519, SignerKey};
use criterion::{criterion_group, criterion_main, Criterion};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A token in `dir` (SOFTHSM2_CONF set for this process); the settings of a key `label` in it.
fn token(dir: &std::path::Path) -> impl Fn(&str) -> Pkcs11Settings {
    use std::os::unix::fs::PermissionsExt as _;
    let tokens = dir.join("tokens");
    std::fs::create_dir(&tokens).expect("makes the token directory");
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\n",
            tokens.display()
        ),
    )
    .expect("writes the configuration");
    let status = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            "bench",
            "--pin",
            "1234",
            "--so-pin",
            "5678",
        ])
        .status()
        .expect("softhsm2-util runs");
    assert!(status.success(), "softhsm2-util --init-token failed");
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let pin = dir.join("pin");
    std::fs::write(&pin, "1234\n").expect("writes the PIN");
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    move |label: &str| Pkcs11Settings {
        module: PathBuf::from(MODULE),
        token: TokenChoice::Label("bench".into()),
        key_label: label.into(),
        pin: Pin::File(pin.clone()),
    }
}

fn signatures(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let name = KeyName::new("example.com/bench-log").expect("a key name");
    let note = Note::new(
        "example.com/bench-log\n16777216\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    )
    .expect("a note");
    let settings = token(dir.path());
    let file = NoteSigner::from_key(SignerKey::<PlainEd25519>::from_seed(name.clone(), [9; 32]));
    let in_token = Pkcs11Key::generate(&settings("checkpoint")).expect("makes a key in the token");
    let in_token = NoteSigner::<PlainEd25519>::from_token(name.clone(), Arc::new(in_token));

    let mut group = c.benchmark_group("checkpoint_signature");
    group.bench_function("key_file", |b| b.iter(|| file.sign(&note).expect("signs")));
    group.bench_function("softhsm2", |b| {
        b.iter(|| in_token.sign(&note).expect("signs"))
    });
    group.finish();

    // During a rotation's overlap a publish signs each checkpoint with both log keys.
    let second_file =
        NoteSigner::from_key(SignerKey::<PlainEd25519>::from_seed(name.clone(), [10; 32]));
    let second_in_token = NoteSigner::<PlainEd25519>::from_token(
        name,
        Arc::new(Pkcs11Key::generate(&settings("checkpoint-2")).expect("makes a second key")),
    );
    let mut group = c.benchmark_group("overlap_publish_signatures");
    group.bench_function("key_files", |b| {
        b.iter(|| {
            (
                file.sign(&note).expect("signs"),
                second_file.sign(&note).expect("signs"),
            )
        })
    });
    group.bench_function("softhsm2", |b| {
        b.iter(|| {
            (
                in_token.sign(&note).expect("signs"),
                second_in_token.sign(&note).expect("signs"),
            )
        })
    });
    group.finish();

    // A CMS signed-attributes block of a timestamp token is about 200 bytes.
    let attributes = [0x31u8; 200];
    let file = p256::ecdsa::SigningKey::from_slice(&[9; 32]).expect("a P-256 scalar");
    let in_token =
        Pkcs11EcdsaKey::generate(&settings("timestamp")).expect("makes a P-256 key in the token");
    let mut group = c.benchmark_group("timestamp_signature");
    group.bench_function("key_file", |b| {
        b.iter(|| {
            use p256::ecdsa::signature::Signer as _;
            let signature: p256::ecdsa::Signature = file.sign(&attributes);
            signature.to_der()
        })
    });
    group.bench_function("softhsm2", |b| {
        b.iter(|| in_token.sign_sha256(&attributes).expect("signs"))
    });
    group.finish();
}

criterion_group!(benches, signatures);
criterion_main!(benches);
