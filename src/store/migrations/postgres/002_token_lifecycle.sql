-- Refresh tokens latch issued, by id (the token itself is never stored): what
-- logout, rotation and revocation need to know about each. A login starts a
-- family (named by its first token's jti); rotation adds tokens to it. A token
-- latch did not issue gets a (retired) row when it is rotated.
-- Rows are purged once the token has expired.
CREATE TABLE refresh_tokens (
    jti TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    family TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- set when the token was exchanged for a new one (rotation)
    retired_at BIGINT,
    -- the jti of that new one: within the grace window the same successor is
    -- handed out again (re-signed from this row), never a second branch
    successor TEXT,
    -- set by logout, logout/all, a password change, or a replayed retired token
    revoked_at BIGINT,
    CONSTRAINT refresh_tokens_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
        ON DELETE CASCADE
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

-- Blacklisted tokens (simplejwt's token_blacklist): only the id and expiry.
CREATE TABLE blacklisted_tokens (
    jti TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX blacklisted_tokens_by_expiry ON blacklisted_tokens (expires_at);

-- Refresh tokens of this user issued (iat) before this moment are revoked.
-- Judges the tokens latch has no row for: minted by a Django service with the
-- shared key, or by latch before this table existed.
ALTER TABLE users ADD COLUMN tokens_revoked_before BIGINT NOT NULL DEFAULT 0;
