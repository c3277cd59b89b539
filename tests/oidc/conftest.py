"""Fixtures of the OpenID provider's tests: an app registered with the provider, a browser
signed in on the hosted page, and a resource server that introspects tokens
(tests/support/oidc_flow.py drives them)."""

import pytest

from tests.support.oidc_flow import Introspector, register, signed_in_browser


@pytest.fixture
def app(db):
    """A confidential app (secret on `.secret`), with consent, allowed openid, profile, email and
    offline_access."""
    return register()


@pytest.fixture
def public_app(db):
    return register("Single-page notes", public=True)


@pytest.fixture
def browser(user):
    """A browser signed in as `user` on the hosted page."""
    return signed_in_browser(user.email)


@pytest.fixture
def introspect(db):
    return Introspector()
