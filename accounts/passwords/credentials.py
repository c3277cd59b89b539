"""Password checks: every endpoint that checks a password does it through here.

- LOGIN_ACCOUNT_RATE: each failed check counts against the account, whichever endpoint and
  address it comes from; at the limit every check of the account is refused (Throttled), the
  right password included, until the window moves on or a password reset by email clears it.
- Equal timing: a failed check costs the same whether the email is unknown, the account has no
  usable password, or its hash was made by the preferred hasher (Argon2id) or a legacy one
  (PBKDF2, or a hash imported from the Flask server). After the real check, the other hashers in
  use each check the password against a hash of theirs, so every failure runs the same set of
  hashers. "In use": the preferred hasher always; another configured hasher when some account
  still holds a hash of it (one scan of the password column a minute at most, shared by every
  worker through the cache; at once after an import). While imported Flask hashes remain, a failed login thus costs one
  bcrypt check more (~250 ms at cost 12): the price of not telling imported accounts apart.
  Successful checks run only the real one, and Django then rehashes a legacy hash.
  The hash each of the other hashers checks is one the server made (a random password, with the
  hasher's own encode at its configured cost), never an account's: a stored hash that cannot be
  checked, or costs minutes, spoils its own account's checks and no other.
- A hasher's error never escapes a check: it is a failed match, logged, and counted. A failure is
  counted (the caller's `on_failure`) right after the real check, before anything optional (the
  timing hashes, the audit record, metrics), so that nothing after can skip the count.
"""

import logging
import threading
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.hashers import (
    check_password,
    get_hashers,
    identify_hasher,
    is_password_usable,
    verify_password,
)
from django.core.cache import cache
from django.db.models import Value
from django.db.models.functions import Left, StrIndex
from django.utils.crypto import get_random_string

from accounts.audit import services as audit
from accounts.users.models import User, email_normalize
from core.ratelimit import RateLimit

# The algorithms that stored hashes use, shared by every worker through the cache (one scan of
# the password column a minute at most, whichever worker makes it).
ALGORITHMS_CACHE_KEY = "credentials:hash-algorithms"
ALGORITHMS_CACHE_SECONDS = 60

logger = logging.getLogger(__name__)

_timing_lock = threading.Lock()
# Per process: the hash to check failures against, per algorithm, for one configuration.
_timing: dict = {"key": None, "hashes": {}}


def _algorithm(encoded: str | None) -> str | None:
    """Return the algorithm of a stored hash, or None if no hasher would run on it."""
    if not encoded or not is_password_usable(encoded):
        return None
    try:
        return identify_hasher(encoded).algorithm
    except ValueError:
        return None


def _hasher_that_ran(user: User | None) -> str | None:
    """Return the algorithm that checking this user's password ran, if any."""
    if user is None:
        return None
    if not is_password_usable(user.password):
        # Django hashes with the preferred hasher for an unusable password (CVE-2024-39329).
        return get_hashers()[0].algorithm
    return _algorithm(user.password)


def _algorithms_in_use(preferred: str) -> list[str]:
    """Return the algorithms, other than the preferred one, that some stored hash names."""
    algorithms = cache.get(ALGORITHMS_CACHE_KEY)
    if algorithms is None:
        algorithms = sorted(
            User.objects.exclude(password__startswith=f"{preferred}$")
            .filter(password__contains="$")
            .annotate(algorithm=Left("password", StrIndex("password", Value("$")) - 1))
            .values_list("algorithm", flat=True)
            .distinct()
        )
        cache.set(ALGORITHMS_CACHE_KEY, algorithms, ALGORITHMS_CACHE_SECONDS)
    return algorithms


def _timing_hashes() -> dict[str, str]:
    """Return one hash per hasher in use, keyed by algorithm, to check failures against: each made
    here, of a random password, by the hasher's own encode (never an account's hash)."""
    preferred, *others = get_hashers()
    in_use = sorted({hasher.algorithm for hasher in others}.intersection(_algorithms_in_use(preferred.algorithm)))
    key = (tuple(settings.PASSWORD_HASHERS), tuple(in_use))
    with _timing_lock:
        if _timing["key"] == key:
            return _timing["hashes"]
    hashes = {}
    for hasher in [preferred, *(hasher for hasher in others if hasher.algorithm in in_use)]:
        try:
            hashes[hasher.algorithm] = hasher.encode(get_random_string(24), hasher.salt())
        except Exception:
            logger.exception("The %s hasher cannot make a hash for equal timing; failures skip it", hasher.algorithm)
    with _timing_lock:
        _timing.update(key=key, hashes=hashes)
    return hashes


def _verified(user: User | None, password: str) -> bool:
    """The real check (User.check_password's): whether the password is the user's; a legacy hash
    is rehashed when it is. Any error of a hasher is a failed match, logged."""
    if user is None:
        return False
    try:
        matched, must_update = verify_password(password, user.password)
    except Exception:
        logger.exception("The hasher of user %s failed to check a password: counted as a failed match", user.pk)
        return False
    if matched and must_update:
        user.set_password(password)
        user._password = None  # a rehash is no password change
        user.save(update_fields=["password"])
    return matched


def _timing_equalize(user: User | None, password: str) -> None:
    """After a failure, check the password against the timing hash of each other hasher in use."""
    try:
        ran = _hasher_that_ran(user)
        for algorithm, encoded in _timing_hashes().items():
            if algorithm != ran:
                check_password(password, encoded)
    except Exception:
        logger.exception("Equal timing failed after a failed password check (the failure was counted)")


def password_matches(user: User | None, password: str, *, on_failure: Callable[[], object] = lambda: None) -> bool:
    """Return whether the password is the user's (None: an unknown email), in equal time.

    On a failure, `on_failure` (counting it against the limits) runs first, then the equal timing;
    an error of a hasher is a failure.
    """
    if _verified(user, password):
        return True
    on_failure()
    _timing_equalize(user, password)
    return False


def account_limit(*, user: User | None, email: str = "") -> RateLimit:
    """Return the LOGIN_ACCOUNT_RATE limit of the account (of the email, if it has none)."""
    identity = f"user:{user.pk}" if user is not None else f"email:{email_normalize(email)}"
    return RateLimit("login_account", identity)


def password_check(*, user: User, password: str, action: str) -> bool:
    """Check a signed-in user's password before `action` (a change, a deletion, ...).

    Raise Throttled at LOGIN_ACCOUNT_RATE; a failure is counted and recorded in the audit trail.
    """
    limit = account_limit(user=user)
    limit.check()
    if password_matches(user, password, on_failure=limit.hit):
        return True
    audit.record(audit.Type.PASSWORD_CHECK_FAILED, user=user, detail=action)
    return False


def account_failures_clear(*, user: User) -> None:
    """Forget the account's failed checks (after a password reset by email). Its two-factor
    failures stay counted apart (accounts.mfa.services.two_factor_limit), at the same limit."""
    account_limit(user=user).reset()


def timing_hashes_forget(*, everywhere: bool = True) -> None:
    """Look the hashers in use up again at the next failure: in every worker (after an import),
    or in this process only (tests, whose cache is emptied with each test)."""
    if everywhere:
        cache.delete(ALGORITHMS_CACHE_KEY)
    with _timing_lock:
        _timing["key"] = None
