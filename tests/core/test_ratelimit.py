"""Rate limits: accounts/ratelimit.py and LOGIN_RATE, SIGNUP_RATE, EMAIL_RATE through the API.

The limits count in the configured cache: the database cache by default (rolled back with each
test), Redis when CACHE_URL is set (emptied before each test by conftest).
"""

import os
import subprocess
import sys
import time

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core import mail
from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from rest_framework.test import APIClient

from accounts.passwords.credentials import password_matches
from accounts.users.models import User
from core import ratelimit
from core.errors import Throttled
from core.ratelimit import Rate, RateLimit, parse_rate
from tests.conftest import PASSWORD
from tests.support.api import login
from tests.support.contract import AUTHENTICATE_PATH as LOGIN, THROTTLED, assert_error


def assert_throttled(response):
    assert response.status_code == 429, response.content
    assert response.json() == THROTTLED
    assert int(response["Retry-After"]) >= 1


# --- parsing and the limit itself --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("10/min", Rate(10, 60)),
        ("10/m", Rate(10, 60)),
        ("30/hour", Rate(30, 3600)),
        ("5/h", Rate(5, 3600)),
        ("1/second", Rate(1, 1)),
        ("100/day", Rate(100, 86400)),
        (" 7 / Minute ", Rate(7, 60)),
        ("none", None),
        ("None", None),
    ],
)
def test_parse_rate(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "10", "ten/min", "10/fortnight", "/min", "-1/min", "10/"])
def test_parse_rate_refuses_what_is_not_a_rate(text):
    with pytest.raises(ValueError):
        parse_rate(text)


@pytest.mark.parametrize("variable", ["LOGIN_RATE", "SIGNUP_RATE", "EMAIL_RATE"])
def test_a_bad_rate_in_the_environment_stops_the_start(variable):
    env = {**os.environ, "DEBUG": "true", variable: "lots"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=django_settings.BASE_DIR,
        env={**env, "DJANGO_SETTINGS_MODULE": "authserver.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{variable}='lots'" in result.stderr


def test_limit_allows_n_hits_then_refuses_with_the_wait(db, settings):
    settings.LOGIN_RATE = "3/min"
    limit = RateLimit("login", "someone")
    for _ in range(3):
        limit.check_and_hit()
    with pytest.raises(Throttled) as refused:
        limit.check_and_hit()
    assert 1 <= refused.value.wait <= 60


def test_limit_window_slides(db, settings):
    """A hit older than the period no longer counts (the slot's key expires with it)."""
    settings.LOGIN_RATE = "2/s"
    limit = RateLimit("login", "sliding")
    limit.check_and_hit()
    limit.check_and_hit()
    with pytest.raises(Throttled):
        limit.check()
    time.sleep(1.1)
    limit.check_and_hit()


def test_limits_are_per_scope_and_identity(db, settings):
    settings.LOGIN_RATE = settings.SIGNUP_RATE = "1/min"
    RateLimit("login", "a").check_and_hit()
    RateLimit("login", "b").check_and_hit()
    RateLimit("signup", "a").check_and_hit()
    with pytest.raises(Throttled):
        RateLimit("login", "a").check_and_hit()


def test_none_means_no_limit(db, settings):
    settings.SIGNUP_RATE = "none"
    limit = RateLimit("signup", "anyone")
    for _ in range(50):
        limit.check_and_hit()


def test_rates_are_read_at_use_not_at_import(db, settings):
    settings.SIGNUP_RATE = "1/min"
    RateLimit("signup", "x").check_and_hit()
    settings.SIGNUP_RATE = "2/min"
    RateLimit("signup", "x").check_and_hit()


# --- LOGIN_RATE ---------------------------------------------------------------------------------


def wrong_login(client, email="ann@example.com", address="127.0.0.1", **headers):
    return client.post(LOGIN, {"email": email, "password": "wrong password"}, REMOTE_ADDR=address, **headers)


def test_eleventh_wrong_login_is_throttled(api_client, user):
    for attempt in range(10):
        assert wrong_login(api_client).status_code == 401, attempt
    assert_throttled(wrong_login(api_client))


def test_throttled_login_refuses_the_right_password_too(api_client, user, settings):
    settings.LOGIN_RATE = "3/min"
    for _ in range(3):
        wrong_login(api_client)
    assert_throttled(api_client.post(LOGIN, {"email": user.email, "password": PASSWORD}))


def test_successful_logins_do_not_count(api_client, user, settings):
    settings.LOGIN_RATE = "3/min"
    for _ in range(6):
        assert api_client.post(LOGIN, {"email": user.email, "password": PASSWORD}).status_code == 200
    for _ in range(3):
        assert wrong_login(api_client).status_code == 401
    assert_throttled(wrong_login(api_client))


def test_unknown_emails_are_limited_too(api_client, db, settings):
    settings.LOGIN_RATE = "2/min"
    for _ in range(2):
        assert wrong_login(api_client, email="ghost@example.com").status_code == 401
    assert_throttled(wrong_login(api_client, email="GHOST@example.com"))


def test_login_limit_is_per_email_and_address(api_client, user_factory, settings):
    settings.LOGIN_RATE = "2/min"
    user_factory(email="ann@example.com")
    user_factory(email="bob@example.com")
    for _ in range(2):
        wrong_login(api_client, email="ann@example.com")
    assert_throttled(wrong_login(api_client, email="ann@example.com"))
    assert wrong_login(api_client, email="bob@example.com").status_code == 401
    assert wrong_login(api_client, email="ann@example.com", address="192.0.2.1").status_code == 401


def test_a_forged_forwarded_for_does_not_escape_the_limit(api_client, user, settings):
    settings.LOGIN_RATE = "2/min"
    for index in range(2):
        wrong_login(api_client, HTTP_X_FORWARDED_FOR=f"198.51.100.{index}")
    assert_throttled(wrong_login(api_client, HTTP_X_FORWARDED_FOR="198.51.100.99"))


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(api_client, user, settings):
    settings.LOGIN_RATE = "2/min"
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]
    for _ in range(2):
        wrong_login(api_client, address="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert_throttled(wrong_login(api_client, address="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.5"))
    other_client = wrong_login(api_client, address="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.6")
    assert other_client.status_code == 401


def test_a_forged_forwarded_for_from_outside_the_trusted_proxies_is_not_believed(api_client, user, settings):
    """With a proxy configured, a client that connects directly still cannot pick its address."""
    settings.LOGIN_RATE = "2/min"
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]
    for index in range(2):
        wrong_login(api_client, address="203.0.113.9", HTTP_X_FORWARDED_FOR=f"198.51.100.{index}")
    assert_throttled(wrong_login(api_client, address="203.0.113.9", HTTP_X_FORWARDED_FOR="198.51.100.99"))
    # Nor can it spend the limit of the address it names.
    assert wrong_login(api_client, address="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.0").status_code == 401


def test_a_client_prepending_addresses_behind_the_proxies_keeps_its_own_limit(api_client, user, settings):
    """Through a chain of trusted proxies, the client is the rightmost untrusted address, whatever it prepends."""
    settings.LOGIN_RATE = "2/min"
    settings.TRUSTED_PROXIES = ["10.0.0.0/24", "192.0.2.0/28"]
    for index in range(2):
        wrong_login(api_client, address="10.0.0.1", HTTP_X_FORWARDED_FOR=f"198.51.100.{index}, 203.0.113.5, 192.0.2.3")
    assert_throttled(
        wrong_login(api_client, address="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.99, 203.0.113.5, 192.0.2.4")
    )


@pytest.mark.parametrize("rotated", ["2001:db8:1:2::2", "2001:db8:1:2:ffff:ffff:ffff:fffe", "2001:DB8:1:2:0:0:0:9"])
def test_ipv6_addresses_of_one_64_share_the_login_limit(api_client, user, settings, rotated):
    """An IPv6 client holds its whole /64: stepping through it does not escape the limit."""
    settings.LOGIN_RATE = "2/min"
    for address in ("2001:db8:1:2::1", "2001:db8:1:2:abcd::1"):
        wrong_login(api_client, address=address)
    assert_throttled(wrong_login(api_client, address=rotated))
    assert wrong_login(api_client, address="2001:db8:1:3::1").status_code == 401  # the next /64 is another client


def test_login_rate_none_disables_the_limit(api_client, user, settings):
    settings.LOGIN_RATE = "none"
    # The account's own limit (20/hour by default) would refuse these; it is tested on its own.
    settings.LOGIN_ACCOUNT_RATE = "none"
    for _ in range(30):
        assert wrong_login(api_client).status_code == 401


# --- SIGNUP_RATE --------------------------------------------------------------------------------


def register(client, email, address="127.0.0.1"):
    body = {"email": email, "name": "Someone", "password": PASSWORD, "confirm": PASSWORD}
    return client.post("/api/user", body, REMOTE_ADDR=address)


def test_signup_rate_per_address(api_client, db, settings):
    settings.SIGNUP_RATE = "3/hour"
    for index in range(3):
        assert register(api_client, f"new{index}@example.com").status_code == 200
    assert_throttled(register(api_client, "new3@example.com"))
    assert not User.objects.filter(email="new3@example.com").exists()
    assert register(api_client, "new3@example.com", address="192.0.2.8").status_code == 200


def test_refused_registrations_count_too(api_client, user, settings):
    """Probing which emails exist through registration is limited like registering."""
    settings.SIGNUP_RATE = "2/hour"
    for _ in range(2):
        assert register(api_client, user.email).status_code == 401
    assert_throttled(register(api_client, user.email))


def test_ipv6_addresses_of_one_64_share_the_signup_limit(api_client, db, settings, mailoutbox):
    settings.SIGNUP_RATE = "2/min"
    for index in range(2):
        assert register(api_client, f"new{index}@example.com", address=f"2001:db8:1:2::{index + 1}").status_code == 200
    assert_throttled(register(api_client, "new9@example.com", address="2001:db8:1:2:9::9"))
    assert register(api_client, "other@example.com", address="2001:db8:9:9::1").status_code == 200


# --- EMAIL_RATE ---------------------------------------------------------------------------------


def test_email_rate_per_recipient(api_client, user_factory, settings):
    settings.EMAIL_RATE = "2/hour"
    user_factory(email="new@example.com", confirmed=False)
    for _ in range(2):
        response = api_client.put("/api/validate/confirmation", {"email": "new@example.com"})
        assert response.status_code == 200
    assert_throttled(api_client.put("/api/validate/confirmation", {"email": "NEW@example.com"}))
    assert len(mail.outbox) == 2


def test_every_kind_of_email_counts_for_the_address(api_client, db, settings):
    """Registration, resend and recovery all count against one address."""
    settings.EMAIL_RATE = "2/hour"
    assert register(api_client, "carol@example.com").status_code == 200
    assert api_client.put("/api/validate/confirmation", {"email": "carol@example.com"}).status_code == 200
    assert_throttled(api_client.put("/api/validate/confirmation", {"email": "carol@example.com"}))
    User.objects.filter(email="carol@example.com").update(confirmed_at=User.objects.get().date_joined)
    assert_throttled(api_client.patch(LOGIN, {"email": "carol@example.com"}))
    assert len(mail.outbox) == 2


def test_email_rate_is_per_address(api_client, user_factory, settings):
    settings.EMAIL_RATE = "1/hour"
    user_factory(email="one@example.com")
    user_factory(email="two@example.com")
    assert api_client.patch(LOGIN, {"email": "one@example.com"}).status_code == 200
    assert_throttled(api_client.patch(LOGIN, {"email": "one@example.com"}))
    assert api_client.patch(LOGIN, {"email": "two@example.com"}).status_code == 200


def test_a_throttled_registration_email_creates_no_account(api_client, db, settings):
    settings.EMAIL_RATE = "1/hour"
    ratelimit.RateLimit("email", "dora@example.com").check_and_hit()
    assert_throttled(register(api_client, "dora@example.com"))
    assert not User.objects.exists()
    assert mail.outbox == []


def test_the_change_notice_is_sent_even_when_the_old_address_is_at_its_email_rate(auth_client, settings):
    # A security notice is not refused by the recipient's EMAIL_RATE: strangers' recovery
    # requests for that address must not silence it.
    settings.EMAIL_RATE = "1/hour"
    ratelimit.RateLimit("email", auth_client.user.email).check_and_hit()
    response = auth_client.patch("/api/user", {"new_email": "ann.new@example.com", "password": PASSWORD})
    assert response.status_code == 200
    assert User.objects.get(pk=auth_client.user.pk).email == "ann.new@example.com"
    notice, verification = mail.outbox
    assert (notice.to, notice.subject) == ([auth_client.user.email], "Your email address was changed")
    assert verification.to == ["ann.new@example.com"]


# --- login costs one hash whether or not the email exists --------------------------------------


class CountingHasher(MD5PasswordHasher):
    """MD5 (fast), counting how often a password is hashed."""

    algorithm = "counting_md5"
    calls = 0

    def encode(self, password, salt):
        CountingHasher.calls += 1
        return super().encode(password, salt)


@pytest.mark.parametrize(
    ("email", "password"),
    [("ghost@example.com", "wrong password"), ("ann@example.com", "wrong password"), ("ann@example.com", PASSWORD)],
    ids=["unknown email", "wrong password", "right password"],
)
def test_login_hashes_once_whether_or_not_the_email_exists(api_client, user_factory, settings, email, password):
    """The work, hence the time, of a login does not tell which emails have an account."""
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    user_factory(email="ann@example.com")
    # The hash an unknown email is checked against is made once per process, before counting.
    password_matches(None, "warm-up")
    CountingHasher.calls = 0
    api_client.post(LOGIN, {"email": email, "password": password})
    assert CountingHasher.calls == 1


# --- 5. Distributed guessing; the admin login -------------------------------------------------


def test_an_ipv6_client_counts_per_64_for_the_address_limit(db, settings):
    settings.LOGIN_ADDRESS_RATE = "3/hour"
    for n in range(3):
        assert login(APIClient(REMOTE_ADDR=f"2001:db8:1:2::{n + 1}"), f"user{n}@example.com", "guess").status_code == 401

    # Another address of the same /64 is the same client; another /64 is not.
    assert_error(login(APIClient(REMOTE_ADDR="2001:db8:1:2:ffff::9"), "user9@example.com", "guess"), THROTTLED)
    assert login(APIClient(REMOTE_ADDR="2001:db8:1:3::1"), "user9@example.com", "guess").status_code == 401


ANN = "ann@example.com"


GOOD_SIGNUP = {"name": "Eve", "password": "a long enough pw 1", "confirm": "a long enough pw 1"}


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


# --- 11. A rate of zero is accepted at start-up, then every request is a 500 -------------------


def test_a_zero_rate_throttles_instead_of_failing(db, settings):
    """Attacker: none. "SIGNUP_RATE=0/hour" (a natural way to close sign-ups during an attack)
    passes the start-up check, but RateLimit.check takes min() of no slots, so every
    registration answers 500 instead of 429. The same holds for every *_RATE.
    """
    settings.SIGNUP_RATE = "0/hour"

    response = APIClient().post("/api/user", {"email": "zero@example.com", **GOOD_SIGNUP}, format="json")

    assert response.status_code == 429


# --- IPv6: a /48 is counted too, with IPV6_48_RATE_FACTOR times the allowance ------------------


def test_the_64s_of_one_48_share_a_wider_signup_limit(api_client, db, settings, mailoutbox):
    """A /48 holds 65,536 /64s: stepping through them buys IPV6_48_RATE_FACTOR /64s' worth, no more."""
    settings.SIGNUP_RATE = "2/hour"
    assert settings.IPV6_48_RATE_FACTOR == 4
    for index in range(8):
        network = f"2001:db8:7:{index:x}"
        assert register(api_client, f"new{index}@example.com", address=f"{network}::1").status_code == 200
    assert_throttled(register(api_client, "new9@example.com", address="2001:db8:7:ff::1"))
    assert register(api_client, "other@example.com", address="2001:db8:8:ff::1").status_code == 200  # another /48


def test_the_64s_of_one_48_share_a_wider_address_limit(db, settings):
    settings.LOGIN_ADDRESS_RATE = "1/hour"
    settings.IPV6_48_RATE_FACTOR = 3
    for n in range(3):
        assert login(APIClient(REMOTE_ADDR=f"2001:db8:1:{n}::1"), f"user{n}@example.com", "guess").status_code == 401
    assert_error(login(APIClient(REMOTE_ADDR="2001:db8:1:9::1"), "user9@example.com", "guess"), THROTTLED)
    assert login(APIClient(REMOTE_ADDR="2001:db8:2:9::1"), "user9@example.com", "guess").status_code == 401


def test_the_64s_of_one_48_share_a_wider_email_request_limit(api_client, user_factory, settings):
    settings.EMAIL_REQUEST_RATE = "1/hour"
    settings.IPV6_48_RATE_FACTOR = 2
    user_factory(email="one@example.com")
    for n in range(2):
        assert api_client.patch(LOGIN, {"email": "one@example.com"}, REMOTE_ADDR=f"2001:db8:3:{n}::1").status_code == 200
    assert_throttled(api_client.patch(LOGIN, {"email": "one@example.com"}, REMOTE_ADDR="2001:db8:3:9::1"))


def test_a_48_factor_of_zero_counts_per_64_only(api_client, db, settings, mailoutbox):
    settings.SIGNUP_RATE = "1/hour"
    settings.IPV6_48_RATE_FACTOR = 0
    for index in range(12):
        assert register(api_client, f"new{index}@example.com", address=f"2001:db8:7:{index:x}::1").status_code == 200


# --- concurrency: a slot is taken once, every window, on every backend -------------------------


def _at_once(count, work):
    """Run work(index) in `count` threads released together; return the results."""
    import threading

    from django.db import connections

    barrier = threading.Barrier(count)
    results = [None] * count

    def run(index):
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_adds_take_an_expired_entry_once(transactional_db):
    """Django's database cache reads a row, then writes it: two adds over an expired entry both
    succeeded (PostgreSQL), so each slot freed by the window could be taken twice."""
    cache = caches["default"]
    for round_ in range(15):
        key = f"ratelimit:concurrency-test:{round_}"
        cache.set(key, "expired", timeout=-5)  # expired 5 seconds ago (Redis: no entry)
        taken = _at_once(6, lambda index: cache.add(key, index, 60))
        # Exactly one on PostgreSQL and Redis; at most one on the tests' in-memory SQLite, whose
        # shared-cache locking may fail a concurrent statement instead of waiting.
        assert taken.count(True) <= 1, (round_, taken)
        if True in taken:
            assert cache.get(key) == taken.index(True)


def test_a_limit_holds_under_concurrent_hits_window_after_window(transactional_db, settings):
    settings.SIGNUP_RATE = "4/second"
    for window in range(3):
        limit_hits = _at_once(12, lambda index: _hit_or_throttled(RateLimit("signup", "203.0.113.77")))
        # At most the limit, each window. (Fewer may pass on the tests' in-memory SQLite, whose
        # shared-cache locking makes some concurrent reads fail instead of waiting.)
        assert 1 <= limit_hits.count(True) <= 4, (window, limit_hits)
        time.sleep(1.1)


def _hit_or_throttled(limit):
    """True if the hit passed; False if it was throttled, or if the tests' in-memory SQLite failed a
    concurrent statement (its shared-cache locking refuses instead of waiting: it did not pass)."""
    from django.db import OperationalError

    try:
        limit.check_and_hit()
    except (Throttled, OperationalError):
        return False
    return True
