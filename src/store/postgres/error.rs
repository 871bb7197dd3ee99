//! How a failed statement is told to the store's callers: "unavailable"
//! (worth retrying, a 503) or not, with no parameter in the message.

use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

use crate::store::StoreError;

/// Why a statement failed, and whether running it again may help.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) error: StoreError,
    pub(super) retry: bool,
    /// The constraint, when a unique constraint was violated.
    pub(super) unique_constraint: Option<String>,
}

impl Failure {
    /// Not to be retried, whatever it was.
    pub(super) fn final_(mut self) -> Self {
        self.retry = false;
        self
    }
}

pub(super) fn message(error: &StoreError) -> &str {
    match error {
        StoreError::Unavailable(m) | StoreError::Other(m) => m,
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure {
            error,
            retry: false,
            unique_constraint: None,
        }
    }
}

impl From<Failure> for StoreError {
    fn from(failure: Failure) -> Self {
        failure.error
    }
}

impl From<tokio_postgres::Error> for Failure {
    fn from(err: tokio_postgres::Error) -> Self {
        let message = describe(&err);
        let code = err.code().map(SqlState::code).unwrap_or("");
        // The server asks for the transaction to be run again.
        let conflict = matches!(code, "40001" | "40P01");
        // A lock was not had within the lock timeout (the busy timeout,
        // which is how long a write waits, as on SQLite), or the statement
        // was cancelled (a timeout of the server's, or an administrator):
        // busy, and trying again at once would only wait as long again.
        let cancelled = matches!(code, "55P03" | "57014");
        // The connection is gone or the server cannot serve it now; a fresh
        // connection may do. (A TLS failure is an io error too, but lasting.)
        let connection = err.is_closed()
            || code.starts_with("08")
            || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
            || (err.code().is_none()
                && is_io(&err)
                && !err.to_string().starts_with("error performing TLS"));
        Failure {
            error: if conflict || connection || cancelled {
                StoreError::Unavailable(message)
            } else {
                StoreError::Other(message)
            },
            retry: conflict || connection,
            unique_constraint: err
                .as_db_error()
                .filter(|db| db.code() == &SqlState::UNIQUE_VIOLATION)
                .and_then(|db| db.constraint())
                .map(str::to_string),
        }
    }
}

impl From<PoolError> for Failure {
    fn from(err: PoolError) -> Self {
        match err {
            // No connection could be made (the server is down, refuses
            // connections to the database, is out of slots...): whatever the
            // server said, the database is unavailable to this request.
            PoolError::Backend(err) => Failure {
                error: StoreError::Unavailable(format!(
                    "no database connection: {}",
                    describe(&err)
                )),
                retry: true,
                unique_constraint: None,
            },
            PoolError::Timeout(_) => {
                StoreError::Unavailable(format!("no database connection: {err}")).into()
            }
            other => StoreError::Unavailable(other.to_string()).into(),
        }
    }
}

fn is_io(err: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The error without what could carry a statement's parameters (the DETAIL
/// of a unique violation names the key, a hash or a token): the code, the
/// message and the constraint.
pub(super) fn describe(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => match db.constraint() {
            Some(constraint) => format!(
                "{} {}: {} (constraint {constraint})",
                db.severity(),
                db.code().code(),
                db.message()
            ),
            None => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        },
        None => match std::error::Error::source(err) {
            Some(cause) => format!("{err}: {cause}"),
            None => err.to_string(),
        },
    }
}
