//! latch: the Django REST Framework + simplejwt user API, served from one binary.
//!
//! Read top-down: `app` starts everything; `http` routes requests to
//! handlers; handlers use `store` (SQLite), `tokens` (JWT), `revocation`
//! (logout, rotation), `limits` (brute force), `passwords` (scrypt,
//! and Django's hashes for imported users), `reset`
//! (reset links) and `validate`; `clock` is the one source of time; `mail` delivers the outbox; `error` turns every
//! failure into the documented JSON reply.

pub mod accounts;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
#[cfg(test)]
mod django_oracle;
pub mod error;
pub mod http;
pub mod import;
pub mod limits;
pub mod log_writer;
pub mod mail;
pub mod metrics;
pub mod passwords;
pub mod reset;
pub mod revocation;
pub mod store;
pub mod tokens;
pub mod validate;

pub use app::Server;
pub use config::Config;
