-- Accounts. AUTOINCREMENT so an id is never handed out twice: tokens carry ids,
-- and a token of a deleted user must never start to match a new one.
CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL,
    -- the address folded to lower case: one account per address, case-insensitively
    email_key TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_active INTEGER NOT NULL DEFAULT 1,
    date_joined INTEGER NOT NULL
) STRICT;

-- Password reset tokens. The token itself is never stored: it is an HMAC of
-- the row (id, user, expiry) under a server key, recomputed when needed.
-- Deleted when used and whenever the user's password changes.
CREATE TABLE reset_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX reset_tokens_by_user ON reset_tokens(user_id);

-- Mail waiting for delivery. A row is deleted once the SMTP server accepted it.
-- A reset mail's body holds a placeholder, not the link: the link is rendered
-- from its reset token at send time, and the mail goes when the token goes.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    reset_token_id INTEGER REFERENCES reset_tokens(id) ON DELETE CASCADE,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    -- past this moment the mail is useless (its link has expired) and is dropped
    discard_after_ms INTEGER NOT NULL,
    last_error TEXT
) STRICT;
CREATE INDEX outbox_by_due ON outbox(next_attempt_ms);
CREATE INDEX outbox_by_reset_token ON outbox(reset_token_id);

-- Server state that must survive restarts (the generated JWT secret).
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
