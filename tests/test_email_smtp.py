"""Moved to tests/notices/test_smtp.py (its SMTP sink to tests/support/smtp.py). This re-export, with
no test of its own, stays only while tests/test_logging.py (being changed elsewhere) imports from
here; remove it when that file moves."""

from tests.support.smtp import Collector, body_text  # noqa: F401
