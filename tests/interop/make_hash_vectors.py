"""Makes the Django password hashes that src/passwords/django.rs tests verify.

Every hash is made by Django's own make_password (Django 5.2, argon2-cffi),
with fixed salts so that a run prints the same constants every time:

    python tests/interop/make_hash_vectors.py

prints Rust `const` lines to paste into the tests. Each hash is checked by
Django's check_password (the right password matches, a wrong one does not)
before it is printed. Needs tests/interop/requirements.txt (argon2-cffi).
The slow ones (Django's default costs) take a few seconds in all.
"""

import django
from django.conf import settings
from django.contrib.auth import hashers


class FastArgon2(hashers.Argon2PasswordHasher):
    """Django's argon2id with tiny costs, to keep debug-build tests fast."""

    time_cost = 1
    memory_cost = 64
    parallelism = 1


class FastArgon2i(FastArgon2):
    """The same, argon2i (the variety Django made before argon2id)."""

    def params(self):
        p = super().params()
        p.type = __import__("argon2").low_level.Type.I
        return p


class FastArgon2d(FastArgon2):
    """The same, argon2d: argon2-cffi (and so Django) verifies it too."""

    def params(self):
        p = super().params()
        p.type = __import__("argon2").low_level.Type.D
        return p


class FastArgon2iVersion16(FastArgon2i):
    """argon2i of version 0x10, as argon2-cffi before 16.0 made it. Django 5.2
    always hashes with version 0x13, so this calls argon2-cffi as Django's
    encode does, with the version added; Django still verifies the result."""

    def encode(self, password, salt):
        argon2 = self._load_library()
        p = self.params()
        data = argon2.low_level.hash_secret(
            password.encode(),
            salt.encode(),
            time_cost=p.time_cost,
            memory_cost=p.memory_cost,
            parallelism=p.parallelism,
            hash_len=p.hash_len,
            type=p.type,
            version=0x10,
        )
        return self.algorithm + data.decode("ascii")


class FastScrypt(hashers.ScryptPasswordHasher):
    """Django's scrypt with N=2**10, r=8, p=1 (1 MiB)."""

    work_factor = 2**10
    parallelism = 1


class SmallScrypt(hashers.ScryptPasswordHasher):
    """N=2**14, r=8, p=1: the issue's "Django default with p=1"."""

    parallelism = 1


def argon2(base=FastArgon2, **costs):
    """An argon2 hasher with other costs."""
    return type("Argon2", (base,), costs)


def scrypt(**costs):
    """Django's scrypt hasher with other costs."""
    return type("Scrypt", (hashers.ScryptPasswordHasher,), costs)


HASHERS = [
    hashers.PBKDF2PasswordHasher,
    hashers.PBKDF2SHA1PasswordHasher,
    hashers.ScryptPasswordHasher,
    hashers.Argon2PasswordHasher,
    FastArgon2,
    FastArgon2i,
    FastArgon2d,
    FastArgon2iVersion16,
    FastScrypt,
    SmallScrypt,
]

settings.configure(
    PASSWORD_HASHERS=[f"{h.__module__}.{h.__qualname__}" for h in HASHERS]
)
django.setup()

ASCII = "correct horse battery staple"
UNICODE = "pässwörd ü"


def vector(name, password, hasher, salt):
    encoded = hashers.make_password(password, salt, hasher=hasher())
    assert hashers.check_password(password, encoded), name
    assert not hashers.check_password(password + "x", encoded), name
    print(f'const {name}: &str = "{encoded}";')
    return encoded


def pbkdf2(iterations, base=hashers.PBKDF2PasswordHasher):
    """Django's PBKDF2 hasher with another iteration count."""
    return type("PBKDF2", (base,), {"iterations": iterations})


sha1 = hashers.PBKDF2SHA1PasswordHasher
vector("PBKDF2_SHA256_1000", ASCII, pbkdf2(1000), "Q1dWnOfz2DaRzqbrtMPVNS")
vector("PBKDF2_SHA256_1000_UNICODE", UNICODE, pbkdf2(1000), "aB3xYz9QwErTyUiOpAsDfG")
vector("PBKDF2_SHA256_2", ASCII, pbkdf2(2), "lowcostsalt")
vector("PBKDF2_SHA256_UNICODE_SALT", ASCII, pbkdf2(3), "sälz ü€")
vector("PBKDF2_SHA256_DEFAULT", UNICODE, hashers.PBKDF2PasswordHasher, "w8rLmEHXyCUFAWbJg3Ekq1")
vector("PBKDF2_SHA1_1000", UNICODE, pbkdf2(1000, sha1), "pBmW7uuF6QxMdV7fVxG0kq")
vector("PBKDF2_SHA1_2", ASCII, pbkdf2(2, sha1), "lowcostsalt")
vector("SCRYPT_FAST", ASCII, FastScrypt, "ZsV0mXWbbHcS9cW0T1rGQr")
vector("SCRYPT_FAST_UNICODE", UNICODE, FastScrypt, "Jq2Yx8pLrN3vK5mT7wZc1a")
vector("SCRYPT_P1", UNICODE, SmallScrypt, "G7yHn2KpLm4QrS8tVwXz0b")
vector("SCRYPT_DEFAULT", ASCII, hashers.ScryptPasswordHasher, "r4nD0mS4ltF0rScrypt123")
vector("ARGON2ID_FAST", ASCII, FastArgon2, "tQyVh0WXAnbJgXk4Y2GjRz")
vector("ARGON2ID_FAST_UNICODE", UNICODE, FastArgon2, "Wm5Lq8ZrTb2NcX7vKp3Hs9")
vector("ARGON2I_FAST", UNICODE, FastArgon2i, "Fh3Jk8Lm2Np5Qr7St9Vw1X")
vector("ARGON2D_FAST", ASCII, FastArgon2d, "Yb6Cd8Ef0Gh2Ij4Kl6Mn8O")
v16 = vector("ARGON2I_V16_FAST", ASCII, FastArgon2iVersion16, "Pq1Rs3Tu5Vw7Xy9Za2Bc4D")
# Before argon2-cffi 16.0 the PHC string had no "v=" part: version 0x10.
old = v16.replace("$v=16$", "$", 1)
assert hashers.check_password(ASCII, old) and not hashers.check_password(UNICODE, old)
print(f'const ARGON2I_NO_VERSION_FAST: &str = "{old}";')
vector("ARGON2ID_DEFAULT", UNICODE, hashers.Argon2PasswordHasher, "Ee4Ff6Gg8Hh0Ii2Jj4Kk6L")
vector("ARGON2ID_ODD_MEMORY", UNICODE, argon2(memory_cost=70, parallelism=3, time_cost=2), "Mm7Nn9Oo1Pp3Qq5Rr7Ss9T")

# Well-formed hashes beyond latch's bounds (Django verifies them; latch refuses).
vector("PBKDF2_SHA256_OVER_ITERATIONS", ASCII, pbkdf2(10_000_001), "overthelimitsalt")
vector("ARGON2ID_OVER_PASSES", ASCII, argon2(time_cost=33), "Tt1Uu3Vv5Ww7Xx9Yy1Zz3A")
vector("ARGON2ID_OVER_LANES", ASCII, argon2(memory_cost=136, parallelism=17), "Bb2Cc4Dd6Ee8Ff0Gg2Hh4I")
vector("SCRYPT_OVER_P", ASCII, scrypt(work_factor=16, parallelism=17), "Jj5Kk7Ll9Mm1Nn3Oo5Pp7Q")
