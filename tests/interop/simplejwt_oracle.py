"""Asks the real djangorestframework-simplejwt about tokens, for tests/api/interop.rs.

Reads a JSON job on stdin:
  {"secret", "user_id", "username", "latch_access", "latch_refresh", "bad_access": {name: token}}
and prints what simplejwt makes of latch's tokens, its error message for each
bad token, and a token pair of its own for latch to accept.
"""

import json
import sys

job = json.load(sys.stdin)

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
    SIMPLE_JWT={"SIGNING_KEY": job["secret"], "ALGORITHM": "HS256"},
    USE_TZ=True,
)
django.setup()

from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import RequestFactory
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

call_command("migrate", verbosity=0)
user = User.objects.create_user(id=job["user_id"], username=job["username"], password="unused-password-1")


def read(token_class, token):
    try:
        return {"ok": True, "payload": dict(token_class(token).payload)}
    except TokenError as error:
        return {"ok": False, "message": str(error.args[0])}


def authenticate(token):
    request = RequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {token}")
    try:
        found, _ = JWTAuthentication().authenticate(request)
        return {"ok": True, "user_id": found.id}
    except InvalidToken as error:
        return {"ok": False, "detail": error.detail}


refresh = RefreshToken.for_user(user)
access = refresh.access_token
print(json.dumps({
    "latch_access": read(AccessToken, job["latch_access"]),
    "latch_refresh": read(RefreshToken, job["latch_refresh"]),
    "latch_access_authenticates": authenticate(job["latch_access"]),
    "bad_access": {name: read(AccessToken, token) for name, token in job["bad_access"].items()},
    "django_refresh": str(refresh),
    "django_access": str(access),
}, default=str))
