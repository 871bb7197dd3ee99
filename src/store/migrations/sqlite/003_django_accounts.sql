-- Accounts brought over from Django keep what Django knew of them: a blank
-- address (such a user logs in but gets no reset mail; many users may have
-- none, so its key is NULL, which UNIQUE lets repeat), the staff and
-- superuser flags, and the last login. SQLite cannot relax NOT NULL in place,
-- so the table is rebuilt as https://www.sqlite.org/lang_altertable.html
-- describes (foreign keys are off on the migrating connection).
CREATE TABLE users_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL,
    -- the address folded to lower case: one account per address, case-insensitively
    email_key TEXT UNIQUE,
    password_hash TEXT NOT NULL,
    is_active INTEGER NOT NULL DEFAULT 1,
    is_staff INTEGER NOT NULL DEFAULT 0,
    is_superuser INTEGER NOT NULL DEFAULT 0,
    date_joined INTEGER NOT NULL,
    last_login INTEGER,
    tokens_revoked_before INTEGER NOT NULL DEFAULT 0,
    CHECK ((email = '') = (email_key IS NULL))
) STRICT;
INSERT INTO users_new (id, username, email, email_key, password_hash, is_active, date_joined, tokens_revoked_before)
    SELECT id, username, email, email_key, password_hash, is_active, date_joined, tokens_revoked_before FROM users;
-- The id high-water mark moves with the table (DROP TABLE would delete it),
-- so that no id is ever handed out twice.
DELETE FROM sqlite_sequence WHERE name = 'users_new';
UPDATE sqlite_sequence SET name = 'users_new' WHERE name = 'users';
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
