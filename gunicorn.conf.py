"""gunicorn's configuration for the Docker image and Heroku: `gunicorn -c gunicorn.conf.py`.

Reads `.env` like the settings do (authserver.env), so PORT and WEB_CONCURRENCY may live there
too. Command-line options and GUNICORN_CMD_ARGS still override what is set here.
"""

import os
import shutil
import tempfile
from pathlib import Path

from authserver.env import env


def _cpu_count() -> int:
    """Return the CPUs this process may run on (a container's cpuset, not the whole host)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


wsgi_app = "authserver.wsgi:application"

# Heroku and most platforms give the port in PORT; all interfaces, since a container's or a
# dyno's traffic never comes from its own loopback.
bind = [f"0.0.0.0:{env.int('PORT', default=8000)}"]

# gunicorn's rule of thumb, two workers per CPU plus one; WEB_CONCURRENCY wins (Heroku sets it
# from the dyno's memory). Each login hashes a password with Argon2, which takes
# ARGON2_MEMORY_COST KiB for a moment: mind workers × that on small machines.
workers = env.int("WEB_CONCURRENCY", default=2 * _cpu_count() + 1)

# Threaded workers (gunicorn's gthread), not sync ones, because these workers face clients
# directly (the Docker image on its own, the Procfile; only compose puts nginx in front). A sync
# worker is held whole by one connection: a connection opened and left idle (a browser's
# pre-connection) or a body sent slowly blocks it until `timeout` kills it, and a few such clients
# stop the server. Under gthread a worker's main loop accepts connections and keeps the idle ones
# in its poller (a kept-alive one for `keepalive` seconds, a new one that sends nothing for a few
# seconds of a thread's time then as long in the poller), and a request runs on one of `threads`
# threads: a slow body holds one thread, not the worker. 128 threads a worker: more than the 100
# idle connections and 10 slow bodies tests/deploy/test_slow_clients.py opens, even if one worker
# takes them all; a thread is started only when no other is free, and costs little until then.
# Beyond that many slow bodies at once per worker, requests queue again: put a proxy that buffers
# requests in front (nginx, as docker-compose.yml does). Override with GUNICORN_CMD_ARGS="--threads N".
# The app is thread-safe: its per-process state (the keyring, the verified tokens, the timing
# hashes) is behind locks or in thread-safe caches, database connections are per thread, and
# Argon2 hashes run one at a time per worker (accounts.passwords.hashers), as under sync workers.
# Each thread that serves a request keeps its own database connection (CONN_MAX_AGE): a node may
# hold up to workers × threads of them at its busiest; size PostgreSQL's max_connections (or a
# pooler) for that, or lower the threads.
worker_class = "gthread"
threads = 128

# Memory: each Argon2 hash allocates ARGON2_MEMORY_COST at once. glibc's malloc raises its mmap
# threshold to the size of a block it freed, so the next hashes come from the heap of the thread
# that runs them, and each of a worker's threads keeps its own heap (arena): a worker grew to
# ~420 MiB in the benchmark. A fixed threshold (1 MiB) keeps large blocks mmapped, returned to the
# system when freed. mallopt() is glibc's documented tuning call; elsewhere this does nothing.
def _malloc_large_blocks_returned() -> None:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(-3, 1024 * 1024)  # M_MMAP_THRESHOLD (malloc.h)


_malloc_large_blocks_returned()

# A worker whose main loop stops answering for this long is killed. Under gthread a request
# running long or a client sending slowly does not count: the main loop goes on.
timeout = 30
# On SIGTERM, workers finish the requests in flight for up to this long. Below the 30 seconds
# Heroku waits before killing a dyno (docker-compose.yml gives the app as long).
graceful_timeout = 25
keepalive = 5

# Load the app once in the master: a broken configuration (a missing SECRET_KEY, say) stops the
# start with one clear error instead of every worker failing in turn, and workers share memory.
preload_app = True

# Logs go to the container's or the dyno's log stream: access log on stdout, errors on stderr.
# With LOG_FORMAT=json the server itself writes one JSON line per request (with its request id),
# so gunicorn's plain access log is off and its own messages are JSON too (authserver/logs.py).
_JSON_LOGS = env.str("LOG_FORMAT", default="text").strip().lower() == "json"
accesslog = None if _JSON_LOGS else "-"
errorlog = "-"
# The path without its query string (%(U)s, not the request line %(r)s): a query string may hold
# anything a client sends, secrets included.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'
if _JSON_LOGS:
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "core.logs.JSONFormatter"}},
        "handlers": {"error_console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "loggers": {"gunicorn.error": {"handlers": ["error_console"], "level": "INFO", "propagate": False}},
        # The server's own loggers are set up by the settings (LOGGING), in the same format.
        "root": {"level": "INFO", "handlers": []},
    }
else:
    # gunicorn's lines redact()ed like the server's; where they go and their format stay gunicorn's.
    from core.gunicorn_logging import RedactingLogger

    logger_class = RedactingLogger

# /metrics counts across the workers: each writes its counters to files in one directory, which
# the scrape sums (prometheus_client's multiprocess mode). It is set here, in the master, before
# the app is loaded, so every worker inherits it. Made empty at each start (counters start from
# zero with the server, as Prometheus expects of a restart), removed at exit if it was made here.
_METRICS_DIR_MADE = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _METRICS_DIR_MADE:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
        prefix="authserver-metrics-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None
    )
else:
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
    for stale in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):
        stale.unlink()


def child_exit(server, worker):
    """A worker exited: its counters stay counted; its live gauges (none today) are dropped."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _METRICS_DIR_MADE:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)

# Workers' heartbeat files in memory: /tmp may be a slow overlay filesystem in a container.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# No runtime control socket (gunicornc): it is not used, and it would be created in $HOME, which
# the image's user does not have.
control_socket_disable = True
