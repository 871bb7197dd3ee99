#!/usr/bin/env python3
"""Seeds a latch database with many users and blacklisted tokens, for the
benchmark's large-database rows: bench/seed.py DB USERS TOKENS.

The database must have been created (migrated) by latch. Users get ids from 1
up and a password hash nobody can match (the cheap endpoints never hash);
tokens get random ids and an expiry a day ahead, so none is purged.
"""

import os
import sqlite3
import sys
import time


def seed(path, users, tokens):
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")
    now = int(time.time())
    with db:
        db.executemany(
            "INSERT INTO users (username, email, email_key, password_hash, date_joined) VALUES (?, ?, ?, '!unusable', ?)",
            ((f"seed{n}", f"seed{n}@example.com", f"seed{n}@example.com", now) for n in range(users)),
        )
        db.executemany(
            "INSERT INTO blacklisted_tokens (jti, expires_at) VALUES (?, ?)",
            ((os.urandom(16).hex(), now + 86400) for _ in range(tokens)),
        )
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


if __name__ == "__main__":
    seed(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
