"""accounts/management/commands/webhook_endpoints.py and deliver_webhooks.py (--once)."""

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.webhooks.events import event_emit, user_data
from accounts.webhooks.models import Delivery, Endpoint


def run(*args) -> str:
    out = StringIO()
    call_command("webhook_endpoints", *args, stdout=out)
    return out.getvalue()


def test_add_prints_the_id_and_the_secret_one_per_line(db):
    output = run("--add", "http://127.0.0.1:9/hook", "--events", "user.created,user.deleted")

    match = re.fullmatch(r"id=(\d+)\nsecret=(whsec_[A-Za-z0-9+/=]+)\n", output)
    assert match, output
    endpoint = Endpoint.objects.get(pk=match[1])
    assert endpoint.event_types == ["user.created", "user.deleted"]
    assert endpoint.secrets() == [match[2]]


def test_add_without_events_subscribes_to_every_type(db):
    run("--add", "http://127.0.0.1:9/hook")

    assert Endpoint.objects.get().event_types == []


def test_an_unknown_event_type_is_a_command_error(db):
    with pytest.raises(CommandError, match="unknown event types: user.exploded"):
        run("--add", "http://127.0.0.1:9/hook", "--events", "user.created,user.exploded")
    assert not Endpoint.objects.exists()


def test_list_disable_and_rotate(db):
    first = int(run("--add", "http://127.0.0.1:9/one", "--events", "user.created").split()[0].removeprefix("id="))
    second = int(run("--add", "http://127.0.0.1:9/two").split()[0].removeprefix("id="))
    old = Endpoint.objects.get(pk=second).secrets()[0]

    assert run("--disable", str(first)) == f"Disabled: {first} http://127.0.0.1:9/one\n"
    rotated = run("--rotate-secret", str(second))

    assert re.fullmatch(r"secret=whsec_[A-Za-z0-9+/=]+\n", rotated)
    new = rotated.strip().removeprefix("secret=")
    assert Endpoint.objects.get(pk=second).secrets() == [new, old]
    assert run("--list") == (
        f"{first} disabled user.created http://127.0.0.1:9/one\n{second} enabled all http://127.0.0.1:9/two\n"
    )


def test_an_unknown_id_is_a_command_error(db):
    with pytest.raises(CommandError, match="no webhook endpoint has id 42"):
        run("--disable", "42")
    with pytest.raises(CommandError, match="no webhook endpoint has id 42"):
        run("--rotate-secret", "42")


def test_deliver_webhooks_once_drains_and_exits(hook, receiver, user):
    event_emit("user.updated", data=user_data(user))
    event_emit("user.deactivated", data=user_data(user))
    out = StringIO()

    call_command("deliver_webhooks", "--once", stdout=out)

    assert out.getvalue() == "2 attempts made.\n"
    assert set(Delivery.objects.values_list("state", flat=True)) == {"succeeded"}
    assert receiver.all_verified() and len(receiver.received) == 2


def test_prune_webhooks_deletes_old_finished_events_only(hook, receiver, user, settings):
    from datetime import timedelta

    from django.utils import timezone

    from accounts.webhooks.models import Attempt, Event
    from tests.webhooks.conftest import deliver

    event_emit("user.updated", data=user_data(user))  # delivered, old: deleted
    event_emit("user.deactivated", data=user_data(user))  # delivered, recent: kept
    deliver()
    receiver.answer = 500
    event_emit("user.reactivated", data=user_data(user))  # pending, old: kept
    deliver()
    Event.objects.exclude(type="user.deactivated").update(created_at=timezone.now() - timedelta(days=40))

    dry = StringIO()
    call_command("prune_webhooks", "--older-than", "30", "--dry-run", stdout=dry)
    out = StringIO()
    call_command("prune_webhooks", "--older-than", "30", stdout=out)

    assert dry.getvalue() == "1 webhook event(s) older than 30 days would be deleted (dry run: none was).\n"
    assert out.getvalue() == "1 webhook event(s) older than 30 days deleted.\n"
    assert sorted(Event.objects.values_list("type", flat=True)) == ["user.deactivated", "user.reactivated"]
    assert Delivery.objects.count() == 2 and Attempt.objects.count() == 2
    with pytest.raises(CommandError, match="0 or more"):
        call_command("prune_webhooks", "--older-than", "-1")
