"""Read configuration from the process environment and an optional `.env` file.

Variables already in the environment win over the file, and every value is taken as written
(see `Env`). This module is imported by settings.py and by the development entry points
(manage.py, the test suite), before Django reads its settings.
"""

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent



class Env(environ.Env):
    """django-environ's Env, with every value taken literally.

    environ.Env.get_value reads a value starting with `$` as the name of another variable and
    returns that one's value instead (or its default, or an error if it is unset): a generated
    SECRET_KEY or an SMTP password that happens to start with `$` would silently become something
    else. Such a value is parsed here as it is; every other value goes through django-environ.
    """

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        value = self.ENVIRON.get(f"{self.prefix}{var}")
        if isinstance(value, str) and value.startswith("$"):
            # The cast django-environ would pick for a value read without one (smart_cast).
            if cast is None and self.smart_cast and default is not None and not isinstance(default, environ.NoValue):
                cast = type(default)
            return self.parse_value(value, cast)
        return super().get_value(var, cast=cast, default=default, parse_default=parse_default)


env = Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def use_development_defaults() -> None:
    """Default to DEBUG on, unless the environment or `.env` says otherwise.

    Called by manage.py and the test suite only: a WSGI server (gunicorn) never calls it,
    so production rules apply there whenever DEBUG is unset.
    """
    os.environ.setdefault("DEBUG", "true")
