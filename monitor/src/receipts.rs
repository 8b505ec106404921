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
                if !hidden && is_file(&entry) {
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

/// Whether a directory's entry is a file, or a link to one: from the directory's own listing
/// where it says so (no `stat` a receipt), else from the file the entry leads to.
fn is_file(entry: &std::fs::DirEntry) -> bool {
    match entry.file_type() {
        Ok(kind) if kind.is_file() => true,
        Ok(kind) if kind.is_dir() => false,
        _ => std::fs::metadata(entry.path()).is_ok_and(|found| found.is_file()),
    }
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
        let (chunk, read, after) = read_chunk(rest);
        rest = after;
        let results = verify_chunk(&mut verifier, read);
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

/// Reads the next chunk of receipt files (at least one; at most [`CHUNK_RECEIPTS`], ending at
/// the first file that brings the bytes read to [`CHUNK_BYTES`]): the files of the chunk, each
/// one's receipt or why it could not be read, and the files after it.
fn read_chunk(files: &[PathBuf]) -> (&[PathBuf], Vec<Result<Receipt, String>>, &[PathBuf]) {
    let mut bytes = 0usize;
    let mut read = Vec::with_capacity(files.len().min(CHUNK_RECEIPTS));
    while read.len() < files.len() && read.len() < CHUNK_RECEIPTS && bytes < CHUNK_BYTES {
        let file = &files[read.len()];
        read.push(read_file(file).and_then(|contents| {
            bytes = bytes.saturating_add(contents.len());
            crate::receipt_from_bytes(contents, None).map(|(receipt, _)| receipt)
        }));
    }
    let (chunk, after) = files.split_at(read.len());
    (chunk, read, after)
}

/// A receipt file's bytes (at most [`crate::MAX_FILE_BYTES`]), read with one path lookup.
fn read_file(file: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let failed = |error: std::io::Error| format!("{}: {error}", file.display());
    let mut opened = std::fs::File::open(file).map_err(failed)?;
    let size = opened.metadata().map_err(failed)?.len();
    if size > crate::MAX_FILE_BYTES {
        return Err(format!(
            "{}: larger than {} bytes",
            file.display(),
            crate::MAX_FILE_BYTES
        ));
    }
    let mut contents = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    opened.read_to_end(&mut contents).map_err(failed)?;
    Ok(contents)
}

/// Verifies the receipts of a chunk that could be read, in one batch.
fn verify_chunk(
    verifier: &mut ReceiptVerifier<'_>,
    read: Vec<Result<Receipt, String>>,
) -> Vec<Result<VerifiedReceipt, String>> {
    let mut receipts: Vec<Receipt> = Vec::with_capacity(read.len());
    let mut unreadable: Vec<Option<String>> = Vec::with_capacity(read.len());
    for result in read {
        match result {
            Ok(receipt) => {
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
