-- Accounts brought over from Django keep what Django knew of them: a blank
-- address (such a user logs in but gets no reset mail; many users may have
-- none, so its key is NULL, which UNIQUE lets repeat), the staff and
-- superuser flags, and the last login. PostgreSQL changes the table in place
-- (SQLite rebuilds it); the id sequence is untouched.
ALTER TABLE users
    ALTER COLUMN email_key DROP NOT NULL,
    ADD COLUMN is_staff BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN is_superuser BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN last_login BIGINT,
    ADD CONSTRAINT users_email_key_blank CHECK ((email = '') = (email_key IS NULL));
