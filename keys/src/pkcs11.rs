//! Ed25519 keys in a PKCS#11 token: found by label, used through `CKM_EDDSA`, never read out.
//!
//! A key is named by its module (the PKCS#11 library's path), its token (by label, or by
//! slot number), its label, and the user PIN, read from a file or an environment variable and
//! never from a command-line flag (flags show in `ps`). [`Pkcs11Key::generate`] makes a key pair
//! inside the token (`CKM_EC_EDWARDS_KEY_PAIR_GEN` on edwards25519): the private half is
//! sensitive and not extractable, so no backup of it exists outside the token; the public
//! half is read back from `CKA_EC_POINT`.
//!
//! A module is loaded and initialised once per process (PKCS#11 allows one `C_Initialize` per
//! process) and kept for its life. Each key keeps one logged-in session, used by one signature
//! at a time; a signature that fails because the session or the login was lost (a token
//! pulled and put back, a module restarted) opens a new session and tries once more, so the
//! error a caller sees is the token's own ([`session`]).
//!
//! A timestamp authority's key is an ECDSA P-256 key in a token instead ([`ecdsa`]).

pub mod ecdsa;
mod session;

use std::fmt;
use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CryptokiError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use parking_lot::Mutex;

use session::KeySession;

/// DER of the object identifier id-Ed25519 (1.3.101.112, RFC 8410): `CKA_EC_PARAMS` of an
/// Ed25519 key.
const ED25519_EC_PARAMS: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];

/// The longest PIN read from a file or the environment, in bytes.
const MAX_PIN_BYTES: usize = 256;

/// The longest token or key label, in bytes (PKCS#11 pads token labels to 32).
const MAX_LABEL_BYTES: usize = 256;

/// Which token holds the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenChoice {
    /// The token with this label (the label `softhsm2-util --init-token --label` gave it).
    Label(String),
    /// The token in this slot.
    Slot(u64),
}

/// Where the user PIN comes from: never a flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pin {
    /// The first line of this file (mode 0600 or stricter).
    File(PathBuf),
    /// This environment variable.
    Env(String),
}

/// Where a key in a token is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pkcs11Settings {
    /// The PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The token.
    pub token: TokenChoice,
    /// The key pair's `CKA_LABEL`.
    pub key_label: String,
    /// The user PIN's source.
    pub pin: Pin,
}

/// Why a key in a token could not be opened, made or used.
#[derive(Debug, thiserror::Error)]
pub enum Pkcs11Error {
    /// The module could not be loaded or initialised.
    #[error("PKCS#11 module {module}: {detail}")]
    Module {
        /// The module's path.
        module: String,
        /// What failed.
        detail: String,
    },
    /// No token answers to the choice (none with that label, or an empty slot).
    #[error("PKCS#11 module {module}: {detail}")]
    NoToken {
        /// The module's path.
        module: String,
        /// Which token was wanted and which are there.
        detail: String,
    },
    /// The PIN could not be read.
    #[error("PKCS#11 PIN: {0}")]
    Pin(String),
    /// The token refused the PIN.
    #[error("PKCS#11 token {token}: the PIN was refused ({detail})")]
    Login {
        /// The token.
        token: String,
        /// The token's answer.
        detail: String,
    },
    /// No key pair with that label in the token, or not an Ed25519 one.
    #[error("PKCS#11 token {token}: {detail}")]
    NoKey {
        /// The token.
        token: String,
        /// What was looked for and what was found.
        detail: String,
    },
    /// A key with that label already exists (generation refuses to make a second).
    #[error("PKCS#11 token {token}: a key labelled {label:?} already exists; choose another label or delete it first")]
    Exists {
        /// The token.
        token: String,
        /// The label.
        label: String,
    },
    /// A call into the token failed.
    #[error("PKCS#11 token {token}: {operation} failed: {detail}")]
    Call {
        /// The token.
        token: String,
        /// What was being done.
        operation: &'static str,
        /// The module's answer.
        detail: String,
    },
    /// A setting is out of its bounds.
    #[error("PKCS#11 setting: {0}")]
    Setting(String),
}

/// The modules loaded in this process, each initialised once and kept.
static MODULES: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());

/// The module at `path`, loaded and initialised once per process.
fn module(path: &Path) -> Result<Pkcs11, Pkcs11Error> {
    let mut modules = MODULES.lock();
    if let Some((_, module)) = modules.iter().find(|(loaded, _)| loaded == path) {
        return Ok(module.clone());
    }
    let failed = |detail: String| Pkcs11Error::Module {
        module: path.display().to_string(),
        detail,
    };
    if !path.is_file() {
        return Err(failed("no such file".into()));
    }
    let module = Pkcs11::new(path).map_err(|error| failed(format!("cannot be loaded: {error}")))?;
    match module.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CryptokiError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(error) => return Err(failed(format!("C_Initialize: {error}"))),
    }
    modules.push((path.to_path_buf(), module.clone()));
    Ok(module)
}

/// Reads the PIN from its source.
fn read_pin(pin: &Pin) -> Result<AuthPin, Pkcs11Error> {
    let text = match pin {
        Pin::File(path) => {
            use std::os::unix::fs::PermissionsExt as _;
            let metadata = std::fs::metadata(path)
                .map_err(|error| Pkcs11Error::Pin(format!("{}: {error}", path.display())))?;
            if metadata.permissions().mode() & 0o077 != 0 {
                return Err(Pkcs11Error::Pin(format!(
                    "{} may be read by others than its owner (chmod 600)",
                    path.display()
                )));
            }
            if metadata.len() > MAX_PIN_BYTES as u64 {
                return Err(Pkcs11Error::Pin(format!(
                    "{} is {} bytes, longer than a PIN ({MAX_PIN_BYTES})",
                    path.display(),
                    metadata.len()
                )));
            }
            std::fs::read_to_string(path)
                .map_err(|error| Pkcs11Error::Pin(format!("{}: {error}", path.display())))?
        }
        Pin::Env(name) => std::env::var(name)
            .map_err(|error| Pkcs11Error::Pin(format!("environment variable {name}: {error}")))?,
    };
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() || line.len() > MAX_PIN_BYTES {
        return Err(Pkcs11Error::Pin(format!(
            "the PIN must be 1 to {MAX_PIN_BYTES} bytes on its first line"
        )));
    }
    Ok(AuthPin::new(line.into()))
}

/// An Ed25519 key pair in a PKCS#11 token.
pub struct Pkcs11Key {
    key: KeySession,
    public_key: ed25519_dalek::VerifyingKey,
}

impl Pkcs11Key {
    /// Opens the key pair `settings` names: loads the module, finds the token, logs in, finds
    /// the private key and reads the public key.
    pub fn open(settings: &Pkcs11Settings) -> Result<Pkcs11Key, Pkcs11Error> {
        let (module, slot, token_label, pin) = open_token(settings)?;
        let session = login(&module, slot, &token_label, &pin, false)?;
        let (private, public_key) = find_pair(&session, &token_label, &settings.key_label)?;
        Ok(Pkcs11Key {
            key: KeySession::new(settings, module, slot, token_label, pin, session, private),
            public_key,
        })
    }

    /// Makes a new Ed25519 key pair in the token under `settings.key_label` (refusing a label
    /// already taken), then opens it.
    pub fn generate(settings: &Pkcs11Settings) -> Result<Pkcs11Key, Pkcs11Error> {
        generate_pair(
            settings,
            &Mechanism::EccEdwardsKeyPairGen,
            &ED25519_EC_PARAMS,
            "C_GenerateKeyPair (edwards25519)",
        )?;
        Pkcs11Key::open(settings)
    }

    /// The public key.
    pub fn public_key(&self) -> ed25519_dalek::VerifyingKey {
        self.public_key
    }

    /// Where the key is: module, token and label (never the PIN).
    pub fn location(&self) -> String {
        self.key.location()
    }

    /// The Ed25519 signature of `message` (pure Ed25519, RFC 8032), made in the token. Blocks
    /// for the token's call; one signature at a time per key.
    pub fn sign(&self, message: &[u8]) -> Result<[u8; 64], Pkcs11Error> {
        const OPERATION: &str = "C_Sign (EdDSA)";
        let token = &self.key.token_label;
        let label = &self.key.settings.key_label;
        let refind = |session: &Session| {
            let (private, public_key) = find_pair(session, token, label)?;
            if public_key != self.public_key {
                return Err(replaced(token, label));
            }
            Ok(private)
        };
        let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
        let signature = self.key.sign(&mechanism, OPERATION, message, &refind)?;
        let signature: [u8; 64] =
            signature
                .try_into()
                .map_err(|bytes: Vec<u8>| Pkcs11Error::Call {
                    token: token.clone(),
                    operation: OPERATION,
                    detail: format!("{} bytes answered, not 64", bytes.len()),
                })?;
        // A token that signs with another key than the one it showed fails here, not at a
        // verifier's.
        let checked = ed25519_dalek::Signature::from_bytes(&signature);
        if self.public_key.verify_strict(message, &checked).is_err() {
            return Err(Pkcs11Error::Call {
                token: token.clone(),
                operation: OPERATION,
                detail: "the signature does not verify under the key's public key".into(),
            });
        }
        Ok(signature)
    }
}

/// The error for a key found again under its label that is not the one opened at the start.
fn replaced(token: &str, label: &str) -> Pkcs11Error {
    Pkcs11Error::NoKey {
        token: token.to_owned(),
        detail: format!(
            "the key labelled {label:?} is not the one opened at the start (it was replaced)"
        ),
    }
}

/// Makes a key pair with `mechanism` on the curve whose `CKA_EC_PARAMS` are `ec_params` in the
/// token, under `settings.key_label`, refusing a label already taken. The private half is
/// sensitive and not extractable.
fn generate_pair(
    settings: &Pkcs11Settings,
    mechanism: &Mechanism<'_>,
    ec_params: &[u8],
    operation: &'static str,
) -> Result<(), Pkcs11Error> {
    let (module, slot, token_label, pin) = open_token(settings)?;
    let session = login(&module, slot, &token_label, &pin, true)?;
    let label = settings.key_label.as_bytes().to_vec();
    let taken = session
        .find_objects(&[Attribute::Label(label.clone())])
        .map_err(|error| call(&token_label, "C_FindObjects", error))?;
    if !taken.is_empty() {
        return Err(Pkcs11Error::Exists {
            token: token_label,
            label: settings.key_label.clone(),
        });
    }
    let public_template = [
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::EcParams(ec_params.to_vec()),
        Attribute::Label(label.clone()),
    ];
    let private_template = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Label(label),
    ];
    session
        .generate_key_pair(mechanism, &public_template, &private_template)
        .map_err(|error| call(&token_label, operation, error))?;
    Ok(())
}

/// The module, the token's slot and label, and the PIN, checked.
fn open_token(settings: &Pkcs11Settings) -> Result<(Pkcs11, Slot, String, AuthPin), Pkcs11Error> {
    if settings.key_label.is_empty() || settings.key_label.len() > MAX_LABEL_BYTES {
        return Err(Pkcs11Error::Setting(format!(
            "a key label is 1 to {MAX_LABEL_BYTES} bytes"
        )));
    }
    let pin = read_pin(&settings.pin)?;
    let module = module(&settings.module)?;
    let shown = settings.module.display().to_string();
    let slots = module
        .get_slots_with_initialized_token()
        .map_err(|error| Pkcs11Error::Module {
            module: shown.clone(),
            detail: format!("C_GetSlotList: {error}"),
        })?;
    let mut seen = Vec::new();
    for slot in slots {
        let Ok(info) = module.get_token_info(slot) else {
            continue;
        };
        let label = info.label().trim_end().to_owned();
        let chosen = match &settings.token {
            TokenChoice::Label(wanted) => *wanted == label,
            TokenChoice::Slot(wanted) => *wanted == slot.id(),
        };
        if chosen {
            return Ok((module, slot, label, pin));
        }
        seen.push(format!("{label:?} in slot {}", slot.id()));
    }
    let wanted = match &settings.token {
        TokenChoice::Label(label) => format!("no initialised token labelled {label:?}"),
        TokenChoice::Slot(slot) => format!("no initialised token in slot {slot}"),
    };
    let detail = if seen.is_empty() {
        format!("{wanted} (the module has no initialised token: was it removed?)")
    } else {
        format!("{wanted} (it has {})", seen.join(", "))
    };
    Err(Pkcs11Error::NoToken {
        module: shown,
        detail,
    })
}

impl fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("location", &self.location())
            .finish()
    }
}

fn call(token: &str, operation: &'static str, error: CryptokiError) -> Pkcs11Error {
    Pkcs11Error::Call {
        token: token.to_owned(),
        operation,
        detail: error.to_string(),
    }
}

/// A new session on `slot`, logged in as the user.
fn login(
    module: &Pkcs11,
    slot: Slot,
    token: &str,
    pin: &AuthPin,
    read_write: bool,
) -> Result<Session, Pkcs11Error> {
    let session = if read_write {
        module.open_rw_session(slot)
    } else {
        module.open_ro_session(slot)
    }
    .map_err(|error| call(token, "C_OpenSession", error))?;
    match session.login(UserType::User, Some(pin)) {
        // Sessions of one application share the login.
        Ok(()) | Err(CryptokiError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
        Err(CryptokiError::Pkcs11(
            rv @ (RvError::PinIncorrect
            | RvError::PinLocked
            | RvError::PinExpired
            | RvError::PinInvalid),
            _,
        )) => Err(Pkcs11Error::Login {
            token: token.to_owned(),
            detail: rv.to_string(),
        }),
        Err(error) => Err(call(token, "C_Login", error)),
    }
}

/// The private and the public key labelled `label`: one of each.
fn find_handles(
    session: &Session,
    token: &str,
    label: &str,
) -> Result<(ObjectHandle, ObjectHandle), Pkcs11Error> {
    let find = |class: ObjectClass| {
        session
            .find_objects(&[
                Attribute::Class(class),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map_err(|error| call(token, "C_FindObjects", error))
    };
    let no_key = |detail: String| Pkcs11Error::NoKey {
        token: token.to_owned(),
        detail,
    };
    let privates = find(ObjectClass::PRIVATE_KEY)?;
    let publics = find(ObjectClass::PUBLIC_KEY)?;
    let (private, public) = match (privates.as_slice(), publics.as_slice()) {
        ([private], [public]) => (*private, *public),
        ([], _) => return Err(no_key(format!("no private key labelled {label:?}"))),
        (_, []) => {
            return Err(no_key(format!(
                "no public key labelled {label:?} beside its private key"
            )))
        }
        _ => {
            return Err(no_key(format!(
            "{} private and {} public keys are labelled {label:?}: a label must name one key pair",
            privates.len(),
            publics.len()
        )))
        }
    };
    Ok((private, public))
}

/// The private key labelled `label` and its public key, both Ed25519.
fn find_pair(
    session: &Session,
    token: &str,
    label: &str,
) -> Result<(ObjectHandle, ed25519_dalek::VerifyingKey), Pkcs11Error> {
    let (private, public) = find_handles(session, token, label)?;
    let no_key = |detail: String| Pkcs11Error::NoKey {
        token: token.to_owned(),
        detail,
    };
    let attributes = session
        .get_attributes(public, &[AttributeType::KeyType, AttributeType::EcPoint])
        .map_err(|error| call(token, "C_GetAttributeValue", error))?;
    let mut key_type = None;
    let mut point = None;
    for attribute in attributes {
        match attribute {
            Attribute::KeyType(found) => key_type = Some(found),
            Attribute::EcPoint(bytes) => point = Some(bytes),
            _ => {}
        }
    }
    if key_type != Some(KeyType::EC_EDWARDS) {
        return Err(no_key(format!(
            "the key labelled {label:?} is not an Edwards-curve (Ed25519) key"
        )));
    }
    let point =
        point.ok_or_else(|| no_key(format!("the key labelled {label:?} has no CKA_EC_POINT")))?;
    let public_key = ed25519_point(&point).ok_or_else(|| {
        no_key(format!(
            "the key labelled {label:?} is not an Ed25519 public key"
        ))
    })?;
    Ok((private, public_key))
}

/// An Ed25519 public key from `CKA_EC_POINT`: the 32 bytes, or (as PKCS#11 v2.40 and SoftHSM2
/// give it) a DER OCTET STRING holding them.
fn ed25519_point(point: &[u8]) -> Option<ed25519_dalek::VerifyingKey> {
    let raw: &[u8] = match point {
        [0x04, 32, rest @ ..] if rest.len() == 32 => rest,
        raw if raw.len() == 32 => raw,
        _ => return None,
    };
    let bytes: [u8; 32] = raw.try_into().ok()?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_key_is_read_raw_or_in_an_octet_string() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
        let mut wrapped = vec![0x04, 32];
        wrapped.extend_from_slice(key.as_bytes());
        assert_eq!(ed25519_point(&wrapped), Some(key));
        assert_eq!(ed25519_point(key.as_bytes()), Some(key));
        assert_eq!(ed25519_point(&wrapped[..33]), None);
        assert_eq!(ed25519_point(&[0x04, 31]), None);
    }

    #[test]
    fn a_pin_comes_from_its_first_line_and_a_loose_file_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("pin");
        std::fs::write(&path, "1234\nignored\n").expect("writes");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let loose = read_pin(&Pin::File(path.clone())).expect_err("a loose PIN file is refused");
        assert!(loose.to_string().contains("chmod 600"), "{loose}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        use secrecy::ExposeSecret as _;
        let pin = read_pin(&Pin::File(path)).expect("reads the PIN");
        assert_eq!(pin.expose_secret(), "1234");
        let missing = read_pin(&Pin::Env("CAIRN_KEYS_TEST_NO_SUCH_VARIABLE".into()))
            .expect_err("an unset variable is refused");
        assert!(
            missing
                .to_string()
                .contains("CAIRN_KEYS_TEST_NO_SUCH_VARIABLE"),
            "{missing}"
        );
    }
}
