//! Receipts: the portable, offline-verifiable proof that one leaf is in a log.
//!
//! A receipt bundles everything an auditor needs, years later and without asking the log:
//! the leaf (or only its hash), its index, the RFC 9162 inclusion proof, the checkpoint note
//! with the log's signature and the witnesses' cosignatures, and RFC 3161 timestamp tokens over
//! that checkpoint. [`verify`] checks all of it against a [`Policy`] and says exactly what
//! failed; nothing in a receipt is trusted because the receipt says so.
//!
//! The JSON form (`cairn.receipt/v1`, fields in base64) is documented in
//! `spec/docs/receipt.md`. Every receipt also converts to and from a plain C2SP tlog-proof
//! (`c2sp.org/tlog-proof@v1`), which carries no timestamps.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;

use base64::Engine as _;

use crate::checkpoint::Checkpoint;
use crate::cosignature::Cosignature;
use crate::hash::Hash;
use crate::merkle::{self, ProofError, MAX_INCLUSION_PROOF_LEN};
use crate::note::{Ed25519Batch, Ed25519Checker, Note, NoteVerifier, SingleEd25519};
use crate::policy::Policy;
use crate::time::Instant;
use crate::timestamp::{self, TimestampError, TokenVerifier, TrustAnchors};

/// The `format` of a Cairn receipt.
pub const RECEIPT_FORMAT: &str = "cairn.receipt/v1";
/// The first line of a C2SP tlog-proof.
pub const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";
/// Most bytes of a receipt's JSON.
pub const MAX_RECEIPT_BYTES: usize = 4 << 20;
/// Most bytes of the leaf a receipt carries.
pub const MAX_LEAF_BYTES: usize = 1 << 20;
/// Most bytes of the checkpoint note a receipt carries.
pub const MAX_CHECKPOINT_BYTES: usize = 64 * 1024;
/// Most timestamp tokens a receipt carries.
pub const MAX_TIMESTAMPS: usize = 16;

/// A receipt, as exchanged in JSON.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Always [`RECEIPT_FORMAT`].
    pub format: String,
    /// The leaf's index in the log.
    pub index: u64,
    /// The leaf itself, if the receipt carries it (base64).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "optional_base64"
    )]
    pub leaf: Option<Vec<u8>>,
    /// The RFC 9162 leaf hash (base64).
    pub leaf_hash: Hash,
    /// The inclusion proof of the leaf in the checkpoint's tree, from the leaf's sibling up.
    pub inclusion_proof: Vec<Hash>,
    /// The checkpoint note: body, the log's signature and the witnesses' cosignatures.
    pub checkpoint: String,
    /// RFC 3161 timestamp tokens over the checkpoint.
    #[serde(default)]
    pub timestamps: Vec<ReceiptTimestamp>,
}

/// One RFC 3161 timestamp token in a receipt. The token names its TSA itself (the signer
/// certificate); the receipt adds no unauthenticated label beside it, so that every byte of a
/// receipt is checked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptTimestamp {
    /// The DER TimeStampToken (a CMS ContentInfo), base64.
    #[serde(with = "base64_bytes")]
    pub token: Vec<u8>,
}

/// What a verified receipt proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReceipt {
    /// The log's origin.
    pub origin: String,
    /// The leaf's index.
    pub index: u64,
    /// The leaf hash.
    pub leaf_hash: Hash,
    /// The size of the checkpoint's tree.
    pub tree_size: u64,
    /// Its root.
    pub root: Hash,
    /// The policy names of the witnesses whose cosignatures verified, with their cosigning
    /// times (Unix seconds).
    pub witnesses: Vec<(String, u64)>,
    /// The verified timestamps, with the policy name of the TSA they chain to, if any.
    pub timestamps: Vec<(Option<String>, Instant)>,
    /// Signatures in the checkpoint by keys the policy does not know, which were not checked.
    pub unknown_signatures: usize,
}

/// Why a receipt was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The JSON is malformed, has unknown fields, or is too large.
    #[error("receipt is not valid {RECEIPT_FORMAT} JSON: {0}")]
    Json(String),
    /// The `format` is not [`RECEIPT_FORMAT`].
    #[error("receipt format is {found:?}, expected {RECEIPT_FORMAT:?}")]
    Format {
        /// The format found.
        found: String,
    },
    /// A part larger than its limit.
    #[error("receipt {what} has {found}, more than the limit of {limit}")]
    TooLarge {
        /// Which part.
        what: &'static str,
        /// Its size or count.
        found: usize,
        /// The limit.
        limit: usize,
    },
    /// The checkpoint note does not parse.
    #[error("receipt checkpoint: {0}")]
    Checkpoint(String),
    /// No log of the policy has this origin.
    #[error("the policy trusts no log with origin {origin:?}")]
    UnknownLog {
        /// The checkpoint's origin.
        origin: String,
    },
    /// A signature in the checkpoint by a key of the policy does not verify, or the log did
    /// not sign it.
    #[error("receipt checkpoint signatures: {0}")]
    Signature(String),
    /// The cosigning witnesses do not satisfy the policy's quorum.
    #[error("witness quorum not met: cosigned by {cosigned:?}")]
    QuorumNotMet {
        /// The policy names of the witnesses that did cosign.
        cosigned: Vec<String>,
    },
    /// The leaf does not hash to the receipt's leaf hash.
    #[error("the leaf hashes to {computed}, but the receipt says {stated}")]
    LeafHashMismatch {
        /// The leaf hash in the receipt.
        stated: Hash,
        /// The hash of the leaf.
        computed: Hash,
    },
    /// The inclusion proof does not lead to the checkpoint's root.
    #[error("inclusion proof of index {index} in tree size {tree_size}: {source}")]
    Inclusion {
        /// The leaf index.
        index: u64,
        /// The tree size.
        tree_size: u64,
        /// What the proof check found.
        source: ProofError,
    },
    /// A timestamp token does not verify over this checkpoint.
    #[error("timestamp {position}: {source}")]
    Timestamp {
        /// Its position in the receipt (0-based).
        position: usize,
        /// What the token check found.
        source: TimestampError,
    },
    /// Fewer distinct trusted TSAs timestamped the checkpoint than the policy asks for.
    #[error("timestamps from {found} trusted TSAs, the policy asks for {required}")]
    TimestampQuorumNotMet {
        /// Distinct trusted TSAs found.
        found: usize,
        /// The policy's TSA quorum.
        required: usize,
    },
    /// A tlog-proof that does not parse, or lacks the leaf needed to make a receipt.
    #[error("tlog-proof: {0}")]
    TlogProof(String),
}

impl Receipt {
    /// Reads a receipt from its JSON form, strictly (unknown fields and duplicates refused).
    pub fn from_json(json: &[u8]) -> Result<Receipt, ReceiptError> {
        if json.len() > MAX_RECEIPT_BYTES {
            return Err(ReceiptError::TooLarge {
                what: "JSON bytes",
                found: json.len(),
                limit: MAX_RECEIPT_BYTES,
            });
        }
        let receipt: Receipt =
            serde_json::from_slice(json).map_err(|error| ReceiptError::Json(error.to_string()))?;
        receipt.check_shape()?;
        Ok(receipt)
    }

    /// The JSON form, pretty-printed.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a receipt always serialises")
    }

    fn check_shape(&self) -> Result<(), ReceiptError> {
        if self.format != RECEIPT_FORMAT {
            return Err(ReceiptError::Format {
                found: self.format.chars().take(64).collect(),
            });
        }
        let limits = [
            (
                "inclusion proof hashes",
                self.inclusion_proof.len(),
                MAX_INCLUSION_PROOF_LEN,
            ),
            ("timestamps", self.timestamps.len(), MAX_TIMESTAMPS),
            (
                "leaf bytes",
                self.leaf.as_ref().map_or(0, Vec::len),
                MAX_LEAF_BYTES,
            ),
            (
                "checkpoint bytes",
                self.checkpoint.len(),
                MAX_CHECKPOINT_BYTES,
            ),
        ];
        for (what, found, limit) in limits {
            if found > limit {
                return Err(ReceiptError::TooLarge { what, found, limit });
            }
        }
        for timestamp in &self.timestamps {
            if timestamp.token.len() > timestamp::MAX_TOKEN_SIZE {
                return Err(ReceiptError::TooLarge {
                    what: "timestamp token bytes",
                    found: timestamp.token.len(),
                    limit: timestamp::MAX_TOKEN_SIZE,
                });
            }
        }
        Ok(())
    }

    /// The receipt as a C2SP tlog-proof. The leaf, when the receipt has it, goes in the
    /// `extra` line; timestamps have no place in a tlog-proof and are left out.
    pub fn to_tlog_proof(&self) -> String {
        let mut text = format!("{TLOG_PROOF_HEADER}\n");
        if let Some(leaf) = &self.leaf {
            text.push_str("extra ");
            text.push_str(&base64::engine::general_purpose::STANDARD.encode(leaf));
            text.push('\n');
        }
        text.push_str(&format!("index {}\n", self.index));
        for hash in &self.inclusion_proof {
            text.push_str(&hash.to_base64());
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&self.checkpoint);
        text
    }

    /// Reads a C2SP tlog-proof. The leaf is `leaf` if given, else the proof's `extra` data
    /// (which tlog-proof leaves unauthenticated: verification checks it against the tree).
    pub fn from_tlog_proof(text: &str, leaf: Option<&[u8]>) -> Result<Receipt, ReceiptError> {
        let bad = |reason: &str| ReceiptError::TlogProof(reason.to_string());
        if text.len() > MAX_RECEIPT_BYTES {
            return Err(bad("larger than the receipt limit"));
        }
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line before the checkpoint"))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(TLOG_PROOF_HEADER) {
            return Err(bad("the first line must be c2sp.org/tlog-proof@v1"));
        }
        let mut line = lines.next().ok_or_else(|| bad("missing index line"))?;
        let mut extra = None;
        if let Some(encoded) = line.strip_prefix("extra ") {
            extra = Some(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|_| bad("extra is not base64"))?,
            );
            line = lines.next().ok_or_else(|| bad("missing index line"))?;
        }
        let index = line
            .strip_prefix("index ")
            .and_then(parse_decimal)
            .ok_or_else(|| bad("expected 'index N' with N in decimal, no leading zeros"))?;
        let mut inclusion_proof = Vec::new();
        for line in lines {
            if inclusion_proof.len() == MAX_INCLUSION_PROOF_LEN {
                return Err(bad("too many inclusion proof lines"));
            }
            inclusion_proof
                .push(Hash::from_base64(line).map_err(|_| bad("a proof line is not a hash"))?);
        }
        let leaf = match leaf {
            Some(leaf) => leaf.to_vec(),
            None => extra.ok_or_else(|| {
                bad("the proof has no extra data; the leaf must be given to make a receipt")
            })?,
        };
        let receipt = Receipt {
            format: RECEIPT_FORMAT.to_string(),
            index,
            leaf_hash: Hash::of_leaf(&leaf),
            leaf: Some(leaf),
            inclusion_proof,
            checkpoint: checkpoint.to_string(),
            timestamps: Vec::new(),
        };
        receipt.check_shape()?;
        Ok(receipt)
    }
}

/// Verifies a receipt completely against a policy: the log's signature, the witness quorum,
/// the leaf hash, the inclusion proof, every timestamp token, and the TSA quorum.
pub fn verify(receipt: &Receipt, policy: &Policy) -> Result<VerifiedReceipt, ReceiptError> {
    receipt.check_shape()?;
    let note = verify_note(&receipt.checkpoint, policy, &mut SingleEd25519)?;
    let mut tokens = TokenVerifier::uncached();
    let mut timestamps = Vec::with_capacity(receipt.timestamps.len());
    for (position, stored) in receipt.timestamps.iter().enumerate() {
        let timestamp = verify_timestamp(
            &stored.token,
            note.imprint,
            policy,
            &mut tokens,
            &mut SingleEd25519,
        )
        .map_err(|source| ReceiptError::Timestamp { position, source })?;
        timestamps.push(timestamp);
    }
    finish(receipt, &note, timestamps, policy)
}

/// Verifies many receipts against one policy, as an auditor does, remembering what is
/// legitimately the same from one receipt to the next (`spec/docs/receipt.md`, "Verifying many
/// receipts"):
///
/// - checkpoint notes whose signatures and witness quorum verified, by the note's bytes;
/// - timestamp tokens that verified over a checkpoint, by the token's bytes and that
///   checkpoint's imprint;
/// - TSA certificates and the certificate signatures of their chains, by their DER
///   ([`TokenVerifier`]).
///
/// A remembered result stands only for exactly the same bytes, and only successes are
/// remembered. Everything particular to a receipt (its shape, leaf hash, inclusion proof, and
/// the TSA quorum over its tokens) is checked for every receipt. [`ReceiptVerifier::verify`]
/// gives exactly the answer of [`verify`]; [`ReceiptVerifier::verify_batch`] also verifies the
/// Ed25519 signatures of many receipts in batches.
pub struct ReceiptVerifier<'a> {
    policy: &'a Policy,
    notes: HashMap<Box<[u8]>, Arc<NoteVerdict>>,
    timestamps: HashMap<Box<[u8]>, ([u8; 32], TimestampVerdict)>,
    tokens: TokenVerifier,
    batch: Ed25519Batch,
}

/// How many verified notes, and how many verified tokens, a [`ReceiptVerifier`] remembers; it
/// forgets them all when it would hold more.
const VERIFIER_CACHE_ENTRIES: usize = 1024;

/// How many receipts [`ReceiptVerifier::verify_batch`] puts in one batch verification.
pub const RECEIPTS_PER_BATCH: usize = 128;

impl<'a> ReceiptVerifier<'a> {
    /// A verifier for `policy`.
    pub fn new(policy: &'a Policy) -> ReceiptVerifier<'a> {
        ReceiptVerifier {
            policy,
            notes: HashMap::new(),
            timestamps: HashMap::new(),
            tokens: TokenVerifier::new(),
            batch: Ed25519Batch::new(),
        }
    }

    /// As [`verify`], with every signature checked one at a time (or remembered).
    pub fn verify(&mut self, receipt: &Receipt) -> Result<VerifiedReceipt, ReceiptError> {
        receipt.check_shape()?;
        let note = match self.notes.get(receipt.checkpoint.as_bytes()) {
            Some(note) => Arc::clone(note),
            None => {
                let note = Arc::new(verify_note(
                    &receipt.checkpoint,
                    self.policy,
                    &mut SingleEd25519,
                )?);
                self.remember_note(receipt.checkpoint.as_bytes(), &note);
                note
            }
        };
        let mut timestamps = Vec::with_capacity(receipt.timestamps.len());
        for (position, stored) in receipt.timestamps.iter().enumerate() {
            let known = self
                .timestamps
                .get(stored.token.as_slice())
                .filter(|(imprint, _)| *imprint == note.imprint);
            let timestamp = match known {
                Some((_, timestamp)) => timestamp.clone(),
                None => {
                    let timestamp = verify_timestamp(
                        &stored.token,
                        note.imprint,
                        self.policy,
                        &mut self.tokens,
                        &mut SingleEd25519,
                    )
                    .map_err(|source| ReceiptError::Timestamp { position, source })?;
                    self.remember_timestamp(&stored.token, note.imprint, &timestamp);
                    timestamp
                }
            };
            timestamps.push(timestamp);
        }
        finish(receipt, &note, timestamps, self.policy)
    }

    /// Verifies many receipts: one result per receipt, in order, each the same as
    /// [`ReceiptVerifier::verify`] would give, except that Ed25519 signatures are verified in
    /// batches of up to [`RECEIPTS_PER_BATCH`] receipts' worth (see [`Ed25519Batch`] for what a
    /// batch accepts). When a batch fails, it is split until the checkpoints and tokens whose
    /// signatures fail are found, and every receipt that depends on one is verified again one
    /// signature at a time, so that its error names exactly what failed.
    pub fn verify_batch(
        &mut self,
        receipts: &[Receipt],
    ) -> Vec<Result<VerifiedReceipt, ReceiptError>> {
        let mut results = Vec::with_capacity(receipts.len());
        for chunk in receipts.chunks(RECEIPTS_PER_BATCH) {
            self.verify_chunk(chunk, &mut results);
        }
        results
    }

    fn verify_chunk(
        &mut self,
        receipts: &[Receipt],
        results: &mut Vec<Result<VerifiedReceipt, ReceiptError>>,
    ) {
        self.batch.clear();
        let mut pending = Pending::default();
        let provisional: Vec<_> = receipts
            .iter()
            .map(|receipt| {
                let mut depends_on = Vec::new();
                let result = self.verify_deferred(receipt, &mut pending, &mut depends_on);
                (result, depends_on)
            })
            .collect();
        let mut bad = vec![false; pending.units.len()];
        self.find_bad_units(&pending.units, 0..pending.units.len(), &mut bad);
        for (bytes, (unit, note)) in pending.notes {
            if let (false, Ok(note)) = (bad[unit], note) {
                self.remember_note(bytes, &note);
            }
        }
        for (token, (unit, imprint, timestamp)) in pending.timestamps {
            if let (false, Ok(timestamp)) = (bad[unit], timestamp) {
                self.remember_timestamp(token, imprint, &timestamp);
            }
        }
        self.batch.clear();
        for (receipt, (result, depends_on)) in receipts.iter().zip(provisional) {
            if depends_on.iter().any(|&unit| bad[unit]) {
                results.push(self.verify(receipt));
            } else {
                results.push(result);
            }
        }
    }

    /// As [`ReceiptVerifier::verify`], with Ed25519 signatures deferred to the batch: the result
    /// is final once the units it depends on (pushed to `depends_on`) pass the batch.
    fn verify_deferred<'r>(
        &mut self,
        receipt: &'r Receipt,
        pending: &mut Pending<'r>,
        depends_on: &mut Vec<usize>,
    ) -> Result<VerifiedReceipt, ReceiptError> {
        receipt.check_shape()?;
        let note_bytes = receipt.checkpoint.as_bytes();
        let note = match self.notes.get(note_bytes) {
            Some(note) => Arc::clone(note),
            None => {
                let (unit, note) = match pending.notes.get(note_bytes) {
                    Some((unit, note)) => (*unit, note.clone()),
                    None => {
                        let start = self.batch.len();
                        let note = verify_note(&receipt.checkpoint, self.policy, &mut self.batch)
                            .map(Arc::new);
                        let unit = pending.add_unit(start..self.batch.len());
                        pending.notes.insert(note_bytes, (unit, note.clone()));
                        (unit, note)
                    }
                };
                depends_on.push(unit);
                note?
            }
        };
        let mut timestamps = Vec::with_capacity(receipt.timestamps.len());
        for (position, stored) in receipt.timestamps.iter().enumerate() {
            let token = stored.token.as_slice();
            let known = self
                .timestamps
                .get(token)
                .filter(|(imprint, _)| *imprint == note.imprint);
            let timestamp = match known {
                Some((_, timestamp)) => timestamp.clone(),
                None => {
                    let provisional = pending
                        .timestamps
                        .get(token)
                        .filter(|(_, imprint, _)| *imprint == note.imprint);
                    let (unit, timestamp) = match provisional {
                        Some((unit, _, timestamp)) => (*unit, timestamp.clone()),
                        None => {
                            let start = self.batch.len();
                            let timestamp = verify_timestamp(
                                token,
                                note.imprint,
                                self.policy,
                                &mut self.tokens,
                                &mut self.batch,
                            );
                            let unit = pending.add_unit(start..self.batch.len());
                            pending
                                .timestamps
                                .insert(token, (unit, note.imprint, timestamp.clone()));
                            (unit, timestamp)
                        }
                    };
                    depends_on.push(unit);
                    timestamp.map_err(|source| ReceiptError::Timestamp { position, source })?
                }
            };
            timestamps.push(timestamp);
        }
        finish(receipt, &note, timestamps, self.policy)
    }

    /// Marks in `bad` the units among `range` whose deferred signatures do not all verify,
    /// by bisection: one batch verification for a range that is good.
    fn find_bad_units(&self, units: &[Range<usize>], range: Range<usize>, bad: &mut [bool]) {
        if range.is_empty() {
            return;
        }
        let signatures = units[range.start].start..units[range.end - 1].end;
        if self.batch.verify_range(signatures) {
            return;
        }
        if range.len() == 1 {
            bad[range.start] = true;
            return;
        }
        let middle = range.start + range.len() / 2;
        self.find_bad_units(units, range.start..middle, bad);
        self.find_bad_units(units, middle..range.end, bad);
    }

    fn remember_note(&mut self, bytes: &[u8], note: &Arc<NoteVerdict>) {
        if self.notes.len() >= VERIFIER_CACHE_ENTRIES {
            self.notes.clear();
        }
        self.notes.insert(bytes.into(), Arc::clone(note));
    }

    fn remember_timestamp(
        &mut self,
        token: &[u8],
        imprint: [u8; 32],
        timestamp: &TimestampVerdict,
    ) {
        if self.timestamps.len() >= VERIFIER_CACHE_ENTRIES {
            self.timestamps.clear();
        }
        self.timestamps
            .insert(token.into(), (imprint, timestamp.clone()));
    }
}

/// The checkpoints and tokens verified with signatures deferred to the current batch. A unit
/// is one such verification; its signatures sit at a range of the batch.
#[derive(Default)]
struct Pending<'r> {
    units: Vec<Range<usize>>,
    /// Note bytes → (unit, what verifying the note gave).
    notes: HashMap<&'r [u8], (usize, NoteResult)>,
    /// Token bytes → (unit, the imprint it was verified over, what verifying it gave).
    timestamps: HashMap<&'r [u8], (usize, [u8; 32], TimestampResult)>,
}

type NoteResult = Result<Arc<NoteVerdict>, ReceiptError>;
type TimestampResult = Result<TimestampVerdict, TimestampError>;

impl Pending<'_> {
    fn add_unit(&mut self, signatures: Range<usize>) -> usize {
        self.units.push(signatures);
        self.units.len() - 1
    }
}

/// Everything about a receipt that depends only on its checkpoint note.
#[derive(Debug, Clone)]
struct NoteVerdict {
    checkpoint: Checkpoint,
    /// The imprint its timestamps must carry.
    imprint: [u8; 32],
    witnesses: Vec<(String, u64)>,
    unknown_signatures: usize,
}

/// A verified token: the policy name of the TSA it chains to, if any, and its genTime.
type TimestampVerdict = (Option<String>, Instant);

/// Steps 2 and 3 of verification: the note's signatures and the witness quorum.
fn verify_note(
    checkpoint_note: &str,
    policy: &Policy,
    signatures: &mut dyn Ed25519Checker,
) -> Result<NoteVerdict, ReceiptError> {
    let note = Note::parse(checkpoint_note.as_bytes())
        .map_err(|error| ReceiptError::Checkpoint(error.to_string()))?;
    let checkpoint = Checkpoint::from_note(&note)
        .map_err(|error| ReceiptError::Checkpoint(error.to_string()))?;
    let log = policy
        .log(&checkpoint.origin)
        .ok_or_else(|| ReceiptError::UnknownLog {
            origin: checkpoint.origin.clone(),
        })?;

    // One pass over the signatures with every key the policy knows: a bad signature by any of
    // them is an error (a tampered receipt), signatures by other keys are ignored.
    let mut verifiers: Vec<&dyn NoteVerifier> = vec![&log.key];
    verifiers.extend(
        policy
            .witnesses
            .iter()
            .map(|witness| &witness.key as &dyn NoteVerifier),
    );
    let verification = note
        .verify_with(&verifiers, signatures)
        .map_err(|error| ReceiptError::Signature(error.to_string()))?;
    if !verification.is_signed_by(log.key.key_name(), log.key.key_id()) {
        return Err(ReceiptError::Signature(format!(
            "no signature by the log key {}",
            log.key.to_vkey()
        )));
    }

    let mut witnesses = Vec::new();
    for witness in &policy.witnesses {
        let signature = verification.verified.iter().find(|signature| {
            signature.key_name == *witness.key.key_name()
                && signature.key_id == witness.key.key_id()
        });
        if let Some(signature) = signature {
            // Already verified as a cosignature by `note.verify_with` above; only read its time.
            let cosignature = Cosignature::from_note_signature(signature)
                .map_err(|error| ReceiptError::Signature(error.to_string()))?;
            witnesses.push((witness.name.clone(), cosignature.timestamp));
        }
    }
    let cosigned: BTreeSet<String> = witnesses.iter().map(|(name, _)| name.clone()).collect();
    if !policy.quorum_met(&cosigned) {
        return Err(ReceiptError::QuorumNotMet {
            cosigned: cosigned.into_iter().collect(),
        });
    }
    Ok(NoteVerdict {
        imprint: timestamp::checkpoint_imprint(note.text().as_bytes()),
        checkpoint,
        witnesses,
        unknown_signatures: verification.unverified.len(),
    })
}

/// Step 6 for one token: it must verify completely over the checkpoint; it counts for the
/// first TSA of the policy it chains to, if any (a valid token of another TSA counts for none).
fn verify_timestamp(
    token: &[u8],
    imprint: [u8; 32],
    policy: &Policy,
    tokens: &mut TokenVerifier,
    signatures: &mut dyn Ed25519Checker,
) -> Result<TimestampVerdict, TimestampError> {
    let anchor_sets: Vec<&TrustAnchors> = policy.tsas.iter().map(|tsa| &tsa.anchors).collect();
    let (verified, trusted) =
        tokens.verify_against(token, imprint, None, &anchor_sets, signatures)?;
    Ok((
        trusted.map(|position| policy.tsas[position].name.clone()),
        verified.gen_time,
    ))
}

/// Step 7, then steps 4 and 5: the TSA quorum, the leaf hash and the inclusion proof.
fn finish(
    receipt: &Receipt,
    note: &NoteVerdict,
    timestamps: Vec<TimestampVerdict>,
    policy: &Policy,
) -> Result<VerifiedReceipt, ReceiptError> {
    let trusted_tsas: BTreeSet<&str> = timestamps
        .iter()
        .filter_map(|(name, _)| name.as_deref())
        .collect();
    if trusted_tsas.len() < policy.tsa_quorum {
        return Err(ReceiptError::TimestampQuorumNotMet {
            found: trusted_tsas.len(),
            required: policy.tsa_quorum,
        });
    }
    if let Some(leaf) = &receipt.leaf {
        let computed = Hash::of_leaf(leaf);
        if computed != receipt.leaf_hash {
            return Err(ReceiptError::LeafHashMismatch {
                stated: receipt.leaf_hash,
                computed,
            });
        }
    }
    let checkpoint = &note.checkpoint;
    merkle::verify_inclusion(
        receipt.index,
        checkpoint.size,
        &receipt.leaf_hash,
        &receipt.inclusion_proof,
        &checkpoint.root,
    )
    .map_err(|source| ReceiptError::Inclusion {
        index: receipt.index,
        tree_size: checkpoint.size,
        source,
    })?;
    Ok(VerifiedReceipt {
        origin: checkpoint.origin.clone(),
        index: receipt.index,
        leaf_hash: receipt.leaf_hash,
        tree_size: checkpoint.size,
        root: checkpoint.root,
        witnesses: note.witnesses.clone(),
        timestamps,
        unknown_signatures: note.unknown_signatures,
    })
}

fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

pub(crate) mod base64_bytes {
    use base64::Engine as _;

    pub fn serialize<S: serde::Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

pub(crate) mod optional_base64 {
    pub fn serialize<S: serde::Serializer>(
        bytes: &Option<Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => super::base64_bytes::serialize(bytes, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        super::base64_bytes::deserialize(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::example::{test_tsa, world, World, ORIGIN};
    use crate::note::{Ed25519Signer, KeyName};

    #[test]
    fn a_complete_receipt_verifies_and_says_what_it_proves() {
        let world = world(300);
        let policy = world.policy("two", true);
        let receipt = world.receipt(123, &[0, 2]);
        let verified = verify(&receipt, &policy).expect("the receipt verifies");
        assert_eq!(verified.origin, ORIGIN);
        assert_eq!(verified.index, 123);
        assert_eq!(verified.tree_size, 300);
        assert_eq!(
            verified.witnesses,
            vec![
                ("w0".to_string(), 1_764_000_000),
                ("w2".to_string(), 1_764_000_002)
            ]
        );
        assert_eq!(
            verified.timestamps,
            vec![(
                Some("test".to_string()),
                Instant::from_seconds(1_764_000_000)
            )]
        );
        // And through JSON and back.
        let json = receipt.to_json();
        let back = Receipt::from_json(json.as_bytes()).expect("its own JSON parses");
        assert_eq!(back, receipt);
        assert!(verify(&back, &policy).is_ok());
    }

    #[test]
    fn refuses_a_receipt_below_the_witness_quorum() {
        let world = world(10);
        let receipt = world.receipt(3, &[1]);
        assert_eq!(
            verify(&receipt, &world.policy("two", false)),
            Err(ReceiptError::QuorumNotMet {
                cosigned: vec!["w1".to_string()]
            })
        );
        assert!(verify(&receipt, &world.policy("w1", false)).is_ok());
        assert!(verify(&receipt, &world.policy("none", false)).is_ok());
    }

    #[test]
    fn refuses_a_receipt_without_a_trusted_timestamp_when_the_policy_asks_for_one() {
        let world = world(10);
        let mut receipt = world.receipt(3, &[0, 1]);
        receipt.timestamps.clear();
        assert_eq!(
            verify(&receipt, &world.policy("two", true)),
            Err(ReceiptError::TimestampQuorumNotMet {
                found: 0,
                required: 1
            })
        );
        // A token from a TSA the policy does not know is checked but does not count.
        let stranger = test_tsa(99);
        let body = Note::parse(receipt.checkpoint.as_bytes()).expect("note");
        receipt.timestamps.push(ReceiptTimestamp {
            token: stranger.token_over(body.text(), 5),
        });
        assert!(matches!(
            verify(&receipt, &world.policy("two", true)),
            Err(ReceiptError::TimestampQuorumNotMet { found: 0, .. })
        ));
        let verified = verify(&receipt, &world.policy("two", false)).expect("no TSA needed");
        assert_eq!(verified.timestamps.len(), 1);
        assert_eq!(verified.timestamps[0].0, None);
    }

    #[test]
    fn a_timestamp_over_another_checkpoint_is_refused() {
        let world = world(10);
        let mut receipt = world.receipt(3, &[0, 1]);
        receipt.timestamps[0].token = world.tsa.token_over("other.example/log\n1\nAAAA\n", 9);
        assert!(matches!(
            verify(&receipt, &world.policy("two", true)),
            Err(ReceiptError::Timestamp { position: 0, .. })
        ));
    }

    #[test]
    fn refuses_a_wrong_leaf_index_or_proof() {
        let world = world(50);
        let policy = world.policy("none", false);
        let receipt = world.receipt(10, &[]);
        let mut wrong_index = receipt.clone();
        wrong_index.index = 11;
        assert!(matches!(
            verify(&wrong_index, &policy),
            Err(ReceiptError::Inclusion { index: 11, .. })
        ));
        let mut wrong_leaf = receipt.clone();
        wrong_leaf.leaf = Some(b"something else".to_vec());
        assert!(matches!(
            verify(&wrong_leaf, &policy),
            Err(ReceiptError::LeafHashMismatch { .. })
        ));
        let mut hash_only = receipt.clone();
        hash_only.leaf = None;
        assert!(verify(&hash_only, &policy).is_ok());
        let mut short_proof = receipt;
        short_proof.inclusion_proof.pop();
        assert!(matches!(
            verify(&short_proof, &policy),
            Err(ReceiptError::Inclusion { .. })
        ));
    }

    #[test]
    fn refuses_checkpoints_of_unknown_logs_and_unsigned_ones() {
        let world = world(5);
        let receipt = world.receipt(1, &[0, 1]);
        let other = World {
            log: Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("valid"), [2; 32]),
            ..world
        };
        // Same origin, another key: the note has no signature by the policy's log key.
        assert!(matches!(
            verify(&receipt, &other.policy("none", false)),
            Err(ReceiptError::Signature(_))
        ));
        let mut renamed = receipt.clone();
        renamed.checkpoint = renamed.checkpoint.replacen(ORIGIN, "example.com/other", 1);
        assert!(matches!(
            verify(&renamed, &other.policy("none", false)),
            Err(ReceiptError::UnknownLog { .. })
        ));
    }

    #[test]
    fn strict_json_refuses_unknown_fields_wrong_format_and_oversize() {
        let world = world(4);
        let receipt = world.receipt(0, &[]);
        let mut value: serde_json::Value = serde_json::to_value(&receipt).expect("serialises");
        value["surprise"] = serde_json::Value::Bool(true);
        assert!(matches!(
            Receipt::from_json(value.to_string().as_bytes()),
            Err(ReceiptError::Json(_))
        ));
        let mut wrong = receipt.clone();
        wrong.format = "cairn.receipt/v0".to_string();
        assert!(matches!(
            Receipt::from_json(serde_json::to_string(&wrong).expect("json").as_bytes()),
            Err(ReceiptError::Format { .. })
        ));
        let mut long = receipt;
        long.inclusion_proof = vec![Hash::empty_tree(); MAX_INCLUSION_PROOF_LEN + 1];
        assert!(matches!(
            Receipt::from_json(serde_json::to_string(&long).expect("json").as_bytes()),
            Err(ReceiptError::TooLarge { .. })
        ));
        assert!(matches!(
            Receipt::from_json(&vec![b' '; MAX_RECEIPT_BYTES + 1]),
            Err(ReceiptError::TooLarge { .. })
        ));
    }

    #[test]
    fn tlog_proof_export_round_trips_and_verifies() {
        let world = world(40);
        let policy = world.policy("two", false);
        let receipt = world.receipt(33, &[1, 2]);
        let proof = receipt.to_tlog_proof();
        assert!(proof.starts_with("c2sp.org/tlog-proof@v1\nextra "));
        assert!(proof.contains("\nindex 33\n"));
        let back = Receipt::from_tlog_proof(&proof, None).expect("parses");
        assert_eq!(back.leaf, receipt.leaf);
        assert_eq!(back.inclusion_proof, receipt.inclusion_proof);
        assert!(back.timestamps.is_empty());
        assert!(verify(&back, &policy).is_ok());
        // Without extra, the leaf must be supplied; a wrong one fails verification.
        let mut bare = receipt.clone();
        bare.leaf = None;
        let proof = bare.to_tlog_proof();
        assert!(matches!(
            Receipt::from_tlog_proof(&proof, None),
            Err(ReceiptError::TlogProof(_))
        ));
        let given = Receipt::from_tlog_proof(&proof, Some(&world.leaves[33])).expect("parses");
        assert!(verify(&given, &policy).is_ok());
        let wrong = Receipt::from_tlog_proof(&proof, Some(b"not the leaf")).expect("parses");
        assert!(verify(&wrong, &policy).is_err());
        for bad in [
            "",
            "c2sp.org/tlog-proof@v2\nindex 1\n\nx",
            "c2sp.org/tlog-proof@v1\nindex 01\n\nx",
        ] {
            assert!(
                Receipt::from_tlog_proof(bad, Some(b"x")).is_err(),
                "{bad:?}"
            );
        }
    }

    /// The example receipt of `spec/docs/receipt.md`: five leaves, the log, witness w0, and one
    /// token from the test TSA. Everything in it is deterministic (Ed25519 signatures, fixed
    /// times), so the page can show it byte for byte.
    fn documented_example() -> (Receipt, Policy) {
        let world = world(5);
        let receipt = world.receipt(3, &[0]);
        (receipt, world.policy("w0", true))
    }

    #[test]
    fn the_documented_example_is_what_the_code_makes_and_it_verifies() {
        let page = include_str!("../docs/receipt.md");
        let marker = "```json\n";
        let start = page.find(marker).expect("the page has a JSON block") + marker.len();
        let end = start + page[start..].find("```").expect("closed block");
        let (receipt, policy) = documented_example();
        if std::env::var_os("CAIRN_PRINT_EXAMPLES").is_some() {
            println!("{}", receipt.to_json());
        }
        assert_eq!(page[start..end].trim_end(), receipt.to_json());
        let parsed = Receipt::from_json(&page.as_bytes()[start..end]).expect("parses");
        let verified = verify(&parsed, &policy).expect("verifies");
        assert_eq!(verified.index, 3);
        assert_eq!(verified.tree_size, 5);
    }
}
