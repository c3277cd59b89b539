"""accounts/users/models.py: the user and its one normalized email address."""

import pytest
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

from accounts.users.models import User
from tests.conftest import PASSWORD
from tests.support.api import login


@pytest.mark.parametrize(
    ("stored", "typed"),
    [("A@Ébc.com", "a@ébc.com"), ("a@e\u0301bc.com", "A@ÉBC.COM"), ("ann@ÅBO.fi", "ANN@åbo.FI")],
    ids=["accented-capital", "decomposed", "nordic-domain"],
)
def test_one_address_in_any_case_or_encoding_is_one_account(api_client, user_factory, stored, typed):
    user_factory(email=stored)

    register = api_client.post("/api/user", {"email": typed, "name": "Imposter", "password": PASSWORD, "confirm": PASSWORD}, format="json")

    assert register.status_code == 401
    assert register.json() == {"status": 401, "message": "A user with that email already exists"}
    assert login(APIClient(), typed).status_code == 200


# --- the database constraint -----------------------------------------------------------------


def test_emails_differing_only_in_case_are_refused_by_the_database(db):
    User.objects.create(email="A@x.com")

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email="a@x.com")

    assert list(User.objects.values_list("email", flat=True)) == ["A@x.com"]
