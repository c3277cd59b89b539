"""accounts/users/links.py: the validation (confirmation and recovery) tokens of emailed links."""

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
