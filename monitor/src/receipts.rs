//! `verify-receipt` over many receipts in one process: the auditor's case, where receipts by
//! the thousand share a few checkpoints and one TSA.
//!
//! One [`ReceiptVerifier`] verifies them all, so a checkpoint note (signatures and witness
//! quorum) and a TSA's certificate chain that verified for one receipt are not verified again
//! for the next with exactly the same bytes, and the Ed25519 signatures still to check are
//! checked in batches (`spec/docs/receipt.md`, "Verifying many receipts"). Everything
//! particular to a receipt (its shape, leaf hash, inclusion proof, its tokens' TSA quorum) is
//! checked for each: the result for every receipt is the one `verify-receipt` gives it alone.
//!
//! Receipts are read and verified a chunk at a time (at most [`CHUNK_RECEIPTS`] files and
//! about [`CHUNK_BYTES`] bytes), and each result is printed as its chunk is done: memory stays
//! bounded however many receipts are given.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cairn_spec::policy::Policy;
use cairn_spec::receipt::{Receipt, ReceiptVerifier, VerifiedReceipt};
use serde_json::json;

use crate::report;

/// The most receipt files one run verifies.
pub const MAX_RECEIPT_FILES: usize = 1 << 22;
/// How many receipts are read before they are verified together.
const CHUNK_RECEIPTS: usize = 4096;
/// How many bytes of receipts are read before they are verified together (a chunk ends at the
/// first file that reaches it).
const CHUNK_BYTES: usize = 64 << 20;

/// The receipt files named: each file as given, and every file directly in each directory
/// given (not in its subdirectories; names starting with `.` left out), in name order.
pub fn receipt_files(arguments: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for argument in arguments {
        let metadata = std::fs::metadata(argument)
            .map_err(|error| format!("{}: {error}", argument.display()))?;
        if !metadata.is_dir() {
            files.push(argument.clone());
        } else {
            let mut in_directory = Vec::new();
            let entries = std::fs::read_dir(argument)
                .map_err(|error| format!("{}: {error}", argument.display()))?;
            for entry in entries {
                let entry = entry.map_err(|error| format!("{}: {error}", argument.display()))?;
                let path = entry.path();
                let hidden = entry.file_name().to_string_lossy().starts_with('.');
                if !hidden && std::fs::metadata(&path).is_ok_and(|found| found.is_file()) {
                    in_directory.push(path);
                }
                if files.len() + in_directory.len() > MAX_RECEIPT_FILES {
                    break;
                }
            }
            in_directory.sort();
            files.extend(in_directory);
        }
        if files.len() > MAX_RECEIPT_FILES {
            return Err(format!(
                "more than {MAX_RECEIPT_FILES} receipt files: verify them in several runs"
            ));
        }
    }
    Ok(files)
}

/// What verifying many receipts found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Receipts that verified.
    pub verified: usize,
    /// Receipts that could not be read or did not verify.
    pub failed: usize,
}

/// Verifies `files` against `policy`, printing one result a receipt (a line of text, or a line
/// of JSON) as it goes, then the tally. Exits 0 when every receipt verified, 1 otherwise.
pub fn verify_many(files: &[PathBuf], policy: &Policy, json: bool) -> Result<ExitCode, String> {
    let mut verifier = ReceiptVerifier::new(policy);
    let mut tally = Tally::default();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut rest = files;
    while !rest.is_empty() {
        let (chunk, after) = next_chunk(rest);
        rest = after;
        let results = verify_chunk(&mut verifier, chunk);
        for (file, result) in chunk.iter().zip(results) {
            match &result {
                Ok(_) => tally.verified += 1,
                Err(_) => tally.failed += 1,
            }
            write_result(&mut out, file, &result, json)
                .map_err(|error| format!("standard output: {error}"))?;
        }
    }
    let ok = tally.failed == 0;
    let summary = if json {
        format!(
            "{}\n",
            json!({"ok": ok, "receipts": files.len(), "verified": tally.verified,
                   "failed": tally.failed})
        )
    } else {
        format!(
            "{} receipts: {} verified, {} did not\n",
            files.len(),
            tally.verified,
            tally.failed
        )
    };
    out.write_all(summary.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|error| format!("standard output: {error}"))?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The files of the next chunk (at least one), and those after it. File sizes are known only
/// when they are read, so the byte bound counts the sizes the directory gives.
fn next_chunk(files: &[PathBuf]) -> (&[PathBuf], &[PathBuf]) {
    let mut bytes = 0usize;
    let mut end = 0;
    while end < files.len() && end < CHUNK_RECEIPTS && (end == 0 || bytes < CHUNK_BYTES) {
        let size = std::fs::metadata(&files[end]).map_or(0, |metadata| metadata.len());
        bytes = bytes.saturating_add(usize::try_from(size).unwrap_or(usize::MAX));
        end += 1;
    }
    files.split_at(end)
}

/// Reads the chunk's receipts and verifies those that could be read, in one batch.
fn verify_chunk(
    verifier: &mut ReceiptVerifier<'_>,
    chunk: &[PathBuf],
) -> Vec<Result<VerifiedReceipt, String>> {
    let mut receipts: Vec<Receipt> = Vec::with_capacity(chunk.len());
    let mut unreadable: Vec<Option<String>> = Vec::with_capacity(chunk.len());
    for file in chunk {
        match crate::read_receipt(file, None) {
            Ok((receipt, _)) => {
                receipts.push(receipt);
                unreadable.push(None);
            }
            Err(error) => unreadable.push(Some(error)),
        }
    }
    let mut verified = verifier.verify_batch(&receipts).into_iter();
    unreadable
        .into_iter()
        .map(|unreadable| match unreadable {
            Some(error) => Err(error),
            None => match verified.next() {
                Some(Ok(receipt)) => Ok(receipt),
                Some(Err(error)) => Err(format!("receipt does not verify: {error}")),
                None => Err("no result for this receipt (a bug)".to_owned()),
            },
        })
        .collect()
}

/// One receipt's result: a line of text, or a line of JSON naming the file.
fn write_result(
    out: &mut impl std::io::Write,
    file: &Path,
    result: &Result<VerifiedReceipt, String>,
    json: bool,
) -> std::io::Result<()> {
    let file_name = file.display().to_string();
    match (result, json) {
        (Ok(verified), true) => {
            let mut value = report::receipt_json(verified);
            value["file"] = json!(file_name);
            writeln!(out, "{value}")
        }
        (Err(error), true) => writeln!(
            out,
            "{}",
            json!({"ok": false, "file": file_name, "error": error})
        ),
        (Ok(verified), false) => writeln!(
            out,
            "{file_name}: verifies: leaf {} of log {} in its tree of {} leaves",
            verified.index, verified.origin, verified.tree_size
        ),
        (Err(error), false) => writeln!(out, "{file_name}: FAILED: {error}"),
    }
}
