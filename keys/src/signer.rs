//! [`NoteSigner`]: a named Ed25519 note key, in a file or in a token.

use std::fmt;
use std::sync::Arc;

use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::cosignature::{
    signed_message, Cosignature, CosignatureError, CosignatureV1, MAX_TIMESTAMP,
};
use cairn_spec::note::{
    Ed25519Kind, KeyId, KeyName, Note, NoteSignature, PlainEd25519, SignerKey, VerifierKey,
};

use crate::pkcs11::{Pkcs11Error, Pkcs11Key};

/// Why a key could not sign.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key in the token failed.
    #[error(transparent)]
    Token(#[from] Pkcs11Error),
    /// A checkpoint's origin is not the key's name.
    #[error("the checkpoint's origin `{origin}` is not the key's name `{key_name}`")]
    Origin {
        /// The checkpoint's origin.
        origin: String,
        /// The key's name.
        key_name: String,
    },
    /// The note could not be made or signed.
    #[error("note: {0}")]
    Note(String),
    /// A cosignature could not be made.
    #[error("cosignature: {0}")]
    Cosignature(#[from] CosignatureError),
}

/// Where the private key is.
enum Held<K: Ed25519Kind> {
    File(Box<SignerKey<K>>),
    Token(Arc<Pkcs11Key>),
}

/// A named Ed25519 note key of kind `K` (a log's checkpoint key: [`PlainEd25519`]; a witness's
/// cosignature key: [`CosignatureV1`]), held in a file or a PKCS#11 token.
pub struct NoteSigner<K: Ed25519Kind> {
    key_name: KeyName,
    key_id: KeyId,
    public_key: ed25519_dalek::VerifyingKey,
    held: Held<K>,
}

impl<K: Ed25519Kind> NoteSigner<K> {
    /// The signer of a key already in memory (a key file's contents, a test key).
    pub fn from_key(key: SignerKey<K>) -> NoteSigner<K> {
        let verifier = key.verifier();
        NoteSigner {
            key_name: key.key_name().clone(),
            key_id: key.key_id(),
            public_key: *verifier.public_key(),
            held: Held::File(Box::new(key)),
        }
    }

    /// The signer of an Ed25519 key in a token, under `key_name` (the token keeps the key,
    /// the configuration its name: the key ID is computed from both).
    pub fn from_token(key_name: KeyName, key: Arc<Pkcs11Key>) -> NoteSigner<K> {
        let public_key = key.public_key();
        NoteSigner {
            key_id: KeyId::compute(&key_name, K::SIGNATURE_TYPE, public_key.as_bytes()),
            key_name,
            public_key,
            held: Held::Token(key),
        }
    }

    /// The key's name.
    pub fn key_name(&self) -> &KeyName {
        &self.key_name
    }

    /// The key's ID.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The matching verifier: all that anyone checking its signatures needs.
    pub fn verifier(&self) -> VerifierKey<K> {
        VerifierKey::new(self.key_name.clone(), self.public_key)
    }

    /// Where the key is, for logs and errors: never the key.
    pub fn location(&self) -> String {
        match &self.held {
            Held::File(_) => "a key file".to_owned(),
            Held::Token(key) => key.location(),
        }
    }

    /// Whether the key is in a token, whose signatures may fail or be slow.
    pub fn is_in_token(&self) -> bool {
        matches!(self.held, Held::Token(_))
    }

    /// The Ed25519 signature of `message`. May block on the token.
    fn sign_bytes(&self, message: &[u8]) -> Result<[u8; 64], KeyError> {
        match &self.held {
            Held::File(key) => Ok(key.sign_bytes(message)),
            Held::Token(key) => Ok(key.sign(message)?),
        }
    }
}

impl<K: Ed25519Kind> NoteSigner<K> {
    /// This key's signature of a key history statement (spec/docs/key-history.md): a type-0x01
    /// note signature under the key's name, whatever its kind, so a witness's cosignature key
    /// signs its history as a log's key does. Only a statement's text is signed (never, say, a
    /// cosignature message). May block on the token.
    pub fn sign_statement(&self, note: &Note) -> Result<NoteSignature, KeyError> {
        cairn_spec::key_history::Statement::parse(note.text(), 0)
            .map_err(|error| KeyError::Note(format!("not a key history statement: {error}")))?;
        let signature = self.sign_bytes(note.text().as_bytes())?;
        Ok(cairn_spec::key_history::statement_signature(
            &self.key_name,
            &self.public_key,
            signature,
        ))
    }
}

impl<K: Ed25519Kind> From<SignerKey<K>> for NoteSigner<K> {
    fn from(key: SignerKey<K>) -> NoteSigner<K> {
        NoteSigner::from_key(key)
    }
}

impl NoteSigner<PlainEd25519> {
    /// `checkpoint` as a note signed by this key, whose name must be the checkpoint's origin
    /// (a Cairn log's key is named after its origin). May block on the token.
    pub fn sign_checkpoint(&self, checkpoint: &Checkpoint) -> Result<Note, KeyError> {
        if checkpoint.origin != self.key_name.as_str() {
            return Err(KeyError::Origin {
                origin: checkpoint.origin.clone(),
                key_name: self.key_name.as_str().to_owned(),
            });
        }
        let mut note = checkpoint
            .to_note()
            .map_err(|error| KeyError::Note(error.to_string()))?;
        let signature = self.sign(&note)?;
        note.add_signature(signature)
            .map_err(|error| KeyError::Note(error.to_string()))?;
        Ok(note)
    }

    /// This key's signature of the note's text. May block on the token.
    pub fn sign(&self, note: &Note) -> Result<NoteSignature, KeyError> {
        Ok(NoteSignature {
            key_name: self.key_name.clone(),
            key_id: self.key_id,
            signature: self.sign_bytes(note.text().as_bytes())?.to_vec(),
        })
    }
}

impl NoteSigner<CosignatureV1> {
    /// Cosigns `checkpoint` as of `timestamp` (POSIX seconds). May block on the token.
    pub fn cosign(&self, checkpoint: &Checkpoint, timestamp: u64) -> Result<Cosignature, KeyError> {
        if timestamp > MAX_TIMESTAMP {
            return Err(CosignatureError::TimestampOutOfRange { timestamp }.into());
        }
        let text = checkpoint.to_text().map_err(CosignatureError::from)?;
        let signature = self.sign_bytes(&signed_message(text.as_bytes(), timestamp))?;
        Ok(Cosignature {
            key_name: self.key_name.clone(),
            key_id: self.key_id,
            timestamp,
            signature,
        })
    }
}

impl<K: Ed25519Kind> fmt::Debug for NoteSigner<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("key_name", &self.key_name)
            .field("key_id", &self.key_id)
            .field("location", &self.location())
            .finish()
    }
}
