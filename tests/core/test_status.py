"""GET /status: 200 with a JSON summary while the database (and the cache, if configured) answer,
503 in the same shape naming what failed when one does not."""

import json
import socket

import pytest
from django.db import OperationalError, connections

from core import status as views

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def summary(response) -> dict:
    """Return the JSON body after checking it is the contract's shape: exactly status and message."""
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert set(body) == {"status", "message"}
    assert body["status"] == response.status_code
    assert isinstance(body["message"], str) and body["message"]
    return body


def status_message(client, expected: int) -> str:
    """GET /status; require `expected` as its status, in the answer and in the body; return the
    body's message, lowercase."""
    response = client.get("/status")
    assert response.status_code == expected
    body = summary(response)
    assert body["status"] == expected
    return body["message"].lower()


def use_redis(settings, url: str) -> None:
    """Configure a shared cache as CACHE_URL would: the setting and a Redis cache at that URL."""
    settings.CACHE_URL = url
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "authserver-tests-status",
            "OPTIONS": {"socket_connect_timeout": 5, "socket_timeout": 5},
        }
    }


def redis_answers(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@pytest.mark.parametrize("path", ["/status", "/status/"])
def test_status_is_200_when_the_database_answers(db, client, path):
    response = client.get(path, follow=False)

    assert response.status_code == 200
    body = summary(response)
    assert body["status"] == 200
    assert "database" in body["message"].lower()


def test_status_needs_no_token_and_ignores_a_bad_one(db, client):
    response = client.get("/status", HTTP_AUTHORIZATION="Bearer garbage")

    assert response.status_code == 200
    assert summary(response)["status"] == 200


def test_status_without_cache_url_does_not_check_a_cache(db, client, settings):
    settings.CACHE_URL = ""

    body = summary(client.get("/status"))

    assert body["status"] == 200
    assert "cache" not in body["message"].lower()


def test_status_is_503_naming_the_database_when_the_probe_fails(db, client, monkeypatch):
    monkeypatch.setattr(views, "_database_ok", lambda: False)

    response = client.get("/status")

    assert response.status_code == 503
    body = summary(response)
    assert body["status"] == 503
    assert "database" in body["message"].lower()


def test_status_is_503_naming_the_database_when_the_cursor_raises(db, client, monkeypatch):
    """A real failure path: the database driver raises, the view answers 503 instead of a 500."""
    wrapper = connections["default"]

    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    with monkeypatch.context() as patch:
        # Patched on the class and undone right after the request, so that the test database's
        # own teardown (which needs cursors) is untouched.
        patch.setattr(type(wrapper), "cursor", refuse)
        response = client.get("/status")

    assert response.status_code == 503
    body = summary(response)
    assert "database" in body["message"].lower()
    assert "cache" not in body["message"].lower()


def test_status_is_503_naming_the_cache_when_redis_is_unreachable(db, client, settings):
    use_redis(settings, UNREACHABLE_REDIS)

    message = status_message(client, 503)
    assert "cache" in message
    # The database answers, so it is not named as failed.
    assert "database" not in message


def test_status_names_both_when_both_fail(db, client, settings, monkeypatch):
    use_redis(settings, UNREACHABLE_REDIS)
    monkeypatch.setattr(views, "_database_ok", lambda: False)

    response = client.get("/status")

    assert response.status_code == 503
    message = summary(response)["message"].lower()
    assert "database" in message and "cache" in message


def test_status_is_200_mentioning_the_cache_when_redis_answers(db, client, settings):
    if not redis_answers():
        pytest.skip("no Redis answering at 127.0.0.1:6379")
    use_redis(settings, LOCAL_REDIS)

    message = status_message(client, 200)
    assert "cache" in message
    assert "database" in message


def test_status_with_a_cache_that_answers_wrongly_is_503(db, client, settings):
    """A cache that accepts writes but loses them (a dummy cache) is not a working shared cache."""
    settings.CACHE_URL = "dummy://"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}

    response = client.get("/status")

    assert response.status_code == 503
    assert "cache" in summary(response)["message"].lower()


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_status_other_verbs_are_json_405(db, client, method):
    response = client.generic(method, "/status")

    assert response.status_code == 405
    body = json.loads(response.content)
    assert set(body) == {"status", "message"}
    assert body["status"] == 405
