"""Argon2id password hashing with the cost parameters of the settings (ARGON2_*).

Django's Argon2PasswordHasher fixes its costs in class attributes (100 MiB, 2 iterations,
8 lanes). This subclass reads ARGON2_MEMORY_COST (KiB), ARGON2_TIME_COST and ARGON2_PARALLELISM
from the settings each time it hashes or checks a hash, never at import, so a change of the
environment or an `override_settings` takes effect at once. It keeps the algorithm name
"argon2", so hashes made by Django's hasher are read as before; a hash whose parameters differ
from the configured ones makes `must_update` true, and Django then rehashes the password with
the configured parameters at the next successful login.

`argon2_calibrate()` (python manage.py calibrate_hasher) finds the costs that meet a time per
hash on the machine it runs on.

The Flask server's hashes are checked by legacy_flask.hashers.
"""

import functools
import os
import threading
import time
from dataclasses import dataclass

import argon2
from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher as DjangoArgon2PasswordHasher


class Argon2PasswordHasher(DjangoArgon2PasswordHasher):
    """Argon2id; costs from the settings (defaults: OWASP's 19 MiB, 2 iterations, 1 lane)."""

    @property
    def memory_cost(self) -> int:
        return settings.ARGON2_MEMORY_COST

    @property
    def time_cost(self) -> int:
        return settings.ARGON2_TIME_COST

    @property
    def parallelism(self) -> int:
        return settings.ARGON2_PARALLELISM

    # One hash at a time per process: gunicorn's threaded workers may run many logins at once,
    # and each hash takes ARGON2_MEMORY_COST KiB (its C code runs without the GIL), so a worker's
    # threads would otherwise take threads × that. Hashing is CPU-bound: the workers (about two
    # per CPU) keep the CPUs busy as they did one request at a time.
    _one_at_a_time = threading.Lock()

    def encode(self, password, salt):
        with self._one_at_a_time:
            return super().encode(password, salt)

    def verify(self, password, encoded):
        with self._one_at_a_time:
            return super().verify(password, encoded)


# --- Calibration (python manage.py calibrate_hasher) -------------------------------------------

# OWASP's Password Storage Cheat Sheet: Argon2id configurations of equal strength, the memory
# (KiB) for each iteration count; 19 MiB and 2 iterations is the one it recommends first.
OWASP_MINIMUM_MEMORY = {1: 47104, 2: 19456, 3: 12288, 4: 9216, 5: 7168}


@dataclass(frozen=True)
class Argon2Cost:
    memory_cost: int  # KiB
    time_cost: int
    parallelism: int
    milliseconds: float  # time of one hash on this machine

    @property
    def below_owasp(self) -> bool:
        """Return True if weaker than OWASP's minimum for this iteration count (one lane)."""
        return self.memory_cost < OWASP_MINIMUM_MEMORY.get(self.time_cost, OWASP_MINIMUM_MEMORY[5])


def argon2_time(*, memory_cost: int, time_cost: int, parallelism: int, samples: int = 5) -> float:
    """Return the wall-clock time of one Argon2id hash with these costs, in milliseconds.

    The fastest of `samples` hashes: the machine's own speed, as little disturbed as can be by
    whatever else runs on it at the time.
    """
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        argon2.low_level.hash_secret(
            b"calibration password",
            os.urandom(16),
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=argon2.DEFAULT_HASH_LENGTH,
            type=argon2.low_level.Type.ID,
        )
        times.append(1000 * (time.perf_counter() - started))
    return min(times)


def argon2_calibrate(
    *,
    target_ms: float,
    time_cost: int = 2,
    parallelism: int = 1,
    max_memory: int = 1024 * 1024,
    samples: int = 5,
) -> Argon2Cost:
    """Return the costs whose hash takes at most `target_ms` here, with as much memory as fits.

    Memory is what makes guessing on GPUs and ASICs expensive, so it grows first, in whole MiB,
    at `time_cost` iterations; past `max_memory` (KiB) the iterations grow instead. Below 1 MiB
    nothing is tried: the result is then the fastest tried, slower than the target.
    """
    step = 1024
    measure = functools.partial(argon2_time, parallelism=parallelism, samples=samples)
    # A hash's time grows about linearly with memory x iterations: guess from one probe, then
    # narrow the bracket between the most memory that met the target and the least that did not.
    probe = max(step, min(OWASP_MINIMUM_MEMORY[2], max_memory))
    guess = probe * target_ms / measure(memory_cost=probe, time_cost=time_cost)
    if guess > max_memory:
        # The memory is capped: more iterations fill the rest of the target.
        time_cost = max(
            time_cost, int(time_cost * target_ms / measure(memory_cost=max_memory, time_cost=time_cost))
        )
    met, met_ms = 0, 0.0  # most memory that met the target
    missed, missed_ms = max_memory + step, float("inf")  # least memory that did not
    memory = max(step, min(max_memory, int(guess) // step * step))
    for _ in range(12):
        elapsed = measure(memory_cost=memory, time_cost=time_cost)
        if elapsed <= target_ms:
            met, met_ms = memory, elapsed
        else:
            missed, missed_ms = memory, elapsed
        guess = int(memory * target_ms / elapsed) // step * step
        memory = max(met + step, min(missed - step, guess))
        if memory >= missed or memory > max_memory:
            break
    if not met:
        # Not even the least memory tried meets the target: report the cheapest tried.
        return Argon2Cost(
            memory_cost=missed, time_cost=time_cost, parallelism=parallelism, milliseconds=missed_ms
        )
    return Argon2Cost(memory_cost=met, time_cost=time_cost, parallelism=parallelism, milliseconds=met_ms)
