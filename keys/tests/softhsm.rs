//! Keys in a real PKCS#11 token: SoftHSM2 (Debian package `softhsm2`, which `.ci/run`
//! installs), with a token directory of this test's own. Keys are made in the token, sign notes
//! and cosignatures that verify with the public key alone, and every way a token can refuse
//! gives an error that says what to fix.
//!
//! SoftHSM2 reads its configuration (`SOFTHSM2_CONF`) once, when the module is initialised,
//! and a process initialises a module once: every test here shares one token directory, made
//! before the first test touches the module, with one token per test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use cairn_keys::{NoteSigner, Pin, Pkcs11EcdsaKey, Pkcs11Key, Pkcs11Settings, TokenChoice};
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::cosignature::CosignatureV1;
use cairn_spec::note::{KeyName, Note, NoteVerifier, PlainEd25519};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const USER_PIN: &str = "246810";
/// One token per test, so that no test sees another's keys.
const TOKENS: [&str; 7] = [
    "sign",
    "taken",
    "refusals",
    "destroyed",
    "threads",
    "ecdsa",
    "sessions",
];

struct Tokens {
    dir: PathBuf,
}

/// The token directory, made once with every token initialised.
fn tokens() -> &'static Tokens {
    static TOKENS_DIR: OnceLock<Tokens> = OnceLock::new();
    TOKENS_DIR.get_or_init(|| {
        assert!(
            Path::new(MODULE).is_file(),
            "SoftHSM2 is not installed ({MODULE} is missing): apt-get install softhsm2"
        );
        // Kept for the life of the process: the module holds it open.
        let dir = tempfile::tempdir().expect("a temporary directory").keep();
        let token_dir = dir.join("tokens");
        std::fs::create_dir(&token_dir).expect("makes the token directory");
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                token_dir.display()
            ),
        )
        .expect("writes the SoftHSM2 configuration");
        for label in TOKENS {
            let output = Command::new("softhsm2-util")
                .env("SOFTHSM2_CONF", &conf)
                .args(["--init-token", "--free", "--label", label])
                .args(["--pin", USER_PIN, "--so-pin", "13579"])
                .output()
                .expect("softhsm2-util runs (apt-get install softhsm2)");
            assert!(
                output.status.success(),
                "softhsm2-util --init-token: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        // Before the module is first loaded in this process, which is when SoftHSM2 reads it.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        Tokens { dir }
    })
}

impl Tokens {
    /// A PIN file of mode 0600 holding `pin`.
    fn pin_file(&self, name: &str, pin: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.dir.join(format!("{name}.pin"));
        std::fs::write(&path, format!("{pin}\n")).expect("writes the PIN file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        path
    }

    fn settings(&self, token: &str, key_label: &str) -> Pkcs11Settings {
        Pkcs11Settings {
            module: PathBuf::from(MODULE),
            token: TokenChoice::Label(token.into()),
            key_label: key_label.into(),
            pin: Pin::File(self.pin_file(token, USER_PIN)),
        }
    }
}

fn checkpoint(size: u64) -> Checkpoint {
    Checkpoint {
        origin: "example.com/hsm-log".into(),
        size,
        root: cairn_spec::Hash([size as u8; 32]),
        extensions: Vec::new(),
    }
}

#[test]
fn a_key_made_in_the_token_signs_notes_and_cosignatures_that_verify_with_its_public_key() {
    let tokens = tokens();
    let settings = tokens.settings("sign", "log-key");
    let key = Arc::new(Pkcs11Key::generate(&settings).expect("makes an Ed25519 key in the token"));

    let name = KeyName::new("example.com/hsm-log").expect("a key name");
    let signer = NoteSigner::<PlainEd25519>::from_token(name.clone(), key.clone());
    assert!(signer.is_in_token());
    let text = checkpoint(42).to_text().expect("checkpoint text");
    let mut note = Note::new(text).expect("a note");
    let signature = signer.sign(&note).expect("the token signs");
    note.add_signature(signature).expect("adds the signature");
    let verifier = signer.verifier();
    let verifiers: [&dyn NoteVerifier; 1] = [&verifier];
    let verification = note
        .verify(&verifiers)
        .expect("verifies with the public key alone");
    assert!(verification.is_signed_by(&name, signer.key_id()));

    // The key stays in the token: opened again by label, it is the same key.
    let again = Pkcs11Key::open(&settings).expect("opens the key by its label");
    assert_eq!(again.public_key(), key.public_key());

    // The same key type signs cosignatures (a witness's key), under the cosignature's type.
    let witness = NoteSigner::<CosignatureV1>::from_token(
        KeyName::new("example.com/hsm-witness").expect("a key name"),
        Arc::new(
            Pkcs11Key::generate(&tokens.settings("sign", "witness-key")).expect("makes a key"),
        ),
    );
    let cosignature = witness
        .cosign(&checkpoint(42), 1_700_000_000)
        .expect("cosigns");
    let timestamp = witness
        .verifier()
        .verify_cosignature(&checkpoint(42), &cosignature.to_note_signature())
        .expect("the cosignature verifies with the public key alone");
    assert_eq!(timestamp, 1_700_000_000);
    assert!(
        witness
            .verifier()
            .verify_cosignature(&checkpoint(43), &cosignature.to_note_signature())
            .is_err(),
        "it does not verify over another checkpoint"
    );
    assert!(!format!("{signer:?}").contains(USER_PIN));
}

#[test]
fn a_label_already_taken_is_refused_and_the_first_key_kept() {
    let tokens = tokens();
    let settings = tokens.settings("taken", "only-key");
    let first = Pkcs11Key::generate(&settings).expect("makes the key");
    let error = Pkcs11Key::generate(&settings).expect_err("a second key of that label is refused");
    assert!(error.to_string().contains("already exists"), "{error}");
    assert_eq!(
        Pkcs11Key::open(&settings).expect("opens").public_key(),
        first.public_key(),
        "the first key is untouched"
    );
}

#[test]
fn each_way_of_getting_the_token_wrong_says_what_is_wrong() {
    let tokens = tokens();
    let settings = tokens.settings("refusals", "key");
    Pkcs11Key::generate(&settings).expect("makes the key");

    let wrong_pin = Pkcs11Settings {
        pin: Pin::File(tokens.pin_file("refusals-wrong", "999999")),
        ..settings.clone()
    };
    let error = Pkcs11Key::open(&wrong_pin).expect_err("a wrong PIN is refused");
    assert!(error.to_string().contains("PIN was refused"), "{error}");

    let no_token = Pkcs11Settings {
        token: TokenChoice::Label("no-such-token".into()),
        ..settings.clone()
    };
    let error = Pkcs11Key::open(&no_token).expect_err("an unknown token is refused");
    let shown = error.to_string();
    assert!(
        shown.contains("no-such-token") && shown.contains("\"refusals\""),
        "{shown}"
    );

    let no_key = Pkcs11Settings {
        key_label: "no-such-key".into(),
        ..settings.clone()
    };
    let error = Pkcs11Key::open(&no_key).expect_err("an unknown key is refused");
    assert!(
        error
            .to_string()
            .contains("no private key labelled \"no-such-key\""),
        "{error}"
    );

    let no_module = Pkcs11Settings {
        module: tokens.dir.join("no-such-module.so"),
        ..settings.clone()
    };
    let error = Pkcs11Key::open(&no_module).expect_err("a missing module is refused");
    assert!(error.to_string().contains("no such file"), "{error}");

    let no_pin = Pkcs11Settings {
        pin: Pin::Env("CAIRN_KEYS_TEST_UNSET_PIN".into()),
        ..settings
    };
    let error = Pkcs11Key::open(&no_pin).expect_err("an unset PIN variable is refused");
    assert!(
        error.to_string().contains("CAIRN_KEYS_TEST_UNSET_PIN"),
        "{error}"
    );
}

#[test]
fn a_key_destroyed_in_the_token_gives_a_clear_error_not_a_wrong_signature() {
    let tokens = tokens();
    let settings = tokens.settings("destroyed", "doomed");
    let key = Pkcs11Key::generate(&settings).expect("makes the key");
    key.sign(b"before").expect("signs while the key is there");

    // Another session (an operator with the token's tools) destroys the key pair.
    let module = cryptoki::context::Pkcs11::new(MODULE).expect("loads the module");
    let _ = module.initialize(cryptoki::context::CInitializeArgs::new(
        cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
    ));
    let slot = module
        .get_slots_with_initialized_token()
        .expect("lists slots")
        .into_iter()
        .find(|slot| {
            module
                .get_token_info(*slot)
                .is_ok_and(|info| info.label().trim_end() == "destroyed")
        })
        .expect("finds the token");
    let session = module.open_rw_session(slot).expect("opens a session");
    let pin = cryptoki::types::AuthPin::new(USER_PIN.into());
    let _ = session.login(cryptoki::session::UserType::User, Some(&pin));
    for handle in session
        .find_objects(&[cryptoki::object::Attribute::Label(b"doomed".to_vec())])
        .expect("finds the key pair")
    {
        session.destroy_object(handle).expect("destroys it");
    }

    let error = key.sign(b"after").expect_err("a destroyed key cannot sign");
    let shown = error.to_string();
    assert!(
        shown.contains("destroyed") && shown.contains("doomed"),
        "{shown}"
    );
}

#[test]
fn a_session_and_login_lost_under_the_key_are_opened_again_and_signing_goes_on() {
    let tokens = tokens();
    let key = Pkcs11Key::generate(&tokens.settings("sessions", "reopened")).expect("makes the key");
    let public = key.public_key();
    let check = |message: &[u8], signature: [u8; 64]| {
        public
            .verify_strict(message, &ed25519_dalek::Signature::from_bytes(&signature))
            .expect("each signature verifies");
    };
    check(b"before", key.sign(b"before").expect("signs"));

    // Another session of this process logs out (as a module reset, or a token pulled and put
    // back, loses the login): the key's session is no longer logged in. The next signature
    // finds the login lost, opens a new session, logs in again and signs.
    let module = cryptoki::context::Pkcs11::new(MODULE).expect("loads the module");
    let _ = module.initialize(cryptoki::context::CInitializeArgs::new(
        cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
    ));
    let slot = module
        .get_slots_with_initialized_token()
        .expect("lists slots")
        .into_iter()
        .find(|slot| {
            module
                .get_token_info(*slot)
                .is_ok_and(|info| info.label().trim_end() == "sessions")
        })
        .expect("finds the token");
    for round in 0..3u8 {
        let other = module.open_ro_session(slot).expect("opens a session");
        other.logout().expect("C_Logout logs the whole process out");
        drop(other);
        let message = [b'a', b'f', b't', b'e', b'r', round];
        let signature = key.sign(&message).expect("the key logs in again and signs");
        check(&message, signature);
    }
}

#[test]
fn signatures_from_several_threads_all_verify() {
    let tokens = tokens();
    let key =
        Arc::new(Pkcs11Key::generate(&tokens.settings("threads", "busy")).expect("makes the key"));
    let public = key.public_key();
    let workers: Vec<_> = (0..4u8)
        .map(|worker| {
            let key = key.clone();
            std::thread::spawn(move || {
                for n in 0..25u8 {
                    let message = [worker, n, 0xca, 0x1e];
                    let signature = key.sign(&message).expect("the token signs");
                    public
                        .verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature))
                        .expect("each signature verifies");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("no thread panics");
    }
}

#[test]
fn a_p256_key_made_in_the_token_signs_der_ecdsa_that_verifies_with_its_public_key() {
    use p256::ecdsa::signature::Verifier as _;
    let tokens = tokens();
    let settings = tokens.settings("ecdsa", "tsa-key");
    let key = Pkcs11EcdsaKey::generate(&settings).expect("makes a P-256 key in the token");
    let message = b"the signed attributes of a timestamp token, say";
    let der = key.sign_sha256(message).expect("the token signs");
    let signature = p256::ecdsa::Signature::from_der(&der).expect("a DER ECDSA-Sig-Value");
    key.public_key()
        .verify(message, &signature)
        .expect("verifies with the public key alone");
    assert!(key
        .public_key()
        .verify(b"another message", &signature)
        .is_err());

    // Opened again by label, it is the same key; the label is not taken twice.
    let again = Pkcs11EcdsaKey::open(&settings).expect("opens the key by its label");
    assert_eq!(again.public_key(), key.public_key());
    let error = Pkcs11EcdsaKey::generate(&settings).expect_err("a second key of that label");
    assert!(error.to_string().contains("already exists"), "{error}");

    // An Ed25519 key is not a P-256 key, and the other way round: each says so.
    let edwards = tokens.settings("ecdsa", "note-key");
    Pkcs11Key::generate(&edwards).expect("makes an Ed25519 key");
    let error = Pkcs11EcdsaKey::open(&edwards).expect_err("not a P-256 key");
    assert!(
        error.to_string().contains("not an ECDSA P-256 key"),
        "{error}"
    );
    let error = Pkcs11Key::open(&settings).expect_err("not an Ed25519 key");
    assert!(
        error.to_string().contains("not an Edwards-curve"),
        "{error}"
    );
}
