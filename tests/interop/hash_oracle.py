"""Asks Django's own check_password about stored password hashes, for the
vectors in src/passwords/django.rs (its test `django_agrees_with_the_vectors`
runs this).

Reads a JSON list of [password, stored] on stdin and prints a JSON list with,
for each, true or false, or "error" where Django raises (a malformed hash of
a known algorithm: Django answers 500 there, latch answers "no match").
Django's default PASSWORD_HASHERS, except that the preferred PBKDF2 hasher
does 1 iteration: verifying is the same (it uses the stored count), but
Django's dummy hash for an unknown format and its "harden_runtime" padding
of a failed check no longer cost 1,000,000 iterations each. Needs argon2-cffi
for the argon2 hashes.
"""

import json
import sys

import django
from django.conf import settings

settings.configure(
    PASSWORD_HASHERS=[
        "__main__.OneIterationPBKDF2",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
    ]
)
django.setup()

from django.contrib.auth.hashers import PBKDF2PasswordHasher, check_password  # noqa: E402


class OneIterationPBKDF2(PBKDF2PasswordHasher):
    iterations = 1


def check(password, stored):
    try:
        return check_password(password, stored)
    except Exception:  # noqa: BLE001 - any exception is Django refusing the hash
        return "error"


json.dump([check(password, stored) for password, stored in json.load(sys.stdin)], sys.stdout)
