//! The witness side and the log side of C2SP tlog-witness `add-checkpoint`, as pure functions.
//!
//! A log sends a witness each new checkpoint with a consistency proof from the size the witness
//! last cosigned:
//!
//! ```text
//! POST <submission prefix>/add-checkpoint
//!
//! old <size the witness last cosigned, decimal>
//! <consistency proof hash, base64>          zero to 63 lines
//! ...
//!                                           an empty line
//! <the checkpoint, a signed note>
//! ```
//!
//! The witness checks the checkpoint against the log's key and its own record of the log, and
//! answers with its cosignature lines (200), or refuses: 400 malformed request or old size above
//! the checkpoint size, 403 not signed by the log's key, 404 unknown origin, 409 with the size
//! it knows (`text/x.tlog.size`) when the old size is not that size, 422 when the checkpoint is
//! not consistent with what it knows (bad proof, proof for an empty old tree, wrong empty-tree
//! root, or the same size with another root).
//!
//! [`add_checkpoint`] is the whole decision. It does no I/O: the caller reads the state it
//! persisted for the origin, calls it, persists the new state, and only then sends the
//! cosignature; reading, deciding and writing must happen under one lock per origin, or two
//! concurrent requests can roll the state back (tlog-witness, "add-checkpoint").

use crate::checkpoint::{parse_tree_size, Checkpoint, CheckpointError, TreeSizeError};
use crate::cosignature::{Cosignature, CosignatureError, CosignatureSigner, MAX_TIMESTAMP};
use crate::hash::{Hash, HashError};
use crate::merkle::{verify_consistency, ProofError};
use crate::note::{
    parse_signature_lines, Note, NoteError, NoteSignature, NoteVerifier, MAX_NOTE_SIZE,
};

/// The most consistency proof lines a request may carry (tlog-witness: "MUST NOT send more
/// than 63").
pub const MAX_PROOF_LINES: usize = 63;

/// The HTTP path of the call, after the witness's submission prefix.
pub const ADD_CHECKPOINT_PATH: &str = "/add-checkpoint";

/// Content type of the 409 Conflict body.
pub const TREE_SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// The longest `old <size>` line: "old " and 20 digits.
const MAX_OLD_LINE: usize = 4 + 20;

/// A base64 SHA-256 hash is 44 characters.
const PROOF_LINE_LENGTH: usize = 44;

/// The largest request body Cairn reads: the header at its longest, the blank line, and a note
/// of [`MAX_NOTE_SIZE`].
pub const MAX_REQUEST_SIZE: usize =
    MAX_OLD_LINE + 1 + MAX_PROOF_LINES * (PROOF_LINE_LENGTH + 1) + 1 + MAX_NOTE_SIZE;

/// The largest cosignature response body Cairn reads.
pub const MAX_RESPONSE_SIZE: usize = MAX_NOTE_SIZE;

/// Why an add-checkpoint request body could not be read or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The body is larger than [`MAX_REQUEST_SIZE`].
    #[error("request body is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A header line is not valid UTF-8.
    #[error("request line {line} is not valid UTF-8")]
    InvalidUtf8 {
        /// 1-based line number.
        line: usize,
    },
    /// The first line is not `old <size>`.
    #[error("request must start with \"old <size>\", found {found:?}")]
    MissingOldLine {
        /// The start of the first line.
        found: String,
    },
    /// The old size is not a canonical decimal u64.
    #[error("old size: {0}")]
    OldSize(TreeSizeError),
    /// More than [`MAX_PROOF_LINES`] consistency proof lines.
    #[error("request has more than {limit} consistency proof lines")]
    TooManyProofLines {
        /// The limit.
        limit: usize,
    },
    /// A proof line is not base64 of a 32-byte hash.
    #[error("consistency proof line {line}: {error}")]
    ProofLine {
        /// 1-based line number in the request.
        line: usize,
        /// What is wrong with it.
        error: HashError,
    },
    /// The body ends before the empty line that precedes the checkpoint.
    #[error("request has no empty line before the checkpoint")]
    MissingBlankLine,
    /// The checkpoint note is malformed.
    #[error("checkpoint note: {0}")]
    Note(NoteError),
    /// The checkpoint note's text is not a checkpoint.
    #[error("checkpoint: {0}")]
    Checkpoint(CheckpointError),
    /// (Building a request) the old size is above the checkpoint's size.
    #[error("old size {old_size} is above the checkpoint size {checkpoint_size}")]
    OldSizeAboveCheckpointSize {
        /// The old size.
        old_size: u64,
        /// The checkpoint's size.
        checkpoint_size: u64,
    },
}

/// A parsed add-checkpoint request. The checkpoint's signatures are not verified yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpointRequest {
    /// The size of the checkpoint the log believes the witness last cosigned (0 for none).
    pub old_size: u64,
    /// The consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The checkpoint, read from the note's text.
    pub checkpoint: Checkpoint,
    /// The signed note, with all its signatures.
    pub note: Note,
}

impl AddCheckpointRequest {
    /// Builds a request (the log's side) from a signed checkpoint note, the size the witness
    /// last cosigned, and the consistency proof from that size to the checkpoint's.
    pub fn new(
        note: Note,
        old_size: u64,
        proof: Vec<Hash>,
    ) -> Result<AddCheckpointRequest, RequestError> {
        let checkpoint = Checkpoint::from_note(&note).map_err(RequestError::Checkpoint)?;
        if proof.len() > MAX_PROOF_LINES {
            return Err(RequestError::TooManyProofLines {
                limit: MAX_PROOF_LINES,
            });
        }
        if old_size > checkpoint.size {
            return Err(RequestError::OldSizeAboveCheckpointSize {
                old_size,
                checkpoint_size: checkpoint.size,
            });
        }
        // The note must be writable, so that to_bytes cannot fail later.
        note.to_bytes().map_err(RequestError::Note)?;
        Ok(AddCheckpointRequest {
            old_size,
            proof,
            checkpoint,
            note,
        })
    }

    /// Reads a request body strictly: `old <size>\n`, at most 63 base64 hash lines, an empty
    /// line, then a signed note whose text is a checkpoint.
    pub fn parse(body: &[u8]) -> Result<AddCheckpointRequest, RequestError> {
        if body.len() > MAX_REQUEST_SIZE {
            return Err(RequestError::TooLarge {
                size: body.len(),
                limit: MAX_REQUEST_SIZE,
            });
        }
        let mut rest = body;
        let mut line_number = 0;
        let mut old_size = None;
        let mut proof = Vec::new();
        loop {
            line_number += 1;
            let Some(end) = rest.iter().position(|&byte| byte == b'\n') else {
                if old_size.is_none() {
                    return Err(RequestError::MissingOldLine {
                        found: String::from_utf8_lossy(&rest[..rest.len().min(16)]).into_owned(),
                    });
                }
                return Err(RequestError::MissingBlankLine);
            };
            let line = std::str::from_utf8(&rest[..end])
                .map_err(|_| RequestError::InvalidUtf8 { line: line_number })?;
            rest = &rest[end + 1..];
            if old_size.is_none() {
                let size =
                    line.strip_prefix("old ")
                        .ok_or_else(|| RequestError::MissingOldLine {
                            found: crate::note::excerpt(line, 16),
                        })?;
                old_size = Some(parse_tree_size(size).map_err(RequestError::OldSize)?);
                continue;
            }
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(RequestError::TooManyProofLines {
                    limit: MAX_PROOF_LINES,
                });
            }
            let hash = Hash::from_base64(line).map_err(|error| RequestError::ProofLine {
                line: line_number,
                error,
            })?;
            proof.push(hash);
        }
        let old_size = old_size.expect("the loop leaves only after reading the old size line");
        let note = Note::parse(rest).map_err(RequestError::Note)?;
        let checkpoint = Checkpoint::from_note(&note).map_err(RequestError::Checkpoint)?;
        Ok(AddCheckpointRequest {
            old_size,
            proof,
            checkpoint,
            note,
        })
    }

    /// The request body.
    pub fn to_bytes(&self) -> Result<Vec<u8>, RequestError> {
        if self.proof.len() > MAX_PROOF_LINES {
            return Err(RequestError::TooManyProofLines {
                limit: MAX_PROOF_LINES,
            });
        }
        let note = self.note.to_bytes().map_err(RequestError::Note)?;
        let mut body =
            Vec::with_capacity(MAX_OLD_LINE + 1 + self.proof.len() * 45 + 1 + note.len());
        body.extend_from_slice(format!("old {}\n", self.old_size).as_bytes());
        for hash in &self.proof {
            body.extend_from_slice(hash.to_base64().as_bytes());
            body.push(b'\n');
        }
        body.push(b'\n');
        body.extend_from_slice(&note);
        Ok(body)
    }
}

/// Why a witness's response body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// The body is larger than the limit.
    #[error("response body is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The body is not valid UTF-8.
    #[error("response body is not valid UTF-8 at byte {offset}")]
    InvalidUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// The body is not one or more signature lines.
    #[error("response body: {0}")]
    SignatureLines(NoteError),
    /// The 409 body is not a decimal size and a newline.
    #[error("conflict body must be a decimal size and a newline: {0}")]
    ConflictBody(String),
}

/// The 200 response body: the cosignature lines.
pub fn format_cosignature_response(cosignatures: &[Cosignature]) -> String {
    cosignatures.iter().map(Cosignature::to_line).collect()
}

/// Reads a 200 response body: one or more note signature lines (at most
/// [`crate::note::MAX_SIGNATURES`]).
/// They are not verified: add them to the checkpoint note and verify with the witnesses' keys,
/// or check each with [`crate::cosignature::CosignatureVerifier::verify_cosignature`].
pub fn parse_cosignature_response(body: &[u8]) -> Result<Vec<NoteSignature>, ResponseError> {
    if body.len() > MAX_RESPONSE_SIZE {
        return Err(ResponseError::TooLarge {
            size: body.len(),
            limit: MAX_RESPONSE_SIZE,
        });
    }
    let text = std::str::from_utf8(body).map_err(|error| ResponseError::InvalidUtf8 {
        offset: error.valid_up_to(),
    })?;
    if let Some(offset) = body.iter().position(|&byte| byte < 0x20 && byte != b'\n') {
        return Err(ResponseError::SignatureLines(NoteError::ControlCharacter {
            offset,
            byte: body[offset],
        }));
    }
    parse_signature_lines(text, 1).map_err(ResponseError::SignatureLines)
}

/// The 409 Conflict body: the size the witness knows, in decimal, and a newline.
pub fn format_conflict_body(known_size: u64) -> String {
    format!("{known_size}\n")
}

/// Reads a 409 Conflict body strictly: a canonical decimal u64 and a newline.
pub fn parse_conflict_body(body: &[u8]) -> Result<u64, ResponseError> {
    if body.len() > 21 {
        return Err(ResponseError::TooLarge {
            size: body.len(),
            limit: 21,
        });
    }
    let Some(digits) = body.strip_suffix(b"\n") else {
        return Err(ResponseError::ConflictBody("no final newline".to_owned()));
    };
    let digits = std::str::from_utf8(digits)
        .map_err(|_| ResponseError::ConflictBody("not UTF-8".to_owned()))?;
    parse_tree_size(digits).map_err(|error| ResponseError::ConflictBody(error.to_string()))
}

/// What a witness remembers about one log: the latest checkpoint it cosigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TreeState {
    /// Its tree size.
    pub size: u64,
    /// Its root hash.
    pub root: Hash,
}

/// A request the witness accepts: the state to persist, then the cosignature to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    /// The witness's new state for the origin. Persist it before sending the response.
    pub new_state: TreeState,
    /// The witness's cosignature of the checkpoint.
    pub cosignature: Cosignature,
}

impl Cosigned {
    /// The 200 response body.
    pub fn response_body(&self) -> String {
        format_cosignature_response(std::slice::from_ref(&self.cosignature))
    }
}

/// Why a witness refuses an add-checkpoint request, each mapped to the HTTP status
/// tlog-witness prescribes ([`Refusal::http_status`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 400: the body is not a well-formed request.
    #[error("malformed request: {0}")]
    Malformed(#[from] RequestError),
    /// 404: the witness does not know the checkpoint's origin.
    #[error("unknown log origin {origin:?}")]
    UnknownOrigin {
        /// The origin.
        origin: String,
    },
    /// 403: no valid signature by the log's key(s), or an invalid one.
    #[error("checkpoint for {origin:?} is not validly signed by the log: {error}")]
    NotSignedByLog {
        /// The origin.
        origin: String,
        /// What note verification found.
        error: NoteError,
    },
    /// 400: the checkpoint is smaller than the witness's latest cosigned checkpoint, and the
    /// request's old size is that latest size: the log offers a checkpoint that goes back.
    #[error("checkpoint size {checkpoint_size} is below the size {known_size} already cosigned")]
    CheckpointGoesBack {
        /// The size the witness last cosigned.
        known_size: u64,
        /// The checkpoint's size.
        checkpoint_size: u64,
    },
    /// 400: the old size is above the checkpoint's size.
    #[error("old size {old_size} is above the checkpoint size {checkpoint_size}")]
    OldSizeAboveCheckpointSize {
        /// The old size in the request.
        old_size: u64,
        /// The checkpoint's size.
        checkpoint_size: u64,
    },
    /// 409: the old size is not the size the witness last cosigned. The body tells the log
    /// that size ([`Refusal::conflict_body`]).
    #[error("old size {old_size} is not the size {known_size} the witness last cosigned")]
    OldSizeMismatch {
        /// The old size in the request.
        old_size: u64,
        /// The size the witness last cosigned (0 if none).
        known_size: u64,
    },
    /// 422: a checkpoint of size 0 whose root is not the empty tree's hash.
    #[error("empty checkpoint has root {root}, not the empty tree's hash")]
    BadEmptyTreeRoot {
        /// The root in the checkpoint.
        root: Hash,
    },
    /// 422: a consistency proof was sent from old size 0, where none is needed.
    #[error("old size is 0 but the request has {proof_len} proof lines")]
    ProofFromEmptyTree {
        /// How many proof lines were sent.
        proof_len: usize,
    },
    /// 422: the checkpoint has the size the witness last cosigned but another root hash. Two
    /// validly signed checkpoints of one log disagree: a fork the witness should record as
    /// evidence of log misbehaviour.
    #[error(
        "fork: size {size} was cosigned with root {known_root}, checkpoint has {checkpoint_root}"
    )]
    Fork {
        /// The common size.
        size: u64,
        /// The root the witness cosigned.
        known_root: Hash,
        /// The root in the new checkpoint.
        checkpoint_root: Hash,
    },
    /// 422: the consistency proof does not prove that the cosigned tree extends to the
    /// checkpoint.
    #[error(
        "consistency proof from size {old_size} to {checkpoint_size} does not verify: {error}"
    )]
    InconsistentProof {
        /// The old size.
        old_size: u64,
        /// The checkpoint's size.
        checkpoint_size: u64,
        /// What the verifier found.
        error: ProofError,
    },
    /// 500: the witness's clock gave a time a cosignature cannot carry (0, or above 2^63 - 1).
    #[error("the witness's clock reads {timestamp}, which cannot be a cosignature timestamp")]
    BadClock {
        /// The time given.
        timestamp: u64,
    },
    /// 500: the cosignature could not be made.
    #[error("cosigning failed: {0}")]
    Cosigning(CosignatureError),
}

impl Refusal {
    /// The HTTP status code tlog-witness prescribes for this refusal.
    pub fn http_status(&self) -> u16 {
        match self {
            Refusal::Malformed(_)
            | Refusal::CheckpointGoesBack { .. }
            | Refusal::OldSizeAboveCheckpointSize { .. } => 400,
            Refusal::NotSignedByLog { .. } => 403,
            Refusal::UnknownOrigin { .. } => 404,
            Refusal::OldSizeMismatch { .. } => 409,
            Refusal::BadEmptyTreeRoot { .. }
            | Refusal::ProofFromEmptyTree { .. }
            | Refusal::Fork { .. }
            | Refusal::InconsistentProof { .. } => 422,
            Refusal::BadClock { .. } | Refusal::Cosigning(_) => 500,
        }
    }

    /// For a 409, the body (`<known size>\n`, content type [`TREE_SIZE_CONTENT_TYPE`]).
    pub fn conflict_body(&self) -> Option<String> {
        match self {
            Refusal::OldSizeMismatch { known_size, .. } => Some(format_conflict_body(*known_size)),
            _ => None,
        }
    }

    /// Whether the request proves the log misbehaved (a validly signed fork), so the witness
    /// should keep it as evidence. tlog-witness lets a witness log any validly signed request
    /// that fails the consistency checks; a fork is the one that proves misbehaviour by itself.
    pub fn is_fork(&self) -> bool {
        matches!(self, Refusal::Fork { .. })
    }
}

/// Decides an add-checkpoint request, as tlog-witness prescribes.
///
/// - `state`: what the witness persisted for the checkpoint's origin (`None` if it never
///   cosigned a checkpoint of that log);
/// - `request`: the parsed request;
/// - `log_keys`: the keys the witness trusts for the origin (`None` if the origin is unknown);
/// - `cosigner`: the witness's key;
/// - `now`: the current time, POSIX seconds.
///
/// The checks, in order: origin known (404); a valid signature by a log key and no invalid
/// one (403); old size not above the checkpoint size (400, [`Refusal::CheckpointGoesBack`] when
/// the old size is the witness's own); old size equal to the witness's size (409); an empty
/// checkpoint has the empty root (422); no proof from size 0 (422); same size, same root (422,
/// [`Refusal::Fork`]); the consistency proof verifies (422). Then it cosigns.
pub fn add_checkpoint(
    state: Option<TreeState>,
    request: &AddCheckpointRequest,
    log_keys: Option<&[&dyn NoteVerifier]>,
    cosigner: &CosignatureSigner,
    now: u64,
) -> Result<Cosigned, Refusal> {
    let new_state = check_add_checkpoint(state, request, log_keys, now)?;
    let cosignature = cosigner
        .cosign(&request.checkpoint, now)
        .map_err(Refusal::Cosigning)?;
    Ok(Cosigned {
        new_state,
        cosignature,
    })
}

/// Every check of [`add_checkpoint`], without the cosignature: the state the witness moves to
/// if it cosigns `request` at `now`. For a witness whose key signs elsewhere (a token, off the
/// async runtime), which then cosigns the checkpoint at `now` itself.
pub fn check_add_checkpoint(
    state: Option<TreeState>,
    request: &AddCheckpointRequest,
    log_keys: Option<&[&dyn NoteVerifier]>,
    now: u64,
) -> Result<TreeState, Refusal> {
    let checkpoint = &request.checkpoint;
    let Some(log_keys) = log_keys else {
        return Err(Refusal::UnknownOrigin {
            origin: checkpoint.origin.clone(),
        });
    };
    request
        .note
        .verify(log_keys)
        .map_err(|error| Refusal::NotSignedByLog {
            origin: checkpoint.origin.clone(),
            error,
        })?;

    let known_size = state.map_or(0, |state| state.size);
    if request.old_size > checkpoint.size {
        if request.old_size == known_size {
            return Err(Refusal::CheckpointGoesBack {
                known_size,
                checkpoint_size: checkpoint.size,
            });
        }
        return Err(Refusal::OldSizeAboveCheckpointSize {
            old_size: request.old_size,
            checkpoint_size: checkpoint.size,
        });
    }
    if request.old_size != known_size {
        return Err(Refusal::OldSizeMismatch {
            old_size: request.old_size,
            known_size,
        });
    }
    if checkpoint.size == 0 && checkpoint.root != Hash::empty_tree() {
        return Err(Refusal::BadEmptyTreeRoot {
            root: checkpoint.root,
        });
    }
    match state {
        // Nothing cosigned yet, or only the empty tree: every tree extends the empty tree.
        None | Some(TreeState { size: 0, .. }) => {
            if !request.proof.is_empty() {
                return Err(Refusal::ProofFromEmptyTree {
                    proof_len: request.proof.len(),
                });
            }
        }
        Some(known) => {
            if known.size == checkpoint.size && known.root != checkpoint.root {
                return Err(Refusal::Fork {
                    size: known.size,
                    known_root: known.root,
                    checkpoint_root: checkpoint.root,
                });
            }
            verify_consistency(
                known.size,
                checkpoint.size,
                &known.root,
                &checkpoint.root,
                &request.proof,
            )
            .map_err(|error| Refusal::InconsistentProof {
                old_size: known.size,
                checkpoint_size: checkpoint.size,
                error,
            })?;
        }
    }

    if now == 0 || now > MAX_TIMESTAMP {
        return Err(Refusal::BadClock { timestamp: now });
    }
    Ok(TreeState {
        size: checkpoint.size,
        root: checkpoint.root,
    })
}

/// The log's side, in one call: the request body for `checkpoint_note` (a signed checkpoint),
/// the size the witness last cosigned, and the consistency proof from that size.
pub fn format_add_checkpoint_request(
    checkpoint_note: &Note,
    old_size: u64,
    proof: &[Hash],
) -> Result<Vec<u8>, RequestError> {
    AddCheckpointRequest::new(checkpoint_note.clone(), old_size, proof.to_vec())?.to_bytes()
}
