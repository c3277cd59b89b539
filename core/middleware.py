"""Project middleware."""

import logging
import re
import time
import uuid

from django.conf import settings
from django.core.signals import request_finished

from core import metrics
from core.addresses import client_address, from_trusted_proxy
from core.errors import json_error
from core.logs import request_context

requests_logger = logging.getLogger("authserver.requests")

# A request id that a trusted proxy passes on (nginx's $request_id): short and plain, so that
# it cannot forge a log line.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

# Headers only a trusted proxy may set: the client's address and the scheme it used.
_FORWARDED_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO")


def forwarded_headers_from_trusted_proxies(get_response):
    """Remove X-Forwarded-For and X-Forwarded-Proto unless the connection comes from TRUSTED_PROXIES.

    Any client can send them; only a trusted proxy sets them truthfully. Removed first thing, they
    can fool nothing that comes after: SECURE_PROXY_SSL_HEADER and `request.is_secure()` (the
    HTTPS redirect, HSTS, secure cookies), the client address of rate limits and the audit
    trail, or any library that reads them.
    """

    def middleware(request):
        if not from_trusted_proxy(request.META):
            for header in _FORWARDED_HEADERS:
                request.META.pop(header, None)
        return get_response(request)

    return middleware


def body_size_limit(get_response):
    """Refuse a request whose declared body exceeds DATA_UPLOAD_MAX_MEMORY_SIZE, before reading it.

    Django applies that limit to form bodies only; DRF reads JSON bodies from the stream, so
    without this a JSON body of any size would be read into memory.
    """

    def middleware(request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return json_error(400, "Invalid Content-Length header")
        if limit is not None and length > limit:
            return json_error(413, "Request body too large")
        return get_response(request)

    return middleware


def requests_observed(get_response):
    """Give each request an id, time it, count it in /metrics and, with LOG_FORMAT=json, log it.

    The id is the X-Request-ID header of a trusted proxy (TRUSTED_PROXIES), else a new one; the
    answer carries it back in X-Request-ID, and every log line written while the request is
    served carries it too (core.logs). The endpoint in /metrics is the route's name
    ("authenticate", "admin:index", ...), "unmatched" for a path no route has, "unrouted" for
    what middleware answered before routing (static files, a refused body): never the path,
    which is the client's to choose. The log line has the path without its query string.

    The request's log fields stay set until the answer is sent (request_finished), so that
    Django's own line for a 4xx or 5xx answer, written after the middleware, carries them too.
    """

    def middleware(request):
        started = time.perf_counter()
        offered = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = offered if offered and _REQUEST_ID.fullmatch(offered) and from_trusted_proxy(request.META) else uuid.uuid4().hex
        address = client_address(request.META)
        request_context.set(
            {
                "request_id": request_id,
                "path": request.path,
                "client_address": address,
                "user_agent": request.META.get("HTTP_USER_AGENT", ""),
            }
        )
        response = get_response(request)
        seconds = time.perf_counter() - started
        metrics.request_observed(endpoint=_endpoint(request), method=request.method, status=response.status_code, seconds=seconds)
        requests_logger.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={"method": request.method, "status": response.status_code, "duration_ms": round(seconds * 1000, 2)},
        )
        response["X-Request-ID"] = request_id
        return response

    return middleware


def _request_context_forget(**kwargs) -> None:
    request_context.set(None)


request_finished.connect(_request_context_forget, dispatch_uid="authserver.request_context_forget")


def _endpoint(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unrouted"
    return match.view_name if match.url_name else "unmatched"
