"""Attack tests of the pre-release security review (branch `review`).

Every test here FAILS on the code it was written against: each one is an attack that works, the
assertion states what the server should do instead, and the docstring says what the attacker gains.
They are numbered as the review report numbers its findings. Once a finding is fixed, its test
passes and stays as a regression test.

No timing thresholds: limits are shown by counting answers and emails, never by measuring time.
"""

import base64
import json
from contextlib import contextmanager

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.messages.storage.cookie import MessageSerializer
from django.core import mail, signing
from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from accounts.sessions.models import Session
from accounts.users.models import User
from accounts.clients.services import resource_server_create
from accounts.keys.services import keys_rotate
from accounts.sessions.tokens import token_backend
from accounts.keys.keyring import keyring
from tests.conftest import PASSWORD, admin_login, claims
from tests.support.api import login

ANN = "ann@example.com"
NEW_PASSWORD = "a fresh staple battery"
GOOD_SIGNUP = {"name": "Eve", "password": "a long enough pw 1", "confirm": "a long enough pw 1"}


def api(token: str | None = None, **extra) -> APIClient:
    client = APIClient(**extra)
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=token)
    return client


def staff_browser(user) -> Client:
    browser = Client()
    admin_login(browser, user)
    return browser


@contextmanager
def sql_parameters():
    """Collect every parameter the request sends to the database (raw, before any quoting)."""
    seen: list = []

    def wrapper(execute, sql, params, many, context):
        rows = params if many else [params]
        for row in rows or []:
            seen.extend(row.values() if isinstance(row, dict) else (row or []))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield seen


# --- 1. Rate-limit counters are evicted by the database cache's culling ------------------------


def test_flooding_the_cache_culls_the_victims_account_lock(user, settings, monkeypatch):
    """Attacker (no account, many IPv6 /64s, e.g. one /48) gains unlimited password guesses.

    Rate limits live in the default cache, a DatabaseCache with MAX_ENTRIES=100000. Past that,
    Django culls the lowest third of ALL keys in key order, rate-limit slots included. Signup
    attempts with a taken email cost no hashing and each adds one `ratelimit:signup:` key (30 per
    /64 per hour), and those keys sort after `ratelimit:login_account:`. So flooding signups pushes
    the victim's LOGIN_ACCOUNT_RATE slots into the culled third, and the account lock is gone.
    Here MAX_ENTRIES is scaled down to 300 (360 signup keys) so the test runs quickly. In production it takes
    ~100k keys, i.e. ~3,400 /64s in an hour.
    """
    cache = caches["default"]
    if not isinstance(cache, DatabaseCache):
        pytest.skip("the culling shown here is the default DatabaseCache's (CACHE_URL unset)")
    monkeypatch.setattr(cache, "_max_entries", 300)
    settings.LOGIN_ACCOUNT_RATE = "20/hour"
    for guess in range(20):
        login(APIClient(REMOTE_ADDR=f"198.51.100.{guess + 1}"), password=f"wrong guess {guess}")
    assert login(APIClient(REMOTE_ADDR="203.0.113.1"), password="guess 21").status_code == 429  # locked, as designed

    for network in range(12):
        flooder = APIClient(REMOTE_ADDR=f"2001:db8:{network:x}::1")
        for _ in range(30):
            flooder.post("/api/user", {"email": ANN, **GOOD_SIGNUP}, format="json")

    # The account must still be locked: a further guess is refused, however it is spelled.
    assert login(APIClient(REMOTE_ADDR="203.0.113.2"), password="guess 22").status_code == 429


# --- 2. The admin's own password change: no account limit, no session ends ---------------------


def test_admin_password_change_form_is_an_unlimited_password_oracle(user_factory, settings):
    """Attacker with a staff member's admin browser session (left open, stolen cookie) gains an
    unlimited oracle for that staff member's password. /admin/password_change/ (Django's own
    form) checks the old password with no LOGIN_ACCOUNT_RATE and writes no audit event, so the
    attacker can guess it offline-fast and reuse it at the API and elsewhere.
    """
    settings.LOGIN_ACCOUNT_RATE = "20/hour"
    staff = user_factory(email="staff@example.com", is_staff=True)
    browser = staff_browser(staff)
    for guess in range(21):
        browser.post(
            "/admin/password_change/",
            {"old_password": f"guess {guess}", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        )

    # 21 failed checks of this account: every further check is Throttled, from any endpoint.
    assert login(APIClient(), email="staff@example.com").status_code == 429


def test_admin_password_change_leaves_every_api_token_working(user_factory, token_for):
    """Attacker holding a stolen API token (or an open session) of a staff member gains
    persistence. When the staff member changes their password in /admin/password_change/
    (Django's view, not accounts.services), no session ends, so the thief's token keeps working.
    EXTENSIONS: "Password change ends every session of the user".
    """
    staff = user_factory(email="staff@example.com", is_staff=True)
    stolen = token_for(staff)
    browser = staff_browser(staff)

    response = browser.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302  # changed

    assert api(stolen).get("/api/user").status_code == 401


# --- 3. Privilege escalation through the Group admin -------------------------------------------


def test_staff_who_may_change_groups_grant_themselves_every_permission(user_factory):
    """Attacker who is staff with only "change group" (a helpdesk lead, say) gains every model
    permission: delete users, rotate and retire signing keys, create resource servers, read the
    audit trail... UserAdmin keeps privileges (groups, permissions) superuser-only, but Django's
    stock GroupAdmin lets them edit the permissions of the group they are in.
    """
    staff = user_factory(email="helpdesk@example.com", is_staff=True)
    group = Group.objects.create(name="helpdesk")
    group.permissions.set(Permission.objects.filter(codename__in=["view_group", "change_group"]))
    staff.groups.add(group)
    browser = staff_browser(staff)

    browser.post(
        f"/admin/auth/group/{group.pk}/change/",
        {"name": "helpdesk", "permissions": list(Permission.objects.values_list("pk", flat=True))},
    )

    staff = User.objects.get(pk=staff.pk)  # fresh permission cache
    assert not staff.has_perm("accounts.delete_user")
    assert not staff.has_perm("accounts.change_signingkey")


# --- 4. The token's `email` claim is whatever address the holder typed -------------------------


def test_a_changed_email_is_asserted_in_tokens_without_proof_of_ownership(user, token_for):
    """Attacker with an account of their own gains tokens, signed by this server, that say
    `email: ceo@victim.example`. PATCH /api/user changes the email at once and never asks the new
    address to confirm. Tokens carry it with no `email_verified` flag, so every resource server
    that maps or authorizes users by email (allow-lists, domain-based roles, account linking)
    takes the attacker for the victim.
    """
    client = api(token_for(user))
    assert client.patch("/api/user", {"new_email": "ceo@victim.example", "password": PASSWORD}, format="json").status_code == 200

    refreshed = claims(client.get("/api/authenticate").json()["token"])

    assert refreshed["email"] != "ceo@victim.example" or refreshed.get("email_verified") is False


# --- 5. Email-change notices: an unlimited mail cannon to any address --------------------------


def test_email_change_notices_let_anyone_mail_any_address_without_limit(user, token_for, settings):
    """Attacker with an account of their own gains an unlimited cannon that sends mail from this
    server to any address, with attacker-written text (the account name, 150 characters, is in
    the body). Changing the email to the target and back sends the target an "email changed"
    notice each time. Notices skip EMAIL_RATE by design (the owner must always hear of a change),
    and nothing limits email changes. The target never owned the account, yet gets
    the notices. That costs the sending domain's reputation and lets spam or phishing through.
    """
    settings.EMAIL_RATE = "5/hour"
    user.name = "URGENT call +1-555-0100 to keep your bank account"
    user.save(update_fields=["name"])
    client = api(token_for(user))
    for _ in range(8):
        client.patch("/api/user", {"new_email": "target@victim.example", "password": PASSWORD}, format="json")
        client.patch("/api/user", {"new_email": ANN, "password": PASSWORD}, format="json")

    to_target = [message for message in mail.outbox if "target@victim.example" in message.to]
    assert len(to_target) <= 5


# --- 6. Rotating SECRET_KEY as Django documents it takes the whole token service down ---------


def test_dropping_the_secret_key_fallback_after_a_rotation_keeps_tokens_working(user, token_for, settings):
    """Attacker: none is needed. This is an outage that the operator's routine SECRET_KEY rotation
    causes (e.g. after a leak). The private signing keys are encrypted under SECRET_KEY
    (core.vault). Nothing ever re-encrypts them (vault.reencrypt is never called), and even a
    signing-key rotation during the overlap window promotes the `next` key, encrypted under the old
    SECRET_KEY. Once the operator drops SECRET_KEY_FALLBACKS, keyring.reload() cannot decrypt the
    current key. Every login, every authenticated request and /.well-known/jwks.json answer 500,
    because verification also builds the full keyset, private key included.
    """
    old_key = settings.SECRET_KEY
    token = token_for(user)
    settings.SECRET_KEY = "rotated-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
    settings.SECRET_KEY_FALLBACKS = [old_key]
    keys_rotate()  # what a careful operator might do during the overlap window
    keyring.forget()
    token_backend().forget()
    assert api(token).get("/api/user").status_code == 200

    settings.SECRET_KEY_FALLBACKS = []  # the rotation ends, as Django's docs say it should
    keyring.forget()
    token_backend().forget()

    assert APIClient().get("/.well-known/jwks.json").status_code == 200
    assert login(APIClient()).status_code == 200


# --- 7. Staff with "delete session" sign out superusers ----------------------------------------


def test_staff_who_may_delete_sessions_sign_a_superuser_out(user_factory, token_for):
    """Attacker who is staff with "delete session" gains the power to sign out superusers and
    other staff (again and again, e.g. to hide what they do while an admin is locked out, or as a
    nuisance). The revoke action checks staff_action_allowed, but Django's delete view and the
    bulk "delete selected" do not: SessionAdmin keeps the default has_delete_permission.
    (QueuedEmailAdmin likewise lets "delete queued email" drop security notices of any user.)
    """
    root = user_factory(email="root@example.com", is_staff=True, is_superuser=True)
    root_token = token_for(root)
    staff = user_factory(email="staff@example.com", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename__in=["view_session", "delete_session"]))
    session = Session.objects.get(public_id=claims(root_token)["sid"])

    staff_browser(staff).post(f"/admin/accounts/session/{session.pk}/delete/", {"post": "yes"})

    assert api(root_token).get("/api/user").status_code == 200


# --- 8. Hostile Basic credentials: a 500 -------------------------------------------------------


def test_a_non_ascii_basic_header_is_invalid_client_credentials_not_a_500(db):
    """Attacker (no account, any client) gains a cheap 500 with a logged traceback on every call,
    which can be used to flood logs or set off alerts. base64.b64decode raises a plain ValueError
    (not binascii.Error) for a non-ASCII str, and basic_credentials does not catch it.
    """
    response = APIClient().post("/api/introspect", {"token": "x"}, format="json", HTTP_AUTHORIZATION="Basic \xe9t\xe9")

    assert response.status_code == 401
    assert response.json() == {"status": 401, "message": "Invalid client credentials"}


# --- 9. NUL bytes from the URL and the Basic header reach the database -------------------------


def test_a_nul_in_a_session_id_never_reaches_the_database(user, token_for):
    """Attacker with any valid token (their own) gains a 500 on PostgreSQL, which refuses NUL in
    text ("PostgreSQL text fields cannot contain NUL"). DRF's fields refuse NUL in bodies, but the
    <id> of /api/sessions/<id> goes from the URL straight into a query. On SQLite it is a 404;
    shown here on every database by the value handed to the database.
    """
    client = api(token_for(user))
    with sql_parameters() as parameters:
        response = client.delete("/api/sessions/%00")

    assert response.status_code == 404
    assert not any(isinstance(value, str) and "\x00" in value for value in parameters)


def test_a_nul_in_a_basic_client_id_never_reaches_the_database(db):
    """Attacker (no account) gains a 500 on PostgreSQL at /api/introspect: the client id is
    percent-decoded (%00) and queried as it is.
    """
    resource_server_create(name="reports")
    header = "Basic " + base64.b64encode(b"%00:secret").decode()
    with sql_parameters() as parameters:
        response = APIClient().post("/api/introspect", {"token": "x"}, format="json", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert not any(isinstance(value, str) and "\x00" in value for value in parameters)


# --- 10. Valid-looking email addresses that break the server -----------------------------------


def test_an_email_whose_normalized_form_outgrows_its_column_is_refused(db):
    """Attacker (no account) gains a 500 on PostgreSQL at registration, and at PATCH /api/user
    for their own account. NFKC expands characters (U+FB03 'ﬃ' → 'ffi'), so a 250-character
    address passes the 254-character checks, yet its email_normalized is ~700 characters, more than
    its varchar(254). PostgreSQL raises DataError (not IntegrityError, so not caught). SQLite stores
    it and breaks the column's rule.
    """
    label = "\ufb03" * 21
    email = ("a@" + ".".join([label] * 11) + ".com")[:250]
    response = APIClient().post("/api/user", {"email": email, **GOOD_SIGNUP}, format="json")

    stored = User.objects.filter(email=email).first()
    assert response.status_code == 400 or (stored is not None and len(stored.email_normalized) <= 254)


def test_an_email_with_an_unencodable_domain_is_a_400_not_a_500(db):
    """Attacker (no account) gains a 500 (and a traceback in the log) per registration.
    EmailValidator accepts a domain label of 60 'ü', but its IDNA form is longer than 63
    characters. send_mail then raises UnicodeError, which emails._deliver does not catch.
    """
    response = APIClient().post("/api/user", {"email": "ann@" + "\u00fc" * 60 + ".de", **GOOD_SIGNUP}, format="json")

    assert response.status_code == 400


# --- 11. A rate of zero is accepted at start-up, then every request is a 500 -------------------


def test_a_zero_rate_throttles_instead_of_failing(db, settings):
    """Attacker: none. "SIGNUP_RATE=0/hour" (a natural way to close sign-ups during an attack)
    passes the start-up check, but RateLimit.check takes min() of no slots, so every
    registration answers 500 instead of 429. The same holds for every *_RATE.
    """
    settings.SIGNUP_RATE = "0/hour"

    response = APIClient().post("/api/user", {"email": "zero@example.com", **GOOD_SIGNUP}, format="json")

    assert response.status_code == 429


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


# --- 13. A resource server's secret travels in a readable cookie -------------------------------


def test_a_new_resource_servers_secret_is_not_put_in_a_cookie(user_factory):
    """Attacker who can read request headers anywhere on the path, such as a TLS-terminating
    proxy's or APM's header logs or a shared browser profile, gains the client_secret, hence
    introspection of any token. The admin shows the one-time secret through django.contrib.messages,
    whose default storage is a signed, NOT encrypted cookie: Set-Cookie carries the secret, and so
    does the next request's Cookie header.
    """
    root = user_factory(email="root@example.com", is_staff=True, is_superuser=True)
    response = staff_browser(root).post("/admin/accounts/resourceserver/add/", {"name": "reports"})

    cookie = response.cookies.get("messages")
    readable = ""
    if cookie is not None and cookie.value:
        messages = signing.get_cookie_signer(salt="django.contrib.messages").unsign_object(
            cookie.value, serializer=MessageSerializer
        )
        readable = " ".join(str(message) for message in messages)
    assert "client_secret=" not in readable
