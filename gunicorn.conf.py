"""gunicorn's configuration for the Docker image and Heroku: `gunicorn -c gunicorn.conf.py`.

Reads `.env` like the settings do (authserver.env), so PORT and WEB_CONCURRENCY may live there
too. Command-line options and GUNICORN_CMD_ARGS still override what is set here.
"""

import os

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

# A request that takes longer than this kills its worker; a password hash takes milliseconds.
timeout = 30
# On SIGTERM, workers finish the requests in flight for up to this long. Below the 30 seconds
# Heroku waits before killing a dyno (docker-compose.yml gives the app as long).
graceful_timeout = 25
keepalive = 5

# Load the app once in the master: a broken configuration (a missing SECRET_KEY, say) stops the
# start with one clear error instead of every worker failing in turn, and workers share memory.
preload_app = True

# Logs go to the container's or the dyno's log stream: access log on stdout, errors on stderr.
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'

# Workers' heartbeat files in memory: /tmp may be a slow overlay filesystem in a container.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# No runtime control socket (gunicornc): it is not used, and it would be created in $HOME, which
# the image's user does not have.
control_socket_disable = True
