"""accounts/webhooks/events.py: every event type, emitted by a real API call or admin action, in
the transaction of its change; nothing when that rolls back, nothing without an endpoint, and one
INSERT more than without an endpoint when one subscribes."""

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.db import connection
from rest_framework.test import APIClient

from accounts.users.links import Purpose, validation_token_make
from accounts.users.models import User
from accounts.webhooks import services as webhooks
from accounts.webhooks.events import EVENT_TYPES, UnknownEventType, event_emit
from accounts.webhooks.models import Event
from tests.conftest import PASSWORD, SESSIONS_INLINE, admin_login, totp_code
from tests.support.api import NEW_PASSWORD, client_with, login_token
from tests.support.oidc_flow import authorize, pkce, register, signed_in_browser
from tests.webhooks.conftest import emitted

USERS = "/admin/accounts/user/"


@pytest.fixture
def subscribed(db):
    """An endpoint for every type (never reached: these tests read the outbox)."""
    return webhooks.endpoint_add(url="http://127.0.0.1:9/never").endpoint


@pytest.fixture
def ann(user):
    return user


@pytest.fixture
def ann_client(ann):
    return client_with(login_token(ann.email))


@pytest.fixture
def admin_client(user_factory):
    staff = user_factory(email="admin@example.com", password="operator phrase 31", is_staff=True, is_superuser=True)
    client = Client()
    admin_login(client, staff)
    return client


def user_part(user: User, **changes) -> dict:
    return {"sub": str(user.public_id), "email": user.email, **changes}


def types() -> list[str]:
    return [type for type, _data in emitted()]


def test_registration_emits_user_created(subscribed, api_client):
    response = api_client.post("/api/user", {"email": "bob@example.com", "name": "Bob", "password": PASSWORD, "confirm": PASSWORD}, format="json")

    assert response.status_code == 200, response.json()
    bob = User.objects.get(email="bob@example.com")
    assert emitted() == [("user.created", user_part(bob, name="Bob"))]


def test_confirmation_emits_user_confirmed_once(subscribed, api_client, user_factory):
    una = user_factory(email="una@example.com", confirmed=False)
    token = validation_token_make(user=una, purpose=Purpose.CONFIRMATION)

    assert api_client.post("/api/validate/confirmation", {"token": token}, format="json").status_code == 200
    api_client.post("/api/validate/confirmation", {"token": token}, format="json")

    assert emitted() == [("user.confirmed", user_part(una))]


def test_profile_update_emits_user_updated(subscribed, ann, ann_client):
    assert ann_client.put("/api/user", {"name": "Ann Other"}, format="json").status_code == 200

    assert emitted() == [("user.updated", user_part(ann, name="Ann Other"))]


def test_email_change_emits_the_new_and_the_previous_email(subscribed, ann, ann_client):
    response = ann_client.patch("/api/user", {"new_email": "ann.new@example.com", "password": PASSWORD}, format="json")

    assert response.status_code == 200, response.json()
    ann.refresh_from_db()
    assert emitted() == [
        ("user.email_changed", user_part(ann, previous_email="ann@example.com", email_verified=False))
    ]


def test_password_change_and_reset_emit_user_password_changed_without_the_password(subscribed, ann, ann_client, api_client):
    changed = ann_client.put(
        "/api/authenticate", {"password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, format="json"
    )
    assert changed.status_code == 200, changed.json()
    ann.refresh_from_db()
    token = validation_token_make(user=ann, purpose=Purpose.RECOVERY)
    reset = api_client.post("/api/validate/recovery", {"token": token, "new_password": PASSWORD, "confirm": PASSWORD}, format="json")
    assert reset.status_code == 200, reset.json()

    assert emitted() == [
        ("user.password_changed", user_part(ann, how="changed")),
        ("user.password_changed", user_part(ann, how="reset")),
    ]
    assert PASSWORD not in str(emitted()) and NEW_PASSWORD not in str(emitted())


def test_deactivation_and_the_login_that_reactivates(subscribed, ann, ann_client):
    assert ann_client.delete("/api/user").status_code == 200
    login_token(ann.email)

    assert types() == ["user.deactivated", "user.reactivated"]
    assert emitted()[1][1] == user_part(ann)


def test_deletion_carries_the_sub_and_the_email_only(subscribed, ann, ann_client):
    sub = str(ann.public_id)

    response = ann_client.delete("/api/authenticate", {"password": PASSWORD}, format="json")

    assert response.status_code == 200, response.content
    assert emitted() == [("user.deleted", {"sub": sub, "email": "ann@example.com"})]


def test_staff_disable_enable_confirm_and_delete_in_the_admin(subscribed, admin_client, user_factory):
    ann = user_factory(email="ann@example.com")
    una = user_factory(email="una@example.com", confirmed=False)

    for action, user in (("disable", ann), ("enable", ann), ("confirm", una), ("delete_selected", una)):
        data = {"action": action, "_selected_action": [user.pk], "index": 0}
        if action == "delete_selected":
            data["post"] = "yes"
        assert admin_client.post(USERS, data, follow=True).status_code == 200

    assert emitted() == [
        ("user.disabled", user_part(ann)),
        ("user.enabled", user_part(ann)),
        ("user.confirmed", user_part(una)),
        ("user.deleted", user_part(una)),
    ]


def test_staff_adding_an_account_and_changing_its_groups_name_and_email(subscribed, admin_client):
    added = admin_client.post(
        USERS + "add/",
        {"email": "new@example.com", "name": "New", "usable_password": "false", "password1": "", "password2": ""},
    )
    assert added.status_code == 302, added.context["adminform"].form.errors
    new = User.objects.get(email="new@example.com")
    group = Group.objects.create(name="operators")

    changed = admin_client.post(
        f"{USERS}{new.pk}/change/",
        {"email": "renamed@example.com", "name": "Newer", "groups": [group.pk], **SESSIONS_INLINE},
    )

    assert changed.status_code == 302, changed.context["adminform"].form.errors
    new.refresh_from_db()
    assert emitted() == [
        ("user.created", {"sub": str(new.public_id), "email": "new@example.com", "name": "New"}),
        ("user.email_changed", user_part(new, previous_email="new@example.com", email_verified=False)),
        ("user.updated", user_part(new, name="Newer")),
        ("user.groups_changed", user_part(new, groups=["operators"], added=["operators"], removed=[])),
    ]


def test_two_factor_on_off_and_staff_reset(subscribed, ann, ann_client, totp_clock, admin_client):
    def code(secret):
        return totp_code(secret, totp_clock.now)

    secret = ann_client.post("/api/mfa/totp", {"password": PASSWORD}, format="json").json()["secret"]
    assert ann_client.put("/api/mfa/totp", {"code": code(secret)}, format="json").status_code == 200
    totp_clock.tick()
    assert ann_client.delete("/api/mfa/totp", {"password": PASSWORD, "code": code(secret)}, format="json").status_code == 200
    ann_client = client_with(login_token(ann.email))
    secret = ann_client.post("/api/mfa/totp", {"password": PASSWORD}, format="json").json()["secret"]
    totp_clock.tick()
    assert ann_client.put("/api/mfa/totp", {"code": code(secret)}, format="json").status_code == 200
    data = {"action": "reset_two_factor", "_selected_action": [ann.pk], "index": 0}
    assert admin_client.post(USERS, data, follow=True).status_code == 200

    assert emitted() == [
        ("two_factor.enabled", user_part(ann, method="totp")),
        ("two_factor.disabled", user_part(ann, method="totp", by="user")),
        ("two_factor.enabled", user_part(ann, method="totp")),
        ("two_factor.disabled", user_part(ann, method="totp", by="staff")),
    ]
    assert secret not in str(emitted())


def test_consent_granted_on_the_page_and_withdrawn_through_the_api(subscribed, ann, ann_client):
    app = register()
    _verifier, challenge = pkce()

    authorize(signed_in_browser(ann.email), app, challenge)
    consent_id = ann_client.get("/api/authorizations").json()["authorizations"][0]["id"]
    assert ann_client.delete(f"/api/authorizations/{consent_id}").status_code in (200, 204)

    granted = ("consent.granted", user_part(ann, client_id=app.client_id, client_name=app.name, scopes=["email", "offline_access", "openid", "profile"]))
    revoked = ("consent.revoked", user_part(ann, client_id=app.client_id, client_name=app.name, by="user"))
    assert emitted() == [granted, revoked]


def test_a_change_that_rolls_back_leaves_no_event(subscribed, ann):
    with pytest.raises(RuntimeError), transaction.atomic():
        from accounts.account.profile import profile_update

        profile_update(user=ann, name="Rolled Back")
        raise RuntimeError("the change fails after the event")

    assert emitted() == []


def test_without_an_endpoint_nothing_is_written(db, api_client):
    api_client.post("/api/user", {"email": "bob@example.com", "name": "Bob", "password": PASSWORD, "confirm": PASSWORD}, format="json")

    assert not Event.objects.exists()


def test_an_endpoint_gets_only_the_types_it_subscribes_to(db, ann, ann_client):
    webhooks.endpoint_add(url="http://127.0.0.1:9/never", event_types=["user.deactivated"])

    ann_client.put("/api/user", {"name": "Ann Other"}, format="json")
    ann_client.delete("/api/user")

    assert types() == ["user.deactivated"]


def test_a_disabled_endpoint_subscribes_to_nothing(subscribed, ann, ann_client):
    webhooks.endpoint_disable(endpoint_id=subscribed.pk)

    ann_client.put("/api/user", {"name": "Ann Other"}, format="json")

    assert emitted() == []


def _inserts(api_client, email: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = api_client.post("/api/user", {"email": email, "name": "Bob", "password": PASSWORD, "confirm": PASSWORD}, format="json")
    assert response.status_code == 200
    return sum(1 for query in queries.captured_queries if query["sql"].lstrip().upper().startswith("INSERT"))


def test_registration_with_an_endpoint_costs_exactly_one_insert_more(db, api_client, settings):
    settings.SIGNUP_RATE = "1000/hour"
    without = _inserts(api_client, "one@example.com")
    webhooks.endpoint_add(url="http://127.0.0.1:9/never")
    _inserts(api_client, "warm@example.com")  # the subscriptions are read once, then kept

    with_endpoint = _inserts(api_client, "two@example.com")

    assert with_endpoint == without + 1


def test_an_unknown_type_is_a_bug(db):
    with pytest.raises(UnknownEventType):
        event_emit("user.exploded", data={})


def test_the_passkey_types_are_known_for_the_engineer_who_emits_them():
    assert {"passkey.added", "passkey.removed"} <= set(EVENT_TYPES)


def test_passkey_added_removed_by_the_user_and_by_staff(subscribed, ann, ann_client, admin_client):
    from accounts.passkeys.models import Passkey
    from tests.support.authenticator import SoftPasskey

    def add() -> int:
        options = ann_client.post("/api/passkeys/options", {"password": PASSWORD}, format="json").json()["options"]
        answer = ann_client.post("/api/passkeys", {"credential": SoftPasskey().create(options), "name": "Pixel"}, format="json")
        assert answer.status_code == 200, answer.json()
        return answer.json()["passkey"]["id"]

    first, second = add(), add()
    assert ann_client.delete(f"/api/passkeys/{first}", {"password": PASSWORD}, format="json").status_code == 200
    data = {"action": "remove", "_selected_action": [second]}
    assert admin_client.post("/admin/accounts/passkey/", data, follow=True).status_code == 200

    assert not Passkey.objects.exists()
    assert emitted() == [
        ("passkey.added", user_part(ann, passkey={"id": first, "name": "Pixel"})),
        ("passkey.added", user_part(ann, passkey={"id": second, "name": "Pixel"})),
        ("passkey.removed", user_part(ann, passkey={"id": first, "name": "Pixel"}, by="user")),
        ("passkey.removed", user_part(ann, passkey={"id": second, "name": "Pixel"}, by="staff")),
    ]
