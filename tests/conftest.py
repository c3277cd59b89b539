"""Shared fixtures: users in each account state, API clients, token helpers."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tokens import auth_token_issue

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    """Hash with MD5 in tests; tests where hashing is the point override this."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def user_factory(db):
    """Return a function creating a user; confirmed and active unless told otherwise."""
    counter = iter(range(1, 1_000_000))

    def make(
        *,
        email: str | None = None,
        name: str = "Ann Example",
        password: str = PASSWORD,
        confirmed: bool = True,
        deactivated: bool = False,
        disabled: bool = False,
        **fields,
    ) -> User:
        now = timezone.now()
        return User.objects.create_user(
            email=email or f"user{next(counter)}@example.com",
            password=password,
            name=name,
            confirmed_at=now if confirmed else None,
            deactivated_at=now if deactivated else None,
            is_active=not disabled,
            **fields,
        )

    return make


@pytest.fixture
def user(user_factory) -> User:
    return user_factory(email="ann@example.com")


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def token_for():
    """Return a function that issues an auth token as a login would."""

    def issue(user: User, *, remember: bool = False) -> str:
        return auth_token_issue(user=user, remember=remember)

    return issue


@pytest.fixture
def auth_client(user, token_for) -> APIClient:
    """An API client that sends the raw token of `user` (as the old clients do)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=token_for(user))
    client.user = user
    return client
