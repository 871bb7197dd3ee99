-- The per-account login-failure limit, kept here so that every process on
-- this database shares it: a GCRA "theoretical arrival time" per account
-- (an HMAC of the username, never the name itself). A row at or below the
-- current time is back at its full allowance and may be purged.
CREATE TABLE login_limits (
    account TEXT PRIMARY KEY,
    tat_ms BIGINT NOT NULL
);
