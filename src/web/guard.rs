//! What every request passes before a page sees it, and what every error looks like: a request
//! target of at most [`MAX_URI`] bytes (414), no request body (413 on GET and HEAD; other
//! methods are 405 anyway, and the connection is closed rather than read), and errors that the
//! framework answers (a malformed path or query, a method not allowed, a login asked for) given
//! a message in the format of the page: JSON under `/api/`, HTML elsewhere.

use super::api::error_json;
use super::error_page;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The longest request target (path and query) answered. The longest a page makes (64
/// IPv6 networks in `ip=`) is under 4 KiB.
pub const MAX_URI: usize = 8 * 1024;
/// The framework's error bodies are short; more is cut.
const MESSAGE_MAX: usize = 4096;

/// Refuses long targets and request bodies.
pub async fn limits(req: Request, next: Next) -> Response {
    let uri = req.uri();
    let target = uri.path_and_query().map_or(0, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len());
    if target > MAX_URI {
        return (
            StatusCode::URI_TOO_LONG,
            format!("the request target is {target} bytes long; at most {MAX_URI} are read"),
        )
            .into_response();
    }
    let h = req.headers();
    let body = h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes().iter().any(|&b| b != b'0'));
    if body && matches!(*req.method(), Method::GET | Method::HEAD) {
        return close(
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                "this server takes no request body",
            )
                .into_response(),
        );
    }
    let res = next.run(req).await;
    match body {
        // The body is never read: the connection cannot carry another request.
        true => close(res),
        false => res,
    }
}

fn close(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// Gives errors without a page of their own (plain text or empty bodies) one: JSON under
/// `/api/`, HTML elsewhere, with the same status and headers.
pub async fn uniform_errors(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let res = next.run(req).await;
    let status = res.status();
    let formatted = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html") || t.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || formatted {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, MESSAGE_MAX)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = match (text.is_empty(), status) {
        (false, _) => text,
        (true, StatusCode::METHOD_NOT_ALLOWED) => {
            "only GET and HEAD are answered: nothing here can be changed over HTTP".to_owned()
        }
        (true, s) => s.canonical_reason().unwrap_or("error").to_owned(),
    };
    let page = match api {
        true => error_json(status, &message),
        false => error_page(status, &message),
    };
    let (fresh, body): (_, Body) = page.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in fresh.headers {
        if let Some(name) = name {
            parts.headers.insert(name, value);
        }
    }
    Response::from_parts(parts, body)
}
