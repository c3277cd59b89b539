"""accounts/webhooks/services.py: delivery (signed as Standard Webhooks says, verified by its
library on every delivery), retries with the same webhook-id, giving up, disabling an endpoint,
claims and leases, secret rotation, the delivery log's actions, and no secret in a payload or a log."""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.webhooks import services as webhooks
from accounts.webhooks.events import event_emit, user_data
from accounts.webhooks.models import Delivery, Endpoint, Event
from tests.support.webhooks import Receiver
from tests.webhooks.conftest import deliver


def emit(user, type="user.updated", **changes):
    event_emit(type, data=user_data(user, **changes))


def due_now():
    """Make every pending delivery due (the test does not wait for the schedule)."""
    Delivery.objects.filter(state=Delivery.State.PENDING).update(next_attempt_at=timezone.now())


def test_a_delivery_is_signed_as_standard_webhooks_says_and_verifies(hook, receiver, user):
    emit(user, name="Ann")

    assert deliver() == 1

    [got] = receiver.received
    assert receiver.all_verified()
    event = Event.objects.get()
    assert got.id == event.message_id
    assert got.payload == {"type": "user.updated", "timestamp": event.created_at.isoformat(), "data": {"sub": str(user.public_id), "email": user.email, "name": "Ann"}}
    assert got.headers["content-type"] == "application/json"
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)
    assert len(delivery.last_response) == 1024  # the answer's first KB only
    hook.refresh_from_db()
    assert hook.last_success_at is not None and hook.failing_since is None


def test_the_receiver_refusing_then_failing_then_back_gets_it_with_the_same_id(db, user, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [5, 5, 5]
    receiver = Receiver()
    receiver.start()
    port = receiver.port
    new = webhooks.endpoint_add(url=receiver.url)
    receiver.stop()  # refusing connections
    emit(user)

    assert deliver() == 1
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("pending", 1, None)
    assert "ConnectionRefused" in delivery.last_error
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=3)
    assert deliver() == 0  # not due yet

    receiver = Receiver(port=port)
    receiver.secrets = [new.secret]
    receiver.answer = 500
    receiver.start()
    try:
        due_now()
        deliver()
        delivery.refresh_from_db()
        assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (2, 500, "answered 500")
        new.endpoint.refresh_from_db()
        assert new.endpoint.failing_since is not None

        receiver.answer = 200
        due_now()
        deliver()
    finally:
        receiver.stop()

    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("succeeded", 3)
    log = list(delivery.attempt_log.values_list("status_code", "error"))
    assert [status for status, _error in log] == [None, 500, 200]
    assert log[0][1].startswith("ConnectionRefusedError") and log[2][1] == ""
    assert receiver.ids() == [Event.objects.get().message_id] * 2
    assert receiver.all_verified()
    new.endpoint.refresh_from_db()
    assert new.endpoint.failing_since is None


def test_after_the_last_retry_the_delivery_is_failed(hook, receiver, user, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0]
    receiver.answer = 500
    emit(user)

    deliver()

    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.next_attempt_at) == ("failed", 3, None)
    assert len(receiver.received) == 3 and len(set(receiver.ids())) == 1


def test_an_endpoint_failing_for_webhook_disable_after_is_disabled_and_flagged(hook, receiver, user, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    settings.WEBHOOK_DISABLE_AFTER = 3600
    receiver.answer = 500
    emit(user)
    deliver()
    hook.refresh_from_db()
    assert hook.is_active
    Endpoint.objects.filter(pk=hook.pk).update(failing_since=timezone.now() - timedelta(hours=2))
    emit(user)

    deliver()

    hook.refresh_from_db()
    assert not hook.is_active and hook.disabled_at is not None
    assert hook.disabled_reason.startswith("every delivery failed since")


def test_a_redirect_is_not_followed(hook, receiver, user, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = []
    receiver.answer = "redirect"
    emit(user)

    deliver()

    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.last_status_code, delivery.last_error) == ("failed", 302, "answered 302")
    assert len(receiver.received) == 1


def test_during_a_rotation_both_secrets_verify_each_delivery(hook, receiver, user):
    old = receiver.secrets[0]
    new = webhooks.endpoint_secret_rotate(endpoint_id=hook.pk).secret
    receiver.secrets = [old, new]
    emit(user)

    deliver()

    [got] = receiver.received
    assert got.verified == [True, True]
    assert len(got.headers["webhook-signature"].split(" ")) == 2


def test_after_the_overlap_only_the_new_secret_signs(hook, receiver, user):
    old = receiver.secrets[0]
    new = webhooks.endpoint_secret_rotate(endpoint_id=hook.pk).secret
    Endpoint.objects.filter(pk=hook.pk).update(previous_secret_until=timezone.now() - timedelta(seconds=1))
    receiver.secrets = [old, new]
    emit(user)

    deliver()

    assert receiver.received[0].verified == [False, True]


def test_a_claimed_delivery_is_not_claimed_again_until_its_lease_runs_out(hook, user, settings):
    emit(user)
    webhooks.outbox_fan_out()

    first = webhooks.deliveries_claim()
    second = webhooks.deliveries_claim()

    assert len(first) == 1 and second == []
    Delivery.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))
    again = webhooks.deliveries_claim()
    assert [delivery.pk for delivery in again] == [first[0].pk]
    assert again[0].claim_token != first[0].claim_token
    # The first worker, back from a stall, neither attempts it (its lease is not renewed) nor
    # writes over the second one's attempt.
    assert not webhooks.lease_renew(delivery=first[0])
    assert webhooks.lease_renew(delivery=again[0])
    assert webhooks.delivery_attempt(delivery=first[0]) == "lost_claim"


def test_fanning_out_twice_makes_one_delivery_per_endpoint(hook, user):
    emit(user)
    Event.objects.update(fanned_out_at=None)
    webhooks.outbox_fan_out()
    Event.objects.update(fanned_out_at=None)
    webhooks.outbox_fan_out()

    assert Delivery.objects.count() == 1


def test_an_endpoint_added_later_gets_only_later_events(db, receiver, user):
    first = webhooks.endpoint_add(url=receiver.url, event_types=["user.updated"])
    emit(user)
    webhooks.outbox_fan_out()
    webhooks.endpoint_add(url=receiver.url)

    deliver()

    assert list(Delivery.objects.values_list("endpoint", flat=True)) == [first.endpoint.pk]


def test_retry_now_and_send_again(hook, receiver, user, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [3600]
    receiver.answer = 500
    emit(user)
    deliver()
    delivery = Delivery.objects.get()
    receiver.answer = 200

    assert webhooks.deliveries_retry(delivery_ids=[delivery.pk]) == 1
    deliver()
    delivery.refresh_from_db()
    assert delivery.state == "succeeded"
    assert webhooks.deliveries_retry(delivery_ids=[delivery.pk]) == 0  # delivered: "send again" instead
    assert webhooks.deliveries_resend(delivery_ids=[delivery.pk]) == 1
    deliver()

    assert len(receiver.received) == 3 and len(set(receiver.ids())) == 1
    assert receiver.all_verified()


def test_no_secret_in_a_payload_or_a_log_line(hook, receiver, user, caplog, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    caplog.set_level(logging.DEBUG)
    secret = receiver.secrets[0]
    emit(user)
    receiver.answer = 500
    deliver()

    everything = caplog.text + "".join(got.body.decode() for got in receiver.received) + str(list(Event.objects.values()))
    assert secret not in everything and secret.removeprefix("whsec_") not in everything
    assert "whsec_" not in str(list(Endpoint.objects.values()))


def test_unknown_event_types_are_refused(db):
    with pytest.raises(webhooks.EndpointRefused, match="unknown event types: user.exploded"):
        webhooks.endpoint_add(url="http://127.0.0.1:9/", event_types=["user.created", "user.exploded"])


def test_the_secret_is_stored_encrypted(db):
    new = webhooks.endpoint_add(url="http://127.0.0.1:9/")

    assert new.secret.startswith("whsec_")
    assert new.secret not in new.endpoint.secret_encrypted
    assert new.endpoint.secrets() == [new.secret]


def test_reencrypt_secrets_moves_the_secrets_and_a_rotation_s_previous_one(db, settings):
    from io import StringIO

    from django.core.management import call_command

    from core import vault

    endpoint = webhooks.endpoint_add(url="http://127.0.0.1:9/").endpoint
    new = webhooks.endpoint_secret_rotate(endpoint_id=endpoint.pk).secret
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-secret-key-" + "w" * 50, [old_key]

    call_command("reencrypt_secrets", stdout=StringIO())

    settings.SECRET_KEY_FALLBACKS = []
    endpoint.refresh_from_db()
    assert vault.is_current(endpoint.secret_encrypted) and vault.is_current(endpoint.previous_secret_encrypted)
    assert endpoint.secrets()[0] == new
