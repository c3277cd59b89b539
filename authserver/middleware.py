"""Project middleware."""

from django.conf import settings

from accounts.addresses import from_trusted_proxy
from accounts.errors import json_error

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
