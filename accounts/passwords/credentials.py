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
"""

import threading

from django.conf import settings
from django.contrib.auth.hashers import check_password, get_hashers, identify_hasher, is_password_usable, make_password
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
    """Return one hash per hasher in use, keyed by algorithm, to check failures against."""
    preferred, *others = get_hashers()
    in_use = sorted({hasher.algorithm for hasher in others}.intersection(_algorithms_in_use(preferred.algorithm)))
    key = (tuple(settings.PASSWORD_HASHERS), tuple(in_use))
    with _timing_lock:
        if _timing["key"] == key:
            return _timing["hashes"]
    hashes = {preferred.algorithm: make_password(get_random_string(24))}
    for algorithm in in_use:
        # Any account's hash of that algorithm (no ORDER BY: it stops at the first row).
        stored = list(User.objects.filter(password__startswith=f"{algorithm}$").values_list("password", flat=True)[:1])
        if stored:
            hashes[algorithm] = stored[0]
    with _timing_lock:
        _timing.update(key=key, hashes=hashes)
    return hashes


def password_matches(user: User | None, password: str) -> bool:
    """Return whether the password is the user's (None: an unknown email), in equal time."""
    matched = user.check_password(password) if user is not None else False
    if not matched:
        ran = _hasher_that_ran(user)
        for algorithm, encoded in _timing_hashes().items():
            if algorithm != ran:
                check_password(password, encoded)
    return matched


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
    if password_matches(user, password):
        return True
    limit.hit()
    audit.record(audit.Type.PASSWORD_CHECK_FAILED, user=user, detail=action)
    return False


def account_failures_clear(*, user: User) -> None:
    """Forget the account's failed checks (after a password reset by email)."""
    account_limit(user=user).reset()


def timing_hashes_forget(*, everywhere: bool = True) -> None:
    """Look the hashers in use up again at the next failure: in every worker (after an import),
    or in this process only (tests, whose cache is emptied with each test)."""
    if everywhere:
        cache.delete(ALGORITHMS_CACHE_KEY)
    with _timing_lock:
        _timing["key"] = None
