//! What the store's API speaks in: plain Rust types, the same for every
//! backend. Times are Unix seconds unless a name says milliseconds.

/// A refresh token latch issued: what its claims are made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub jti: String,
    pub user_id: i64,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// What the rows say about one presented refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshState {
    /// None when the user does not exist.
    pub user_active: Option<bool>,
    pub tokens_revoked_before: i64,
    /// None for a token latch has no row for (see `tokens_revoked_before`).
    pub row: Option<TokenRow>,
    pub blacklisted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub user_id: i64,
    pub family: String,
    pub retired_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// Whether a refresh token may be used, by its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Usable,
    /// Retired by a rotation within the grace window: still usable.
    InGrace,
    /// Retired by a rotation longer ago than the grace window: a replay.
    Reused,
    /// Blacklisted, revoked, or issued before the user's cut-off.
    Revoked,
    /// The user is gone or inactive, or the row belongs to someone else.
    Invalid,
}

impl Verdict {
    /// The token may be used (rotated or not).
    pub fn is_usable(self) -> bool {
        matches!(self, Verdict::Usable | Verdict::InGrace)
    }
}

impl RefreshState {
    /// `iat` is the token's issue time; `grace` the rotation grace window.
    pub fn verdict(&self, user_id: i64, iat: i64, now: i64, grace: i64) -> Verdict {
        if self.user_active != Some(true) {
            return Verdict::Invalid;
        }
        if self.blacklisted {
            return Verdict::Revoked;
        }
        match &self.row {
            Some(row) if row.user_id != user_id => Verdict::Invalid,
            Some(row) if row.revoked_at.is_some() => Verdict::Revoked,
            Some(TokenRow {
                retired_at: Some(retired),
                ..
            }) => {
                if now.saturating_sub(*retired) < grace {
                    Verdict::InGrace
                } else {
                    Verdict::Reused
                }
            }
            Some(_) => Verdict::Usable,
            None if iat < self.tokens_revoked_before => Verdict::Revoked,
            None => Verdict::Usable,
        }
    }
}

/// The outcome of presenting a refresh token for rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token to answer with: the new one, recorded in the presented
    /// token's family; or, for a token already retired within the grace
    /// window, the successor it was retired for (to be signed again).
    Rotated(IssuedToken),
    /// Not usable; nothing changed (or, for `Reused`, its family was revoked).
    Refused(Verdict),
}

/// An account as stored. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    /// Blank for some users brought over from Django.
    pub email: String,
    pub password_hash: String,
    pub is_active: bool,
    /// The address folded to lower case, as it is unique; None when blank.
    pub email_key: Option<String>,
    /// Kept from Django, shown by the admin commands; latch grants nothing by them.
    pub is_staff: bool,
    pub is_superuser: bool,
    pub date_joined: i64,
    pub last_login: Option<i64>,
}

/// What registration stores; every field already validated and normalized.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub email_key: String,
    pub password_hash: String,
}

/// The outcome of [`Store::insert_user`]. The UNIQUE constraints decide who
/// wins a race for a username or an address, not an earlier SELECT.
#[derive(Debug, PartialEq, Eq)]
pub enum InsertUser {
    Created(i64),
    UsernameTaken,
    EmailTaken,
}

/// A mail to queue. Written in the same transaction as whatever it announces.
#[derive(Debug, Clone)]
pub struct NewMail {
    pub recipient: String,
    pub subject: String,
    pub body: String,
    /// Unix milliseconds after which delivering the mail is pointless.
    pub discard_after_ms: i64,
}

/// A mail waiting in the outbox.
#[derive(Debug, Clone)]
pub struct QueuedMail {
    pub id: i64,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub attempts: i64,
    /// When the claim on it ends (Unix milliseconds): it is this worker's
    /// until then, and what it records about the mail is refused after.
    pub lease_until_ms: i64,
    /// For a reset mail: the token whose link goes into the body.
    pub reset: Option<ResetTokenRef>,
}

/// What a reset link is rendered from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetTokenRef {
    pub token_id: i64,
    pub user_id: i64,
    pub expires_at: i64,
}

/// How much mail waits in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxBacklog {
    pub pending: i64,
    /// How long the oldest of them has waited; 0 when there is none.
    pub oldest_age_ms: i64,
}

/// A reset token that has not expired, been used or been superseded by a
/// password change. Its secret part is derived, never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveResetToken {
    pub id: i64,
    pub expires_at: i64,
}

/// A user to bring in with its Django id, every field already checked:
/// a whole account, as stored.
pub type ImportedUser = User;

/// What latch holds when an import is planned: every user and the highest
/// id ever handed out (deleted users included).
pub struct Holdings {
    pub users: Vec<User>,
    pub max_id_ever: i64,
}

/// What to write, as an import's plan decided it: these users, and the id
/// sequence raised to `id_floor`.
pub struct ImportWrite<'a> {
    pub users: &'a [ImportedUser],
    pub id_floor: i64,
}

/// Where a JWT secret generated on the first start is kept.
pub const JWT_SECRET: &str = "jwt_secret";
/// Where the key naming the login limit's rows is kept (always generated).
pub const LIMITS_SECRET: &str = "limits_secret";
/// Where a reset-link secret generated on the first start is kept.
pub const RESET_SECRET: &str = "reset_secret";

/// Every row of every latch table, as `latch migrate-store` copies them from
/// one backend to another. Ids are kept, and so are the high-water marks of
/// the id sequences, so that no id is handed out twice after the move.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub users: Vec<UserRow>,
    pub refresh_tokens: Vec<RefreshTokenRow>,
    pub blacklisted_tokens: Vec<(String, i64)>,
    pub reset_tokens: Vec<ResetTokenRow>,
    pub outbox: Vec<OutboxRow>,
    pub settings: Vec<(String, String)>,
    pub login_limits: Vec<(String, i64)>,
    /// The highest id ever handed out in users, reset_tokens and outbox.
    pub id_marks: IdMarks,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdMarks {
    pub users: i64,
    pub reset_tokens: i64,
    pub outbox: i64,
}

/// A user with what only the store keeps about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub user: User,
    pub tokens_revoked_before: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRow {
    pub jti: String,
    pub user_id: i64,
    pub family: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub retired_at: Option<i64>,
    pub successor: Option<String>,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetTokenRow {
    pub id: i64,
    pub user_id: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub reset_token_id: Option<i64>,
    pub attempts: i64,
    pub next_attempt_ms: i64,
    pub discard_after_ms: i64,
    pub last_error: Option<String>,
    pub queued_ms: i64,
}

/// The tables, in the order they are copied (referenced before referencing).
pub const TABLES: [&str; 7] = [
    "users",
    "refresh_tokens",
    "blacklisted_tokens",
    "reset_tokens",
    "outbox",
    "settings",
    "login_limits",
];

impl Snapshot {
    /// Rows per table, in the order of [`TABLES`].
    pub fn counts(&self) -> [u64; 7] {
        [
            self.users.len(),
            self.refresh_tokens.len(),
            self.blacklisted_tokens.len(),
            self.reset_tokens.len(),
            self.outbox.len(),
            self.settings.len(),
            self.login_limits.len(),
        ]
        .map(|n| n as u64)
    }
}
