"""authserver/env.py: every value is taken as written, a leading `$` included.

django-environ on its own reads `$NAME` as a reference to the variable NAME. These tests call the
project's `env` with a patched environment, then load the settings in a fresh process, as a
server would.
"""

import json

import pytest

from authserver.env import env
from tests.conftest import run

# A strong key (Django's rule) that starts with `$` and names another variable after it.
DOLLAR_KEY = "$OTHER_SECRET" + "-q8Zr4Lm2Xv7Tn1Pk5Wc9Hb3Jd6Fs0Gy" * 2


@pytest.fixture
def environment(monkeypatch):
    """Set variables in the process environment for one test."""

    def set_variables(**variables: str) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)

    return set_variables


def test_a_value_starting_with_a_dollar_is_that_string(environment):
    environment(PROBE_PASSWORD="$PROBE_OTHER", PROBE_OTHER="the other variable's value")

    assert env.str("PROBE_PASSWORD") == "$PROBE_OTHER"
    assert env("PROBE_PASSWORD") == "$PROBE_OTHER"


def test_a_dollar_value_naming_an_unset_variable_is_not_an_error(environment, monkeypatch):
    monkeypatch.delenv("PROBE_UNSET", raising=False)
    environment(PROBE_PASSWORD="$PROBE_UNSET")

    assert env.str("PROBE_PASSWORD", default="") == "$PROBE_UNSET"


def test_a_dollar_value_is_cast_like_any_other(environment):
    environment(PROBE_LIST="$one,two", PROBE_FLAG="$yes")

    assert env.list("PROBE_LIST") == ["$one", "two"]
    # Not one of the true words: a literal `$yes` is false, never the value of a variable `yes`.
    assert env.bool("PROBE_FLAG") is False
    assert env("PROBE_LIST", default=["x"]) == ["$one", "two"]


def test_values_without_a_dollar_are_read_as_before(environment, monkeypatch):
    environment(PROBE_NUMBER="42", PROBE_TEXT="plain", PROBE_MIDDLE="pa$$word")
    monkeypatch.delenv("PROBE_MISSING", raising=False)

    assert env.int("PROBE_NUMBER") == 42
    assert env.str("PROBE_TEXT") == "plain"
    assert env.str("PROBE_MIDDLE") == "pa$$word"
    assert env.str("PROBE_MISSING", default="fallback") == "fallback"


def test_settings_take_secret_key_and_email_password_literally(project):
    script = (
        "import json, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'authserver.settings'; import django; "
        "django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.SECRET_KEY, s.EMAIL_HOST_PASSWORD]))"
    )
    result = run(
        project,
        "-c",
        script,
        DEBUG="false",
        SECRET_KEY=DOLLAR_KEY,
        OTHER_SECRET="not-the-key",
        EMAIL_HOST="smtp.example.com",
        EMAIL_PASSWORD="$EMAIL_HOST",
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [DOLLAR_KEY, "$EMAIL_HOST"]
