//! # cairn-ui-wasm
//!
//! The verdicts the auditor's web UI (cairn-ui) shows, computed in the browser by cairn-spec
//! itself, so that nothing the server says about validity is trusted: a receipt or an export
//! bundle against the auditor's policy, a checkpoint's signatures and witnesses, the consistency
//! of two checkpoints, and an audit event as the log's events API serves it against its receipt.
//!
//! The crate builds for `wasm32-unknown-unknown` without wasm-bindgen (`ui/wasm/build.sh`): it
//! exports plain `extern "C"` functions over the module's linear memory, which plain JavaScript
//! calls after `WebAssembly.instantiate` (`ui/assets/verify.js`). The same functions are called
//! natively by this crate's tests, so that what the browser runs is what is tested.
//!
//! The calling convention, the same for every verdict function:
//! - the caller reserves each input with [`cairn_alloc`]`(len)` (null when `len` is beyond
//!   [`MAX_INPUT_BYTES`] or memory is exhausted), writes the bytes there, and passes each input
//!   as `(ptr, len)`; it frees them with [`cairn_free`]`(ptr, len)` afterwards;
//! - a verdict function returns a pointer to a result: a little-endian `u32` length `n` followed
//!   by `n` bytes of UTF-8 JSON, always an object with `"ok": true|false` (and `"error"` when
//!   false); the caller frees it with `cairn_free(ptr, 4 + n)`.
//!
//! What each verdict holds is in `verdict.rs` (receipts, exports, documents), `checkpoint.rs`
//! (checkpoints and consistency) and `event.rs` (events); `docs/ui.md` describes them for the
//! page.

mod checkpoint;
mod event;
mod verdict;

use std::alloc::{alloc, dealloc, Layout};

pub use checkpoint::{verify_checkpoint, verify_consistency};
pub use event::verify_event;
pub use verdict::{check_policy, verify_document, verify_export, verify_receipt};

/// Most bytes of one input: an export bundle's limit (256 MiB,
/// `cairn_spec::export::MAX_EXPORT_BYTES`) and room for nothing larger.
pub const MAX_INPUT_BYTES: usize = cairn_spec::export::MAX_EXPORT_BYTES;

// Verification draws no randomness; cairn-spec's dependencies still ask getrandom to exist
// (Cargo.toml says why). Any call fails, so no predictable "random" bytes can ever be produced.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
fn no_randomness(_: &mut [u8]) -> Result<(), getrandom::Error> {
    Err(getrandom::Error::UNSUPPORTED)
}
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
getrandom::register_custom_getrandom!(no_randomness);

fn layout(len: usize) -> Option<Layout> {
    Layout::array::<u8>(len.max(1)).ok()
}

/// Reserves `len` bytes for an input (or a result); null if `len` is beyond
/// [`MAX_INPUT_BYTES`] (plus a result's 4-byte length) or memory is exhausted.
#[no_mangle]
pub extern "C" fn cairn_alloc(len: usize) -> *mut u8 {
    if len > MAX_INPUT_BYTES + 4 {
        return std::ptr::null_mut();
    }
    match layout(len) {
        // SAFETY: the layout has a non-zero size (at least one byte).
        Some(layout) => unsafe { alloc(layout) },
        None => std::ptr::null_mut(),
    }
}

/// Frees what [`cairn_alloc`] (or a verdict function) returned.
///
/// # Safety
/// `ptr` must come from [`cairn_alloc`]`(len)` (or be a verdict's result with `len` = 4 + its
/// length), and not be freed before; a null `ptr` is ignored.
#[no_mangle]
pub unsafe extern "C" fn cairn_free(ptr: *mut u8, len: usize) {
    if ptr.is_null() {
        return;
    }
    if let Some(layout) = layout(len) {
        // SAFETY: by the caller's promise, `ptr` was allocated with this very layout.
        unsafe { dealloc(ptr, layout) }
    }
}

/// The bytes of an input.
///
/// # Safety
/// `ptr` must point to `len` initialised bytes that stay untouched during the call (or `len` is 0).
unsafe fn input<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 || ptr.is_null() {
        return &[];
    }
    // SAFETY: by the caller's promise.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

/// A result buffer: the JSON's length as a little-endian `u32`, then the JSON; null only if
/// memory is exhausted.
fn output(json: String) -> *mut u8 {
    let bytes = json.into_bytes();
    let Ok(length) = u32::try_from(bytes.len()) else {
        return std::ptr::null_mut();
    };
    let total = bytes.len() + 4;
    let Some(layout) = layout(total) else {
        return std::ptr::null_mut();
    };
    // SAFETY: a non-zero layout; the writes below stay within its `total` bytes.
    unsafe {
        let ptr = alloc(layout);
        if ptr.is_null() {
            return ptr;
        }
        std::ptr::copy_nonoverlapping(length.to_le_bytes().as_ptr(), ptr, 4);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr.add(4), bytes.len());
        ptr
    }
}

/// [`check_policy`] over memory: what a policy trusts, or why it is not a policy.
///
/// # Safety
/// `(policy, policy_len)` must be readable bytes, as [`cairn_alloc`] gives them.
#[no_mangle]
pub unsafe extern "C" fn cairn_check_policy(policy: *const u8, policy_len: usize) -> *mut u8 {
    // SAFETY: by the caller's promise.
    let policy = unsafe { input(policy, policy_len) };
    output(check_policy(policy))
}

/// [`verify_receipt`] over memory: a `cairn.receipt/v1` (or a C2SP tlog-proof) and a policy.
///
/// # Safety
/// Each `(ptr, len)` must be readable bytes, as [`cairn_alloc`] gives them.
#[no_mangle]
pub unsafe extern "C" fn cairn_verify_receipt(
    receipt: *const u8,
    receipt_len: usize,
    policy: *const u8,
    policy_len: usize,
) -> *mut u8 {
    // SAFETY: by the caller's promise.
    let (receipt, policy) = unsafe { (input(receipt, receipt_len), input(policy, policy_len)) };
    output(verify_receipt(receipt, policy))
}

/// [`verify_export`] over memory: a `cairn.export/v1` or `/v2` bundle and a policy.
///
/// # Safety
/// Each `(ptr, len)` must be readable bytes, as [`cairn_alloc`] gives them.
#[no_mangle]
pub unsafe extern "C" fn cairn_verify_export(
    bundle: *const u8,
    bundle_len: usize,
    policy: *const u8,
    policy_len: usize,
) -> *mut u8 {
    // SAFETY: by the caller's promise.
    let (bundle, policy) = unsafe { (input(bundle, bundle_len), input(policy, policy_len)) };
    output(verify_export(bundle, policy))
}

/// [`verify_document`] over memory: a receipt, tlog-proof or export bundle, told apart by its
/// contents, and a policy.
///
/// # Safety
/// Each `(ptr, len)` must be readable bytes, as [`cairn_alloc`] gives them.
#[no_mangle]
pub unsafe extern "C" fn cairn_verify_document(
    document: *const u8,
    document_len: usize,
    policy: *const u8,
    policy_len: usize,
) -> *mut u8 {
    // SAFETY: by the caller's promise.
    let (document, policy) = unsafe { (input(document, document_len), input(policy, policy_len)) };
    output(verify_document(document, policy))
}

/// [`verify_checkpoint`] over memory: a checkpoint note and a policy (empty: only read).
///
/// # Safety
/// Each `(ptr, len)` must be readable bytes, as [`cairn_alloc`] gives them.
#[no_mangle]
pub unsafe extern "C" fn cairn_verify_checkpoint(
    note: *const u8,
    note_len: usize,
    policy: *const u8,
    policy_len: usize,
) -> *mut u8 {
    // SAFETY: by the caller's promise.
    let (note, policy) = unsafe { (input(note, note_len), input(policy, policy_len)) };
    output(verify_checkpoint(note, policy))
}

/// [`verify_consistency`] over memory: an older and a newer checkpoint note, the log's
/// `/proof/consistency` answer between them, and a policy.
///
/// # Safety
/// Each `(ptr, len)` must be readable bytes, as [`cairn_alloc`] gives them.
#[no_mangle]
pub unsafe extern "C" fn cairn_verify_consistency(
    old_note: *const u8,
    old_len: usize,
    new_note: *const u8,
    new_len: usize,
    proof: *const u8,
    proof_len: usize,
    policy: *const u8,
    policy_len: usize,
) -> *mut u8 {
    // SAFETY: by the caller's promise.
    let (old_note, new_note, proof, policy) = unsafe {
        (
            input(old_note, old_len),
            input(new_note, new_len),
            input(proof, proof_len),
            input(policy, policy_len),
        )
    };
    output(verify_consistency(old_note, new_note, proof, policy))
}

/// [`verify_event`] over memory: the log's `GET /v1/events/{id}` answer, the event's receipt
/// (`GET /v1/events/{id}/proof`) and a policy.
///
/// # Safety
/// Each `(ptr, len)` must be readable bytes, as [`cairn_alloc`] gives them.
#[no_mangle]
pub unsafe extern "C" fn cairn_verify_event(
    answer: *const u8,
    answer_len: usize,
    receipt: *const u8,
    receipt_len: usize,
    policy: *const u8,
    policy_len: usize,
) -> *mut u8 {
    // SAFETY: by the caller's promise.
    let (answer, receipt, policy) = unsafe {
        (
            input(answer, answer_len),
            input(receipt, receipt_len),
            input(policy, policy_len),
        )
    };
    output(verify_event(answer, receipt, policy))
}
