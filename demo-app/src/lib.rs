//! demo-app's routes and public surface: the two-route HTTP service that cargo-gitops
//! builds and ships as its example image.
//!
//! The router lives here so tests and other binaries can mount it; `main.rs` only maps
//! errors to exit codes.

mod config;
mod server;

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{Html, IntoResponse};
use axum::routing::get;

pub use config::{Config, ConfigError};
pub use server::{Error, run};

/// The body of `GET /api`, kept byte-for-byte stable because clients compare it verbatim.
pub const API_BODY: &str = r#"{"hello":"world"}"#;

/// The body of `GET /`.
pub const ROOT_BODY: &str = "Hello, World!";

/// The service's routes. `get` also answers `HEAD` (same headers, no body) and turns any
/// other method on a known path into 405 with an `Allow` header; unknown paths fall through
/// to an empty 404.
pub fn app() -> Router {
    Router::new().route("/", get(root)).route("/api", get(api))
}

async fn root() -> Html<&'static str> {
    Html(ROOT_BODY)
}

async fn api() -> impl IntoResponse {
    // A fixed string rather than a serializer: the document never changes, and skipping
    // serde keeps the dependency tree and the per-request work minimal.
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        API_BODY,
    )
}
