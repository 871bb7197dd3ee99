//! The one error type every handler returns, and the one place where errors
//! become HTTP replies. Bodies follow Django REST Framework and simplejwt to
//! the letter: clients compare these strings.

use serde_json::{Map, Value, json};
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use crate::passwords::HashError;
use crate::store::StoreError;

pub(crate) const WWW_AUTHENTICATE: &str = r#"Bearer realm="api""#;

// The fixed `detail` texts, here once for the replies and the OpenAPI
// document (`http/openapi.rs`).
pub(crate) const NOT_AUTHENTICATED: &str = "Authentication credentials were not provided.";
pub(crate) const NO_ACTIVE_ACCOUNT: &str = "No active account found with the given credentials";
pub(crate) const ACCESS_TOKEN_NOT_VALID: &str = "Given token not valid for any token type";
pub(crate) const NOT_FOUND: &str = "Not found.";
pub(crate) const BODY_TIMEOUT: &str = "The request body did not arrive in time.";
pub(crate) const TOO_MANY_REQUESTS: &str = "Too many attempts. Try again later.";
pub(crate) const BUSY: &str = "Server busy, try again later.";
pub(crate) const UNAVAILABLE: &str = "Service temporarily unavailable, try again later.";

#[derive(Debug)]
pub enum ApiError {
    /// 400 with DRF serializer errors: `{"field": ["message", ...], ...}`.
    Fields(Map<String, Value>),
    /// 400 `{"error": message}`, the shape of the register and reset views.
    Message(String),
    /// 400 `{"detail": "JSON parse error - ..."}` and other unreadable bodies.
    Parse(String),
    /// 401 with a body in one of simplejwt's shapes; see the constructors.
    Unauthorized(Value),
    NotFound,
    MethodNotAllowed {
        method: String,
        allow: &'static str,
    },
    PayloadTooLarge {
        limit: u64,
    },
    /// The client did not send its whole body within the body read timeout.
    BodyTimeout,
    UnsupportedMediaType(String),
    /// A brute-force or abuse limit: come back after this many seconds.
    TooManyRequests {
        retry_after_secs: u64,
    },
    /// Password hashing is saturated: come back shortly.
    Busy,
    /// The database cannot serve the request right now (locked, full, read-only).
    Unavailable(String),
    /// A bug or an unexpected failure. The text is logged, never sent.
    Internal(String),
}

impl ApiError {
    pub fn message(text: impl Into<String>) -> ApiError {
        ApiError::Message(text.into())
    }

    /// No usable `Authorization: Bearer` header at all.
    pub fn not_authenticated() -> ApiError {
        ApiError::Unauthorized(json!({"detail": NOT_AUTHENTICATED}))
    }

    /// simplejwt's `AuthenticationFailed(detail, code)`.
    pub fn authentication_failed(detail: &str, code: &str) -> ApiError {
        ApiError::Unauthorized(json!({"detail": detail, "code": code}))
    }

    /// The login failure, deliberately the same for every cause.
    pub fn no_active_account() -> ApiError {
        ApiError::Unauthorized(json!({"detail": NO_ACTIVE_ACCOUNT}))
    }

    /// A refresh token that fails verification (`InvalidToken(message)`).
    pub fn token_not_valid(message: &str) -> ApiError {
        ApiError::authentication_failed(message, "token_not_valid")
    }

    /// An access token that fails verification on an authenticated endpoint.
    pub fn access_token_not_valid(message: &str) -> ApiError {
        ApiError::Unauthorized(json!({
            "detail": ACCESS_TOKEN_NOT_VALID,
            "code": "token_not_valid",
            "messages": [{"token_class": "AccessToken", "token_type": "access", "message": message}],
        }))
    }

    fn status_and_body(&self) -> (StatusCode, Value) {
        match self {
            ApiError::Fields(fields) => (StatusCode::BAD_REQUEST, Value::Object(fields.clone())),
            ApiError::Message(text) => (StatusCode::BAD_REQUEST, json!({"error": text})),
            ApiError::Parse(detail) => (StatusCode::BAD_REQUEST, json!({"detail": detail})),
            ApiError::Unauthorized(body) => (StatusCode::UNAUTHORIZED, body.clone()),
            ApiError::NotFound => (StatusCode::NOT_FOUND, json!({"detail": NOT_FOUND})),
            ApiError::MethodNotAllowed { method, .. } => (
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"detail": format!("Method \"{method}\" not allowed.")}),
            ),
            ApiError::PayloadTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"detail": format!("Request body is too large (the limit is {limit} bytes).")}),
            ),
            ApiError::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, json!({"detail": BODY_TIMEOUT})),
            ApiError::UnsupportedMediaType(media) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                json!({"detail": format!("Unsupported media type \"{media}\" in request.")}),
            ),
            ApiError::TooManyRequests { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                json!({"detail": TOO_MANY_REQUESTS}),
            ),
            ApiError::Busy => (StatusCode::SERVICE_UNAVAILABLE, json!({"detail": BUSY})),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"detail": UNAVAILABLE}),
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"detail": "A server error occurred."}),
            ),
        }
    }

    pub fn into_response(self) -> Response {
        match &self {
            ApiError::Unavailable(why) => tracing::warn!(error = %why, "database unavailable"),
            ApiError::Internal(why) => tracing::error!(error = %why, "internal error"),
            _ => {}
        }
        let (status, body) = self.status_and_body();
        let mut response = json_response(status, &body);
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthorized(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(WWW_AUTHENTICATE),
                );
            }
            ApiError::MethodNotAllowed { allow, .. } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            ApiError::Busy | ApiError::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::TooManyRequests { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

/// One line for a person at a terminal (the admin commands): the message a
/// client would get, or what went wrong inside.
impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Message(text) => f.write_str(text),
            ApiError::Unavailable(err) => write!(f, "the database is unavailable: {err}"),
            ApiError::Internal(err) => f.write_str(err),
            other => {
                let (status, body) = other.status_and_body();
                write!(f, "{status}: {body}")
            }
        }
    }
}

impl warp::Reply for ApiError {
    fn into_response(self) -> Response {
        ApiError::into_response(self)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(why) => ApiError::Unavailable(why),
            StoreError::Other(why) => ApiError::Internal(why),
        }
    }
}

impl From<crate::limits::Limited> for ApiError {
    fn from(limited: crate::limits::Limited) -> Self {
        ApiError::TooManyRequests {
            retry_after_secs: limited.retry_after_secs(),
        }
    }
}

impl From<HashError> for ApiError {
    fn from(err: HashError) -> Self {
        match err {
            HashError::Busy => ApiError::Busy,
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// A compact JSON body (DRF's default rendering) with its content type.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).expect("a JSON value always serializes");
    let mut response = Response::new(bytes.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(err: ApiError) -> (u16, String) {
        let (status, body) = err.status_and_body();
        (status.as_u16(), body.to_string())
    }

    #[test]
    fn bodies_are_drf_strings() {
        assert_eq!(
            body(ApiError::NotFound),
            (404, r#"{"detail":"Not found."}"#.into())
        );
        assert_eq!(
            body(ApiError::MethodNotAllowed {
                method: "GET".into(),
                allow: "POST, OPTIONS"
            }),
            (405, r#"{"detail":"Method \"GET\" not allowed."}"#.into())
        );
        assert_eq!(
            body(ApiError::access_token_not_valid("Token is expired")).1,
            r#"{"detail":"Given token not valid for any token type","code":"token_not_valid","messages":[{"token_class":"AccessToken","token_type":"access","message":"Token is expired"}]}"#
        );
    }

    #[test]
    fn internal_details_are_not_echoed() {
        let (status, text) = body(ApiError::Internal("secret path /x/y".into()));
        assert_eq!(status, 500);
        assert!(!text.contains("secret"));
        let (status, text) = body(ApiError::Unavailable("disk I/O error".into()));
        assert_eq!(status, 503);
        assert!(!text.contains("disk"));
    }

    #[test]
    fn headers_that_go_with_the_status() {
        let r = ApiError::not_authenticated().into_response();
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer realm="api""#
        );
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        let r = ApiError::MethodNotAllowed {
            method: "PUT".into(),
            allow: "POST, OPTIONS",
        }
        .into_response();
        assert_eq!(r.headers()[header::ALLOW], "POST, OPTIONS");
        assert_eq!(
            ApiError::Busy.into_response().headers()[header::RETRY_AFTER],
            "1"
        );
        let r = ApiError::TooManyRequests {
            retry_after_secs: 180,
        }
        .into_response();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()[header::RETRY_AFTER], "180");
        assert_eq!(
            body(ApiError::TooManyRequests {
                retry_after_secs: 1
            })
            .1,
            r#"{"detail":"Too many attempts. Try again later."}"#
        );
    }
}
