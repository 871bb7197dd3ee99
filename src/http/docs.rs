//! `GET /api/docs`: the OpenAPI document (`openapi.rs`) as a page to read,
//! drawn by Redoc, whose one script is embedded in the binary and served
//! from latch's own path: the page loads nothing from elsewhere (no CDN, no
//! fonts), and its Content-Security-Policy allows nothing else.
//!
//! `docs/redoc.standalone.js` is `bundles/redoc.standalone.js` of the npm
//! package redoc 2.5.4 (MIT; `docs/LICENSE.redoc`, and the licences of what
//! it bundles in `docs/redoc.standalone.js.LICENSE.txt`), unchanged:
//! sha256 dcaf76612bc4a3fbcc923a8966dee2f6146a5f32e5ce1b6f02dd60cbbf89500b.
//! To update it: `npm pack redoc@VERSION`, copy those three files from the
//! tarball, and change the version and hash here and in the README.

use warp::http::{HeaderValue, header};
use warp::reply::Response;

use super::{AppState, GET, HandlerResult, Request, Route, endpoint};

pub const PAGE: &str = "/api/docs";
pub const SCRIPT: &str = "/api/docs/redoc.standalone.js";

/// Only latch's own script, which may fetch only from latch; nothing else
/// is loaded (no fonts, no stylesheets). What Redoc needs beyond that, each
/// found missing in Chromium: its styles are injected as `<style>` elements
/// (styled-components), hence 'unsafe-inline' for styles alone; its icons
/// are `data:` images; its search runs in a worker made from a `blob:`.
/// Redoc's side menu also shows its maker's logo from a CDN: this policy
/// blocks it (one console message), and Redoc then leaves it out.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; \
     img-src data:; connect-src 'self'; worker-src blob:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

const HTML: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>latch API</title>
</head>
<body>
<noscript>This page needs JavaScript. The document itself is <a href="/api/openapi.json">/api/openapi.json</a>.</noscript>
<redoc spec-url="/api/openapi.json" expand-responses="200,201" required-props-first="true"></redoc>
<script src="/api/docs/redoc.standalone.js"></script>
</body>
</html>
"#;

const REDOC: &[u8] = include_bytes!("docs/redoc.standalone.js");

pub fn routes() -> [Route; 2] {
    [endpoint(PAGE, GET, page), endpoint(SCRIPT, GET, script)]
}

fn static_response(body: &'static [u8], content_type: &'static str) -> Response {
    let mut response = Response::new(body.into());
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

async fn page(_state: AppState, _req: Request) -> HandlerResult {
    let mut response = static_response(HTML.as_bytes(), "text/html; charset=utf-8");
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    Ok(response)
}

async fn script(_state: AppState, _req: Request) -> HandlerResult {
    let mut response = static_response(REDOC, "text/javascript; charset=utf-8");
    // The file changes only with latch; an hour of caching spares reloads.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(response)
}
