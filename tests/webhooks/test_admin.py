"""accounts/webhooks/admin.py: endpoints (the secret shown once, on creation and on rotation; bad
URLs refused; health), the delivery log and its actions, the events read-only."""

import pytest
from django.test import Client

from accounts.webhooks.events import event_emit, user_data
from accounts.webhooks.models import Delivery, Endpoint
from accounts.webhooks import services as webhooks
from tests.conftest import admin_login
from tests.webhooks.conftest import deliver

ENDPOINTS = "/admin/accounts/endpoint/"
DELIVERIES = "/admin/accounts/delivery/"


@pytest.fixture
def admin_client(user_factory):
    staff = user_factory(email="admin@example.com", password="operator phrase 31", is_staff=True, is_superuser=True)
    client = Client()
    admin_login(client, staff)
    return client


def test_adding_an_endpoint_shows_its_secret_once(admin_client):
    response = admin_client.post(ENDPOINTS + "add/", {"url": "http://127.0.0.1:9/hook", "event_types": ["user.created"], "description": "CRM"})

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    endpoint = Endpoint.objects.get()
    secret = endpoint.secrets()[0]
    assert f"secret={secret}" in response.content.decode()
    assert endpoint.event_types == ["user.created"] and endpoint.description == "CRM"
    assert secret not in admin_client.get(f"{ENDPOINTS}{endpoint.pk}/change/").content.decode()


def test_a_bad_url_is_refused_with_why(admin_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False

    response = admin_client.post(ENDPOINTS + "add/", {"url": "https://127.0.0.1/hook"})

    assert response.status_code == 200
    assert "127.0.0.1, a loopback, private, link-local or reserved address" in str(response.context["adminform"].form.errors)
    assert not Endpoint.objects.exists()


def test_rotating_shows_the_new_secret(admin_client):
    endpoint = webhooks.endpoint_add(url="http://127.0.0.1:9/hook").endpoint

    response = admin_client.post(ENDPOINTS, {"action": "rotate_secret", "_selected_action": [endpoint.pk], "index": 0})

    new, old = Endpoint.objects.get().secrets()
    assert f"secret={new}" in response.content.decode() and old not in response.content.decode()


def test_a_disabled_endpoint_is_flagged_in_the_list(admin_client):
    endpoint = webhooks.endpoint_add(url="http://127.0.0.1:9/hook").endpoint
    Endpoint.objects.filter(pk=endpoint.pk).update(is_active=False, disabled_reason="every delivery failed since 2026-12-01T00:00:00+00:00")

    assert "DISABLED: every delivery failed since" in admin_client.get(ENDPOINTS).content.decode()


def test_the_delivery_log_retry_now_and_send_again(admin_client, hook, receiver, user, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [3600]
    receiver.answer = 500
    event_emit("user.updated", data=user_data(user))
    deliver()
    delivery = Delivery.objects.get()
    page = admin_client.get(DELIVERIES).content.decode()
    assert "user.updated" in page and "500" in page

    receiver.answer = 200
    admin_client.post(DELIVERIES, {"action": "retry_now", "_selected_action": [delivery.pk], "index": 0})
    deliver()
    admin_client.post(DELIVERIES, {"action": "send_again", "_selected_action": [delivery.pk], "index": 0})
    deliver()

    assert len(receiver.received) == 3 and len(set(receiver.ids())) == 1
    page = admin_client.get(f"{DELIVERIES}{delivery.pk}/change/")
    assert page.status_code == 200
    assert page.content.decode().count("answered 500") >= 1  # the first attempt, in the attempts' log
    assert admin_client.get("/admin/accounts/event/").status_code == 200


def test_disable_and_enable_from_the_list(admin_client):
    endpoint = webhooks.endpoint_add(url="http://127.0.0.1:9/hook").endpoint

    admin_client.post(ENDPOINTS, {"action": "disable", "_selected_action": [endpoint.pk], "index": 0})
    endpoint.refresh_from_db()
    assert not endpoint.is_active and endpoint.disabled_reason == "disabled by admin@example.com"
    admin_client.post(ENDPOINTS, {"action": "enable", "_selected_action": [endpoint.pk], "index": 0})

    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.disabled_reason == "" and endpoint.failing_since is None


def test_the_event_types_can_be_changed_and_the_url_cannot(admin_client):
    endpoint = webhooks.endpoint_add(url="http://127.0.0.1:9/hook").endpoint

    response = admin_client.post(
        f"{ENDPOINTS}{endpoint.pk}/change/",
        {"url": "http://127.0.0.1:9/elsewhere", "event_types": ["user.deleted"], "description": "erase"},
    )

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.event_types, endpoint.description) == ("http://127.0.0.1:9/hook", ["user.deleted"], "erase")
    assert 'name="url"' not in admin_client.get(f"{ENDPOINTS}{endpoint.pk}/change/").content.decode()
