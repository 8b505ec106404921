//! The router of the whole API: the tree API ([`crate::api`]), the audit-event API
//! ([`events`]), complete answers ([`completeness`]) and the auditor's web UI ([`cairn_ui`],
//! under `/ui/`, with `/` redirecting to it) side by side, with the answers for an unknown path
//! (404) and an unknown method (405, with `Allow`), and the layer around every route. The one
//! place that knows every set of routes.
//!
//! The handlers sit here, above the parts they answer from (the events database, the
//! completeness index) and the HTTP shell they share ([`crate::http`]), so that those parts
//! never depend on HTTP.

pub mod completeness;
pub mod events;

use std::sync::Arc;

use axum::Router;

use crate::http::error::{method_not_allowed, not_found};
use crate::http::record::RecordLayer;
use crate::http::AppState;

/// The router of the whole API, the web UI without a monitor.
pub fn router(state: Arc<AppState>) -> Router {
    router_with(state, cairn_ui::UiOptions::default())
}

/// The router of the whole API, the web UI with `ui`.
pub fn router_with(state: Arc<AppState>, ui: cairn_ui::UiOptions) -> Router {
    Router::new()
        .merge(crate::api::routes())
        .merge(events::routes())
        .merge(completeness::routes())
        .merge(cairn_ui::router_with(ui))
        .fallback(not_found)
        // Set on every route above, so it comes after them.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(RecordLayer(state.metrics.clone()))
        .with_state(state)
}
