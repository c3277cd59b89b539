"""Races between real concurrent requests, on PostgreSQL (SQLite serialises writers anyway).

Eight threads, released together by a barrier, each with its own Django test client and its own
database connection, hit one endpoint at once: registering one email in different cases, moving
several accounts to one email, spending one recovery token. Exactly one wins; the others get the
contract's error (never a 500), and the database holds exactly what the winner wrote.
"""

import json
import threading
from collections import Counter

import pytest
from django.core import mail
from django.db import connection
from django.test import Client

from accounts.users.models import User
from accounts.sessions.tokens import auth_token_issue
from accounts.users.links import Purpose, validation_token_make
from tests.conftest import PASSWORD, sign_in
from tests.support.contract import INVALID_TOKEN, USER_ALREADY_EXIST

THREADS = 8

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip(
            "concurrency tests need PostgreSQL (run with DATABASE_URL=postgres://...): "
            "SQLite serialises writers, so the races under test cannot happen there"
        )


@pytest.fixture(autouse=True)
def _no_rate_limits(settings):
    """Take rate limits out of the race: eight requests from one address are not what is tested."""
    settings.SIGNUP_RATE = "none"
    settings.LOGIN_RATE = "none"
    settings.EMAIL_RATE = "none"


def race(requests) -> list[tuple[int, dict]]:
    """Run each `request(client)` in its own thread, all released at once; return (status, body)s."""
    barrier = threading.Barrier(len(requests))
    results: list[tuple[int, dict] | None] = [None] * len(requests)
    failures: list[BaseException] = []

    def worker(index, request):
        try:
            client = Client()
            barrier.wait(timeout=60)  # a safety net only
            response = request(client)
            results[index] = (response.status_code, json.loads(response.content))
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)
        finally:
            # Each thread has its own connection; close it, or the test database cannot be dropped.
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, request)) for i, request in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)  # a safety net only
    assert not any(thread.is_alive() for thread in threads), "a request never finished"
    assert not failures, failures
    return results


def json_post(client, path, data, **extra):
    return client.post(path, data=json.dumps(data), content_type="application/json", **extra)


def test_concurrent_registrations_of_one_email_create_one_account():
    spellings = [
        "Race@Example.com",
        "race@example.com",
        "RACE@EXAMPLE.COM",
        "race@EXAMPLE.com",
        "rAcE@example.COM",
        "Race@example.com",
        "race@Example.Com",
        "RaCe@ExAmPlE.cOm",
    ]
    assert len(spellings) == THREADS

    def register(email):
        return lambda client: json_post(
            client, "/api/user", {"email": email, "name": "Racer", "password": PASSWORD, "confirm": PASSWORD}
        )

    results = race([register(email) for email in spellings])

    statuses = Counter(status for status, _ in results)
    assert statuses == {200: 1, 401: THREADS - 1}, results
    [winner] = [body for status, body in results if status == 200]
    assert winner["user"].lower() == "race@example.com"
    assert [body for status, body in results if status == 401] == [USER_ALREADY_EXIST] * (THREADS - 1)
    assert User.objects.count() == 1
    assert User.objects.with_email("race@example.com").get().email == winner["user"]
    # Only the winner was sent a confirmation email.
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [winner["user"]]


def test_concurrent_email_changes_to_one_address_give_it_to_one_account(user_factory):
    users = [user_factory(email=f"mover{i}@example.com") for i in range(THREADS)]
    targets = ["Taken@Example.com", "taken@example.com", "TAKEN@example.com", "taken@EXAMPLE.COM"] * 2

    def change(user, target):
        session = sign_in(user)
        token = auth_token_issue(session=session, user=user, now=session.created_at)
        return lambda client: client.patch(
            "/api/user",
            data=json.dumps({"new_email": target, "password": PASSWORD}),
            content_type="application/json",
            HTTP_AUTHORIZATION=token,
        )

    results = race([change(user, target) for user, target in zip(users, targets)])

    statuses = Counter(status for status, _ in results)
    assert statuses == {200: 1, 401: THREADS - 1}, results
    assert [body for status, body in results if status == 401] == [USER_ALREADY_EXIST] * (THREADS - 1)
    [winner_index] = [i for i, (status, _) in enumerate(results) if status == 200]
    assert User.objects.with_email("taken@example.com").count() == 1
    assert User.objects.with_email("taken@example.com").get().pk == users[winner_index].pk
    # The losers keep their addresses.
    for i, user in enumerate(users):
        if i != winner_index:
            assert User.objects.get(pk=user.pk).email == f"mover{i}@example.com"


def test_concurrent_resets_with_one_recovery_token_spend_it_once(user_factory):
    user = user_factory(email="reset@example.com")
    token = validation_token_make(user=user, purpose=Purpose.RECOVERY)
    new_passwords = [f"fresh battery staple {i}" for i in range(THREADS)]

    def reset(password):
        return lambda client: json_post(
            client, "/api/validate/recovery", {"token": token, "new_password": password, "confirm": password}
        )

    results = race([reset(password) for password in new_passwords])

    statuses = Counter(status for status, _ in results)
    assert statuses == {200: 1, 400: THREADS - 1}, results
    assert [body for status, body in results if status == 400] == [INVALID_TOKEN] * (THREADS - 1)
    [winner_index] = [i for i, (status, _) in enumerate(results) if status == 200]
    assert results[winner_index][1] == {"message": "Password reset"}
    # The stored password is the winner's, not a loser's written over it.
    user.refresh_from_db()
    assert user.check_password(new_passwords[winner_index])
    assert sum(user.check_password(password) for password in new_passwords) == 1
