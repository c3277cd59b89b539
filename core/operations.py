"""GET / (what this server is and where to read on) and GET /metrics (Prometheus)."""

import hmac

from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse
from rest_framework.response import Response

from core import metrics
from core.api import PublicView
from core.errors import MetricsTokenInvalid, NotFound


class IndexView(PublicView):
    """GET /: the server's name and version, and the paths of its docs, schema, health and keys."""

    def get(self, request):
        return Response(
            {
                "name": "authserver",
                "version": settings.VERSION,
                "links": {
                    "docs": reverse("docs"),
                    "schema": reverse("schema"),
                    "status": reverse("status"),
                    "jwks": reverse("jwks"),
                    "metadata": reverse("metadata"),
                },
            }
        )


class MetricsView(PublicView):
    """GET /metrics: the counters of every worker, with `Authorization: Bearer <METRICS_TOKEN>`.

    NotFound while METRICS_TOKEN is unset, as if there were no such path.
    """

    def initial(self, request, *args, **kwargs):
        # Before the verb's handler is chosen: every verb (OPTIONS, that DRF answers with the
        # view's metadata, a refused POST) is NotFound while off, and needs the token while on.
        expected = settings.METRICS_TOKEN
        if not expected:
            raise NotFound
        scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        # Compared in constant time, as bytes (hmac refuses str that are not ASCII).
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            raise MetricsTokenInvalid
        super().initial(request, *args, **kwargs)

    def get(self, request):
        body, content_type = metrics.exposition()
        return HttpResponse(body, content_type=content_type, headers={"Cache-Control": "no-store"})
