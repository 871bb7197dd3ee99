"""Asks Django's own password validators about passwords, for the vectors in
src/validate/password.rs (its test `django_agrees_with_the_vectors` runs this).

Reads a JSON list of [password, username, email] on stdin and prints, for
each, what Django's default AUTH_PASSWORD_VALIDATORS say one by one:
  {"similar": message or null, "common": bool, "numeric": bool}
"""

import json
import sys

import django
from django.conf import settings

settings.configure(
    SECRET_KEY="unused-django-secret-key",
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
    USE_I18N=False,
)
django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.contrib.auth.password_validation import (  # noqa: E402
    CommonPasswordValidator,
    NumericPasswordValidator,
    UserAttributeSimilarityValidator,
)
from django.core.exceptions import ValidationError  # noqa: E402


def message(validator, password, user=None):
    try:
        validator.validate(password, user)
    except ValidationError as error:
        return error.messages[0]
    return None


similar = UserAttributeSimilarityValidator()
common = CommonPasswordValidator()
numeric = NumericPasswordValidator()

answers = []
for password, username, email in json.load(sys.stdin):
    user = User(username=username, email=email)
    answers.append(
        {
            "similar": message(similar, password, user),
            "common": message(common, password) is not None,
            "numeric": message(numeric, password) is not None,
        }
    )
json.dump(answers, sys.stdout, ensure_ascii=False)
