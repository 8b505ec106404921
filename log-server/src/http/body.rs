//! Bodies in and out: a request body read whole within a limit, and a JSON answer written as
//! text.
//!
//! A body over its limit is answered 413 `too_large`. The client is most likely still sending
//! it: were the server to close the connection with the rest unread, the client's next write
//! could fail on a reset connection before it read the answer. So the rest is read and thrown
//! away, up to [`MAX_DISCARD`] bytes past the limit; a body that declares more than that is
//! refused at once, without reading any of it, and the connection closed.
//!
//! The usual body (one frame, already in the connection's buffer when the handler reads it) is
//! handed back as that frame: no copy and no allocation. A body that fails to arrive is a
//! `bad_request`, or a `request_timeout` when it arrived slower than the edge's minimum rate
//! (cairn-edge then answers 408 itself and closes the connection).

use std::future::poll_fn;
use std::pin::Pin;

use axum::body::{Body, Bytes, HttpBody};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use cairn_edge::body::BodyError;

use super::error::{ApiError, ErrorCode};

/// The most bytes of an oversized body read and thrown away past its limit, so that the client
/// reads its 413.
pub(crate) const MAX_DISCARD: usize = 8 << 20;

/// Reads `body` whole: at most `limit` bytes, else 413 `too_large` naming `what`.
pub(crate) async fn read_body(mut body: Body, limit: usize, what: &str) -> Result<Bytes, ApiError> {
    let limit_u64 = u64::try_from(limit).unwrap_or(u64::MAX);
    let declared = body.size_hint().lower();
    if declared > limit_u64 {
        let discard = u64::try_from(MAX_DISCARD).unwrap_or(u64::MAX);
        if declared - limit_u64 <= discard {
            discard_rest(&mut body, limit.saturating_add(MAX_DISCARD)).await;
        }
        return Err(too_large(what, limit));
    }
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut length = 0usize;
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|error| unreadable(error, what))?;
        // Trailers carry nothing the log reads.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        length = length.saturating_add(data.len());
        if length > limit {
            discard_rest(&mut body, MAX_DISCARD.saturating_sub(length - limit)).await;
            return Err(too_large(what, limit));
        }
        match (&mut first, &mut joined) {
            (None, None) => first = Some(data),
            (Some(_), None) => {
                let head = first.take().expect("the first frame is there");
                // What the body still declares, within the limit: one allocation for a body
                // of known length.
                let remaining = body.size_hint().lower().min((limit - length) as u64);
                let mut buffer = BytesMut::with_capacity(length + remaining as usize);
                buffer.extend_from_slice(&head);
                buffer.extend_from_slice(&data);
                joined = Some(buffer);
            }
            (_, Some(buffer)) => buffer.extend_from_slice(&data),
        }
    }
    Ok(match (first, joined) {
        (_, Some(buffer)) => buffer.freeze(),
        (Some(only), None) => only,
        (None, None) => Bytes::new(),
    })
}

fn too_large(what: &str, limit: usize) -> ApiError {
    ApiError::too_large(format!("the {what} is larger than {limit} bytes"))
}

/// Reads and drops what is left of `body`, at most `most` bytes; stops at the first error (the
/// answer is 413 whatever happens to the rest).
async fn discard_rest(body: &mut Body, most: usize) {
    let mut dropped = 0usize;
    while dropped <= most {
        match poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await {
            Some(Ok(frame)) => {
                dropped = dropped.saturating_add(frame.data_ref().map_or(0, Bytes::len));
            }
            Some(Err(_)) | None => return,
        }
    }
}

/// The answer to a body that failed to arrive.
fn unreadable(error: axum::Error, what: &str) -> ApiError {
    let inner = error.into_inner();
    match inner.downcast_ref::<BodyError>() {
        Some(slow @ BodyError::TooSlow { .. }) => {
            ApiError::new(ErrorCode::RequestTimeout, slow.to_string())
        }
        _ => ApiError::bad_request(format!("the {what} could not be read: {inner}")),
    }
}

/// A 200 answer of JSON written as text.
pub(crate) fn json_response(text: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}
