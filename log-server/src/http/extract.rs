//! Axum's `Query` and `Path` extractors, rejecting with an [`ApiError`] (JSON with a code)
//! instead of axum's plain-text rejections. Handlers use these, never axum's own.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The query string, deserialized; 400 `bad_request` if it does not fit `T`.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Query<T>, ApiError> {
        Ok(Query(axum::extract::Query::try_from_uri(&parts.uri)?.0))
    }
}

/// The path's parameters, deserialized; 400 `bad_request` if they do not fit `T` (or are not
/// UTF-8 once percent-decoded).
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Path<T>, ApiError> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(value))
    }
}
