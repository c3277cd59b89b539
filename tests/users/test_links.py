"""accounts/users/links.py: the validation (confirmation and recovery) tokens of emailed links."""

import json

from django.core import mail, signing
from rest_framework.test import APIClient

from accounts.users.links import Purpose, validation_token_make
from accounts.users.models import User
from tests.conftest import PASSWORD
from tests.support.api import client_with, login
from tests.support.contract import INVALID_TOKEN, assert_error


NEW_PASSWORD = "a fresh staple battery"


# --- 7. A recovery token dies when the email changes or the user logs in ------------------------


def test_the_old_mailboxs_recovery_link_dies_when_the_email_changes(api_client, user, token_for):
    link = validation_token_make(user=user, purpose=Purpose.RECOVERY)
    assert client_with(token_for(user)).patch("/api/user", {"new_email": "ann.new@example.com", "password": PASSWORD}, format="json").status_code == 200

    response = api_client.post("/api/validate/recovery", {"token": link, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, format="json")

    assert_error(response, INVALID_TOKEN)
    assert User.objects.get(pk=user.pk).check_password(PASSWORD)


def test_a_recovery_link_dies_when_the_user_logs_in(api_client, user):
    link = validation_token_make(user=user, purpose=Purpose.RECOVERY)
    assert login(APIClient()).status_code == 200

    response = api_client.post("/api/validate/recovery", {"token": link, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, format="json")

    assert_error(response, INVALID_TOKEN)


GOOD_SIGNUP = {"name": "Eve", "password": "a long enough pw 1", "confirm": "a long enough pw 1"}


# --- 12. Validation tokens reveal the sequential database key ----------------------------------


def test_validation_links_do_not_reveal_the_database_key(db):
    """Attacker (no account; registers one) gains the user's internal database id, readable in
    base64 in every confirmation and recovery link ({"u": <pk>, ...}). Two registrations give
    the number of accounts and how fast it grows. EXTENSIONS keeps that key private: `sub` is a
    public UUID, "never the database key".
    """
    APIClient().post("/api/user", {"email": "eve@example.com", **GOOD_SIGNUP}, format="json")
    user = User.objects.get(email="eve@example.com")
    token = mail.outbox[-1].body.split("/confirm/")[1].split()[0]

    payload = json.loads(signing.b64_decode(token.split(".")[0].encode()))

    assert payload.get("u") != user.pk
