//! `GET /api/openapi.json`: an OpenAPI 3.1 document of every endpoint, each
//! status it can answer and the exact body of each (the README's error
//! table), built with utoipa's builders from the constants the handlers
//! answer with. A test below holds its paths and methods to the route table,
//! and CI runs Schemathesis against a live server with it
//! (`tests/schemathesis/run.sh`), so that neither can drift from the other.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use bytes::Bytes;
use serde_json::json;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::info::LicenseBuilder;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{AdditionalProperties, AnyOfBuilder, SchemaFormat};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ArrayBuilder, ComponentsBuilder, HttpMethod, InfoBuilder, KnownFormat, ObjectBuilder,
    OneOfBuilder, OpenApi, OpenApiBuilder, PathItem, PathsBuilder, Ref, RefOr, Required, Response,
    ResponseBuilder, Schema, SecurityRequirement, Type,
};
use warp::http::{HeaderValue, header};

use super::{AppState, GET, HandlerResult, Request, Route, endpoint};
use super::{auth, docs, input, password, register};
use crate::accounts::{EMAIL_TAKEN, USERNAME_TAKEN};
use crate::error;
use crate::revocation::BLACKLISTED;
use crate::tokens::TokenError;
use crate::validate;

pub const PATH: &str = "/api/openapi.json";

pub fn routes() -> [Route; 1] {
    [endpoint(PATH, GET, document)]
}

/// The document, serialized once.
static DOCUMENT: LazyLock<Bytes> = LazyLock::new(|| {
    openapi()
        .to_json()
        .expect("the OpenAPI document serializes")
        .into()
});

async fn document(_state: AppState, _req: Request) -> HandlerResult {
    let mut response = warp::reply::Response::new(DOCUMENT.clone().into());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

const BEARER: &str = "bearerAuth";
const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

const DESCRIPTION: &str = "\
latch serves the user API of Django REST Framework + djangorestframework-simplejwt: \
the same URLs, status codes, JSON bodies and token claims.

- Every path answers with and without the trailing slash.
- Request bodies are JSON objects, or `application/x-www-form-urlencoded` forms \
with the same fields. A body without a content type, or an empty one, is no data.
- Every response is JSON (but this document's viewer at `/api/docs`), and \
carries `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`.
- GET endpoints also answer HEAD. OPTIONS on any endpoint answers 200 with an \
`Allow` header. Any other method gets 405 `{\"detail\":\"Method \\\"PUT\\\" not allowed.\"}` \
with `Allow`; an unknown path gets 404 `{\"detail\":\"Not found.\"}`.
- A body broken off mid-way gets 400 `{\"detail\":\"The request body could not be read.\"}`.
- The bodies are contracts: clients compare these strings.";

/// The whole document.
pub fn openapi() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for op in operations() {
        let (path, method) = (op.path, op.method.clone());
        paths = paths.path(path, PathItem::new(method, op.build()));
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("latch")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(DESCRIPTION))
                .license(Some(
                    LicenseBuilder::new()
                        .name("MIT")
                        .identifier(Some("MIT"))
                        .build(),
                )),
        )
        .tags(Some([
            tag("auth", "Registering, logging in, refreshing, the profile."),
            tag(
                "tokens",
                "simplejwt's token endpoints beyond login and refresh, and logging out.",
            ),
            tag(
                "password",
                "Resetting a forgotten password by an emailed link.",
            ),
            tag("service", "Health, public keys, and this document."),
        ]))
        .paths(paths)
        .components(Some(components()))
        .build()
}

fn tag(name: &str, description: &str) -> utoipa::openapi::Tag {
    TagBuilder::new()
        .name(name)
        .description(Some(description))
        .build()
}

/// One operation as this module describes it.
struct Op {
    path: &'static str,
    method: HttpMethod,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
    description: &'static str,
    /// The component schema of the body's fields, as JSON or as a form.
    body: Option<&'static str>,
    /// Needs `Authorization: Bearer <access token>`.
    bearer: bool,
    /// Required query parameters: name and description.
    query: &'static [(&'static str, &'static str)],
    responses: Vec<(&'static str, RefOr<Response>)>,
}

impl Op {
    fn build(self) -> utoipa::openapi::path::Operation {
        let mut op = OperationBuilder::new()
            .operation_id(Some(self.id))
            .tag(self.tag)
            .summary(Some(self.summary))
            .description(Some(self.description));
        if let Some(body) = self.body {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content(
                        JSON,
                        ContentBuilder::new().schema(Some(schema_ref(body))).build(),
                    )
                    .content(
                        FORM,
                        ContentBuilder::new().schema(Some(schema_ref(body))).build(),
                    )
                    .build(),
            ));
        }
        if self.bearer {
            op = op.security(SecurityRequirement::new(BEARER, Vec::<String>::new()));
        }
        for (name, description) in self.query {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(*name)
                    .parameter_in(ParameterIn::Query)
                    .required(Required::True)
                    .description(Some(*description))
                    // An empty value counts as missing.
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .min_length(Some(1)),
                    )),
            );
        }
        for (status, response) in self.responses {
            op = op.response(status, response);
        }
        op.build()
    }
}

/// Responses every operation can give, whatever it does: a body too large
/// or too slow, and, with CORS configured, a browser request from an origin
/// not listed.
fn any_request() -> Vec<(&'static str, RefOr<Response>)> {
    vec![
        ("403", response_ref("CorsForbidden")),
        ("408", response_ref("BodyTimeout")),
        ("413", response_ref("PayloadTooLarge")),
    ]
}

/// ... and those of every operation that reads its body as data.
fn with_body(bad_request: RefOr<Response>) -> Vec<(&'static str, RefOr<Response>)> {
    let mut responses = vec![("400", bad_request)];
    responses.extend(any_request());
    responses.push(("415", response_ref("UnsupportedMediaType")));
    responses
}

fn operations() -> Vec<Op> {
    let unavailable = ("503", response_ref("Unavailable"));
    let busy_or_unavailable = ("503", response_ref("BusyOrUnavailable"));
    let too_many = ("429", response_ref("TooManyRequests"));
    let token_refused = ("401", response_ref("TokenRefused"));
    let bearer_refused = ("401", response_ref("BearerRefused"));
    let empty = || {
        ok_no_store(
            "Done.",
            RefOr::Ref(Ref::from_schema_name("Empty")),
            Vec::new(),
        )
    };
    let access_links = || {
        vec![
            (
                "profile",
                bearer_link("profile", "The profile, with this access token."),
            ),
            (
                "verify",
                body_link(
                    "verifyToken",
                    json!({"token": "$response.body#/access"}),
                    "Verify this access token.",
                ),
            ),
        ]
    };
    let refresh_links = || {
        let mut links = access_links();
        links.extend([
            (
                "refresh",
                body_link(
                    "refreshToken",
                    json!({"refresh": "$response.body#/refresh"}),
                    "A new access token for this refresh token.",
                ),
            ),
            (
                "logout",
                body_link(
                    "logout",
                    json!({"refresh": "$response.body#/refresh"}),
                    "Log this login out.",
                ),
            ),
            (
                "blacklist",
                body_link(
                    "blacklistToken",
                    json!({"refresh": "$response.body#/refresh"}),
                    "Blacklist this refresh token.",
                ),
            ),
            (
                "logoutAll",
                bearer_link("logoutAll", "Log out everywhere, with this access token."),
            ),
        ]);
        links
    };

    let mut ops = vec![
        Op {
            path: "/api/auth/register/",
            method: HttpMethod::Post,
            id: "register",
            tag: "auth",
            summary: "Register",
            description: "Creates an account. The username is NFKC-normalized and must be \
                1-150 letters, digits and `@ . + - _`; the email must be an address not \
                taken (compared without case); the password must pass the password rules. \
                A taken username is reported before anything else.",
            body: Some("Registration"),
            bearer: false,
            query: &[],
            responses: {
                let mut r = vec![(
                    "201",
                    ResponseBuilder::new()
                        .description("Registered.")
                        .content(JSON, content(message(register::REGISTERED)))
                        .link(
                            "login",
                            body_link(
                                "login",
                                json!({
                                    "username": "$request.body#/username",
                                    "password": "$request.body#/password",
                                }),
                                "Log in as the user just registered.",
                            ),
                        )
                        .build()
                        .into(),
                )];
                r.extend(with_body(bad_request(
                    "A field missing, empty or not a string; a username taken or not \
                     valid; an email not valid or taken; a password the rules refuse.",
                    view_error(
                        &[
                            &[
                                register::ALL_FIELDS_REQUIRED,
                                register::NOT_STRINGS,
                                USERNAME_TAKEN,
                                validate::USERNAME_INVALID,
                                validate::EMAIL_INVALID,
                                EMAIL_TAKEN,
                            ],
                            &validate::PASSWORD_MESSAGES,
                        ],
                        &[
                            validate::USERNAME_TOO_LONG_PATTERN,
                            validate::PASSWORD_LENGTH_PATTERN,
                        ],
                    ),
                )));
                r.extend([too_many.clone(), busy_or_unavailable.clone()]);
                r
            },
        },
        Op {
            path: "/api/auth/login/",
            method: HttpMethod::Post,
            id: "login",
            tag: "auth",
            summary: "Log in",
            description: "Answers a refresh and an access token for an active user's \
                username and password (simplejwt's `TokenObtainPairView`). The password \
                is checked exactly as sent. Unknown users, inactive users and wrong \
                passwords get the same answer in the same time.",
            body: Some("Credentials"),
            bearer: false,
            query: &[],
            responses: {
                let mut r = vec![(
                    "200",
                    ok_no_store(
                        "A refresh and an access token.",
                        schema_ref("TokenPair"),
                        refresh_links(),
                    ),
                )];
                r.extend(with_body(field_errors(&["username", "password"])));
                r.push((
                    "401",
                    unauthorized(
                        "No active account with these credentials.",
                        detail(&[error::NO_ACTIVE_ACCOUNT]),
                    ),
                ));
                r.extend([too_many.clone(), busy_or_unavailable.clone()]);
                r
            },
        },
        Op {
            path: "/api/auth/token/refresh/",
            method: HttpMethod::Post,
            id: "refreshToken",
            tag: "auth",
            summary: "Refresh",
            description: "A new access token for a refresh token (simplejwt's \
                `TokenRefreshView`). With `jwt.rotate_refresh_tokens` on, also a new \
                refresh token, and the one presented is retired.",
            body: Some("RefreshRequest"),
            bearer: false,
            query: &[],
            responses: {
                let mut r = vec![(
                    "200",
                    ok_no_store(
                        "A new access token (and refresh token, with rotation).",
                        schema_ref("Refreshed"),
                        access_links(),
                    ),
                )];
                r.extend(with_body(field_errors(&["refresh"])));
                r.extend([token_refused.clone(), unavailable.clone()]);
                r
            },
        },
        Op {
            path: "/api/auth/profile/",
            method: HttpMethod::Get,
            id: "profile",
            tag: "auth",
            summary: "Profile",
            description: "The user the access token belongs to.",
            body: None,
            bearer: true,
            query: &[],
            responses: {
                let mut r = vec![(
                    "200",
                    ok_no_store("The user.", schema_ref("Profile"), Vec::new()),
                )];
                r.extend(any_request());
                r.extend([bearer_refused.clone(), unavailable.clone()]);
                r
            },
        },
        Op {
            path: "/api/auth/token/verify/",
            method: HttpMethod::Post,
            id: "verifyToken",
            tag: "tokens",
            summary: "Verify a token",
            description: "Whether a token of either type is valid; a refresh token must \
                also not be blacklisted or revoked (simplejwt's `TokenVerifyView`).",
            body: Some("VerifyRequest"),
            bearer: false,
            query: &[],
            responses: {
                let mut r = vec![("200", empty())];
                r.extend(with_body(field_errors(&["token"])));
                r.extend([token_refused.clone(), unavailable.clone()]);
                r
            },
        },
    ];
    for (path, id, summary) in [
        (
            "/api/auth/token/blacklist/",
            "blacklistToken",
            "Blacklist a refresh token",
        ),
        ("/api/auth/logout/", "logout", "Log out"),
    ] {
        ops.push(Op {
            path,
            method: HttpMethod::Post,
            id,
            tag: "tokens",
            summary,
            description: "The refresh token, and the other tokens of its login (its \
                rotations), never work again. `logout/` and `token/blacklist/` (simplejwt's \
                `TokenBlacklistView`) are the same endpoint.",
            body: Some("RefreshRequest"),
            bearer: false,
            query: &[],
            responses: {
                let mut r = vec![("200", empty())];
                r.extend(with_body(field_errors(&["refresh"])));
                r.extend([token_refused.clone(), unavailable.clone()]);
                r
            },
        });
    }
    ops.extend([
        Op {
            path: "/api/auth/logout/all/",
            method: HttpMethod::Post,
            id: "logoutAll",
            tag: "tokens",
            summary: "Log out everywhere",
            description: "Every refresh token of the user stops working. Logging in again \
                works at once. Any request body is ignored.",
            body: None,
            bearer: true,
            query: &[],
            responses: {
                let mut r = vec![("200", empty())];
                r.extend(any_request());
                r.extend([bearer_refused.clone(), unavailable.clone()]);
                r
            },
        },
        Op {
            path: "/api/auth/password/reset/",
            method: HttpMethod::Post,
            id: "requestPasswordReset",
            tag: "password",
            summary: "Ask for a reset link",
            description: "Mails a link carrying `uid` and `token` to the address, if an \
                active user has it. With `reset.reveal_unknown_email = false` an unknown \
                address gets the same 200 as a known one.",
            body: Some("ResetRequest"),
            bearer: false,
            query: &[],
            responses: {
                let mut r = vec![(
                    "200",
                    ResponseBuilder::new()
                        .description("The link is on its way.")
                        .content(JSON, content(message(password::LINK_SENT)))
                        .build()
                        .into(),
                )];
                r.extend(with_body(bad_request(
                    "The email missing, empty or not a string; no active user with it.",
                    view_error(
                        &[&[
                            password::EMAIL_REQUIRED,
                            password::EMAIL_NOT_STRING,
                            password::UNKNOWN_EMAIL,
                        ]],
                        &[],
                    ),
                )));
                r.extend([too_many.clone(), unavailable.clone()]);
                r
            },
        },
        Op {
            path: "/api/auth/password/reset/confirm/",
            method: HttpMethod::Post,
            id: "confirmPasswordReset",
            tag: "password",
            summary: "Set a new password",
            description: "Sets the new password with the `uid` and `token` of a reset \
                link. A link works once; it expires, and stops working when the password \
                changes. Every refresh token of the user issued before is revoked.",
            body: Some("ResetConfirm"),
            bearer: false,
            query: &[
                (
                    "uid",
                    "The user's id, as Django's `urlsafe_base64_encode` writes it.",
                ),
                ("token", "The token of the reset link."),
            ],
            responses: {
                let mut r = vec![(
                    "200",
                    ResponseBuilder::new()
                        .description("The password is changed.")
                        .content(JSON, content(message(password::PASSWORD_RESET)))
                        .build()
                        .into(),
                )];
                r.extend(with_body(bad_request(
                    "`uid` or `token` missing or wrong; the new password missing, not a \
                     string, or refused by the password rules.",
                    view_error(
                        &[
                            &[
                                password::MISSING_PARAMETERS,
                                password::INVALID_UID,
                                password::INVALID_TOKEN,
                                password::PASSWORD_REQUIRED,
                                password::PASSWORD_NOT_STRING,
                            ],
                            &validate::PASSWORD_MESSAGES,
                        ],
                        &[validate::PASSWORD_LENGTH_PATTERN],
                    ),
                )));
                r.push(busy_or_unavailable.clone());
                r
            },
        },
        Op {
            path: "/healthz",
            method: HttpMethod::Get,
            id: "health",
            tag: "service",
            summary: "Health",
            description: "Whether the database is usable. Never limited.",
            body: None,
            bearer: false,
            query: &[],
            responses: {
                let mut r = vec![
                    (
                        "200",
                        ResponseBuilder::new()
                            .description("The database is usable.")
                            .content(JSON, content(status("ok")))
                            .build()
                            .into(),
                    ),
                    (
                        "503",
                        ResponseBuilder::new()
                            .description("The database is not usable.")
                            .content(JSON, content(status("unavailable")))
                            .build()
                            .into(),
                    ),
                ];
                r.extend(any_request());
                r
            },
        },
        Op {
            path: "/readyz",
            method: HttpMethod::Get,
            id: "ready",
            tag: "service",
            summary: "Readiness",
            description: "Whether a write goes in now (a real write, probed at most once a \
                second) and mail goes out. For load balancers and orchestrators; never limited.",
            body: None,
            bearer: false,
            query: &[],
            responses: {
                let mut r = vec![
                    (
                        "200",
                        ResponseBuilder::new()
                            .description("Writes go in and the outbox drains.")
                            .content(JSON, content(status("ok")))
                            .build()
                            .into(),
                    ),
                    (
                        "503",
                        ResponseBuilder::new()
                            .description(
                                "Degraded: the database takes no writes (disk full, read-only \
                                 file), and/or mail has kept failing for twice \
                                 `mail.retry_max_secs`.",
                            )
                            .content(
                                JSON,
                                content(
                                    closed(
                                        &[("status", enum_string(&["degraded"]))],
                                        &[
                                            ("database", enum_string(&["read-only"])),
                                            ("outbox", enum_string(&["stalled"])),
                                        ],
                                    )
                                    .into(),
                                ),
                            )
                            .build()
                            .into(),
                    ),
                ];
                r.extend(any_request());
                r
            },
        },
        Op {
            path: "/.well-known/jwks.json",
            method: HttpMethod::Get,
            id: "jwks",
            tag: "service",
            summary: "Public signing keys",
            description: "The public keys tokens are signed with, as a JWK Set, with \
                `jwt.algorithm` EdDSA or RS256. Verifiers may keep it five minutes.",
            body: None,
            bearer: false,
            query: &[],
            responses: {
                let mut r = vec![
                    (
                        "200",
                        ResponseBuilder::new()
                            .description("The keys.")
                            .content(JSON, content(schema_ref("Jwks")))
                            .header(
                                "Cache-Control",
                                fixed_header("public, max-age=300", "Verifiers may keep it."),
                            )
                            .build()
                            .into(),
                    ),
                    (
                        "404",
                        ResponseBuilder::new()
                            .description(
                                "Tokens are signed with an HMAC secret: there is no public key.",
                            )
                            .content(JSON, content(detail(&[error::NOT_FOUND])))
                            .build()
                            .into(),
                    ),
                ];
                r.extend(any_request());
                r
            },
        },
        Op {
            path: PATH,
            method: HttpMethod::Get,
            id: "openapi",
            tag: "service",
            summary: "This document",
            description: "The OpenAPI 3.1 document of this API.",
            body: None,
            bearer: false,
            query: &[],
            responses: {
                let mut r = vec![(
                    "200",
                    ResponseBuilder::new()
                        .description("The document.")
                        .content(
                            JSON,
                            content(ObjectBuilder::new().schema_type(Type::Object).into()),
                        )
                        .build()
                        .into(),
                )];
                r.extend(any_request());
                r
            },
        },
        Op {
            path: docs::PAGE,
            method: HttpMethod::Get,
            id: "docs",
            tag: "service",
            summary: "This document, to read",
            description: "A page showing this document (Redoc, served by latch itself).",
            body: None,
            bearer: false,
            query: &[],
            responses: {
                let mut r = vec![(
                    "200",
                    ResponseBuilder::new()
                        .description("The page.")
                        .content("text/html", content(string()))
                        .header(
                            "Content-Security-Policy",
                            fixed_header(docs::CSP, "Only latch's own script, styles and data."),
                        )
                        .build()
                        .into(),
                )];
                r.extend(any_request());
                r
            },
        },
        Op {
            path: docs::SCRIPT,
            method: HttpMethod::Get,
            id: "docsScript",
            tag: "service",
            summary: "The page's script",
            description: "Redoc's standalone script, which the page runs.",
            body: None,
            bearer: false,
            query: &[],
            responses: {
                let mut r = vec![(
                    "200",
                    ResponseBuilder::new()
                        .description("The script.")
                        .content("text/javascript", content(string()))
                        .build()
                        .into(),
                )];
                r.extend(any_request());
                r
            },
        },
    ]);
    ops
}

fn components() -> utoipa::openapi::Components {
    let schemas: BTreeMap<&str, RefOr<Schema>> = BTreeMap::from([
        // Request bodies.
        (
            "Registration",
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property(
                    "username",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(r"^[\w.@+-]+$"))
                        .max_length(Some(150))
                        .description(Some(
                            "1-150 letters, digits and `@ . + - _`, after NFKC normalization.",
                        )),
                )
                .required("username")
                .property(
                    "email",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
                        .max_length(Some(254))
                        .description(Some(
                            "An address no account has, compared without case; its domain \
                             is stored lower-cased.",
                        )),
                )
                .required("email")
                .property("password", new_password())
                .required("password")
                .examples([json!({
                    "username": "alice",
                    "email": "alice@example.com",
                    "password": "correct-horse-9",
                })])
                .into(),
        ),
        (
            "Credentials",
            fields(&["username", "password"])
                .description(Some(
                    "Numbers are taken as their text. The username is trimmed and \
                     NFKC-normalized; the password is checked exactly as sent.",
                ))
                .examples([json!({"username": "alice", "password": "correct-horse-9"})])
                .into(),
        ),
        (
            "RefreshRequest",
            fields(&["refresh"])
                .description(Some("`refresh`: a refresh token."))
                .into(),
        ),
        (
            "VerifyRequest",
            fields(&["token"])
                .description(Some("`token`: an access or a refresh token."))
                .into(),
        ),
        (
            "ResetRequest",
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property(
                    "email",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
                        .min_length(Some(1)),
                )
                .required("email")
                .examples([json!({"email": "alice@example.com"})])
                .into(),
        ),
        (
            "ResetConfirm",
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property("new_password", new_password())
                .required("new_password")
                .examples([json!({"new_password": "another-horse-10"})])
                .into(),
        ),
        // Answers.
        (
            "TokenPair",
            closed(&[("refresh", jwt()), ("access", jwt())], &[]).into(),
        ),
        (
            "Refreshed",
            closed(&[("access", jwt())], &[("refresh", jwt())])
                .description(Some("`refresh` only with `jwt.rotate_refresh_tokens` on."))
                .into(),
        ),
        (
            "Profile",
            closed(
                &[
                    (
                        "id",
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                            .into(),
                    ),
                    ("username", string()),
                    ("email", string()),
                ],
                &[],
            )
            .into(),
        ),
        (
            "Empty",
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
                .into(),
        ),
        (
            "Jwks",
            closed(
                &[(
                    "keys",
                    ArrayBuilder::new()
                        .items(
                            ObjectBuilder::new()
                                .schema_type(Type::Object)
                                .property("kty", enum_string(&["OKP", "RSA"]))
                                .required("kty")
                                .property("kid", string())
                                .required("kid")
                                .property("alg", enum_string(&["EdDSA", "RS256"]))
                                .required("alg")
                                .property("use", enum_string(&["sig"]))
                                .required("use")
                                .property("crv", enum_string(&["Ed25519"]))
                                .property("x", string())
                                .property("n", string())
                                .property("e", string()),
                        )
                        .into(),
                )],
                &[],
            )
            .into(),
        ),
        // Refusals shared by several endpoints.
        (
            "NonFieldErrors",
            closed(
                &[(
                    "non_field_errors",
                    one_message(enum_string(
                        &std::iter::once(input::NO_DATA.to_string())
                            .chain(input::NOT_A_DICTIONARY.map(input::not_a_dictionary))
                            .collect::<Vec<_>>(),
                    )),
                )],
                &[],
            )
            .description(Some("JSON that is not an object."))
            .into(),
        ),
        (
            "ParseError",
            closed(
                &[(
                    "detail",
                    OneOfBuilder::new()
                        .item(
                            ObjectBuilder::new()
                                .schema_type(Type::String)
                                .pattern(Some(format!("^{}", input::JSON_PARSE_ERROR))),
                        )
                        .item(enum_string(&[input::BODY_UNREADABLE]))
                        .into(),
                )],
                &[],
            )
            .description(Some("A body that is not JSON, or was broken off."))
            .into(),
        ),
        (
            "TokenNotValid",
            closed(
                &[
                    (
                        "detail",
                        enum_string(
                            &TokenError::ALL
                                .iter()
                                .map(TokenError::message)
                                .chain([BLACKLISTED])
                                .collect::<Vec<_>>(),
                        ),
                    ),
                    ("code", enum_string(&["token_not_valid"])),
                ],
                &[],
            )
            .into(),
        ),
        (
            "NotAuthenticated",
            closed(&[("detail", enum_string(&[error::NOT_AUTHENTICATED]))], &[])
                .description(Some("No `Authorization: Bearer` header."))
                .into(),
        ),
        (
            "AuthenticationFailed",
            OneOfBuilder::new()
                .description(Some(
                    "A malformed header; a token without a user id; its user gone or inactive.",
                ))
                .item(detail_and_code(auth::BAD_AUTHORIZATION_HEADER))
                .item(detail_and_code((auth::NO_USER_ID, "token_not_valid")))
                .item(detail_and_code(auth::USER_NOT_FOUND))
                .item(detail_and_code(auth::USER_INACTIVE))
                .into(),
        ),
        (
            "AccessTokenNotValid",
            closed(
                &[
                    ("detail", enum_string(&[error::ACCESS_TOKEN_NOT_VALID])),
                    ("code", enum_string(&["token_not_valid"])),
                    (
                        "messages",
                        one_message(
                            closed(
                                &[
                                    ("token_class", enum_string(&["AccessToken"])),
                                    ("token_type", enum_string(&["access"])),
                                    (
                                        "message",
                                        enum_string(
                                            &TokenError::ALL
                                                .iter()
                                                .map(TokenError::message)
                                                .collect::<Vec<_>>(),
                                        ),
                                    ),
                                ],
                                &[],
                            )
                            .into(),
                        ),
                    ),
                ],
                &[],
            )
            .description(Some("A bad, expired or refresh token."))
            .into(),
        ),
    ]);
    let responses: BTreeMap<&str, Response> = BTreeMap::from([
        (
            "CorsForbidden",
            ResponseBuilder::new()
                .description(
                    "With `cors.allowed_origins` set: a browser request from another origin.",
                )
                .content(
                    JSON,
                    content(detail(&[
                        "CORS request forbidden: origin not allowed",
                        "CORS request forbidden: request-method not allowed",
                        "CORS request forbidden: header not allowed",
                    ])),
                )
                .build(),
        ),
        (
            "BodyTimeout",
            ResponseBuilder::new()
                .description("The body did not arrive within `server.body_read_timeout_secs`.")
                .content(JSON, content(detail(&[error::BODY_TIMEOUT])))
                .build(),
        ),
        (
            "PayloadTooLarge",
            ResponseBuilder::new()
                .description("The body is larger than `server.max_body_bytes`.")
                .content(
                    JSON,
                    content(detail_pattern(
                        r"^Request body is too large \(the limit is [0-9]+ bytes\)\.$",
                    )),
                )
                .build(),
        ),
        (
            "UnsupportedMediaType",
            ResponseBuilder::new()
                .description("A body that is neither JSON nor a form.")
                .content(
                    JSON,
                    content(detail_pattern(
                        r#"^Unsupported media type ".*" in request\.$"#,
                    )),
                )
                .build(),
        ),
        (
            "TooManyRequests",
            with_retry_after(
                ResponseBuilder::new()
                    .description(
                        "A brute-force or abuse limit (see the README's Limits): come back \
                         after `Retry-After` seconds.",
                    )
                    .content(JSON, content(detail(&[error::TOO_MANY_REQUESTS]))),
            ),
        ),
        (
            "Unavailable",
            with_retry_after(
                ResponseBuilder::new()
                    .description(
                        "The database cannot serve this now (locked past \
                         `database.busy_timeout_ms`, disk full, read-only).",
                    )
                    .content(JSON, content(detail(&[error::UNAVAILABLE]))),
            ),
        ),
        (
            "BusyOrUnavailable",
            with_retry_after(
                ResponseBuilder::new()
                    .description(
                        "The password hashing queue is full, or the database cannot \
                         serve this now.",
                    )
                    .content(JSON, content(detail(&[error::BUSY, error::UNAVAILABLE]))),
            ),
        ),
        (
            "TokenRefused",
            unauthorized(
                "The token is bad, expired, of the wrong type, blacklisted or revoked; \
                 or its user is gone or inactive.",
                schema_ref("TokenNotValid"),
            )
            .into_response(),
        ),
        (
            "BearerRefused",
            unauthorized(
                "No usable access token, or its user is gone or inactive.",
                OneOfBuilder::new()
                    .item(schema_ref("NotAuthenticated"))
                    .item(schema_ref("AuthenticationFailed"))
                    .item(schema_ref("AccessTokenNotValid"))
                    .into(),
            )
            .into_response(),
        ),
    ]);
    let mut components = ComponentsBuilder::new().security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some("An access token from login or refresh."))
                .build(),
        ),
    );
    for (name, schema) in schemas {
        components = components.schema(name, schema);
    }
    for (name, response) in responses {
        components = components.response(name, response);
    }
    components.build()
}

trait IntoResponse {
    fn into_response(self) -> Response;
}

impl IntoResponse for RefOr<Response> {
    fn into_response(self) -> Response {
        match self {
            RefOr::T(response) => response,
            RefOr::Ref(_) => unreachable!("built inline"),
        }
    }
}

fn schema_ref(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

fn response_ref(name: &str) -> RefOr<Response> {
    RefOr::Ref(Ref::from_response_name(name))
}

fn content(schema: RefOr<Schema>) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(schema)).build()
}

fn string() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).into()
}

fn jwt() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("A JWT."))
        .into()
}

fn enum_string<S: AsRef<str>>(values: &[S]) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().map(|v| v.as_ref().to_string())))
        .into()
}

/// An object with exactly these properties: `required` always, `optional`
/// maybe, nothing else.
fn closed(required: &[(&str, RefOr<Schema>)], optional: &[(&str, RefOr<Schema>)]) -> ObjectBuilder {
    let mut object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)));
    for (name, schema) in required {
        object = object.property(*name, schema.clone()).required(*name);
    }
    for (name, schema) in optional {
        object = object.property(*name, schema.clone());
    }
    object
}

/// A request body of DRF `CharField`s, all required. Other fields are ignored.
fn fields(names: &[&str]) -> ObjectBuilder {
    let mut object = ObjectBuilder::new().schema_type(Type::Object);
    for name in names {
        object = object.property(*name, char_field()).required(*name);
    }
    object
}

/// What a DRF `CharField` takes: text with more than white space, without
/// NUL (numbers are taken as their text too).
fn char_field() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .pattern(Some(r"^[^\u0000]*[^\s\u0000][^\u0000]*$"))
        .into()
}

/// A new password, as the password rules take it.
fn new_password() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(8))
        .pattern(Some(r"^[^\u0000]*$"))
        .description(Some(
            "`password.min_length` (8) to `password.max_length` (4096) characters, no \
             NUL; with `password.reject_*` on, not too similar to the username or email, \
             not common, not all digits.",
        ))
        .into()
}

/// DRF's list of one message.
fn one_message(item: RefOr<Schema>) -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(item)
        .min_items(Some(1))
        .max_items(Some(1))
        .into()
}

/// `{"detail": one of these}`.
fn detail<S: AsRef<str>>(messages: &[S]) -> RefOr<Schema> {
    closed(&[("detail", enum_string(messages))], &[]).into()
}

fn detail_pattern(pattern: &str) -> RefOr<Schema> {
    closed(
        &[(
            "detail",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(pattern))
                .into(),
        )],
        &[],
    )
    .into()
}

/// `{"detail": ..., "code": ...}`, simplejwt's `AuthenticationFailed`.
fn detail_and_code((message, code): (&str, &str)) -> RefOr<Schema> {
    closed(
        &[
            ("detail", enum_string(&[message])),
            ("code", enum_string(&[code])),
        ],
        &[],
    )
    .into()
}

fn message(text: &str) -> RefOr<Schema> {
    closed(&[("message", enum_string(&[text]))], &[]).into()
}

fn status(text: &str) -> RefOr<Schema> {
    closed(&[("status", enum_string(&[text]))], &[]).into()
}

/// `{"error": message}`, the register and reset views' refusals: one of
/// the fixed messages, or one matching a pattern.
fn view_error(messages: &[&[&str]], patterns: &[&str]) -> RefOr<Schema> {
    let fixed: Vec<&str> = messages.iter().flat_map(|m| m.iter().copied()).collect();
    let mut error = AnyOfBuilder::new().item(enum_string(&fixed));
    for pattern in patterns {
        error = error.item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(*pattern)),
        );
    }
    closed(&[("error", error.into())], &[]).into()
}

/// DRF serializer errors of these `CharField`s: each field that failed,
/// with its one message.
fn field_errors(names: &[&str]) -> RefOr<Response> {
    let mut object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .min_properties(Some(1))
        .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)));
    for name in names {
        object = object.property(*name, one_message(enum_string(&input::FIELD_MESSAGES)));
    }
    bad_request(
        "A field missing, blank, null, not a string or with a NUL character; or a body \
         that is not a JSON object.",
        object.into(),
    )
}

/// The 400 of an endpoint: its own refusals, or a body that is no object.
fn bad_request(description: &str, own: RefOr<Schema>) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            JSON,
            content(
                OneOfBuilder::new()
                    .item(own)
                    .item(schema_ref("NonFieldErrors"))
                    .item(schema_ref("ParseError"))
                    .into(),
            ),
        )
        .build()
        .into()
}

/// `"required": true`, for a header every such answer carries. utoipa 6's
/// `Header` has no such field; its extensions are written into the object
/// as they are (only `Extensions::add` prefixes `x-`).
fn always_sent() -> Option<Extensions> {
    Some(Extensions::from_iter([("required", true)]))
}

/// A header every such answer carries, with this one value.
fn fixed_header(value: &str, description: &str) -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(Some(enum_string(&[value])))
        .description(Some(description))
        .extensions(always_sent())
        .build()
}

fn with_retry_after(response: ResponseBuilder) -> Response {
    response
        .header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some("^[0-9]+$")),
                ))
                .description(Some("Seconds to wait."))
                .extensions(always_sent())
                .build(),
        )
        .build()
}

/// A 401, with simplejwt's `WWW-Authenticate`.
fn unauthorized(description: &str, schema: RefOr<Schema>) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(JSON, content(schema))
        .header(
            "WWW-Authenticate",
            fixed_header(error::WWW_AUTHENTICATE, "Every 401 carries it."),
        )
        .build()
        .into()
}

/// A 200 carrying tokens or personal data, never to be cached.
fn ok_no_store(
    description: &str,
    schema: RefOr<Schema>,
    links: Vec<(&str, utoipa::openapi::link::Link)>,
) -> RefOr<Response> {
    let mut response = ResponseBuilder::new()
        .description(description)
        .content(JSON, content(schema))
        .header("Cache-Control", fixed_header("no-store", "Never cache it."));
    for (name, link) in links {
        response = response.link(name, link);
    }
    response.build().into()
}

/// A link that calls `operation_id` with this body.
fn body_link(
    operation_id: &str,
    body: serde_json::Value,
    description: &str,
) -> utoipa::openapi::link::Link {
    LinkBuilder::new()
        .operation_id(operation_id)
        .request_body(Some(body))
        .description(description)
        .build()
}

/// A link that calls `operation_id` with the access token of this answer.
fn bearer_link(operation_id: &str, description: &str) -> utoipa::openapi::link::Link {
    LinkBuilder::new()
        .operation_id(operation_id)
        .parameter("header.Authorization", "Bearer {$response.body#/access}")
        .description(description)
        .build()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    fn document() -> Value {
        serde_json::from_slice(&DOCUMENT).unwrap()
    }

    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    /// A route without documentation, or documentation without a route,
    /// fails here.
    #[test]
    fn paths_and_methods_are_the_route_table() {
        let doc = document();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (key, _) in item.as_object().unwrap() {
                assert!(METHODS.contains(&key.as_str()), "{path}: {key}");
                // Every path answers with and without the trailing slash.
                let route = path.strip_suffix('/').unwrap_or(path);
                documented.insert((route.to_string(), key.to_uppercase()));
            }
        }
        let routed: BTreeSet<(String, String)> = super::super::route_table(true)
            .iter()
            .flat_map(|route| {
                route
                    .methods
                    .iter()
                    .map(|m| (route.path.to_string(), m.to_string()))
            })
            .collect();
        assert_eq!(documented, routed);
    }

    #[test]
    fn is_openapi_3_1() {
        let text = String::from_utf8(DOCUMENT.to_vec()).unwrap();
        let spec = oas3::from_json(&text).expect("parses as OpenAPI 3.1");
        spec.validate_version().expect("a 3.1 version");
        assert_eq!(spec.openapi, "3.1.0");
        // Every operation, its id unique, with responses.
        let ids: Vec<_> = spec
            .operations()
            .map(|(_, _, op)| op.operation_id.clone().expect("an operation id"))
            .collect();
        let unique: BTreeSet<_> = ids.iter().collect();
        assert_eq!(ids.len(), unique.len(), "{ids:?}");
        assert_eq!(ids.len(), super::super::route_table(true).len());
    }

    /// Every `$ref` points into the document, and every link at an operation.
    #[test]
    fn references_and_links_resolve() {
        let doc = document();
        let ids: BTreeSet<String> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .map(|op| op["operationId"].as_str().unwrap().to_string())
            .collect();
        let mut pending = vec![&doc];
        let (mut refs, mut links) = (0, 0);
        while let Some(value) = pending.pop() {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(target)) = map.get("$ref") {
                        let pointer = target.strip_prefix('#').expect("a local reference");
                        assert!(doc.pointer(pointer).is_some(), "{target} resolves");
                        refs += 1;
                    }
                    if let Some(Value::Object(named)) = map.get("links") {
                        for link in named.values() {
                            let id = link["operationId"].as_str().unwrap();
                            assert!(ids.contains(id), "link to {id}");
                            links += 1;
                        }
                    }
                    pending.extend(map.values());
                }
                Value::Array(items) => pending.extend(items),
                _ => {}
            }
        }
        assert!(refs > 0 && links > 0);
    }

    /// The body schemas agree with the bodies the error type writes.
    #[test]
    fn error_bodies_match_their_schemas() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let details = schemas["TokenNotValid"]["properties"]["detail"]["enum"]
            .as_array()
            .unwrap();
        for e in TokenError::ALL {
            assert!(details.contains(&json!(e.message())));
        }
        assert!(details.contains(&json!("Token is blacklisted")));
        let responses = &doc["components"]["responses"];
        let www_authenticate = &responses["TokenRefused"]["headers"]["WWW-Authenticate"];
        assert_eq!(
            www_authenticate["schema"]["enum"],
            json!([r#"Bearer realm="api""#])
        );
        assert_eq!(www_authenticate["required"], json!(true));
    }

    #[test]
    fn secured_operations_are_those_that_authenticate() {
        let doc = document();
        let mut secured = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if op.get("security").is_some() {
                    secured.insert(format!("{} {path}", method.to_uppercase()));
                }
            }
        }
        assert_eq!(
            secured,
            BTreeSet::from([
                "GET /api/auth/profile/".to_string(),
                "POST /api/auth/logout/all/".to_string(),
            ])
        );
    }
}
