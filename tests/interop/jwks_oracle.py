"""Checks latch's EdDSA/RS256 tokens against its JWKS with PyJWT and with
simplejwt's JWK_URL, for tests/api/interop.rs.

Reads a JSON job on stdin:
  {"jwks", "jwks_url", "algorithm", "issuer", "audience", "user_id",
   "username", "tokens": {name: token}, "forged": {name: token}}
and prints, for each token, the key PyJWT picked by kid and the claims it
verified (or its error), and whether simplejwt's JWTAuthentication, fetching
the keys from jwks_url, authenticates the access token.
"""

import json
import sys

import jwt

job = json.load(sys.stdin)
jwks = jwt.PyJWKSet.from_dict(job["jwks"])


def verify(token):
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = jwks[kid]
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[key.algorithm_name],
            audience=job["audience"],
            issuer=job["issuer"],
            options={"verify_aud": job["audience"] is not None},
        )
        return {"ok": True, "kid": key.key_id, "alg": key.algorithm_name, "claims": claims}
    except (jwt.PyJWTError, KeyError) as error:
        return {"ok": False, "error": f"{type(error).__name__}: {error}"}


import django
from django.conf import settings

settings.configure(
    SECRET_KEY="unused-django-secret-key",
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "rest_framework",
        "rest_framework_simplejwt",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    SIMPLE_JWT={
        "ALGORITHM": job["algorithm"],
        "JWK_URL": job["jwks_url"],
        "AUDIENCE": job["audience"],
        "ISSUER": job["issuer"],
    },
    USE_TZ=True,
)
django.setup()

from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import RequestFactory
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken

call_command("migrate", verbosity=0)
User.objects.create_user(id=job["user_id"], username=job["username"], password="unused-password-1")


def authenticate(token):
    request = RequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {token}")
    try:
        found, _ = JWTAuthentication().authenticate(request)
        return {"ok": True, "user_id": found.id}
    except InvalidToken as error:
        return {"ok": False, "detail": error.detail}


print(json.dumps({
    "pyjwt": {name: verify(token) for name, token in job["tokens"].items()},
    "pyjwt_forged": {name: verify(token) for name, token in job["forged"].items()},
    "simplejwt_authenticates": authenticate(job["tokens"]["access"]),
}, default=str))
