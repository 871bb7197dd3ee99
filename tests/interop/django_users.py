"""Makes a real Django project's user database with the real Django, for the
test of `latch import django` (tests/api/interop.rs).

Reads a JSON job on stdin:
  {"dir", "signing_key", "case_conflict": bool?, "blank_email_pair": bool?,
   "users": [extra user]?, "count": int?}
and writes into dir:
  django.sqlite3  the project database, migrated by Django, users made by the ORM
  dumpdata.json   `manage.py dumpdata auth.user` of the same users
  manifest.json   what is in there: each user with its password and tokens that
                  simplejwt minted for it (see the end of this file)
then prints {"ok": true}.

The default users cover every password hasher Django 5.2 ships that latch
reads, at several work factors, plus the awkward rows (unusable password,
inactive, staff, unicode, blank email, ids with gaps and a deleted highest id).
"case_conflict" adds two users whose emails differ only in case, a conflict
latch must report; "blank_email_pair" a second user with a blank email.
An extra user is {"username", "password" (null: unusable), "email"?,
"hasher"? (a key of HASHERS below), "is_active"?, "is_staff"?, "is_superuser"?}.

"count": N instead makes N plain users (user000001...) sharing one cheap
pbkdf2_sha256 hash, by bulk insert, for the large-import test; then the
manifest holds only count, max_id_ever, password and stored_prefix.
"""

import datetime
import json
import math
import os
import sys

job = json.load(sys.stdin)
out = job["dir"]
db_path = os.path.join(out, "django.sqlite3")
os.makedirs(out, exist_ok=True)
for name in ("django.sqlite3", "dumpdata.json", "manifest.json"):
    if os.path.exists(os.path.join(out, name)):
        os.remove(os.path.join(out, name))

import django
from django.conf import settings

settings.configure(
    SECRET_KEY="unused-django-secret-key",
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "django.contrib.sessions",
        "rest_framework",
        "rest_framework_simplejwt",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": db_path}},
    # Django 5.2's own list, in its order (so its default stays the first),
    # with the cheaper variants below added: all of them can check a password.
    PASSWORD_HASHERS=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "__main__.PBKDF2Sha256Iter1",
        "__main__.PBKDF2Sha256Iter1000",
        "__main__.PBKDF2Sha256Iter20000",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
        "__main__.PBKDF2Sha1Iter10000",
        "__main__.Argon2iLegacy",
        "__main__.Argon2idSmall",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
    ],
    SIMPLE_JWT={"SIGNING_KEY": job.get("signing_key") or "unused-signing-key", "ALGORITHM": "HS256"},
    USE_TZ=True,
)
django.setup()

from django.contrib.auth import hashers  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.serializers import json as json_serializer  # noqa: E402
from django.db import connection, transaction  # noqa: E402


class PBKDF2Sha256Iter1(hashers.PBKDF2PasswordHasher):
    iterations = 1


class PBKDF2Sha256Iter1000(hashers.PBKDF2PasswordHasher):
    iterations = 1000


class PBKDF2Sha256Iter20000(hashers.PBKDF2PasswordHasher):
    iterations = 20000


class PBKDF2Sha1Iter10000(hashers.PBKDF2SHA1PasswordHasher):
    """pbkdf2_sha1 as Django 1.4 stored it (its default then)."""

    iterations = 10000


class Argon2iLegacy(hashers.Argon2PasswordHasher):
    """What Django 1.10-3.1 stored: argon2i, t=2, m=512, p=2. Django still
    writes the prefix "argon2" (the variant is the next field) and checks
    these with today's Argon2PasswordHasher."""

    time_cost = 2
    memory_cost = 512
    parallelism = 2

    def params(self):
        params = super().params()
        params.type = self._load_library().low_level.Type.I
        return params


class Argon2idSmall(hashers.Argon2PasswordHasher):
    time_cost = 1
    memory_cost = 1024
    parallelism = 1


# key -> (hasher, family name for the manifest)
HASHERS = {
    "pbkdf2_sha256": (hashers.PBKDF2PasswordHasher(), "pbkdf2_sha256"),  # 1,000,000
    "pbkdf2_sha256_1000": (PBKDF2Sha256Iter1000(), "pbkdf2_sha256"),
    "pbkdf2_sha256_20000": (PBKDF2Sha256Iter20000(), "pbkdf2_sha256"),
    "pbkdf2_sha1": (PBKDF2Sha1Iter10000(), "pbkdf2_sha1"),
    "scrypt": (hashers.ScryptPasswordHasher(), "scrypt"),  # N=2**14, r=8, p=5
    "argon2id": (hashers.Argon2PasswordHasher(), "argon2id"),  # t=2, m=102400, p=8
    "argon2id_small": (Argon2idSmall(), "argon2id"),
    "argon2i": (Argon2iLegacy(), "argon2i"),
}


def utc(*args):
    return datetime.datetime(*args, tzinfo=datetime.timezone.utc)


def unix(moment):
    return None if moment is None else math.floor(moment.timestamp())


def stored_prefix(encoded):
    """The stored hash up to its salt: the algorithm and its work factors."""
    if not hashers.is_password_usable(encoded):
        return encoded[:1]  # "!"
    fields = encoded.split("$")
    if fields[0] == "argon2":
        return "$".join(fields[:4])  # argon2$argon2id$v=19$m=...,t=...,p=...
    return "$".join(fields[:2])  # pbkdf2_sha256$1000000, scrypt$16384


def sequence():
    with connection.cursor() as cursor:
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = 'auth_user'")
        row = cursor.fetchone()
        return row[0] if row else 0


def dumpdata():
    call_command("dumpdata", "auth.user", output=os.path.join(out, "dumpdata.json"), indent=None, verbosity=0)


class NoM2MSerializer(json_serializer.Serializer):
    """dumpdata's serializer (indent=None) made quick for users in no group
    and with no permission of their own: Django's costs two querysets per user
    to find that out (a minute for 100,000 users), and it encodes each object
    with json.dump, which never uses the C encoder. The output is byte for
    byte what dumpdata writes (checked by hand)."""

    def handle_m2m_field(self, obj, field):
        self._current[field.name] = []

    def end_object(self, obj):
        if not self.first:
            self.stream.write(", ")
        self.stream.write(json.dumps(self.get_dump_object(obj), **self.json_kwargs))
        self._current = None


def fast_dumpdata():
    for field in User._meta.local_many_to_many:
        if field.remote_field.through.objects.exists():
            raise SystemExit(f"fast_dumpdata cannot write {field.name}")
    with open(os.path.join(out, "dumpdata.json"), "w", encoding="utf-8") as stream:
        NoM2MSerializer().serialize(User.objects.order_by("pk").iterator(chunk_size=2000), indent=None, stream=stream)


def write_manifest(manifest):
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as file:
        json.dump(manifest, file, ensure_ascii=False, indent=1)


call_command("migrate", verbosity=0)

if job.get("count") is not None:
    count = int(job["count"])
    password = "same-password-for-all"
    encoded = hashers.make_password(password, hasher=PBKDF2Sha256Iter1())
    joined = utc(2020, 1, 2, 3, 4, 5)
    with transaction.atomic():
        for start in range(1, count + 1, 5000):
            User.objects.bulk_create(
                [
                    User(
                        username=f"user{n:06d}",
                        email=f"user{n:06d}@example.com",
                        password=encoded,
                        date_joined=joined,
                    )
                    for n in range(start, min(start + 5000, count + 1))
                ]
            )
    fast_dumpdata()
    write_manifest({
        "count": count,
        "max_id_ever": sequence(),
        "password": password,
        "stored_prefix": stored_prefix(encoded),
    })
    print(json.dumps({"ok": True}))
    sys.exit(0)


from rest_framework_simplejwt.tokens import RefreshToken  # noqa: E402

JOINED = utc(2019, 6, 1, 9, 30)
LOGGED_IN = utc(2024, 5, 6, 7, 8, 9)

# (username, email, password or None for unusable, HASHERS key, other fields);
# the doomed are deleted again once the users after them have taken their ids.
users = [
    ("admin", "admin@example.com", "admin-Secret-1000000", "pbkdf2_sha256",
     dict(is_staff=True, is_superuser=True, first_name="Ada", last_name="Admin",
          date_joined=JOINED, last_login=LOGGED_IN)),
    ("alice", "alice@example.com", "alice-pw-pbkdf2-1000", "pbkdf2_sha256_1000",
     dict(date_joined=utc(2020, 2, 29, 23, 59, 59))),
    ("deleted1", "deleted1@example.com", "deleted1-pw", "pbkdf2_sha256_1000", dict(doomed=True)),
    ("bob", "bob@example.com", "bob-pw-pbkdf2-20000", "pbkdf2_sha256_20000",
     dict(is_staff=True, group="editors", last_login=LOGGED_IN)),
    ("carol", "carol@example.com", "carol-pw-sha1", "pbkdf2_sha1", dict(date_joined=JOINED)),
    ("dave", "dave@example.com", "dave-pw-scrypt", "scrypt",
     dict(last_login=utc(2024, 2, 29, 12, 34, 56, 789012))),
    ("deleted2", "deleted2@example.com", "deleted2-pw", "pbkdf2_sha256_1000", dict(doomed=True)),
    ("erin", "erin@example.com", "erin-pw-argon2id-default", "argon2id", dict()),
    ("frank", "frank@example.com", "frank-pw-argon2id-small", "argon2id_small", dict()),
    ("grace", "grace@example.com", "grace-pw-argon2i", "argon2i", dict(date_joined=JOINED)),
    ("Zoë", "Zoe.Mueller@Example.ORG", "pässwörd-ü-123", "argon2id_small", dict(last_login=LOGGED_IN)),
    ("用户", "", "密码-用户-42", "pbkdf2_sha256_1000", dict()),
    ("jane.doe+web@site", "jane@example.net", "jane-pw-at-sign", "pbkdf2_sha256_1000", dict()),
    ("nopass", "nopass@example.com", None, None, dict()),
    ("inactive", "inactive@example.com", "inactive-pw-1000", "pbkdf2_sha256_1000", dict(is_active=False)),
    ("deleted3", "deleted3@example.com", "deleted3-pw", "pbkdf2_sha256_1000", dict(doomed=True)),
]
if job.get("blank_email_pair"):
    users.append(("blank2", "", "blank2-pw-1000", "pbkdf2_sha256_1000", dict()))
if job.get("case_conflict"):
    users.append(("caseupper", "Case@example.com", "caseupper-pw", "pbkdf2_sha256_1000", dict()))
    users.append(("caselower", "case@EXAMPLE.com", "caselower-pw", "pbkdf2_sha256_1000", dict()))
for extra in job.get("users") or []:
    fields = {key: extra[key] for key in ("is_active", "is_staff", "is_superuser") if key in extra}
    users.append((extra["username"], extra.get("email", ""), extra["password"],
                  extra.get("hasher", "pbkdf2_sha256_1000") if extra["password"] is not None else None, fields))
# The highest id ever given is deleted, far above the rest, so that
# sqlite_sequence says more than max(id).
users.append(("deleted-highest", "deleted-highest@example.com", "gone-pw", "pbkdf2_sha256_1000",
              dict(doomed=True, id=1000)))

made = []  # (user, password, hasher family)
doomed = []
with transaction.atomic():
    editors = Group.objects.create(name="editors")
    for username, email, password, key, fields in users:
        fields = dict(fields)
        group = fields.pop("group", None)
        is_doomed = fields.pop("doomed", False)
        user = User(username=User.normalize_username(username), email=email, **fields)
        if password is None:
            user.set_unusable_password()
            family = None
        else:
            hasher, family = HASHERS[key]
            user.password = hashers.make_password(password, hasher=hasher)
        user.save()
        if group:
            user.groups.add(editors)
        (doomed if is_doomed else made).append((user, password, family))

deleted_ids = sorted(user.id for user, _, _ in doomed)
User.objects.filter(id__in=deleted_ids).delete()

manifest_users = []
for user, password, family in made:
    user = User.objects.get(id=user.id)  # as stored
    # (not user.check_password: that would upgrade the hash to the default)
    if password is not None and not hashers.check_password(password, user.password):
        raise SystemExit(f"Django does not accept the password it stored for {user.username}")
    entry = {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "password": password,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "hasher": family,
        "stored_prefix": stored_prefix(user.password),
        "stored_hash": user.password,
        "date_joined": unix(user.date_joined),
        "last_login": unix(user.last_login),
        "access": None,
        "refresh": None,
    }
    if user.is_active and user.has_usable_password():
        refresh = RefreshToken.for_user(user)
        entry["refresh"] = str(refresh)
        entry["access"] = str(refresh.access_token)
    manifest_users.append(entry)

max_id_ever = sequence()
if max_id_ever <= max(entry["id"] for entry in manifest_users):
    raise SystemExit("sqlite_sequence is not above the highest remaining id")

dumpdata()
write_manifest({
    "users": manifest_users,
    "max_id_ever": max_id_ever,
    "deleted_ids": deleted_ids,
})
print(json.dumps({"ok": True}))
