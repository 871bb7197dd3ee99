//! The page the reset mail links to, for setups without a front end of their
//! own: `GET <path of reset.url>?uid=..&token=..` answers a form for the new
//! password, which a small script posts to `password/reset/confirm/` (see
//! `password.rs`) and whose answer it shows. Served only when the
//! configuration says so (`Config::reset_page_path`, `reset.page`).
//!
//! The page, its script and its style sheet are embedded in the binary and
//! load nothing from elsewhere. They carry a Content-Security-Policy that
//! allows only latch's own origin and no inline code, and the page is never
//! cached (the token is in its URL). Errors (405 for other methods) stay
//! the JSON ones of every endpoint.

use std::sync::Arc;

use bytes::Bytes;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use super::{AppState, GET, HandlerResult, Request, Route, endpoint};
use crate::config::Config;

const PAGE: &str = include_str!("reset_page/page.html");
const FORM: &str = include_str!("reset_page/form.html");
const INCOMPLETE: &str = include_str!("reset_page/incomplete.html");
const SCRIPT: &str = include_str!("reset_page/page.js");
const STYLE: &str = include_str!("reset_page/page.css");

/// Only this origin, for everything; no inline script or style, no plugins,
/// no framing, and the form may post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

/// The page, its script and style sheet (at `<path>/page.js` and
/// `<path>/page.css`), or none when latch does not serve the page.
pub fn routes(config: &Config) -> Option<[Route; 3]> {
    let path = config.reset_page_path()?;
    tracing::info!(path, "serving the password reset page");
    let assets = path.trim_end_matches('/');
    let pages = Arc::new(Pages {
        form: render(assets, FORM),
        incomplete: render(assets, INCOMPLETE),
    });
    Some([
        endpoint(
            path.to_string(),
            GET,
            move |_state: AppState, req: Request| {
                let pages = pages.clone();
                async move { page(&pages, &req) }
            },
        ),
        endpoint(
            format!("{assets}/page.js"),
            GET,
            |_: AppState, _: Request| asset(SCRIPT, "text/javascript; charset=utf-8"),
        ),
        endpoint(
            format!("{assets}/page.css"),
            GET,
            |_: AppState, _: Request| asset(STYLE, "text/css; charset=utf-8"),
        ),
    ])
}

/// The page in its two states, rendered once.
struct Pages {
    /// The link carries uid and token: the form.
    form: Bytes,
    /// It lacks one of them (cut short by a mail client, copied in part).
    incomplete: Bytes,
}

/// The page with `content` in it, naming its assets under `assets` (a
/// path of plain characters, checked in `config::load`: nothing to escape).
fn render(assets: &str, content: &str) -> Bytes {
    Bytes::from(
        PAGE.replace("{{assets}}", assets)
            .replace("{{content}}", content.trim_end()),
    )
}

/// Whether the link is whole is judged as the confirm endpoint judges it:
/// both parameters present and not empty. Nothing from the query is put in
/// the page; the script reads uid and token from the address itself.
fn page(pages: &Pages, req: &Request) -> HandlerResult {
    let present = |name| req.query_param(name).is_some_and(|v| !v.is_empty());
    let body = if present("uid") && present("token") {
        pages.form.clone()
    } else {
        pages.incomplete.clone()
    };
    let mut response = with_headers(body, "text/html; charset=utf-8");
    // The token is in the address: no cache may keep the page.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// A script or style sheet: fetched again at each use (`no-cache`), so that
/// a page never meets the assets of another version of latch.
async fn asset(text: &'static str, content_type: &'static str) -> HandlerResult {
    let mut response = with_headers(Bytes::from_static(text.as_bytes()), content_type);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// A 200 with the policy every part of the page carries. `nosniff` and
/// `Referrer-Policy: no-referrer` are added to every response in `mod.rs`.
fn with_headers(body: Bytes, content_type: &'static str) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}
