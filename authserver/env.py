"""Read configuration from the process environment and an optional `.env` file.

Variables already in the environment win over the file. This module is imported by
settings.py and by the development entry points (manage.py, the test suite), before Django
reads its settings.
"""

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def use_development_defaults() -> None:
    """Default to DEBUG on, unless the environment or `.env` says otherwise.

    Called by manage.py and the test suite only: a WSGI server (gunicorn) never calls it,
    so production rules apply there whenever DEBUG is unset.
    """
    os.environ.setdefault("DEBUG", "true")
