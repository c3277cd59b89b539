"""accounts/clients/admin.py: clients (apps and resource servers) registered through the admin."""

from django.contrib.messages.storage.cookie import MessageSerializer
from django.core import signing
from django.test import Client

from tests.conftest import admin_login


def staff_browser(user) -> Client:
    browser = Client()
    admin_login(browser, user)
    return browser


# --- 13. A resource server's secret travels in a readable cookie -------------------------------


def test_a_new_resource_servers_secret_is_not_put_in_a_cookie(user_factory):
    """Attacker who can read request headers anywhere on the path, such as a TLS-terminating
    proxy's or APM's header logs or a shared browser profile, gains the client_secret, hence
    introspection of any token. The admin shows the one-time secret through django.contrib.messages,
    whose default storage is a signed, NOT encrypted cookie: Set-Cookie carries the secret, and so
    does the next request's Cookie header.
    """
    root = user_factory(email="root@example.com", is_staff=True, is_superuser=True)
    response = staff_browser(root).post(
        "/admin/accounts/client/add/",
        {
            "name": "reports", "authorization_grant_type": "client-credentials", "client_type": "confidential",
            "redirect_uris": "", "post_logout_redirect_uris": "", "backchannel_logout_uri": "", "allowed_scopes": "",
            "algorithm": "RS256",
        },
    )
    assert response.status_code == 200
    assert b"client_secret=" in response.content

    cookie = response.cookies.get("messages")
    readable = ""
    if cookie is not None and cookie.value:
        messages = signing.get_cookie_signer(salt="django.contrib.messages").unsign_object(
            cookie.value, serializer=MessageSerializer
        )
        readable = " ".join(str(message) for message in messages)
    assert "client_secret=" not in readable
