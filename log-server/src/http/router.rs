//! The router of the whole API: the tree API ([`crate::api`]), the audit-event API
//! ([`crate::events::http`]) and the auditor's web UI ([`cairn_ui`], under `/ui/`, with `/`
//! redirecting to it) side by side, with the answers for an unknown path (404) and an
//! unknown method (405, with `Allow`), and the layer around every route. The one place that
//! knows both sets of routes.

use std::sync::Arc;

use axum::Router;

use super::error::{method_not_allowed, not_found};
use super::record::RecordLayer;
use super::state::AppState;

/// The router of the whole API, the web UI without a monitor.
pub fn router(state: Arc<AppState>) -> Router {
    router_with(state, cairn_ui::UiOptions::default())
}

/// The router of the whole API, the web UI with `ui`.
pub fn router_with(state: Arc<AppState>, ui: cairn_ui::UiOptions) -> Router {
    Router::new()
        .merge(crate::api::routes())
        .merge(crate::events::http::routes())
        .merge(crate::completeness::http::routes())
        .merge(cairn_ui::router_with(ui))
        .fallback(not_found)
        // Set on every route above, so it comes after them.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(RecordLayer(state.metrics.clone()))
        .with_state(state)
}
