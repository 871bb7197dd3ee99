//! latch: the Django REST Framework + simplejwt user API, served from one binary.
//!
//! Read top-down: `app` starts everything; `http` routes requests to
//! handlers; handlers use `store` (SQLite), `tokens` (JWT), `passwords`
//! (scrypt), `reset` (reset links) and `validate`; `mail` delivers the outbox; `error` turns every
//! failure into the documented JSON reply.

pub mod app;
pub mod config;
pub mod error;
pub mod http;
pub mod mail;
pub mod passwords;
pub mod reset;
pub mod store;
pub mod tokens;
pub mod validate;

pub use app::Server;
pub use config::Config;
