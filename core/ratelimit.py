"""Rate limits, counted in the cache all workers share.

The scopes, each read from the setting `<SCOPE>_RATE`: LOGIN (failed logins per email and client
address), LOGIN_ADDRESS (failed logins per client address), LOGIN_ACCOUNT (failed password or
two-factor checks per account, from anywhere), SIGNUP (registrations per client address), EMAIL
(emails sent to one address), EMAIL_REQUEST (unauthenticated requests that send email, per client
address). Client addresses are counted per address_group(): an IPv6 client per /64. An IPv6
client is also counted per /48 (address_wide_group()), with IPV6_48_RATE_FACTOR times the /64's
allowance: `address_limit()` returns both as one limit, checked and counted together, so that a
client holding a /48 gets that many /64s' worth, not 65,536.

A limit of N hits per period is N slots in the cache, each a key that lives one period. A hit
takes a free slot with `cache.add`, which is atomic on every backend (Redis SET NX, a primary
key in the database cache), so concurrent requests in several worker processes cannot count one
hit twice or lose one: a sliding window without a read-modify-write race. Checking and counting
are separate calls, so that login can count failed attempts only. Rates are read from the
settings at each use, never bound at import.
"""

import hashlib
import math
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from core import metrics
from core.addresses import address_group, address_wide_group
from core.errors import Throttled

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int


def parse_rate(value: str) -> Rate | None:
    """Parse DRF's `N/period` form (period: s, m, h, d or a word starting so); `none` is no limit."""
    text = value.strip().lower()
    if text == "none":
        return None
    number, _, period = text.partition("/")
    if not number.strip().isdigit() or not period.strip() or period.strip()[0] not in _PERIODS:
        raise ValueError(f"{value!r} is not a rate: use N/second, N/minute, N/hour, N/day or none")
    return Rate(count=int(number), seconds=_PERIODS[period.strip()[0]])


def _now() -> float:
    return timezone.now().timestamp()


class RateLimit:
    """One scope's limit for one identity (an address, an email and an address, ...).

    The rate is the setting `<SCOPE>_RATE`, or `rate_setting` for a scope counted apart at the rate
    of another (the two-factor failures of an account, at LOGIN_ACCOUNT_RATE). `factor` multiplies
    the count (the wider IPv6 block of address_limit()); its slots are kept apart from the scope's
    own by `bucket`."""

    def __init__(self, scope: str, identity: str, *, rate_setting: str | None = None, factor: int = 1, bucket: str = ""):
        self.scope = scope
        rate = parse_rate(getattr(settings, rate_setting or f"{scope.upper()}_RATE"))
        self.rate = Rate(rate.count * factor, rate.seconds) if rate is not None else None
        digest = hashlib.sha256(identity.encode()).hexdigest()[:40]
        prefix = f"ratelimit:{scope}{bucket}:{digest}"
        self.slots = [f"{prefix}:{slot}" for slot in range(self.rate.count)] if self.rate else []

    def _taken(self, now: float) -> dict[str, float]:
        """Return the slots in use and when each was taken."""
        return {key: at for key, at in cache.get_many(self.slots).items() if at > now - self.rate.seconds}

    def check(self) -> None:
        """Raise Throttled if every slot is taken."""
        if self.rate is None:
            return
        if self.rate.count == 0:
            # "0/hour": nothing is allowed.
            raise self._refusal(wait=self.rate.seconds)
        now = _now()
        taken = self._taken(now)
        if len(taken) >= self.rate.count:
            raise self._refusal(wait=math.ceil(min(taken.values()) + self.rate.seconds - now))

    def hit(self) -> bool:
        """Count one hit; return False if no slot was free (the limit is reached)."""
        if self.rate is None:
            return True
        now = _now()
        taken = self._taken(now)
        return any(cache.add(key, now, self.rate.seconds) for key in self.slots if key not in taken)

    def check_and_hit(self) -> None:
        """Count one hit, or raise Throttled if the limit is reached."""
        self.check()
        if not self.hit():
            # Concurrent requests took the last free slots since the check: the limit is reached.
            self.check()
            raise self._refusal(wait=1)

    def _refusal(self, *, wait: int) -> Throttled:
        """Return the Throttled to raise, counted in /metrics by this limit's scope."""
        metrics.rate_limited(self.scope)
        return Throttled(wait=wait, limit=self.scope)

    def reset(self) -> None:
        """Forget every hit (a completed password reset clears the account's failures)."""
        if self.rate is not None:
            cache.delete_many(self.slots)


class Limits:
    """Several limits acting as one: checked together, each hit counted in every one."""

    def __init__(self, limits: list[RateLimit]):
        self.limits = limits

    def check(self) -> None:
        for limit in self.limits:
            limit.check()

    def hit(self) -> bool:
        # Every limit counts the hit, even past one that is full.
        return all([limit.hit() for limit in self.limits])

    def check_and_hit(self) -> None:
        self.check()
        if not self.hit():
            self.check()
            raise self.limits[0]._refusal(wait=1)

    def reset(self) -> None:
        for limit in self.limits:
            limit.reset()


def address_limit(scope: str, client_address: str) -> Limits:
    """Return the scope's limit for a client address: its address_group() (an IPv6 /64), and for
    an IPv6 client its /48 too, with IPV6_48_RATE_FACTOR times the allowance (0: not counted)."""
    limits = [RateLimit(scope, address_group(client_address))]
    wide = address_wide_group(client_address)
    factor = settings.IPV6_48_RATE_FACTOR
    if wide is not None and factor > 0:
        limits.append(RateLimit(scope, wide, factor=factor, bucket="/48"))
    return Limits(limits)
