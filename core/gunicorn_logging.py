"""gunicorn's logger, its lines `redact()`ed like the server's (core.logs).

gunicorn's error log quotes a malformed header line whole (an Authorization header without its
colon, say), its access log the request line with its query string. Where the lines go
(--access-logfile, --error-logfile) and their format stay gunicorn's: after gunicorn's own
`setup()` (public: gunicorn calls it at start and at each reload), each stream or file handler of
its two loggers gets a formatter that formats as the one it had, then redacts.
"""

import logging

from gunicorn.glogging import Logger

from core.logs import redact


class RedactedFormatter(logging.Formatter):
    """Format as `inner` does (tracebacks included), then `redact()` the line."""

    def __init__(self, inner: logging.Formatter | None):
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))


class RedactingLogger(Logger):
    """gunicorn.conf.py's logger_class with text logs."""

    def setup(self, cfg):
        # Every stream or file handler of the two loggers redacts, whoever added it: a handler's
        # identity cannot tell this setup's from a previous one's (a reload frees the old handler,
        # and the new one may take its address), and a line that is redacted twice is unchanged.
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if isinstance(handler, logging.StreamHandler) and not isinstance(handler.formatter, RedactedFormatter):
                    handler.setFormatter(RedactedFormatter(handler.formatter))
