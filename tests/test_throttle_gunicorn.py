"""Moved to tests/core/test_ratelimit_gunicorn.py (its launcher to tests/support/servers.py). This
re-export, with no test of its own, stays only while tests/test_logging.py (being changed elsewhere)
imports from here; remove it when that file moves."""

from tests.support.servers import free_port  # noqa: F401
