//! Handlers run to completion even when the client goes away.
//!
//! hyper drops a request's future when its connection closes. A handler
//! dropped between two awaits of a database write used to leave the pooled
//! connection inside a transaction (dropped within `BEGIN IMMEDIATE`) or
//! a multi-step write half done. Rather than making each of the kernel's
//! write sites cancellation-safe, every request runs on its own task:
//! dropping a `JoinHandle` detaches the task instead of cancelling it, so
//! the handler always finishes (or rolls back) and only its answer is lost.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::core::error::ApiError;

/// `axum::middleware::from_fn` layer: runs the rest of the stack detached.
pub async fn run_detached(request: Request, next: Next) -> Response {
    let task = tokio::spawn(next.run(request).in_current_span());
    match task.await {
        Ok(response) => response,
        // A panicking handler is a kernel bug; the caller still gets the
        // one error shape instead of a closed connection.
        Err(e) => ApiError::internal(format!("request handler failed: {e}")).into_response(),
    }
}
