//! The console's one style sheet, compiled into the binary (the CSP allows styles
//! from the console itself only).

use axum::http::header;
use axum::response::{IntoResponse, Response};

const CSS: &str = include_str!("console.css");

pub async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        CSS,
    )
        .into_response()
}
