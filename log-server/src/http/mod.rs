//! The HTTP shell that the tree API ([`crate::api`]) and the audit-event API
//! ([`crate::routes::events`]) share: one error type and its codes, bounded body reading,
//! extractors that reject in JSON, and the state and receipts both answer with
//! (spec/docs/log-api.md). The router that puts the sets of routes together is
//! [`crate::routes`].
//!
//! - [`error`]: [`ApiError`] and the table of [`ErrorCode`]s; every error answer is JSON.
//! - [`body`]: request bodies read within a limit; JSON answers written as text.
//! - [`extract`]: `Query` and `Path` that reject with an [`ApiError`].
//! - [`state`]: [`AppState`], what every handler shares.
//! - [`receipt`]: receipts and the `?wait=checkpoint` wait.
//! - [`record`]: the layer around every route (JSON errors, request metrics).
//!
//! Neither API imports the other; both import this module, and only [`crate::routes`] knows
//! both.

pub(crate) mod body;
pub mod error;
pub(crate) mod extract;
pub(crate) mod receipt;
pub(crate) mod record;
pub(crate) mod state;

pub use error::{ApiError, ErrorCode};
pub use receipt::ReceiptWait;
pub use state::{ApiLimits, AppState};
