"""Project middleware."""

from django.conf import settings

from accounts.errors import json_error


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
