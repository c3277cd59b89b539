"""Log lines: the request they belong to, JSON when LOG_FORMAT=json, and nothing secret in them.

- `RequestContextFilter` adds the request id, path and client address of the request being served
  (set by `core.middleware.requests_observed`) to every record, whichever logger made it.
- `JSONFormatter` writes one JSON object per line: time, level, logger, process id, message,
  request id, path, method, status, duration and client address, plus the traceback of an error. It writes only
  those fields, never a record's other attributes (Django puts the request, headers and all, on
  some of its records).
- Both formats pass every message through `redact()`: a JWT, or the token of a confirmation or
  recovery link, that some code (ours or a library's) put in a message is replaced, so that it
  cannot reach a log at any level. The code itself logs no password, token, link or secret; this
  is the net under it.
"""

import contextvars
import json
import logging
import re
from datetime import UTC, datetime

# The request being served: {"request_id", "path", "client_address", "user_agent"}, set by
# core.middleware.requests_observed for the logs and the audit trail; empty outside a request.
request_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar("log_request_context", default=None)

# Three base64url parts separated by dots, the first a JSON object ("eyJ" is `{"` encoded): a JWT.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*")
# A path or link ending in a confirmation or recovery token (validate/<token>, recover/<token>).
_LINK_TOKEN = re.compile(r"(/(?:validate|recover|confirm)[A-Za-z/_-]*/)[A-Za-z0-9:_.-]{16,}")
# "Bearer <credentials>", "Basic <credentials>".
_SCHEME_CREDENTIALS = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}")
# "password=...", "secret: ...", '"token": "..."' written by anything.
_NAMED_SECRET = re.compile(
    r"(?i)\b(password|passwd|secret|client_secret|token|otp|authorization)(\"?\s*[=:]\s*\"?)[^\s,;&\"']{4,}"
)

_SECRET_WORDS = ("passw", "secret", "token", "otp", "authorization")

REDACTED = "[redacted]"

# Line breaks other than \n and \r that JSON allows raw in a string: written escaped, as JSON allows too.
_UNICODE_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def redact(text: str) -> str:
    """Return `text` with every JWT, link token and `name=value` secret replaced by [redacted].

    Each pattern runs only where a plain substring test finds what it starts with: most lines
    hold none of those words, and then cost a few substring tests, not four regular expressions.
    """
    if not text:
        return text
    lower = text.lower()
    if "eyj" in lower:
        text = _JWT.sub(REDACTED, text)
    if "/validate" in lower or "/recover" in lower or "/confirm" in lower:
        text = _LINK_TOKEN.sub(rf"\1{REDACTED}", text)
    if "bearer" in lower or "basic" in lower:
        text = _SCHEME_CREDENTIALS.sub(rf"\1\2{REDACTED}", text)
    if any(word in lower for word in _SECRET_WORDS):
        text = _NAMED_SECRET.sub(rf"\1\2{REDACTED}", text)
    return text


class RequestContextFilter(logging.Filter):
    """Give every record the fields of the request being served (empty outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = request_context.get() or {}
        for name in ("request_id", "path", "client_address"):
            if not hasattr(record, name):
                setattr(record, name, context.get(name, ""))
        return True


class RedactingFormatter(logging.Formatter):
    """The text format, `redact()`ed, tracebacks included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JSONFormatter(logging.Formatter):
    """One JSON object per line, `redact()`ed, with the fixed fields listed in the module docs."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "message": redact(record.getMessage()),
            "request_id": getattr(record, "request_id", ""),
            "path": redact(getattr(record, "path", "")),
            "client_address": getattr(record, "client_address", ""),
        }
        for name in ("method", "status", "duration_ms"):
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        # json.dumps leaves U+0085, U+2028 and U+2029 as they are, and readers that split on
        # every Unicode line break (Python's str.splitlines, for one) would cut the line there.
        line = json.dumps(entry, ensure_ascii=False, default=str)
        return line.translate(_UNICODE_LINE_BREAKS)


def logging_config(*, log_format: str, level: str) -> dict:
    """Return the LOGGING setting: every record through one console handler, in `log_format`.

    With json, the server logs one line per request (logger `authserver.requests`) in place of
    gunicorn's access log, which gunicorn.conf.py then turns off; with text, gunicorn's access log
    stays and the request lines are not written.
    """
    formatter = "json" if log_format == "json" else "text"
    # Django's loggers: as LOG_LEVEL says, but never DEBUG, where django.db.backends writes every
    # query with its parameters (password hashes, session ids).
    django_level = level if logging.getLevelName(level) >= logging.INFO else "INFO"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request": {"()": "core.logs.RequestContextFilter"}},
        "formatters": {
            "text": {
                "()": "core.logs.RedactingFormatter",
                "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            },
            "json": {"()": "core.logs.JSONFormatter"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": formatter, "filters": ["request"]},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Replace Django's own console handler (DEBUG only) so that nothing is printed twice.
            "django": {"handlers": ["console"], "level": django_level, "propagate": False},
            "authserver.requests": {
                "handlers": ["console"],
                "level": "INFO" if log_format == "json" else "WARNING",
                "propagate": False,
            },
        },
    }
