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

# Every pattern below is linear in the length of the text, whatever the text (an attacker chooses
# the paths and headers that reach a log line): each repetition is possessive (`*+`, `++`: never
# given back, so nothing backtracks), and each pattern either always matches once it has started
# (the match then consumes what it read) or can fail only after reading a bounded stretch, or a
# stretch (whitespace, one word) that no other attempt starts in. What a match holds is then
# judged in Python, in one pass. tests/core/test_logs.py checks the first half on the compiled
# patterns and counts the second.

# A maximal run of base64url characters and dots: a JWT is three base64url parts separated by
# dots, the first a JSON object ("eyJ" is `{"` encoded), somewhere in such a run.
_JWT_RUN = re.compile(r"[A-Za-z0-9_.-]++")
# A path or link after /validate, /recover or /confirm: its segments of 16 characters or more
# (validate/<token>, recover/<token>) are tokens.
_LINK_PATH = re.compile(r"/(?:validate|recover|confirm)[A-Za-z0-9:_./-]*+")
# "Bearer <credentials>", "Basic <credentials>".
_SCHEME_CREDENTIALS = re.compile(r"(?i)(?<![A-Za-z0-9_])(bearer|basic)(\s++)[A-Za-z0-9._~+/=-]{8,}+")
# "name=value", "name: value", '"name": "value"', "'name': ['...']": every word followed by = or
# :, then, where the word names a secret (_secret_name), its value. The value is read only there,
# and the words inside it are not looked at again: "a=b=c=..." costs one pass, not one per "=".
# A name may be written with escapes (`pass\u0077ord` in JSON, `pass%77ord` in a form), which the
# API decodes: such a name counts as a secret's. A value is redacted whole: a quoted one to its
# closing quote (escaped quotes inside it included), a list to its closing bracket (brackets in
# its quoted items skipped), a bare one to the end of its form field or word.
_NAME_SEPARATOR = re.compile(r"""(?<![A-Za-z0-9_\\%])([A-Za-z0-9_\\%]++)(["']?+\s*+[=:]\s*+)""")
_QUOTED = r""""(?:[^"\\\n]|\\.)*+"?+|'(?:[^'\\\n]|\\.)*+'?+"""
_SECRET_VALUE = re.compile(rf"""("(?:[^"\\\n]|\\.)*+|'(?:[^'\\\n]|\\.)*+|\[(?:{_QUOTED}|[^\]\n"'])*+|[^&\s]++)?+""")

# A word names a secret if it holds one of these (password, new_password, old_password, secret,
# client_secret, token, otp, otpauth_uri, authorization, recovery_codes, ...) or is one of
# _SECRET_NAMES: every field the API takes or gives that is a secret, and the usual others.
_SECRET_WORDS = ("passw", "secret", "token", "otp", "authorization", "recovery", "credential", "cookie", "sessionid", "csrf")
_SECRET_NAMES = frozenset({"code", "codes", "confirm", "confirmation", "key", "signature", "sig", "pin"})
# The substrings that let redact() skip a pattern when a line holds none of them (a name written
# with escapes holds a backslash or a percent sign).
_SECRET_HINTS = (*_SECRET_WORDS, *_SECRET_NAMES, "\\", "%")

REDACTED = "[redacted]"

# Line breaks other than \n and \r that JSON allows raw in a string: written escaped, as JSON allows too.
_UNICODE_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _secret_name(word: str) -> bool:
    word = word.lower()
    return "\\" in word or "%" in word or word in _SECRET_NAMES or any(part in word for part in _SECRET_WORDS)


def _jwts_redacted(match: re.Match) -> str:
    """Return a run of base64url and dots with each JWT in it (eyJ..., 6+ characters, 6+, any) redacted."""
    run = match.group()
    if "eyJ" not in run:
        return run
    parts = run.split(".")
    out = []
    i = 0
    while i < len(parts):
        part = parts[i]
        # The first "eyJ" of a part leaves the longest first part: if it is too short, so is any later one.
        at = part.find("eyJ")
        if at >= 0 and len(part) - at >= 9 and i + 2 < len(parts) and len(parts[i + 1]) >= 6:
            out.append(part[:at] + REDACTED)
            i += 3
        else:
            out.append(part)
            i += 1
    return ".".join(out)


def _link_tokens_redacted(match: re.Match) -> str:
    head, *segments = match.group().split("/")[1:]
    return "/" + "/".join([head, *(REDACTED if len(segment) >= 16 else segment for segment in segments)])


def _named_values_redacted(text: str) -> str:
    """Return `text` with the value after each secret's name redacted."""
    out = []
    done = 0  # text[:done] is in `out`
    for match in _NAME_SEPARATOR.finditer(text):
        if match.start() < done or not _secret_name(match.group(1)):
            continue  # inside a value already redacted, or not a secret
        value = _SECRET_VALUE.match(text, match.end())
        if value.end() == match.end():
            continue  # nothing after the separator
        out.append(text[done : match.end()])
        opening = text[match.end()]
        out.append((opening if opening in "\"'[" else "") + REDACTED)
        done = value.end()
    out.append(text[done:])
    return "".join(out)


def redact(text: str) -> str:
    """Return `text` with every JWT, link token, scheme credentials and `name=value` secret replaced
    by [redacted], in time linear in its length.

    Each pattern runs only where a plain substring test finds what it starts with: most lines
    hold none of those words, and then cost a few substring tests, not four regular expressions.
    """
    if not text:
        return text
    lower = text.lower()
    if "eyj" in lower:
        text = _JWT_RUN.sub(_jwts_redacted, text)
    if "/validate" in lower or "/recover" in lower or "/confirm" in lower:
        text = _LINK_PATH.sub(_link_tokens_redacted, text)
    if "bearer" in lower or "basic" in lower:
        text = _SCHEME_CREDENTIALS.sub(rf"\1\2{REDACTED}", text)
    if any(word in lower for word in _SECRET_HINTS):
        text = _named_values_redacted(text)
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
