//! Verifying many receipts against one policy, remembering what is legitimately the same from
//! one receipt to the next, and verifying their Ed25519 signatures in batches.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use super::verification::{finish, verify_note, verify_timestamp, NoteVerdict, TimestampVerdict};
use super::{Receipt, ReceiptError, VerifiedReceipt};
use crate::note::{Ed25519Batch, SingleEd25519};
use crate::policy::Policy;
use crate::timestamp::{TimestampError, TokenVerifier};

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
/// gives exactly the answer of [`verify`](super::verify);
/// [`ReceiptVerifier::verify_batch`] also verifies the Ed25519 signatures of many receipts in
/// batches.
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

    /// As [`verify`](super::verify), with every signature checked one at a time (or remembered).
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
