"""Settings of the benchmark server: the project's own settings, plus the ceiling view's URL.

The server under test runs with these (DJANGO_SETTINGS_MODULE=bench.settings); everything else,
DEBUG off included, comes from authserver.settings and the environment bench/run.py sets.
"""

from authserver.settings import *  # noqa: F403

# The app's URLs, plus /api/bench/ceiling/<id>: the same stack without the app's code.
ROOT_URLCONF = "bench.urls"
# The load comes over plain HTTP on the loopback: a developer's .env asking for HTTPS must not
# turn every request into a redirect.
SECURE_SSL_REDIRECT = False
